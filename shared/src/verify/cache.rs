//! A short-lived cache of what verifying a secret read: its credential and its key.
//!
//! Entries are keyed by the caller's organization and the verified secret's hash, and only a
//! key of the caller's own organization is ever stored. So another organization can never hit
//! an entry: for it, a key that exists answers exactly as a missing key does, with one read,
//! never faster from memory. Missing keys are not cached, so a new key verifies at once.
//!
//! Entries live at most the TTL, by the clock rule of every cache ([`crate::cache`]): both the
//! monotonic and the wall clock must say the entry is younger, and a wall clock that stepped
//! back expires it. This is its own [`TtlMap`], not the caller cache's entries: what it keeps
//! is a credential *and* its key, per organization, and its age counts from the store read,
//! never from a cached credential. The TTL is the caller cache's
//! ([`VerifyCache::matching`]; 5 s unless `CALLER_CACHE_TTL_SECS` says otherwise), so a
//! disabled or deleted key stops verifying within the same bound as it stops authenticating,
//! and never more than [`crate::cache::MAX_TTL`].

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::cache::Moment;
use crate::cache::{CallerCache, DEFAULT_TTL, MAX_ENTRIES, MAX_TTL, TtlMap};
use crate::key::{ApiKey, OrgId};
use crate::owner::OwnerId;
use crate::secret::SecretHash;
use crate::store::{Credential, OwnerSpent};

/// What a verification of the caller's own key read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Looked {
    pub credential: Credential,
    pub key: ApiKey,
}

/// The verification cache. A zero TTL caches nothing.
#[derive(Debug)]
pub struct VerifyCache {
    entries: TtlMap<(OrgId, SecretHash), Looked>,
    /// The leased rate limits' tokens this process holds ([`super::lease`]).
    leases: super::lease::Leases,
    /// Owners' items as last read or spent from, `None` for an owner without credits or
    /// limits of its own ([`VerifyCache::owner`]).
    owners: TtlMap<(OrgId, OwnerId), Option<OwnerSpent>>,
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
            entries: TtlMap::new(ttl.min(MAX_TTL), MAX_ENTRIES),
            leases: super::lease::Leases::default(),
            owners: TtlMap::new(ttl.min(MAX_TTL), MAX_ENTRIES),
        }
    }

    /// A cache whose entries live exactly as long as the caller cache's: the way handlers
    /// build it, so the two bounds cannot drift apart.
    pub fn matching(callers: &CallerCache) -> Self {
        VerifyCache::new(callers.ttl())
    }

    pub fn ttl(&self) -> Duration {
        self.entries.ttl()
    }

    /// The leased rate limits' tokens this process holds.
    pub fn leases(&self) -> &super::lease::Leases {
        &self.leases
    }

    /// A spend read the key back: the entry keeps it (its version and counters), without
    /// counting its age anew.
    pub fn note_key(&self, org: &OrgId, hash: &SecretHash, key: &ApiKey) {
        self.entries.update(&(org.clone(), hash.clone()), |e| {
            if e.key.id == key.id {
                e.key = key.clone();
            }
        });
    }

    /// The owner's item as this process last saw it, read less than the TTL before `now`:
    /// `Some(None)` when it had no credits or limits of its own. A copy that holds them may
    /// be older than its item (a verify's spend is conditioned on the owner's version and
    /// counters, and plans again from the item when they moved); one without them says an
    /// owner's new limits apply in this process at most the TTL after they were set.
    pub fn owner(&self, org: &OrgId, owner: &OwnerId, now: Moment) -> Option<Option<OwnerSpent>> {
        self.owners.get(&(org.clone(), owner.clone()), now)
    }

    /// Keeps the owner's item read at `read_at` (`None`: it has no credits or limits).
    pub fn put_owner(
        &self,
        org: &OrgId,
        owner: &OwnerId,
        item: Option<OwnerSpent>,
        read_at: Moment,
    ) {
        self.owners
            .insert((org.clone(), owner.clone()), item, read_at);
    }

    /// A spend found or left the owner's item so: the copy keeps it, without counting its
    /// age anew.
    pub fn note_owner(&self, org: &OrgId, item: &OwnerSpent) {
        let key = (org.clone(), item.owner.id.clone());
        self.owners.update(&key, |e| *e = Some(item.clone()));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller's lookup of `hash`, if read less than the TTL before `now`.
    pub fn get(&self, org: &OrgId, hash: &SecretHash, now: Moment) -> Option<Looked> {
        self.entries.get(&(org.clone(), hash.clone()), now)
    }

    /// Stores a lookup read at `read_at` (taken before the read, so that the entry never
    /// outlives the TTL). Only a key of `org` itself is stored.
    pub fn put(&self, org: &OrgId, hash: &SecretHash, looked: Looked, read_at: Moment) {
        if &looked.credential.org != org || &looked.key.org != org {
            return;
        }
        self.entries
            .insert((org.clone(), hash.clone()), looked, read_at);
    }

    /// A use of the key was recorded at `at`: the entry says so, so that the next
    /// verifications within the minute do not record it again.
    pub fn note_use(&self, org: &OrgId, hash: &SecretHash, at: DateTime<Utc>) {
        self.entries.update(&(org.clone(), hash.clone()), |e| {
            e.credential.last_used = Some(at);
            e.key.last_used = Some(at);
        });
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
                quota: Default::default(),
                version: 0,
                owner_id: None,
                meta: None,
                allowed_cidrs: None,
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
                quota: Default::default(),
                owner_id: None,
                meta: None,
                allowed_cidrs: None,
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
        let callers = CallerCache::new(Duration::from_secs(7));
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
