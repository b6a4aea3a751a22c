//! The one cache primitive, [`TtlMap`], and the cache of authenticated callers built on it.
//!
//! [`TtlMap`] keeps values for at most a TTL, bounded in size, and says once when an entry
//! is fresh ([`Moment::within`]). Three caches use it, each an instance of its own: the
//! caller cache here ([`CallerCache`]), the verification cache ([`crate::verify::cache`],
//! whose entries also hold the key and belong to one organization) and the last-use
//! back-off ([`crate::usage`]). A Lambda process serves one request at a time, so a mutex
//! around a map costs nothing.
//!
//! The clock rule, for all three: an entry's age is read on two clocks, and it is fresh only
//! while both say it is younger than the TTL. The monotonic clock cannot be set back; the
//! wall clock keeps counting while Lambda freezes the execution environment between
//! invocations (the monotonic clock may not). A wall clock that stepped back, so that the
//! entry seems stored in the future, expires it: a cache may always read again, never serve
//! past its bound.
//!
//! The caller cache wraps the credential lookup only: [`CallerCache::over`] lends a store a
//! [`CredentialStore`] that answers [`CredentialStore::find_credential`] from memory for up
//! to the TTL after the store read, and it is what authentication reads through
//! (`http::serve`). The application's store ([`crate::App::store`]) stays uncached, so every
//! other read, every write and every verification sees the store itself.
//!
//! What this trades: a key that is disabled, rolled out of its grace period or deleted keeps
//! authenticating in a warm function for at most the TTL ([`DEFAULT_TTL`], 5 s unless
//! `CALLER_CACHE_TTL_SECS` says otherwise, never more than [`MAX_TTL`]), in the function that
//! made the change too. An expiry date is not affected, nor the end of a grace period (the
//! credential carries it as its expiry): the status is computed at every request. Only
//! credentials that exist are cached; an unknown secret is read every time, so a key created
//! a moment ago works at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::key::{KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{Credential, CredentialStore, StoreError};

/// How long a caller stays cached unless configured otherwise: the longest time a disabled
/// or deleted key may still work.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// The longest TTL `CALLER_CACHE_TTL_SECS` may set.
pub const MAX_TTL: Duration = Duration::from_secs(60);
/// The most callers kept at once; a function sees few distinct callers between cold starts,
/// and this bounds the memory an attacker with many valid keys could make it hold.
pub const MAX_ENTRIES: usize = 4096;

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

    /// Whether something stored at `then` is younger than `ttl` now, on both clocks: the
    /// clock rule of every cache (see the module header).
    pub fn within(self, then: Moment, ttl: Duration) -> bool {
        let mono_age = self.mono.saturating_duration_since(then.mono);
        let wall_age = self.wall.signed_duration_since(then.wall);
        let wall_fresh =
            wall_age >= chrono::Duration::zero() && wall_age.to_std().is_ok_and(|age| age < ttl);
        mono_age < ttl && wall_fresh
    }
}

/// A map whose entries live at most a TTL (see [`Moment::within`]) and which holds at most a
/// bound of them. A zero TTL keeps nothing. When it is full and a new key comes, the expired
/// entries go, and if that is not enough, all of them: the newcomer is always kept.
#[derive(Debug)]
pub struct TtlMap<K, V> {
    ttl: Duration,
    max: usize,
    entries: Mutex<HashMap<K, (Moment, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlMap {
            ttl,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many entries are kept now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (Moment, V)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key`, if it was stored less than the TTL before `now`. An expired
    /// entry is dropped.
    pub fn get(&self, key: &K, now: Moment) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, value)) if now.within(*at, self.ttl) => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key`, stored `at` (for a value read from somewhere, the moment
    /// before the read, so that it never outlives the TTL).
    pub fn insert(&self, key: K, value: V, at: Moment) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, (then, _)| at.within(*then, self.ttl));
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (at, value));
    }

    /// Changes the value of `key` in place, if there is one; its age stays what it was.
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Some((_, value)) = self.lock().get_mut(key) {
            change(value);
        }
    }
}

/// The credentials of authenticated callers, for up to a TTL after their store read. A zero
/// TTL caches nothing.
#[derive(Debug)]
pub struct CallerCache {
    entries: TtlMap<SecretHash, Credential>,
}

impl CallerCache {
    /// A cache whose entries live `ttl`, at most [`MAX_TTL`].
    pub fn new(ttl: Duration) -> Self {
        CallerCache {
            entries: TtlMap::new(ttl.min(MAX_TTL), MAX_ENTRIES),
        }
    }

    /// No cache: every lookup reads the store (the functions that write).
    pub fn off() -> Self {
        CallerCache::new(Duration::ZERO)
    }

    pub fn ttl(&self) -> Duration {
        self.entries.ttl()
    }

    /// How many callers are cached now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `store`'s credential lookup, through this cache: what authentication reads.
    pub fn over<'a, S>(&'a self, store: &'a S) -> CachedCredentials<'a, S> {
        CachedCredentials { store, cache: self }
    }
}

/// A store's credential lookup with a [`CallerCache`] in front. It is a [`CredentialStore`]
/// and nothing else: no key is read and nothing is written through it but a last use.
#[derive(Debug)]
pub struct CachedCredentials<'a, S> {
    store: &'a S,
    cache: &'a CallerCache,
}

impl<S: CredentialStore> CredentialStore for CachedCredentials<'_, S> {
    async fn spend_as_a_miss(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.store.spend_as_a_miss(hash).await
    }

    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        // The entry's age counts from before the read, so it never outlives the TTL.
        let now = Moment::now();
        if let Some(hit) = self.cache.entries.get(hash, now) {
            return Ok(Some(hit));
        }
        let found = self.store.find_credential(hash).await?;
        if let Some(credential) = &found {
            self.cache
                .entries
                .insert(hash.clone(), credential.clone(), now);
        }
        Ok(found)
    }

    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let wrote = self
            .store
            .record_use(org, id, hash, at, stale_before)
            .await?;
        // Written now, or found recent enough by the condition: either way the stored stamp
        // is at or after `stale_before`, and `at` is as good an estimate of it as any. The
        // cached caller says so, so that the next requests within the minute do not try to
        // record it again.
        self.cache
            .entries
            .update(hash, |credential| credential.last_used = Some(at));
        Ok(wrote)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::key::{Access, ApiKey, KeyState};
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;
    use crate::write::{NewKey, create_key_with_secret};

    /// Counts the credential reads that reach the store.
    #[derive(Default)]
    struct Counting {
        store: MemoryStore,
        reads: AtomicUsize,
    }

    impl Counting {
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl CredentialStore for Counting {
        async fn find_credential(&self, h: &SecretHash) -> Result<Option<Credential>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.store.find_credential(h).await
        }

        async fn record_use(
            &self,
            org: &OrgId,
            id: KeyId,
            hash: &SecretHash,
            at: DateTime<Utc>,
            stale_before: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.store.record_use(org, id, hash, at, stale_before).await
        }
    }

    async fn add_key(store: &Counting, seed: u8) -> (ApiKey, Secret) {
        let secret = Secret::from_random([seed; 24]);
        let new = NewKey {
            org: "o".parse().unwrap(),
            name: format!("k{seed}"),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let key = create_key_with_secret(&store.store, new, &secret)
            .await
            .unwrap();
        (key, secret)
    }

    /// Disables `key` straight in the store, past the cache, as another process would.
    async fn disable(store: &Counting, key: &ApiKey) {
        crate::write::set_state(
            &store.store,
            &Default::default(),
            &crate::write::WriteContext::cli(),
            &key.org,
            key.id,
            KeyState::Disabled,
        )
        .await
        .unwrap();
    }

    const TTL: Duration = Duration::from_secs(5);

    #[tokio::test(start_paused = true)]
    async fn a_cached_caller_needs_no_read_until_the_ttl_passes() {
        let (store, cache) = (Counting::default(), CallerCache::new(TTL));
        let (key, secret) = add_key(&store, 1).await;
        let (cached, hash) = (cache.over(&store), secret.hash());
        let first = cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(first.key_id, key.id);
        assert_eq!(store.reads(), 1);
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert_eq!(cached.find_credential(&hash).await.unwrap(), Some(first));
        assert_eq!(store.reads(), 1, "inside the TTL the store is not read");
        tokio::time::advance(Duration::from_millis(1)).await;
        cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(store.reads(), 2, "at the TTL the entry is read again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_recorded_use_is_seen_by_the_cached_caller_so_it_is_not_recorded_again() {
        let (store, cache) = (Counting::default(), CallerCache::new(TTL));
        let (key, secret) = add_key(&store, 7).await;
        let (cached, hash) = (cache.over(&store), secret.hash());
        let found = cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(found.last_used, None);
        let now = Utc::now();
        let stale_before = now - chrono::Duration::seconds(60);
        cached
            .record_use(&key.org, key.id, &hash, now, stale_before)
            .await
            .unwrap();
        let again = cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(again.last_used, Some(now));
        assert_eq!(
            store.reads(),
            1,
            "the stamp came from the write, not a read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_disabled_elsewhere_stops_working_within_the_ttl() {
        let (store, cache) = (Counting::default(), CallerCache::new(TTL));
        let (key, secret) = add_key(&store, 2).await;
        let (cached, hash) = (cache.over(&store), secret.hash());
        cached.find_credential(&hash).await.unwrap().unwrap();
        disable(&store, &key).await;
        let stale = cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(stale.state, KeyState::Active, "the documented window");
        tokio::time::advance(DEFAULT_TTL).await;
        let fresh = cached.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(fresh.state, KeyState::Disabled);
        assert_eq!(
            store.store.find_credential(&hash).await.unwrap(),
            Some(fresh),
            "the store itself was never behind a cache"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_secrets_are_not_cached_and_a_zero_ttl_caches_nothing() {
        let (store, cache) = (Counting::default(), CallerCache::new(TTL));
        let unknown = Secret::from_random([9; 24]).hash();
        let cached = cache.over(&store);
        assert_eq!(cached.find_credential(&unknown).await.unwrap(), None);
        assert_eq!(cached.find_credential(&unknown).await.unwrap(), None);
        assert_eq!(store.reads(), 2);
        assert!(cache.is_empty());

        let (store, off) = (Counting::default(), CallerCache::off());
        let (_, secret) = add_key(&store, 5).await;
        let cached = off.over(&store);
        cached
            .find_credential(&secret.hash())
            .await
            .unwrap()
            .unwrap();
        cached
            .find_credential(&secret.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.reads(), 2);
        assert!(off.is_empty());
        assert_eq!(CallerCache::new(Duration::from_secs(3600)).ttl(), MAX_TTL);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_are_told_apart() {
        let (store, cache) = (Counting::default(), CallerCache::new(TTL));
        let mut keys = Vec::new();
        for i in 0..3u8 {
            keys.push(add_key(&store, 20 + i).await);
        }
        let cached = cache.over(&store);
        for _ in 0..2 {
            for (key, secret) in &keys {
                let c = cached.find_credential(&secret.hash()).await.unwrap();
                assert_eq!(c.unwrap().key_id, key.id, "a hit is the caller's own");
            }
        }
        assert_eq!(store.reads(), 3);
    }

    #[test]
    fn on_a_frozen_instance_the_wall_clock_still_expires_an_entry() {
        // The monotonic clock stands still, as it may while Lambda freezes the environment.
        let map = TtlMap::new(TTL, 8);
        let t0 = Moment::now();
        map.insert(1, "a", t0);
        let wall = |ms| Moment {
            wall: t0.wall + chrono::Duration::milliseconds(ms),
            mono: t0.mono,
        };
        assert_eq!(map.get(&1, wall(4_999)), Some("a"), "inside the TTL");
        assert_eq!(map.get(&1, wall(5_000)), None, "the TTL passed on the wall");
        assert!(map.is_empty(), "an expired entry is dropped");
        // And the monotonic clock expires it whatever the wall clock says.
        map.insert(2, "b", t0);
        let mono = Moment {
            wall: t0.wall,
            mono: t0.mono + TTL,
        };
        assert_eq!(map.get(&2, mono), None);
    }

    #[test]
    fn a_wall_clock_stepped_back_expires_an_entry() {
        let map = TtlMap::new(TTL, 8);
        let t0 = Moment::now();
        map.insert(1, "a", t0);
        let stepped = Moment {
            wall: t0.wall - chrono::Duration::seconds(1),
            mono: t0.mono + Duration::from_secs(1),
        };
        assert_eq!(map.get(&1, stepped), None);
        map.insert(2, "b", t0);
        let an_hour_back = Moment {
            wall: t0.wall - chrono::Duration::hours(1),
            mono: t0.mono,
        };
        assert_eq!(map.get(&2, an_hour_back), None);
    }

    #[test]
    fn a_full_map_drops_expired_entries_first_and_keeps_the_newest() {
        let map = TtlMap::new(TTL, MAX_ENTRIES);
        let t0 = Moment::now();
        // All but one place taken at t0; the last one 3 s later.
        for i in 0..MAX_ENTRIES - 1 {
            map.insert(i, 0, t0);
        }
        let (t3, t5) = (t0.plus(Duration::from_secs(3)), t0.plus(TTL));
        map.insert(usize::MAX, 3, t3);
        assert_eq!(map.len(), MAX_ENTRIES);

        // Full when a new entry comes, once the first ones have expired: they go, the later
        // entry and the newcomer stay.
        map.insert(usize::MAX - 1, 5, t5);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&usize::MAX, t5), Some(3));
        assert_eq!(map.get(&(usize::MAX - 1), t5), Some(5));
        assert_eq!(map.get(&0, t5), None);

        // Full of entries that are all fresh: they go, the newest one stays.
        for i in 0..MAX_ENTRIES - 2 {
            map.insert(MAX_ENTRIES + i, 0, t5);
        }
        assert_eq!(map.len(), MAX_ENTRIES);
        map.insert(usize::MAX - 2, 6, t5);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&(usize::MAX - 2), t5), Some(6));
        assert_eq!(map.get(&usize::MAX, t5), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing_and_an_update_keeps_the_age() {
        let off = TtlMap::new(Duration::ZERO, 8);
        off.insert(1, 1, Moment::now());
        assert!(off.is_empty());
        let map = TtlMap::new(TTL, 8);
        let t0 = Moment::now();
        map.insert(1, 1, t0);
        map.update(&1, |v| *v = 2);
        map.update(&9, |v| *v = 9);
        assert_eq!(map.get(&1, t0.plus(Duration::from_millis(4_999))), Some(2));
        assert_eq!(map.get(&1, t0.plus(TTL)), None);
        assert_eq!(map.len(), 0);
    }
}
