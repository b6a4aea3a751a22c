//! One deadline per request: the invocation's own deadline, from the Lambda context, less
//! [`MARGIN`] to render the answer and hand it back; the function's timeout less [`MARGIN`]
//! ([`DEFAULT_BUDGET`], revoke-leaked's [`REPORT_BUDGET`]) from now when the invocation has none (a bare local invocation, a test) or one that had already passed when
//! it arrived. Lambda sets the deadline when it hands the event over, so it is never in the
//! past there; `cargo lambda watch` (`make run`) sends a relative `600000` in the header that
//! should hold epoch milliseconds, a date in 1970, which would otherwise refuse every request. A request pipeline runs all of its
//! work under it: when it passes, the work is dropped, DynamoDB calls in flight included, and
//! the request answers 503 with `Retry-After` instead of running into the function's timeout.

use std::future::Future;
use std::time::{Duration, SystemTime};

use lambda_http::Context;
use tokio::time::Instant;

/// Kept back from the invocation's deadline to render the answer and return it.
pub const MARGIN: Duration = Duration::from_millis(500);

/// The functions' timeout in template.yaml (`Globals`), which a test of the template pins.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(6);

/// revoke-leaked's own timeout in template.yaml: a report may name up to 1000 keys, each
/// revoked by a read and a transaction (see `leak::REVOKE_CONCURRENCY`).
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(20);

/// expiry-notices' own timeout in template.yaml: a scheduled run writes the notices due
/// until this less [`MARGIN`], and the next run goes on from there. Like every function's,
/// it stays below the time after which the audit trail counts an event as settled.
pub const NOTICES_TIMEOUT: Duration = Duration::from_secs(20);

/// A run's time when its invocation has no deadline: [`NOTICES_TIMEOUT`] less [`MARGIN`].
pub const NOTICES_BUDGET: Duration = NOTICES_TIMEOUT.saturating_sub(MARGIN);

/// A request's time when its invocation has no deadline: [`FUNCTION_TIMEOUT`] less
/// [`MARGIN`].
pub const DEFAULT_BUDGET: Duration = FUNCTION_TIMEOUT.saturating_sub(MARGIN);

/// A report's time when its invocation has no deadline: [`REPORT_TIMEOUT`] less [`MARGIN`].
pub const REPORT_BUDGET: Duration = REPORT_TIMEOUT.saturating_sub(MARGIN);

/// When a request must have its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(Instant);

/// The request's deadline passed before its work was done.
#[derive(Debug, thiserror::Error)]
#[error("the request's deadline passed before the key store answered")]
pub struct DeadlinePassed;

impl Deadline {
    /// The deadline of a request that arrived in `context` (`None` outside Lambda), for a
    /// function whose timeout leaves it `fallback` when the invocation says nothing
    /// ([`DEFAULT_BUDGET`], or [`REPORT_BUDGET`] for revoke-leaked).
    pub fn of(context: Option<&Context>, fallback: Duration) -> Self {
        let invocation = context.filter(|c| c.deadline > 0).map(|c| c.deadline());
        Self::within(invocation, SystemTime::now(), fallback)
    }

    fn within(invocation: Option<SystemTime>, now: SystemTime, fallback: Duration) -> Self {
        let budget = match invocation {
            // Already past on arrival: not a real invocation deadline (see the module's note).
            Some(deadline) => match deadline.duration_since(now) {
                Ok(left) => left.saturating_sub(MARGIN),
                Err(_) => fallback,
            },
            None => fallback,
        };
        Deadline(Instant::now() + budget)
    }

    /// The time left until the deadline.
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Runs `work` until the deadline: its outcome, or a store that did not answer in time.
    pub async fn bound<T, E: From<DeadlinePassed>>(
        self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        // The store learns the deadline too ([`left`], [`allows`]), so its retries stop in
        // time.
        tokio::time::timeout_at(self.0, until(self.0, work))
            .await
            .unwrap_or_else(|_| Err(DeadlinePassed.into()))
    }
}

// The deadline of the work running now, for the store's retry loops: a retry that could not
// finish in time is not started, and the write answers at once.
tokio::task_local! {
    static UNTIL: Instant;
}

/// Runs `work` with `until` as the time its store calls must be done by.
pub fn until<F: Future>(until: Instant, work: F) -> impl Future<Output = F::Output> {
    UNTIL.scope(until, work)
}

/// The time left before the deadline of the work running now; `None` outside a request.
pub fn left() -> Option<Duration> {
    UNTIL
        .try_with(|at| at.saturating_duration_since(Instant::now()))
        .ok()
}

/// Whether waiting `wait` and then running something that takes up to `then` still ends
/// before the deadline (always, outside a request).
pub fn allows(wait: Duration, then: Duration) -> bool {
    left().is_none_or(|left| left > wait + then)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn context(left: Duration) -> Context {
        let mut c = Context::default();
        let at = SystemTime::now() + left;
        c.deadline = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        c
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_the_invocations_less_the_margin_or_the_default() {
        let left = Deadline::of(Some(&context(Duration::from_secs(3))), DEFAULT_BUDGET).remaining();
        assert!(
            left <= Duration::from_millis(2500) && left > Duration::from_millis(2400),
            "{left:?}"
        );
        assert_eq!(
            Deadline::of(None, DEFAULT_BUDGET).remaining(),
            DEFAULT_BUDGET
        );
        assert_eq!(Deadline::of(None, REPORT_BUDGET).remaining(), REPORT_BUDGET);
        // A context without a deadline (0, its default) is no deadline.
        assert_eq!(
            Deadline::of(Some(&Context::default()), DEFAULT_BUDGET).remaining(),
            DEFAULT_BUDGET
        );
        // An invocation with less than the margin left has no time at all.
        let late = Deadline::of(Some(&context(Duration::from_millis(200))), DEFAULT_BUDGET);
        assert_eq!(late.remaining(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_already_past_on_arrival_is_no_deadline() {
        // What `cargo lambda watch` sends: 600000 "epoch milliseconds", in 1970.
        let mut local = Context::default();
        local.deadline = 600_000;
        assert_eq!(
            Deadline::of(Some(&local), DEFAULT_BUDGET).remaining(),
            DEFAULT_BUDGET
        );
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_dropped_and_the_store_reported_unavailable() {
        let deadline = Deadline::of(Some(&context(Duration::from_secs(2))), DEFAULT_BUDGET);
        let started = Instant::now();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        };
        let outcome: Result<(), StoreError> = deadline.bound(slow).await;
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))));
        assert!(started.elapsed() <= Duration::from_millis(1500));
        let fresh = Deadline::of(None, DEFAULT_BUDGET)
            .bound(async { Ok::<_, StoreError>(7) })
            .await;
        assert_eq!(fresh.ok(), Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_left_is_the_deadlines_inside_and_none_outside() {
        assert_eq!(left(), None);
        assert!(allows(Duration::from_secs(100), Duration::ZERO));
        let at = Instant::now() + Duration::from_secs(2);
        until(at, async {
            assert_eq!(left(), Some(Duration::from_secs(2)));
            assert!(allows(Duration::from_secs(1), Duration::from_millis(500)));
            assert!(!allows(Duration::from_secs(1), Duration::from_secs(1)));
        })
        .await;
    }
}
