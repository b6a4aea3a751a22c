//! A short-lived cache of authenticated callers, as a decorator over a [`CredentialStore`].
//!
//! [`CachedStore`] answers [`CredentialStore::find_credential`] from memory for up to its
//! TTL after it last read the credential from the store, so a warm function serving the
//! same caller again makes no credential read at all. It caches nothing else: the reads of
//! [`KeyReader`] go straight through, and it is no writer (writes take `inner()`).
//!
//! What this trades: a key that is disabled, rolled out of its grace period or deleted
//! keeps authenticating in a warm function for at most the TTL ([`DEFAULT_TTL`], 5 s unless
//! `CALLER_CACHE_TTL_SECS` says otherwise, never more than [`MAX_TTL`]), in the function
//! that made the change too. An expiry date is not affected, nor the end of a grace period
//! (the credential carries it as its expiry): the status is computed at every request. Only
//! credentials that exist are cached; an unknown secret is read every time, so a key created
//! a moment ago works at once.
//!
//! An entry's age is read on two clocks, and it expires when either says the TTL has passed:
//! the monotonic clock, which no one can set back, and the wall clock, which keeps counting
//! while Lambda freezes the execution environment between invocations (the monotonic clock
//! may not). A wall clock set back counts for nothing; the monotonic one still expires the
//! entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use uuid::Uuid;

use crate::App;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{Credential, CredentialStore, KeyReader, Position, StoreError};

/// How long a caller stays cached unless configured otherwise: the longest time a disabled
/// or deleted key may still work.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);
/// The longest TTL `CALLER_CACHE_TTL_SECS` may set.
pub const MAX_TTL: Duration = Duration::from_secs(60);
/// The most callers kept at once; a function sees few distinct callers between cold starts,
/// and this bounds the memory an attacker with many valid keys could make it hold.
pub const MAX_ENTRIES: usize = 4096;

/// A store whose credential lookups are cached for `ttl`. A zero TTL caches nothing.
pub struct CachedStore<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<SecretHash, Entry>>,
    wall_clock: WallClock,
}

/// Reads the wall clock: the system's, or a test's.
type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// When a credential was read, on both clocks.
#[derive(Clone, Copy, Debug)]
struct ReadAt {
    monotonic: Instant,
    wall: SystemTime,
}

#[derive(Debug)]
struct Entry {
    read_at: ReadAt,
    credential: Credential,
}

impl<S: std::fmt::Debug> std::fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("ttl", &self.ttl)
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl<S> CachedStore<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        CachedStore {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
            wall_clock: Arc::new(SystemTime::now),
        }
    }

    /// The same cache, reading the wall clock from `clock`.
    #[cfg(test)]
    fn with_wall_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.wall_clock = Arc::new(clock);
        self
    }

    fn now(&self) -> ReadAt {
        ReadAt {
            monotonic: Instant::now(),
            wall: (self.wall_clock)(),
        }
    }

    /// Whether something read at `then` is younger than the TTL at `now`, on both clocks.
    fn fresh(&self, then: ReadAt, now: ReadAt) -> bool {
        let wall_age = now.wall.duration_since(then.wall).unwrap_or(Duration::ZERO);
        now.monotonic.duration_since(then.monotonic) < self.ttl && wall_age < self.ttl
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How many callers are cached now (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SecretHash, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, hash: &SecretHash, now: ReadAt) -> Option<Credential> {
        let mut entries = self.lock();
        match entries.get(hash) {
            Some(entry) if self.fresh(entry.read_at, now) => Some(entry.credential.clone()),
            Some(_) => {
                entries.remove(hash);
                None
            }
            None => None,
        }
    }

    fn remember(&self, hash: &SecretHash, credential: &Credential, read_at: ReadAt) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(hash) {
            entries.retain(|_, entry| self.fresh(entry.read_at, read_at));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let entry = Entry {
            read_at,
            credential: credential.clone(),
        };
        entries.insert(hash.clone(), entry);
    }

    /// A use was recorded at `at`: the cached caller says so, so that the next requests
    /// within the minute do not try to record it again.
    fn note_use(&self, hash: &SecretHash, at: DateTime<Utc>) {
        if let Some(entry) = self.lock().get_mut(hash) {
            entry.credential.last_used = Some(at);
        }
    }
}

impl<S: KeyReader> KeyReader for CachedStore<S> {
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.inner.get_key(org, id).await
    }

    async fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.read_run(org, from, ascending, max).await
    }

    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.inner.key_count(org).await
    }

    async fn last_uses(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> Result<std::collections::HashMap<KeyId, chrono::DateTime<chrono::Utc>>, StoreError> {
        self.inner.last_uses(org, ids).await
    }

    async fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner
            .read_run_by_creator(org, creator, from, ascending, max)
            .await
    }
}

impl<S: CredentialStore> CredentialStore for CachedStore<S> {
    async fn spend_as_a_miss(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.inner.spend_as_a_miss(hash).await
    }

    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        if let Some(hit) = self.cached(hash, self.now()) {
            return Ok(Some(hit));
        }
        // The entry's age counts from before the read, so it never outlives the TTL.
        let read_at = self.now();
        let found = self.inner.find_credential(hash).await?;
        if let Some(credential) = &found {
            self.remember(hash, credential, read_at);
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
            .inner
            .record_use(org, id, hash, at, stale_before)
            .await?;
        // Written now, or found recent enough by the condition: either way the stored stamp
        // is at or after `stale_before`, and `at` is as good an estimate of it as any.
        self.note_use(hash, at);
        Ok(wrote)
    }
}

impl<S> App<S> {
    /// The same application with its callers cached for `ttl` (see the module header).
    pub fn with_caller_cache(self, ttl: Duration) -> App<CachedStore<S>> {
        App {
            store: CachedStore::new(self.store, ttl),
            cursors: self.cursors,
            usage: self.usage,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::key::{Access, KeyState};
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;
    use crate::write::{NewKey, create_key_with_secret};

    /// Counts the credential reads that reach the store.
    #[derive(Default)]
    struct Counting {
        store: MemoryStore,
        reads: AtomicUsize,
    }

    impl KeyReader for Counting {
        async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
            self.store.get_key(org, id).await
        }

        async fn read_run(
            &self,
            org: &OrgId,
            from: Option<Position>,
            asc: bool,
            max: usize,
        ) -> Result<Vec<ApiKey>, StoreError> {
            self.store.read_run(org, from, asc, max).await
        }

        async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
            self.store.key_count(org).await
        }

        async fn last_uses(
            &self,
            org: &OrgId,
            ids: &[KeyId],
        ) -> Result<std::collections::HashMap<KeyId, chrono::DateTime<chrono::Utc>>, StoreError>
        {
            self.store.last_uses(org, ids).await
        }

        async fn read_run_by_creator(
            &self,
            org: &OrgId,
            creator: Uuid,
            from: Option<Position>,
            asc: bool,
            max: usize,
        ) -> Result<Vec<ApiKey>, StoreError> {
            self.store
                .read_run_by_creator(org, creator, from, asc, max)
                .await
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

    impl CachedStore<Counting> {
        fn reads(&self) -> usize {
            self.inner.reads.load(Ordering::SeqCst)
        }
    }

    async fn store_with_key(ttl: Duration, seed: u8) -> (CachedStore<Counting>, ApiKey, Secret) {
        let store = CachedStore::new(Counting::default(), ttl);
        let secret = Secret::from_random([seed; 24]);
        let new = NewKey {
            org: "o".parse().unwrap(),
            name: "k".into(),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id: None,
        };
        let key = create_key_with_secret(&store.inner.store, new, &secret)
            .await
            .unwrap();
        (store, key, secret)
    }

    /// Disables `key` straight in the wrapped store, past the cache, as another process would.
    async fn disable(store: &CachedStore<Counting>, key: &ApiKey) {
        crate::write::set_state(
            &store.inner.store,
            &Default::default(),
            &crate::write::WriteContext::cli(),
            &key.org,
            key.id,
            KeyState::Disabled,
        )
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_caller_needs_no_read_until_the_ttl_passes() {
        let (store, key, secret) = store_with_key(Duration::from_secs(5), 1).await;
        let hash = secret.hash();
        let first = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(first.key_id, key.id);
        assert_eq!(store.reads(), 1);
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert_eq!(store.find_credential(&hash).await.unwrap(), Some(first));
        assert_eq!(store.reads(), 1, "inside the TTL the store is not read");
        tokio::time::advance(Duration::from_millis(1)).await;
        store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(store.reads(), 2, "at the TTL the entry is read again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_recorded_use_is_seen_by_the_cached_caller_so_it_is_not_recorded_again() {
        let (store, key, secret) = store_with_key(Duration::from_secs(5), 7).await;
        let hash = secret.hash();
        assert_eq!(
            store
                .find_credential(&hash)
                .await
                .unwrap()
                .unwrap()
                .last_used,
            None
        );
        let now = Utc::now();
        let stale_before = now - chrono::Duration::seconds(60);
        store
            .record_use(&key.org, key.id, &hash, now, stale_before)
            .await
            .unwrap();
        let cached = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(cached.last_used, Some(now));
        assert_eq!(
            store.reads(),
            1,
            "the stamp came from the write, not a read"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_disabled_elsewhere_stops_working_within_the_ttl() {
        let (store, key, secret) = store_with_key(Duration::from_secs(5), 2).await;
        let hash = secret.hash();
        store.find_credential(&hash).await.unwrap().unwrap();
        // Another process disables the key: straight in the store, past this cache.
        disable(&store, &key).await;
        let stale = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(stale.state, KeyState::Active, "the documented window");
        tokio::time::advance(DEFAULT_TTL).await;
        let fresh = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(fresh.state, KeyState::Disabled);
    }

    #[tokio::test(start_paused = true)]
    async fn on_a_frozen_instance_the_wall_clock_still_expires_an_entry() {
        // The monotonic clock is paused and never advanced: it stands still, as it may while
        // Lambda freezes the environment. Only the wall clock moves.
        let wall = Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
        ));
        let read_wall = wall.clone();
        let (store, key, secret) = store_with_key(Duration::from_secs(5), 6).await;
        let store = store.with_wall_clock(move || *read_wall.lock().unwrap());
        let advance = |by: Duration| *wall.lock().unwrap() += by;
        let hash = secret.hash();
        store.find_credential(&hash).await.unwrap().unwrap();
        disable(&store, &key).await;
        advance(Duration::from_millis(4_999));
        let stale = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(
            stale.state,
            KeyState::Active,
            "inside the TTL on both clocks"
        );
        assert_eq!(store.reads(), 1);
        advance(Duration::from_millis(1));
        let fresh = store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(
            fresh.state,
            KeyState::Disabled,
            "the TTL passed on the wall clock"
        );
        assert_eq!(store.reads(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wall_clock_set_back_does_not_keep_an_entry_past_the_ttl() {
        let wall = Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30),
        ));
        let read_wall = wall.clone();
        let (store, _, secret) = store_with_key(Duration::from_secs(5), 8).await;
        let store = store.with_wall_clock(move || *read_wall.lock().unwrap());
        let hash = secret.hash();
        store.find_credential(&hash).await.unwrap().unwrap();
        *wall.lock().unwrap() -= Duration::from_secs(3600);
        tokio::time::advance(Duration::from_secs(5)).await;
        store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(store.reads(), 2, "the TTL passed on the monotonic clock");
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_secrets_are_not_cached_and_a_zero_ttl_caches_nothing() {
        let (store, _, _) = store_with_key(Duration::from_secs(5), 4).await;
        let unknown = Secret::from_random([9; 24]).hash();
        assert_eq!(store.find_credential(&unknown).await.unwrap(), None);
        assert_eq!(store.find_credential(&unknown).await.unwrap(), None);
        assert_eq!(store.reads(), 2);
        assert!(store.is_empty());

        let (off, _, secret) = store_with_key(Duration::ZERO, 5).await;
        off.find_credential(&secret.hash()).await.unwrap().unwrap();
        off.find_credential(&secret.hash()).await.unwrap().unwrap();
        assert_eq!(off.reads(), 2);
        assert!(off.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn callers_are_told_apart() {
        let store = CachedStore::new(Counting::default(), Duration::from_secs(5));
        let org: OrgId = "o".parse().unwrap();
        let mut secrets = Vec::new();
        for i in 0..3u8 {
            let secret = Secret::from_random([20 + i; 24]);
            let new = NewKey {
                org: org.clone(),
                name: format!("k{i}"),
                creator_id: uuid::Uuid::nil(),
                access: Access::Unrestricted,
                expires: None,
                id: None,
            };
            let key = create_key_with_secret(&store.inner.store, new, &secret)
                .await
                .unwrap();
            secrets.push((key, secret));
        }
        for (key, secret) in &secrets {
            let c = store
                .find_credential(&secret.hash())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(c.key_id, key.id);
        }
        for (key, secret) in &secrets {
            let c = store
                .find_credential(&secret.hash())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(c.key_id, key.id, "a hit is the caller's own credential");
        }
        assert_eq!(store.reads(), 3);
    }

    /// The hash of the `i`th made-up secret, for filling the cache.
    fn filler(i: usize) -> SecretHash {
        let mut bytes = [0xff; 24];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        Secret::from_random(bytes).hash()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_expired_callers_first_and_keeps_the_newest() {
        let (store, key, secret) = store_with_key(Duration::from_secs(5), 10).await;
        let credential = store
            .inner
            .store
            .find_credential(&secret.hash())
            .await
            .unwrap()
            .unwrap();
        // All but one place taken by callers read now, which expire in 5 s.
        for i in 0..MAX_ENTRIES - 1 {
            store.remember(&filler(i), &credential, store.now());
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        // The last place: a real caller, read 3 s later.
        let hash = secret.hash();
        assert_eq!(
            store.find_credential(&hash).await.unwrap().unwrap().key_id,
            key.id
        );
        assert_eq!((store.len(), store.reads()), (MAX_ENTRIES, 1));

        // Full when a new caller comes, once the first ones have expired: they go, the real
        // caller and the newcomer stay.
        tokio::time::advance(Duration::from_secs(2)).await;
        let newcomer = filler(MAX_ENTRIES);
        store.remember(&newcomer, &credential, store.now());
        assert_eq!(store.len(), 2);
        assert!(store.cached(&newcomer, store.now()).is_some());
        assert!(store.cached(&filler(0), store.now()).is_none());
        assert_eq!(
            store.find_credential(&hash).await.unwrap().unwrap().key_id,
            key.id
        );
        assert_eq!(store.reads(), 1, "the real caller was kept");

        // Full of callers that are all fresh: they go, the newest caller stays.
        for i in 0..MAX_ENTRIES - 2 {
            store.remember(&filler(MAX_ENTRIES + 1 + i), &credential, store.now());
        }
        assert_eq!(store.len(), MAX_ENTRIES);
        let last = filler(3 * MAX_ENTRIES);
        store.remember(&last, &credential, store.now());
        assert_eq!(store.len(), 1);
        assert!(store.cached(&last, store.now()).is_some());
        store.find_credential(&hash).await.unwrap().unwrap();
        assert_eq!(store.reads(), 2, "the real caller had to be read again");
    }
}
