//! How long the store may keep trying: the request's deadline, set once by the edge
//! (`crate::deadline`) around the whole request, read by the store's retry loops so that a
//! retry that could not finish in time is not started and the write answers at once.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

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
