//! What a key may use: its credits, with an optional refill, and up to [`MAX_LIMITS`] rate
//! limits. Verify spends them ([`crate::verify::meter`]); the write side sets them like any
//! other field, under the authority rule's usage clause ([`Quota::no_looser_than`]).
//!
//! - Credits: `remaining` counts down by each verify's `cost`; a refill sets it back to
//!   `amount` at the start of each UTC day or month ([`period`]).
//! - Rate limits: fixed windows aligned to the duration (a window starts at a multiple of
//!   `duration_ms` since the epoch), so up to twice the limit may pass across a boundary.
//!   `exact` counts every verify in the store; `leased` lets a process reserve a lease of
//!   [`RateLimit::lease`] tokens at once and spend them from memory.
//!
//! All of a key's counters live on its key item, so one conditional write changes them all
//! or none ([`plan`] decides it from what the item held).

pub mod period;
pub mod plan;

use serde::{Deserialize, Serialize};

/// The most credits a key may hold, and the largest refill: JSON's exact integers.
pub const MAX_CREDITS: u64 = 9_007_199_254_740_991;
/// The largest `cost` one verify may spend.
pub const MAX_COST: u64 = 10_000;
/// The most rate limits one key may carry.
pub const MAX_LIMITS: usize = 5;
/// A rate limit's bounds.
pub const MAX_LIMIT: u64 = 1_000_000_000;
pub const MIN_DURATION_MS: u64 = 1_000;
pub const MAX_DURATION_MS: u64 = 86_400_000;

/// A key's credits and rate limits. The default (no credits, no limits) is unmetered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratelimits: Vec<RateLimit>,
}

/// Credits: how many are left, how they refill, and below how many the key is low.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credits {
    pub remaining: u64,
    pub refill: Option<Refill>,
    /// When `remaining` drops below this (1 to [`MAX_CREDITS`]), `key.credits_low` is
    /// published, once per crossing (`crate::publish::credits`). Absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_at: Option<u64>,
}

/// Setting `remaining` back to `amount` at the start of every period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refill {
    pub interval: Interval,
    pub amount: u64,
    /// The day of the month a monthly refill happens (1 to 31; 31 is the last day of a
    /// shorter month). `None` for a daily refill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Daily,
    Monthly,
}

/// How a rate limit is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every verify updates the counter in the store.
    #[default]
    Exact,
    /// A process reserves [`RateLimit::lease`] tokens at once and spends them from memory.
    Leased,
}

/// At most `limit` tokens per window of `duration_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub name: String,
    pub limit: u64,
    pub duration_ms: u64,
    #[serde(default)]
    pub mode: Mode,
}

impl RateLimit {
    /// The start of the window `now_ms` (epoch milliseconds) falls in.
    pub fn window(&self, now_ms: i64) -> i64 {
        let d = i64::try_from(self.duration_ms).unwrap_or(i64::MAX).max(1);
        now_ms - now_ms.rem_euclid(d)
    }

    /// When the window starting at `start` ends (epoch milliseconds).
    pub fn reset(&self, start: i64) -> i64 {
        start.saturating_add(i64::try_from(self.duration_ms).unwrap_or(i64::MAX))
    }

    /// How many tokens a leased limit reserves at once for a verify of `cost`: a tenth of
    /// the limit, rounded up, and at least the cost.
    pub fn lease(&self, cost: u64) -> u64 {
        self.limit.div_ceil(10).max(cost)
    }
}

/// Why a key's credits or limits are not acceptable; the text is a 422's `detail`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuota {
    #[error("must hold at most {MAX_LIMITS} rate limits")]
    TooManyLimits,
    #[error("names the rate limit {0:?} twice; each name may appear once")]
    DuplicateName(String),
    #[error("has a name that is not 1 to 32 characters of A-Z, a-z, 0-9, '_', '-' or '.'")]
    Name,
    #[error("has a limit outside 1 to {MAX_LIMIT}")]
    Limit,
    #[error("has a duration_ms outside {MIN_DURATION_MS} to {MAX_DURATION_MS}")]
    Duration,
    #[error("has a day outside 1 to 31")]
    Day,
    #[error("has a day, which only a monthly refill takes")]
    DailyDay,
    #[error("has an amount outside 1 to {MAX_CREDITS}")]
    Amount,
    #[error("has remaining outside 0 to {MAX_CREDITS}")]
    Remaining,
    #[error("has low_at outside 1 to {MAX_CREDITS}")]
    LowAt,
    #[error("needs remaining: the key has no credits yet")]
    RemainingRequired,
    #[error("would leave the key more than {MAX_CREDITS} credits")]
    Overflow,
    #[error(
        "has a leased rate limit; an owner's rate limits are shared by all of its keys and \
         counted exactly, so mode must be exact"
    )]
    OwnerLeased,
    #[error("has low_at, which only a key's credits take")]
    OwnerLowAt,
}

/// Checks a list of rate limits.
pub fn check_limits(limits: &[RateLimit]) -> Result<(), InvalidQuota> {
    if limits.len() > MAX_LIMITS {
        return Err(InvalidQuota::TooManyLimits);
    }
    for (i, l) in limits.iter().enumerate() {
        let name_ok = (1..=32).contains(&l.name.len())
            && l.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(InvalidQuota::Name);
        }
        if !(1..=MAX_LIMIT).contains(&l.limit) {
            return Err(InvalidQuota::Limit);
        }
        if !(MIN_DURATION_MS..=MAX_DURATION_MS).contains(&l.duration_ms) {
            return Err(InvalidQuota::Duration);
        }
        if limits[..i].iter().any(|o| o.name == l.name) {
            return Err(InvalidQuota::DuplicateName(l.name.clone()));
        }
    }
    Ok(())
}

/// Checks credits.
pub fn check_credits(credits: &Credits) -> Result<(), InvalidQuota> {
    if credits.remaining > MAX_CREDITS {
        return Err(InvalidQuota::Remaining);
    }
    if credits
        .low_at
        .is_some_and(|l| !(1..=MAX_CREDITS).contains(&l))
    {
        return Err(InvalidQuota::LowAt);
    }
    let Some(r) = &credits.refill else {
        return Ok(());
    };
    if !(1..=MAX_CREDITS).contains(&r.amount) {
        return Err(InvalidQuota::Amount);
    }
    match (r.interval, r.day) {
        (Interval::Daily, Some(_)) => Err(InvalidQuota::DailyDay),
        (Interval::Monthly, Some(d)) if !(1..=31).contains(&d) => Err(InvalidQuota::Day),
        _ => Ok(()),
    }
}

/// Why a caller may not leave a key with this quota: it would use more than the caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Looser {
    #[error(
        "this API key has credits, so the key it grants must have credits too, no more than \
         its own {0} remaining and a refill no larger than its own"
    )]
    Credits(u64),
    #[error(
        "this API key has the rate limit {0:?}, so the key it grants must carry it too, with \
         the same duration and mode and a limit no larger"
    )]
    Limit(String),
}

impl Looser {
    /// The body field at fault.
    pub fn parameter(&self) -> &'static str {
        match self {
            Looser::Credits(_) => "credits",
            Looser::Limit(_) => "ratelimits",
        }
    }
}

impl Quota {
    /// Whether `other` has the same credits and limits, whatever the credits left.
    pub fn same_rules(&self, other: &Quota) -> bool {
        self.ratelimits == other.ratelimits
            && self.credits.as_ref().map(|c| c.refill) == other.credits.as_ref().map(|c| c.refill)
    }

    /// Whether verify spends anything for this key.
    pub fn is_metered(&self) -> bool {
        self.credits.is_some() || !self.ratelimits.is_empty()
    }

    /// Whether a key with this quota can use no more than a caller with `caller`'s: it has
    /// credits if the caller has, no more of them and no larger refill, and each of the
    /// caller's limits (same name, duration and mode), no larger.
    pub fn no_looser_than(&self, caller: &Quota) -> Result<(), Looser> {
        if let Some(mine) = &caller.credits {
            let fits = self.credits.as_ref().is_some_and(|c| {
                c.remaining <= mine.remaining
                    && match (&c.refill, &mine.refill) {
                        (None, _) => true,
                        (Some(r), Some(m)) => r.interval == m.interval && r.amount <= m.amount,
                        (Some(_), None) => false,
                    }
            });
            if !fits {
                return Err(Looser::Credits(mine.remaining));
            }
        }
        for mine in &caller.ratelimits {
            let held = self.ratelimits.iter().any(|l| {
                l.name == mine.name
                    && l.duration_ms == mine.duration_ms
                    && l.mode == mine.mode
                    && l.limit <= mine.limit
            });
            if !held {
                return Err(Looser::Limit(mine.name.clone()));
            }
        }
        Ok(())
    }

    /// Whether changing a key from `before` to this quota lets it use more: more credits
    /// left or a larger refill, credits removed, or a limit removed, raised or changed.
    pub fn loosens(&self, before: &Quota) -> bool {
        let credits = match (&before.credits, &self.credits) {
            (Some(_), None) => true,
            (None, _) => false,
            (Some(b), Some(a)) => {
                a.remaining > b.remaining
                    || match (&b.refill, &a.refill) {
                        (_, None) => false,
                        (None, Some(_)) => true,
                        (Some(rb), Some(ra)) => {
                            ra.amount > rb.amount
                                || (ra.interval == Interval::Daily
                                    && rb.interval == Interval::Monthly)
                        }
                    }
            }
        };
        let limits = before.ratelimits.iter().any(|b| {
            !self.ratelimits.iter().any(|a| {
                a.name == b.name
                    && a.duration_ms == b.duration_ms
                    && a.mode == b.mode
                    && a.limit <= b.limit
            })
        });
        credits || limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, limit: u64, duration_ms: u64) -> RateLimit {
        RateLimit {
            name: name.into(),
            limit,
            duration_ms,
            mode: Mode::Exact,
        }
    }

    fn credits(remaining: u64) -> Option<Credits> {
        Some(Credits {
            remaining,
            refill: None,
            low_at: None,
        })
    }

    #[test]
    fn windows_align_to_the_duration() {
        let l = limit("s", 10, 1000);
        assert_eq!(l.window(12_345), 12_000);
        assert_eq!(l.reset(12_000), 13_000);
        assert_eq!(l.window(-1), -1000);
        assert_eq!(limit("m", 100, 10_000).lease(1), 10);
        assert_eq!(limit("m", 5, 10_000).lease(3), 3);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(check_limits(&[limit("a", 1, 1000)]), Ok(()));
        let six: Vec<_> = (0..6).map(|i| limit(&format!("l{i}"), 1, 1000)).collect();
        assert_eq!(check_limits(&six), Err(InvalidQuota::TooManyLimits));
        let twice = [limit("a", 1, 1000), limit("a", 2, 2000)];
        assert_eq!(
            check_limits(&twice),
            Err(InvalidQuota::DuplicateName("a".into()))
        );
        assert_eq!(
            check_limits(&[limit("a", 1, 999)]),
            Err(InvalidQuota::Duration)
        );
        assert_eq!(
            check_limits(&[limit("a b", 1, 1000)]),
            Err(InvalidQuota::Name)
        );
        assert_eq!(
            check_limits(&[limit("a", 0, 1000)]),
            Err(InvalidQuota::Limit)
        );
    }

    #[test]
    fn a_metered_caller_grants_no_more_than_it_has() {
        let caller = Quota {
            credits: credits(100),
            ratelimits: vec![limit("s", 10, 1000)],
        };
        let same = caller.clone();
        assert_eq!(same.no_looser_than(&caller), Ok(()));
        let unmetered = Quota::default();
        assert_eq!(unmetered.no_looser_than(&caller), Err(Looser::Credits(100)));
        let more = Quota {
            credits: credits(101),
            ..caller.clone()
        };
        assert!(more.no_looser_than(&caller).is_err());
        let no_limit = Quota {
            ratelimits: vec![],
            ..caller.clone()
        };
        assert_eq!(
            no_limit.no_looser_than(&caller),
            Err(Looser::Limit("s".into()))
        );
        assert_eq!(Quota::default().no_looser_than(&Quota::default()), Ok(()));
    }

    #[test]
    fn loosening_is_more_credits_or_fewer_or_larger_limits() {
        let before = Quota {
            credits: credits(10),
            ratelimits: vec![limit("s", 10, 1000)],
        };
        assert!(!before.loosens(&before));
        let fewer = Quota {
            credits: credits(5),
            ratelimits: vec![limit("s", 5, 1000), limit("m", 1, 60_000)],
        };
        assert!(!fewer.loosens(&before));
        assert!(before.loosens(&fewer));
        assert!(Quota::default().loosens(&before));
        assert!(!before.loosens(&Quota::default()));
    }
}
