//! Spending a verify's cost from a key's credits and rate limits: after every other check
//! has passed, one conditional write of the key item per attempt ([`crate::quota::plan`]),
//! planned first from what the verify already knows (the credential or the cached key), then
//! from the item as a failed condition returned it. Leased limits spend from this process's
//! [`Leases`] where they can, and reserve a new lease in the same write where they cannot.
//!
//! The outcome is exact: the write's conditions check every counter it changes, so no
//! window ever counts past its limit, no credits go below zero, and a refused verify
//! changes nothing. A spend refused by a rate limit is `RATE_LIMITED`, by the credits
//! `USAGE_EXCEEDED`, in that order.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::VerifyCode;
use super::lease::Leases;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::quota::plan::{self, Ask, Counters, Decision, Spend};
use crate::quota::{Mode, Quota};
use crate::store::quota::Spent;
use crate::store::{QuotaStore, Spending, StoreError};

/// The most writes one verify tries. Each failed one is another write's success (a verify's
/// spend, or a change of the key) landing between the state it planned from and its write,
/// since the next attempt plans from what the failure returned: so with N verifies of one
/// key at once, a verify needs at most N attempts. The request's deadline bounds the time
/// they take (`crate::deadline`); this bounds the writes, well above the concurrency one key
/// sees (8 here once answered 503 to a few of 50 concurrent verifies of one key).
pub(super) const ATTEMPTS: usize = 64;

/// What a metered verify learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metered {
    /// `VALID`, `RATE_LIMITED`, `USAGE_EXCEEDED`, or `NOT_FOUND` for a key deleted meanwhile.
    pub code: VerifyCode,
    /// The key as the write left it (or found it); `None` when nothing was written (every
    /// limit leased and held, no credits) or the key is gone.
    pub key: Option<ApiKey>,
    pub left: Left,
    /// What the key's owner has left, when it has credits or limits of its own
    /// ([`super::joint`]).
    pub owner: Option<Left>,
}

/// What a key has left: the answer's `credits` and `ratelimits`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Left {
    pub credits: Option<u64>,
    pub ratelimits: Vec<LimitLeft>,
}

/// One rate limit's tokens left in its window, and when the window ends (epoch ms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitLeft {
    pub name: String,
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
}

/// What the verify knows of the key before it writes: its version and quota.
#[derive(Clone, Copy, Debug)]
pub struct Basis<'a> {
    pub version: u64,
    pub quota: &'a Quota,
}

/// The cost spent from leases this process holds, per limit: the window, or `None`.
struct Local(Vec<Option<i64>>);

impl Local {
    fn take(leases: &Leases, id: KeyId, quota: &Quota, now: DateTime<Utc>, cost: u64) -> Self {
        let now_ms = now.timestamp_millis();
        let need = cost.max(1);
        Local(
            quota
                .ratelimits
                .iter()
                .map(|l| {
                    (l.mode == Mode::Leased)
                        .then(|| leases.take(id, l, now_ms, cost, need))
                        .flatten()
                        .map(|_| l.window(now_ms))
                })
                .collect(),
        )
    }

    fn ask(&self, quota: &Quota, cost: u64, now: DateTime<Utc>) -> Ask {
        let takes = quota
            .ratelimits
            .iter()
            .zip(&self.0)
            .map(|(l, held)| match (held, l.mode) {
                (Some(_), _) => None,
                (None, Mode::Leased) => Some(l.lease(cost)),
                (None, Mode::Exact) => Some(cost),
            })
            .collect();
        Ask { cost, now, takes }
    }

    fn give_back(&self, leases: &Leases, id: KeyId, quota: &Quota, cost: u64, now_ms: i64) {
        for (l, held) in quota.ratelimits.iter().zip(&self.0) {
            if let Some(window) = held {
                leases.add(id, l, (*window, now_ms), cost, None);
            }
        }
    }
}

/// Spends `cost` from the key `id` of `org` (see the module header).
pub async fn meter<S: QuotaStore>(
    store: &S,
    leases: &Leases,
    (org, id): (&OrgId, KeyId),
    basis: Basis<'_>,
    cost: u64,
    now: DateTime<Utc>,
) -> Result<Metered, StoreError> {
    if let Some(left) = leases.full(id, basis.quota, now.timestamp_millis(), cost.max(1)) {
        return Ok(metered(VerifyCode::RateLimited, None, left));
    }
    let op = uuid::Uuid::now_v7().to_string();
    let mut m = Attempt::new(leases, id, basis, cost, now);
    for _ in 0..ATTEMPTS {
        let spend = match m.decide() {
            Decision::Write(spend) => spend,
            // Refused as planned without reading (a cost no limit can ever take): read the
            // key, to answer with what it holds.
            _ if m.seen.is_none() => match store.spent(org, id).await? {
                Some(s) => {
                    m.observe(s);
                    continue;
                }
                None => return Ok(m.gone()),
            },
            refused => return Ok(m.refused(&refused)),
        };
        if spend.credits.is_none() && spend.limits.is_empty() {
            let left = left_of(&m.quota, None, leases, id, now);
            return Ok(metered(VerifyCode::Valid, None, left));
        }
        match store.spend(org, id, m.version, &op, &spend).await? {
            Spending::Applied(s) => return Ok(applied(s, &spend, leases, cost, now)),
            Spending::Refused(s) => m.observe(s),
            Spending::Gone => return Ok(m.gone()),
        }
    }
    m.give_back();
    Err(StoreError::Unavailable(
        "a key's counters kept changing under its verify".into(),
    ))
}

/// One verify's spend between its attempts: what it plans from, and the cost it took from
/// this process's leases (given back unless a write lands).
struct Attempt<'a> {
    leases: &'a Leases,
    id: KeyId,
    cost: u64,
    now: DateTime<Utc>,
    quota: Quota,
    version: u64,
    seen: Option<Spent>,
    local: Local,
}

impl<'a> Attempt<'a> {
    fn new(leases: &'a Leases, id: KeyId, basis: Basis<'_>, cost: u64, now: DateTime<Utc>) -> Self {
        let quota = basis.quota.clone();
        let local = Local::take(leases, id, &quota, now, cost);
        Attempt {
            leases,
            id,
            cost,
            now,
            quota,
            version: basis.version,
            seen: None,
            local,
        }
    }

    fn decide(&self) -> Decision {
        let ask = self.local.ask(&self.quota, self.cost, self.now);
        match &self.seen {
            None => plan::first(&self.quota, &ask),
            Some(s) => plan::decide(&s.key.quota, &s.counters, &ask),
        }
    }

    /// Plans the next attempt from the key as it is; with its rules as they are, if they
    /// changed since the verify read them.
    fn observe(&mut self, s: Spent) {
        if !s.key.quota.same_rules(&self.quota) {
            self.give_back();
            self.quota = s.key.quota.clone();
            self.local = Local::take(self.leases, self.id, &self.quota, self.now, self.cost);
        }
        self.version = s.key.version;
        self.seen = Some(s);
    }

    fn give_back(&self) {
        let now_ms = self.now.timestamp_millis();
        self.local
            .give_back(self.leases, self.id, &self.quota, self.cost, now_ms);
    }

    fn gone(self) -> Metered {
        self.give_back();
        metered(VerifyCode::NotFound, None, Left::default())
    }

    fn refused(self, decision: &Decision) -> Metered {
        self.give_back();
        refusal(
            decision,
            self.seen,
            &self.quota,
            self.leases,
            self.id,
            self.now,
        )
    }
}

fn metered(code: VerifyCode, key: Option<ApiKey>, left: Left) -> Metered {
    Metered {
        code,
        key,
        left,
        owner: None,
    }
}

/// A refused spend, with what the key had left as last seen.
fn refusal(
    decision: &Decision,
    seen: Option<Spent>,
    quota: &Quota,
    leases: &Leases,
    id: KeyId,
    now: DateTime<Utc>,
) -> Metered {
    let code = match decision {
        Decision::RateLimited(_) => VerifyCode::RateLimited,
        _ => VerifyCode::UsageExceeded,
    };
    match seen {
        Some(s) => {
            let left = left_of(&s.key.quota, Some(&s.counters), leases, id, now);
            if let Decision::RateLimited(i) = decision {
                note_full(leases, &s, *i, &left, now);
            }
            metered(code, Some(s.key), left)
        }
        None => metered(code, None, left_of(quota, None, leases, id, now)),
    }
}

/// Notes the window of the key's limit `i` full, when the key as seen has no token left in it.
fn note_full(leases: &Leases, s: &Spent, i: usize, left: &Left, now: DateTime<Utc>) {
    let Some(limit) = s.key.quota.ratelimits.get(i) else {
        return;
    };
    let (tokens, reset) = plan::left(limit, &s.counters, now);
    if tokens == 0 {
        let window = reset.saturating_sub_unsigned(limit.duration_ms);
        leases.mark_full(
            s.key.id,
            limit,
            (window, now.timestamp_millis()),
            left.clone(),
        );
    }
}

/// An applied spend: the leases it reserved are this process's now.
fn applied(s: Spent, spend: &Spend, leases: &Leases, cost: u64, now: DateTime<Utc>) -> Metered {
    let now_ms = now.timestamp_millis();
    for (i, op) in &spend.limits {
        let Some(l) = s.key.quota.ratelimits.get(*i) else {
            continue;
        };
        if l.mode == Mode::Leased {
            let store_left = plan::left(l, &s.counters, now).0;
            leases.add(
                s.key.id,
                l,
                (op.window, now_ms),
                op.take - cost,
                Some(store_left),
            );
        }
    }
    let left = left_of(&s.key.quota, Some(&s.counters), leases, s.key.id, now);
    metered(VerifyCode::Valid, Some(s.key), left)
}

/// What `quota` has left, by `counters` where known. A leased limit's remaining is what
/// this process holds plus what the store had left at its last reservation.
pub(super) fn left_of(
    quota: &Quota,
    counters: Option<&Counters>,
    leases: &Leases,
    id: KeyId,
    now: DateTime<Utc>,
) -> Left {
    let now_ms = now.timestamp_millis();
    let ratelimits = quota
        .ratelimits
        .iter()
        .map(|l| {
            let (store_left, reset) = match counters {
                Some(c) => plan::left(l, c, now),
                None => (l.limit, l.reset(l.window(now_ms))),
            };
            let remaining = match l.mode {
                Mode::Exact => store_left,
                Mode::Leased => {
                    let (held, last_left) = leases.held(id, l, now_ms);
                    let store = if counters.is_some() {
                        store_left
                    } else {
                        last_left
                    };
                    (held + store).min(l.limit)
                }
            };
            LimitLeft {
                name: l.name.clone(),
                limit: l.limit,
                remaining,
                reset,
            }
        })
        .collect();
    Left {
        credits: quota.credits.as_ref().map(|c| c.remaining),
        ratelimits,
    }
}
