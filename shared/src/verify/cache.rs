//! A short-lived cache of what verifying a secret read: its credential and its key.
//!
//! Entries are keyed by the caller's organization and the verified secret's hash, and only a
//! key of the caller's own organization is ever stored. So another organization can never hit
//! an entry: for it, a key that exists answers exactly as a missing key does, with one read,
//! never faster from memory. Missing keys are not cached, so a new key verifies at once.
//!
//! An entry lives at most the TTL, measured on both clocks: the monotonic one (immune to
//! clock steps) and the wall clock (which keeps running while Lambda freezes the process
//! between invocations, when a monotonic clock may not). A wall clock that went backwards
//! expires the entry. The TTL is the caller cache's ([`VerifyCache::matching`]; 5 s unless
//! `CALLER_CACHE_TTL_SECS` says otherwise), so a disabled or deleted key stops verifying
//! within the same bound as it stops authenticating, and never more than
//! [`crate::cache::MAX_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cache::{DEFAULT_TTL, MAX_ENTRIES, MAX_TTL};
use crate::key::{ApiKey, OrgId};
use crate::secret::SecretHash;
use crate::store::Credential;

/// A moment on both clocks. Taken once per request and passed down, so tests set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    pub wall: DateTime<Utc>,
    pub mono: Instant,
}

impl Moment {
    pub fn now() -> Self {
        Moment {
            wall: Utc::now(),
            mono: Instant::now(),
        }
    }

    /// This moment `d` later on both clocks.
    pub fn plus(self, d: Duration) -> Self {
        Moment {
            wall: self.wall + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
            mono: self.mono + d,
        }
    }
}

/// What a verification of the caller's own key read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Looked {
    pub credential: Credential,
    pub key: ApiKey,
}

#[derive(Debug)]
struct Entry {
    looked: Looked,
    read_at: Moment,
}

type Slot = (OrgId, SecretHash);

/// The verification cache. A zero TTL caches nothing.
#[derive(Debug)]
pub struct VerifyCache {
    ttl: Duration,
    entries: Mutex<HashMap<Slot, Entry>>,
}

impl Default for VerifyCache {
    fn default() -> Self {
        VerifyCache::new(DEFAULT_TTL)
    }
}

impl VerifyCache {
    /// A cache whose entries live `ttl`, at most [`MAX_TTL`]. Give it the caller cache's TTL.
    pub fn new(ttl: Duration) -> Self {
        VerifyCache {
            ttl: ttl.min(MAX_TTL),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A cache whose entries live exactly as long as the caller cache's: the way handlers
    /// build it, so the two bounds cannot drift apart.
    pub fn matching<S>(callers: &crate::cache::CachedStore<S>) -> Self {
        VerifyCache::new(callers.ttl())
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Slot, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, read_at: Moment, now: Moment) -> bool {
        let mono_age = now.mono.saturating_duration_since(read_at.mono);
        let wall_age = now.wall.signed_duration_since(read_at.wall);
        let wall_fresh = wall_age >= chrono::Duration::zero()
            && wall_age.to_std().is_ok_and(|age| age < self.ttl);
        mono_age < self.ttl && wall_fresh
    }

    /// The caller's lookup of `hash`, if read less than the TTL before `now`.
    pub fn get(&self, org: &OrgId, hash: &SecretHash, now: Moment) -> Option<Looked> {
        let slot = (org.clone(), hash.clone());
        let mut entries = self.lock();
        match entries.get(&slot) {
            Some(e) if self.fresh(e.read_at, now) => Some(e.looked.clone()),
            Some(_) => {
                entries.remove(&slot);
                None
            }
            None => None,
        }
    }

    /// Stores a lookup read at `read_at` (taken before the read, so that the entry never
    /// outlives the TTL). Only a key of `org` itself is stored.
    pub fn put(&self, org: &OrgId, hash: &SecretHash, looked: Looked, read_at: Moment) {
        if self.ttl.is_zero() || &looked.credential.org != org || &looked.key.org != org {
            return;
        }
        let mut entries = self.lock();
        let slot = (org.clone(), hash.clone());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&slot) {
            entries.retain(|_, e| self.fresh(e.read_at, read_at));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(slot, Entry { looked, read_at });
    }

    /// A use of the key was recorded at `at`: the entry says so, so that the next
    /// verifications within the minute do not record it again.
    pub fn note_use(&self, org: &OrgId, hash: &SecretHash, at: DateTime<Utc>) {
        if let Some(e) = self.lock().get_mut(&(org.clone(), hash.clone())) {
            e.looked.credential.last_used = Some(at);
            e.looked.key.last_used = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Access, KeyId, KeyState};
    use crate::secret::Secret;

    fn looked(org: &str) -> Looked {
        let org: OrgId = org.parse().unwrap();
        let id = KeyId::generate();
        let now = Utc::now();
        Looked {
            credential: Credential {
                org: org.clone(),
                key_id: id,
                access: Access::Unrestricted,
                state: KeyState::Active,
                expires: None,
                last_used: None,
                previous: false,
            },
            key: ApiKey {
                id,
                org,
                name: "k".into(),
                created: now,
                updated: now,
                last_used: None,
                expires: None,
                creator_id: uuid::Uuid::nil(),
                access: Access::Unrestricted,
                state: KeyState::Active,
                last_four: "abcd".into(),
                version: 0,
                disabled_reason: None,
            },
        }
    }

    fn hash(seed: u8) -> SecretHash {
        Secret::from_random([seed; 24]).hash()
    }

    #[test]
    fn an_entry_lives_the_ttl_on_the_monotonic_clock() {
        let cache = VerifyCache::new(Duration::from_secs(5));
        let org: OrgId = "acme".parse().unwrap();
        let t0 = Moment::now();
        cache.put(&org, &hash(1), looked("acme"), t0);
        let almost = t0.plus(Duration::from_millis(4_999));
        assert!(cache.get(&org, &hash(1), almost).is_some());
        assert!(
            cache
                .get(&org, &hash(1), t0.plus(Duration::from_secs(5)))
                .is_none()
        );
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn wall_clock_time_expires_an_entry_when_the_monotonic_clock_stood_still() {
        let cache = VerifyCache::new(Duration::from_secs(5));
        let org: OrgId = "acme".parse().unwrap();
        let t0 = Moment::now();
        cache.put(&org, &hash(1), looked("acme"), t0);
        // A frozen sandbox: an hour passed on the wall, nothing on the monotonic clock.
        let thawed = Moment {
            wall: t0.wall + chrono::Duration::hours(1),
            mono: t0.mono,
        };
        assert!(cache.get(&org, &hash(1), thawed).is_none());
        // A wall clock stepped backwards expires the entry too.
        cache.put(&org, &hash(2), looked("acme"), t0);
        let stepped = Moment {
            wall: t0.wall - chrono::Duration::seconds(1),
            mono: t0.mono + Duration::from_secs(1),
        };
        assert!(cache.get(&org, &hash(2), stepped).is_none());
    }

    #[test]
    fn entries_belong_to_the_callers_organization_only() {
        let cache = VerifyCache::new(Duration::from_secs(5));
        let acme: OrgId = "acme".parse().unwrap();
        let globex: OrgId = "globex".parse().unwrap();
        let t0 = Moment::now();
        cache.put(&acme, &hash(1), looked("acme"), t0);
        assert!(cache.get(&globex, &hash(1), t0).is_none());
        // Another organization's key is never stored, whoever asks.
        cache.put(&globex, &hash(2), looked("acme"), t0);
        assert!(cache.get(&globex, &hash(2), t0).is_none());
        assert_eq!(cache.len(), 1, "only acme's own entry");
    }

    #[test]
    fn the_ttl_is_bounded_and_zero_caches_nothing() {
        assert_eq!(VerifyCache::default().ttl(), DEFAULT_TTL);
        let callers = crate::cache::CachedStore::new((), Duration::from_secs(7));
        assert_eq!(
            VerifyCache::matching(&callers).ttl(),
            Duration::from_secs(7)
        );
        assert_eq!(VerifyCache::new(Duration::from_secs(3600)).ttl(), MAX_TTL);
        let off = VerifyCache::new(Duration::ZERO);
        let org: OrgId = "acme".parse().unwrap();
        off.put(&org, &hash(1), looked("acme"), Moment::now());
        assert!(off.is_empty());
    }

    /// The hash of the `i`th made-up secret, for filling the cache.
    fn filler(i: usize) -> SecretHash {
        let mut bytes = [0xff; 24];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        Secret::from_random(bytes).hash()
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_keeps_the_newest() {
        let cache = VerifyCache::new(Duration::from_secs(5));
        let org: OrgId = "acme".parse().unwrap();
        let t0 = Moment::now();
        let entry = looked("acme");
        // All but one place taken at t0; the last one 3 s later.
        for i in 0..MAX_ENTRIES - 1 {
            cache.put(&org, &filler(i), entry.clone(), t0);
        }
        let t3 = t0.plus(Duration::from_secs(3));
        let kept = looked("acme");
        cache.put(&org, &hash(1), kept.clone(), t3);
        assert_eq!(cache.len(), MAX_ENTRIES);

        // Full when a new entry comes, once the first ones have expired: they go, the later
        // entry and the newcomer stay.
        let t5 = t0.plus(Duration::from_secs(5));
        let newcomer = looked("acme");
        cache.put(&org, &hash(2), newcomer.clone(), t5);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&org, &hash(1), t5), Some(kept));
        assert_eq!(cache.get(&org, &hash(2), t5), Some(newcomer.clone()));
        assert_eq!(cache.get(&org, &filler(0), t5), None);

        // Full of entries that are all fresh: they go, the newest one stays.
        for i in 0..MAX_ENTRIES - 2 {
            cache.put(&org, &filler(MAX_ENTRIES + i), entry.clone(), t5);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        let last = looked("acme");
        cache.put(&org, &hash(3), last.clone(), t5);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&org, &hash(3), t5), Some(last));
        assert_eq!(cache.get(&org, &hash(2), t5), None);
    }

    #[test]
    fn a_noted_use_is_seen_by_the_next_hit() {
        let cache = VerifyCache::new(Duration::from_secs(5));
        let org: OrgId = "acme".parse().unwrap();
        let t0 = Moment::now();
        cache.put(&org, &hash(1), looked("acme"), t0);
        cache.note_use(&org, &hash(1), t0.wall);
        let hit = cache.get(&org, &hash(1), t0).unwrap();
        assert_eq!(hit.credential.last_used, Some(t0.wall));
        assert_eq!(hit.key.last_used, Some(t0.wall));
    }
}
