//! Deciding one verify's spend from what the key item holds: a refusal, or the one
//! conditional write that spends its cost from every counter at once.
//!
//! The write's conditions pin the state it was planned from: a counter in the window it
//! was seen in, credits in the period they were seen in and with enough left. When another
//! verify got there first (a window rolled over, a refill happened, the key changed), the
//! condition fails, DynamoDB returns the item as it is, and the next attempt is planned from
//! that. So the store never holds a count that was not checked against the limit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Quota, RateLimit};

/// A key's counters, as its item holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// The start of the refill period its credits were last set or refilled in.
    pub period_ms: Option<i64>,
    /// Each rate limit's latest window, by the limit's name.
    pub windows: BTreeMap<String, Window>,
}

/// A rate limit's window: when it started (`w`, epoch milliseconds) and the tokens taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub w: i64,
    pub n: u64,
}

/// What one verify asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub cost: u64,
    pub now: DateTime<Utc>,
    /// Per rate limit (in the key's order), the tokens to take from the store: the cost for
    /// an exact limit, a lease for a leased one; `None` for a leased one the process's lease
    /// covers, which the store is not asked about.
    pub takes: Vec<Option<u64>>,
}

impl Ask {
    /// What must be left for the verify to pass: its cost, and at least one, so that a
    /// verify of cost 0 checks without spending yet fails where nothing is left.
    pub fn need(&self) -> u64 {
        self.cost.max(1)
    }
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The limit at this index has too little left: `RATE_LIMITED`.
    RateLimited(usize),
    /// Too few credits: `USAGE_EXCEEDED`.
    UsageExceeded,
    Write(Spend),
}

/// One conditional write of the key item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spend {
    pub credits: Option<CreditOp>,
    /// The limits that take tokens from the store, with their index in the key's list.
    pub limits: Vec<(usize, LimitOp)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditOp {
    /// `remaining -= cost`, if `remaining >= need` and the period is still `period` (no
    /// condition on the period when the credits do not refill).
    Take {
        cost: u64,
        need: u64,
        period: Option<i64>,
    },
    /// `remaining = amount - cost` and the period becomes `to`, if it was `from` (absent:
    /// `None`): the first verify of a new period refills, once.
    Refill {
        from: Option<i64>,
        to: i64,
        amount: u64,
        cost: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitOp {
    pub name: String,
    /// Tokens taken from the store.
    pub take: u64,
    pub window: i64,
    pub slot: Slot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `n += take`, if the window is still `window` and `n <= max`.
    Current { max: u64 },
    /// The window becomes `{window, take}`, if it was `from` (absent: `None`).
    Fresh { from: Option<i64> },
}

/// The first attempt, planned without reading: every window current, the credits in this
/// period and enough of everything. Only a limit the cost can never fit is refused.
pub fn first(quota: &Quota, ask: &Ask) -> Decision {
    let now_ms = ask.now.timestamp_millis();
    let windows = quota
        .ratelimits
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                Window {
                    w: l.window(now_ms),
                    n: 0,
                },
            )
        })
        .collect();
    let period_ms = quota
        .credits
        .as_ref()
        .and_then(|c| c.refill)
        .map(|r| r.period_start(ask.now));
    let assumed = Quota {
        credits: quota.credits.clone().map(|mut c| {
            c.remaining = c.remaining.max(ask.need());
            c
        }),
        ratelimits: quota.ratelimits.clone(),
    };
    decide(&assumed, &Counters { period_ms, windows }, ask)
}

/// The attempt planned from what the item holds: its quota and counters.
pub fn decide(quota: &Quota, counters: &Counters, ask: &Ask) -> Decision {
    let now_ms = ask.now.timestamp_millis();
    let mut limits = Vec::new();
    for (i, limit) in quota.ratelimits.iter().enumerate() {
        let Some(take) = ask.takes.get(i).copied().unwrap_or(Some(ask.cost)) else {
            continue;
        };
        match limit_op(
            limit,
            counters.windows.get(&limit.name),
            take,
            ask.need(),
            now_ms,
        ) {
            Some(op) => limits.push((i, op)),
            None => return Decision::RateLimited(i),
        }
    }
    let credits = match &quota.credits {
        None => None,
        Some(c) => match credit_op(c, counters.period_ms, ask) {
            Some(op) => Some(op),
            None => return Decision::UsageExceeded,
        },
    };
    Decision::Write(Spend { credits, limits })
}

/// A limit's part of the write, or `None` when fewer than `need` tokens are left.
fn limit_op(
    limit: &RateLimit,
    seen: Option<&Window>,
    take: u64,
    need: u64,
    now_ms: i64,
) -> Option<LimitOp> {
    let current = limit.window(now_ms);
    let (window, slot, left) = match seen {
        // A later window than this clock's: another process's clock is ahead; count in it.
        Some(s) if s.w >= current => (s.w, None, limit.limit.saturating_sub(s.n)),
        Some(s) => (current, Some(Slot::Fresh { from: Some(s.w) }), limit.limit),
        None => (current, Some(Slot::Fresh { from: None }), limit.limit),
    };
    if left < need {
        return None;
    }
    // A lease takes what is left when less than a whole lease is.
    let take = take.min(left);
    let slot = slot.unwrap_or(Slot::Current {
        max: limit.limit - take.max(need),
    });
    Some(LimitOp {
        name: limit.name.clone(),
        take,
        window,
        slot,
    })
}

/// The credits' part of the write, or `None` when fewer than the need are left.
fn credit_op(credits: &super::Credits, period_ms: Option<i64>, ask: &Ask) -> Option<CreditOp> {
    let need = ask.need();
    let cost = ask.cost;
    let Some(refill) = credits.refill else {
        return (credits.remaining >= need).then_some(CreditOp::Take {
            cost,
            need,
            period: None,
        });
    };
    let due = refill.period_start(ask.now);
    match period_ms {
        // Refilled in this period already (or by a clock ahead of this one).
        Some(p) if p >= due => (credits.remaining >= need).then_some(CreditOp::Take {
            cost,
            need,
            period: Some(p),
        }),
        from => (refill.amount >= need).then_some(CreditOp::Refill {
            from,
            to: due,
            amount: refill.amount,
            cost,
        }),
    }
}

/// A holder of counters (a key, or an owner shared by keys) as `spend` leaves it, from
/// `quota` and `counters` as it was planned from.
pub fn after(quota: &Quota, counters: &Counters, spend: &Spend) -> (Quota, Counters) {
    let (mut quota, mut counters) = (quota.clone(), counters.clone());
    match (&spend.credits, quota.credits.as_mut()) {
        (Some(CreditOp::Take { cost, .. }), Some(c)) => {
            c.remaining = c.remaining.saturating_sub(*cost)
        }
        (
            Some(CreditOp::Refill {
                to, amount, cost, ..
            }),
            Some(c),
        ) => {
            c.remaining = amount.saturating_sub(*cost);
            counters.period_ms = Some(*to);
        }
        _ => {}
    }
    for (_, op) in &spend.limits {
        let w = counters
            .windows
            .entry(op.name.clone())
            .or_insert(Window { w: op.window, n: 0 });
        match op.slot {
            Slot::Current { .. } if w.w == op.window => w.n += op.take,
            _ => {
                *w = Window {
                    w: op.window,
                    n: op.take,
                }
            }
        }
    }
    (quota, counters)
}

/// What a limit has left in its window and when the window ends, as the counters say at
/// `now`: the answer's `ratelimits` entry.
pub fn left(limit: &RateLimit, counters: &Counters, now: DateTime<Utc>) -> (u64, i64) {
    let current = limit.window(now.timestamp_millis());
    match counters.windows.get(&limit.name) {
        Some(s) if s.w >= current => (limit.limit.saturating_sub(s.n), limit.reset(s.w)),
        _ => (limit.limit, limit.reset(current)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::quota::{Credits, Interval, Mode, Refill};

    fn quota(remaining: u64, refill: Option<Refill>, limit: Option<u64>) -> Quota {
        Quota {
            credits: Some(Credits {
                remaining,
                refill,
                low_at: None,
            }),
            ratelimits: limit
                .map(|l| RateLimit {
                    name: "s".into(),
                    limit: l,
                    duration_ms: 10_000,
                    mode: Mode::Exact,
                })
                .into_iter()
                .collect(),
        }
    }

    fn ask(cost: u64) -> Ask {
        Ask {
            cost,
            now: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 5).unwrap(),
            takes: vec![Some(cost)],
        }
    }

    fn counters(period_ms: Option<i64>, w: Option<Window>) -> Counters {
        Counters {
            period_ms,
            windows: w.map(|w| ("s".to_owned(), w)).into_iter().collect(),
        }
    }

    #[test]
    fn the_first_attempt_assumes_everything_current() {
        let Decision::Write(s) = first(&quota(0, None, Some(100)), &ask(1)) else {
            panic!()
        };
        assert_eq!(
            s.credits,
            Some(CreditOp::Take {
                cost: 1,
                need: 1,
                period: None
            })
        );
        assert_eq!(s.limits[0].1.slot, Slot::Current { max: 99 });
        assert_eq!(
            first(&quota(0, None, Some(1)), &ask(2)),
            Decision::RateLimited(0)
        );
    }

    #[test]
    fn a_full_window_is_rate_limited_before_credits_are_looked_at() {
        let now = ask(1).now.timestamp_millis();
        let full = counters(
            None,
            Some(Window {
                w: now - 5_000,
                n: 100,
            }),
        );
        assert_eq!(
            decide(&quota(0, None, Some(100)), &full, &ask(1)),
            Decision::RateLimited(0)
        );
        let open = counters(
            None,
            Some(Window {
                w: now - 5_000,
                n: 99,
            }),
        );
        assert_eq!(
            decide(&quota(0, None, Some(100)), &open, &ask(1)),
            Decision::UsageExceeded
        );
        // Cost 0 still needs one left, of the credits and of each limit.
        assert_eq!(
            decide(&quota(0, None, None), &open, &ask(0)),
            Decision::UsageExceeded
        );
        assert_eq!(
            decide(&quota(5, None, Some(100)), &full, &ask(0)),
            Decision::RateLimited(0)
        );
        let Decision::Write(s) = decide(&quota(5, None, Some(100)), &open, &ask(0)) else {
            panic!()
        };
        assert_eq!(
            (s.limits[0].1.take, s.limits[0].1.slot),
            (0, Slot::Current { max: 99 })
        );
    }

    #[test]
    fn an_old_window_starts_afresh_and_a_new_period_refills_once() {
        let now = ask(1).now;
        let old = counters(Some(0), Some(Window { w: 0, n: 100 }));
        let daily = Refill {
            interval: Interval::Daily,
            amount: 50,
            day: None,
        };
        let Decision::Write(s) = decide(&quota(0, Some(daily), Some(100)), &old, &ask(1)) else {
            panic!()
        };
        assert_eq!(s.limits[0].1.slot, Slot::Fresh { from: Some(0) });
        let due = daily.period_start(now);
        assert_eq!(
            s.credits,
            Some(CreditOp::Refill {
                from: Some(0),
                to: due,
                amount: 50,
                cost: 1
            })
        );
        let refilled = counters(Some(due), None);
        let Decision::Write(s) = decide(&quota(3, Some(daily), None), &refilled, &ask(2)) else {
            panic!()
        };
        assert!(matches!(s.credits, Some(CreditOp::Take { period: Some(p), .. }) if p == due));
    }

    #[test]
    fn after_a_spend_the_holder_has_what_the_write_left() {
        let now = ask(1).now.timestamp_millis();
        let w = now - now.rem_euclid(10_000);
        let seen = counters(None, Some(Window { w, n: 7 }));
        let q = quota(5, None, Some(100));
        let Decision::Write(s) = decide(&q, &seen, &ask(2)) else {
            panic!()
        };
        let (q2, c2) = after(&q, &seen, &s);
        assert_eq!(q2.credits.map(|c| c.remaining), Some(3));
        assert_eq!(c2.windows["s"], Window { w, n: 9 });
        let old = counters(None, Some(Window { w: 0, n: 100 }));
        let Decision::Write(s) = decide(&q, &old, &ask(2)) else {
            panic!()
        };
        assert_eq!(after(&q, &old, &s).1.windows["s"], Window { w, n: 2 });
    }

    #[test]
    fn a_lease_takes_what_is_left_when_less_than_a_lease_is() {
        let now = ask(1).now.timestamp_millis();
        let mut a = ask(1);
        a.takes = vec![Some(10)];
        let seen = counters(
            None,
            Some(Window {
                w: now - now.rem_euclid(10_000),
                n: 97,
            }),
        );
        let q = Quota {
            credits: None,
            ..quota(0, None, Some(100))
        };
        let Decision::Write(s) = decide(&q, &seen, &a) else {
            panic!()
        };
        assert_eq!(
            (s.limits[0].1.take, s.limits[0].1.slot),
            (3, Slot::Current { max: 97 })
        );
    }
}
