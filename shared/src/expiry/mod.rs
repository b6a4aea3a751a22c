//! Expiry notices: `key.expiring` a lead time before a key's `expires_date`, and
//! `key.expired` when it comes, each written once per key and expiry into the audit trail
//! (and so published as every event is).
//!
//! DynamoDB's TTL deletes "typically within a few days", so it cannot time these; a
//! scheduled run does ([`run`], every few minutes): it reads the keys the `by-expiry` index
//! lists as due ([`crate::store::ExpiryStore`]) and writes each one's notice in a
//! transaction that also moves the key to its next notice. The transaction's conditions on
//! the key item (active, still expiring then, not yet noticed for that expiry) make a notice
//! once per key and date, however often or concurrently runs read the same listing. A
//! disabled or deleted key gets none; a key whose expiry changes is noticed for its new date.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{StreamExt, stream};

use crate::audit::{Action, Actor, Changes, Event, EventId};
use crate::store::{Due, ExpiryStore, Phase, StoreError};
use crate::write::WritePolicy;

/// The lead time of `key.expiring` when not configured: 7 days.
pub const DEFAULT_LEAD_DAYS: u32 = 7;
/// The longest lead time `EXPIRY_NOTICE_LEAD_DAYS` may set. Each run reads this many days
/// of the index ahead (plus [`CATCH_UP_DAYS`] behind), 16 Queries a day.
pub const MAX_LEAD_DAYS: u32 = 30;
/// How many days before today a run still reads: notices a stopped schedule missed are
/// written when it runs again within this.
pub const CATCH_UP_DAYS: u32 = 2;
/// Keys read from one index partition per run; the rest wait for the next run.
pub const PAGE: usize = 1000;
/// Notices written at once.
pub const CONCURRENCY: usize = 16;
/// A run starts no further partition with less time than this before its deadline.
pub const ROOM: Duration = Duration::from_secs(3);

/// What the notices are configured with, once per process.
#[derive(Clone, Debug)]
pub struct NoticePolicy {
    /// How long before its expiry a key gets `key.expiring`.
    pub lead: chrono::Duration,
    /// The event retention, as for every event.
    pub write: WritePolicy,
}

/// `EXPIRY_NOTICE_LEAD_DAYS` is not a whole number of days in range.
#[derive(Debug, thiserror::Error)]
#[error("EXPIRY_NOTICE_LEAD_DAYS must be a whole number of days from 1 to {MAX_LEAD_DAYS}")]
pub struct InvalidLead;

impl NoticePolicy {
    pub fn new(lead_days: u32, write: WritePolicy) -> Result<Self, InvalidLead> {
        if !(1..=MAX_LEAD_DAYS).contains(&lead_days) {
            return Err(InvalidLead);
        }
        Ok(NoticePolicy {
            lead: chrono::Duration::days(i64::from(lead_days)),
            write,
        })
    }

    /// `EXPIRY_NOTICE_LEAD_DAYS` (default [`DEFAULT_LEAD_DAYS`]) and the write policy's
    /// `EVENT_RETENTION_DAYS`.
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let days = match std::env::var("EXPIRY_NOTICE_LEAD_DAYS") {
            Ok(v) if !v.is_empty() => v.parse::<u32>().map_err(|_| InvalidLead)?,
            _ => DEFAULT_LEAD_DAYS,
        };
        Ok(NoticePolicy::new(days, WritePolicy::from_env()?)?)
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// `key.expiring` notices written.
    pub expiring: usize,
    /// `key.expired` notices written.
    pub expired: usize,
    /// Listed keys whose notice was not written: changed, disabled or deleted since the
    /// index listed them, or noticed by a concurrent run.
    pub skipped: usize,
    /// Whether every due partition was read (false: the deadline came first, or a page was
    /// full; the next run goes on).
    pub complete: bool,
}

/// One run at `now`: every notice due, written once. `request_id` names the run in its
/// events (the invocation's id).
#[tracing::instrument(skip(store, policy), err(Display))]
pub async fn run<S: ExpiryStore>(
    store: &S,
    policy: &NoticePolicy,
    now: DateTime<Utc>,
    request_id: &str,
) -> Result<Summary, StoreError> {
    let now = crate::write::to_millis(now);
    let mut summary = Summary {
        complete: true,
        ..Summary::default()
    };
    for (phase, day, until) in partitions(now, policy.lead) {
        for shard in 0..store.shards() {
            if !crate::deadline::allows(Duration::ZERO, ROOM) {
                summary.complete = false;
                return Ok(summary);
            }
            let due = store.listed(phase, day, shard, until, PAGE).await?;
            summary.complete &= due.len() < PAGE;
            let written: Vec<Result<Option<Action>, StoreError>> = stream::iter(due)
                .map(|d| notify(store, policy, now, request_id, d))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for outcome in written {
                match outcome? {
                    Some(Action::Expiring) => summary.expiring += 1,
                    Some(_) => summary.expired += 1,
                    None => summary.skipped += 1,
                }
            }
        }
    }
    tracing::info!(?summary, "expiry notices");
    Ok(summary)
}

/// A scheduled invocation: a run at the present time, named by the invocation's id, until
/// its deadline (the function's timeout less the margin).
pub async fn scheduled<S: ExpiryStore>(
    store: &S,
    policy: &NoticePolicy,
    context: &lambda_http::Context,
) -> Result<Summary, StoreError> {
    let deadline = crate::deadline::Deadline::of(Some(context), crate::deadline::NOTICES_BUDGET);
    let until = tokio::time::Instant::now() + deadline.remaining();
    let work = run(store, policy, Utc::now(), &context.request_id);
    crate::deadline::until(until, work).await
}

/// The index partitions a run at `now` reads, by notice and day, with the latest expiry
/// due in each: `key.expired` for the days up to today, then `key.expiring` for the days up
/// to the lead time ahead (a key found there already expired gets `key.expired` instead).
fn partitions(
    now: DateTime<Utc>,
    lead: chrono::Duration,
) -> Vec<(Phase, NaiveDate, DateTime<Utc>)> {
    let today = now.date_naive();
    let first = today - chrono::Days::new(u64::from(CATCH_UP_DAYS));
    let horizon = now + lead;
    let days = |last: NaiveDate| first.iter_days().take_while(move |d| *d <= last);
    let expired = days(today).map(|d| (Phase::Expired, d, now));
    let expiring = days(horizon.date_naive()).map(|d| (Phase::Expiring, d, horizon));
    expired.chain(expiring).collect()
}

/// The notice `due` gets at `now`, written; `None` when its conditions failed.
async fn notify<S: ExpiryStore>(
    store: &S,
    policy: &NoticePolicy,
    now: DateTime<Utc>,
    request_id: &str,
    due: Due,
) -> Result<Option<Action>, StoreError> {
    let action = match due.phase {
        Phase::Expiring if due.expires > now => Action::Expiring,
        _ => Action::Expired,
    };
    let event = notice(policy, now, request_id, &due, action);
    let written = store.notify(&due, &event).await?;
    Ok(written.then_some(action))
}

/// The notice event `action` of `due`, at `now`.
fn notice(
    policy: &NoticePolicy,
    now: DateTime<Utc>,
    request_id: &str,
    due: &Due,
    action: Action,
) -> Event {
    let id = EventId::new_at(now);
    let time = id.time().unwrap_or(now);
    Event {
        id,
        time,
        org: due.org.clone(),
        action,
        key_id: Some(due.key_id),
        owner_id: None,
        actor: Actor::expiry_notices(),
        changes: Changes::new(),
        request_id: request_id.to_owned(),
        source_ip: None,
        leak: None,
        credits: None,
        expires: Some(due.expires),
        retain_until: time + policy.write.event_retention,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_run_reads_the_expired_days_to_today_and_the_expiring_days_to_the_lead_time() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let parts = partitions(now, chrono::Duration::days(7));
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let of = |phase| -> Vec<NaiveDate> {
            parts
                .iter()
                .filter(|(p, _, _)| *p == phase)
                .map(|(_, d, _)| *d)
                .collect()
        };
        assert_eq!(of(Phase::Expired), vec![day(8), day(9), day(10)]);
        assert_eq!(of(Phase::Expiring), (8..=17).map(day).collect::<Vec<_>>());
        assert!(parts.iter().all(|(p, _, until)| *until
            == if *p == Phase::Expired {
                now
            } else {
                now + chrono::Duration::days(7)
            }));
    }

    #[test]
    fn the_lead_time_is_bounded() {
        assert!(NoticePolicy::new(0, WritePolicy::default()).is_err());
        assert!(NoticePolicy::new(MAX_LEAD_DAYS + 1, WritePolicy::default()).is_err());
        let p = NoticePolicy::new(7, WritePolicy::default()).unwrap();
        assert_eq!(p.lead, chrono::Duration::days(7));
    }
}
