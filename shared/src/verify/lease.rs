//! Leased rate limits: the tokens this process reserved from a key's window and has not
//! spent yet. A verify spends from here without writing; when too few are left, the
//! meter reserves another lease with its write ([`crate::quota::RateLimit::lease`]).
//!
//! A lease never admits more than the limit: its tokens were taken from the window's count
//! in the store, on condition that the count stayed within the limit. It can under-admit:
//! tokens still held when the window ends are lost: at most one lease per verify that ran at
//! once without one (one per process for a Lambda instance, which runs one at a time).
//! Entries of ended windows are dropped as new ones come.
//!
//! It also keeps the windows this process saw with no token left: a window's count only goes
//! up until it ends (a lease is never given back to the store), so a verify of that key, limit
//! and window is `RATE_LIMITED` without a write, exactly as the write would have answered.
//! A flood of refused verifies then costs one write per process and window, not one each.

use std::collections::HashMap;
use std::sync::Mutex;

use super::meter::Left;
use crate::key::KeyId;
use crate::quota::{Quota, RateLimit};

/// The most windows held at once; past it, ended windows are dropped.
const MAX_HELD: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Held {
    key: KeyId,
    name: String,
    limit: u64,
    duration_ms: u64,
    window: i64,
}

impl Held {
    fn of(key: KeyId, limit: &RateLimit, window: i64) -> Self {
        Held {
            key,
            name: limit.name.clone(),
            limit: limit.limit,
            duration_ms: limit.duration_ms,
            window,
        }
    }
}

/// The tokens held, per key, limit (as configured) and window.
#[derive(Debug, Default)]
pub struct Leases {
    /// Per window: the tokens held, and what the window had left in the store after the
    /// last reservation.
    held: Mutex<HashMap<Held, (u64, u64)>>,
    /// Windows seen with no token left, and what the key had left when seen.
    full: Mutex<HashMap<Held, Left>>,
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Held, (u64, u64)>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spends `cost` from the tokens held for `limit` in the window of `now_ms`, if at
    /// least `need` are held; the tokens left, or `None` (nothing spent).
    pub fn take(
        &self,
        key: KeyId,
        limit: &RateLimit,
        now_ms: i64,
        cost: u64,
        need: u64,
    ) -> Option<u64> {
        let mut held = self.lock();
        let (tokens, _) = held.get_mut(&Held::of(key, limit, limit.window(now_ms)))?;
        if *tokens < need {
            return None;
        }
        *tokens -= cost;
        Some(*tokens)
    }

    /// Adds `tokens` to what is held for `limit` in `window`, and notes what the window had
    /// left in the store (`store_left`, when a reservation just read it); the tokens held.
    pub fn add(
        &self,
        key: KeyId,
        limit: &RateLimit,
        (window, now_ms): (i64, i64),
        tokens: u64,
        store_left: Option<u64>,
    ) -> u64 {
        let mut held = self.lock();
        if held.len() >= MAX_HELD {
            held.retain(|h, _| h.window.saturating_add_unsigned(h.duration_ms) > now_ms);
        }
        let entry = held.entry(Held::of(key, limit, window)).or_insert((0, 0));
        entry.0 += tokens;
        if let Some(left) = store_left {
            entry.1 = left;
        }
        entry.0
    }

    /// Notes that `limit`'s window starting at `window` had no token left, and what the key
    /// had left then.
    pub fn mark_full(
        &self,
        key: KeyId,
        limit: &RateLimit,
        (window, now_ms): (i64, i64),
        left: Left,
    ) {
        let mut full = self
            .full
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if full.len() >= MAX_HELD {
            full.retain(|h, _| h.window.saturating_add_unsigned(h.duration_ms) > now_ms);
        }
        full.insert(Held::of(key, limit, window), left);
    }

    /// What the key had left when one of its limits (as `quota` has them) was seen full in
    /// its window of `now_ms`, if one was and this process holds fewer than `need` of its
    /// tokens (a lease held is spent first).
    pub fn full(&self, key: KeyId, quota: &Quota, now_ms: i64, need: u64) -> Option<Left> {
        let full = self
            .full
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        quota.ratelimits.iter().find_map(|l| {
            let seen = full.get(&Held::of(key, l, l.window(now_ms)))?;
            (self.held(key, l, now_ms).0 < need).then(|| seen.clone())
        })
    }

    /// The tokens held for `limit` in the window of `now_ms`, and what the store had left.
    pub fn held(&self, key: KeyId, limit: &RateLimit, now_ms: i64) -> (u64, u64) {
        let at = Held::of(key, limit, limit.window(now_ms));
        self.lock().get(&at).copied().unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::Mode;

    #[test]
    fn held_tokens_are_spent_until_too_few_are_left() {
        let leases = Leases::default();
        let key = KeyId::generate();
        let limit = RateLimit {
            name: "s".into(),
            limit: 100,
            duration_ms: 10_000,
            mode: Mode::Leased,
        };
        assert_eq!(leases.take(key, &limit, 5, 1, 1), None);
        assert_eq!(leases.add(key, &limit, (0, 5), 2, Some(90)), 2);
        assert_eq!(leases.take(key, &limit, 6, 1, 1), Some(1));
        assert_eq!(leases.take(key, &limit, 7, 1, 1), Some(0));
        assert_eq!(leases.take(key, &limit, 8, 0, 1), None);
        // Another window holds nothing.
        leases.add(key, &limit, (0, 9), 5, None);
        assert_eq!(leases.take(key, &limit, 10_001, 1, 1), None);
        assert_eq!(leases.held(key, &limit, 9), (5, 90));
    }
}
