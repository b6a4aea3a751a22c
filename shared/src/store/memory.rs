//! An in-memory store of every role, for unit tests of the domain and HTTP layers.
//! Integration tests use DynamoDB Local instead; nothing in production builds this. Its
//! writes check the same conditions as the DynamoDB store's, under one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::audit::Event;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{
    AuditReader, Candidate, Credential, CredentialStore, EventRange, IdempotencyRecord, KeyReader,
    KeyWriter, LeakLookup, Position, StoreError, StoredKey, WriteFailure,
};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// When set, `record_use` fails as if the store were unreachable.
    pub fail_record_use: std::sync::atomic::AtomicBool,
    /// When set, `record_use` never answers, as a store that hangs.
    pub stall_record_use: std::sync::atomic::AtomicBool,
    /// How many times `record_use` was called.
    pub record_use_calls: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Inner {
    keys: BTreeMap<(OrgId, KeyId), StoredKey>,
    credentials: HashMap<SecretHash, (OrgId, KeyId)>,
    counts: HashMap<OrgId, i64>,
    events: Vec<Event>,
    idempotency: HashMap<String, IdempotencyRecord>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every event written, in the order written.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }
}

impl KeyReader for MemoryStore {
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .lock()
            .keys
            .get(&(org.clone(), id))
            .map(|s| s.key.clone()))
    }

    async fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let inner = self.lock();
        let mine = inner
            .keys
            .values()
            .map(|s| &s.key)
            .filter(|k| &k.org == org);
        let past = |k: &&ApiKey| match from {
            None => true,
            Some(p) if ascending => k.id > p,
            Some(p) => k.id < p,
        };
        let keys: Vec<ApiKey> = if ascending {
            mine.filter(past).take(max).cloned().collect()
        } else {
            mine.rev().filter(past).take(max).cloned().collect()
        };
        Ok(keys)
    }

    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.lock().counts.get(org).copied().unwrap_or(0)).unwrap_or(0))
    }

    async fn read_run_in(
        &self,
        org: &OrgId,
        index: &crate::store::KeyIndex,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let all = self.read_run(org, from, ascending, usize::MAX).await?;
        // As DynamoDB's indexes do: without the last use (nor, by creator, the owner).
        let by_creator = matches!(index, crate::store::KeyIndex::Creator(_));
        Ok(all
            .into_iter()
            .filter(|k| index.holds(k))
            .take(max)
            .map(|k| ApiKey {
                last_used: None,
                owner_id: k.owner_id.filter(|_| !by_creator),
                meta: None,
                allowed_cidrs: None,
                ..k
            })
            .collect())
    }

    async fn unprojected(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> Result<std::collections::HashMap<KeyId, crate::store::Unprojected>, StoreError> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| inner.keys.get(&(org.clone(), *id)))
            .map(|s| {
                let u = crate::store::Unprojected {
                    last_used: s.key.last_used,
                    owner_id: s.key.owner_id.clone(),
                    meta: s.key.meta.clone(),
                    allowed_cidrs: s.key.allowed_cidrs.clone(),
                };
                (s.key.id, u)
            })
            .collect())
    }
}

impl CredentialStore for MemoryStore {
    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .credentials
            .get(hash)
            .and_then(|at| inner.keys.get(at))
            .map(|s| Credential {
                org: s.key.org.clone(),
                key_id: s.key.id,
                access: s.key.access.clone(),
                state: s.key.state,
                expires: s.credential_expiry(hash),
                last_used: s.key.last_used,
                previous: s.previous.as_ref().is_some_and(|p| &p.hash == hash),
                quota: s.key.quota.clone(),
                version: s.key.version,
                owner_id: s.key.owner_id.clone(),
                meta: s.key.meta.clone(),
                allowed_cidrs: s.key.allowed_cidrs.clone(),
            }))
    }

    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        _hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        self.record_use_calls.fetch_add(1, Ordering::SeqCst);
        if self.stall_record_use.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.fail_record_use.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("record_use is set to fail".into()));
        }
        Ok(match self.lock().keys.get_mut(&(org.clone(), id)) {
            Some(s) if s.key.last_used.is_none_or(|t| t < stale_before) => {
                s.key.last_used = Some(at);
                true
            }
            _ => false,
        })
    }
}

impl LeakLookup for MemoryStore {
    async fn find_candidates(
        &self,
        hashes: &[SecretHash],
    ) -> Result<HashMap<SecretHash, Candidate>, StoreError> {
        let mut found = HashMap::new();
        for hash in hashes {
            if let Some(credential) = self.find_credential(hash).await? {
                let leaked = self
                    .lock()
                    .keys
                    .get(&(credential.org.clone(), credential.key_id))
                    .is_some_and(|s| {
                        s.key.state == crate::key::KeyState::Disabled && s.leaked.contains(hash)
                    });
                found.insert(
                    hash.clone(),
                    Candidate {
                        credential,
                        marked: leaked,
                    },
                );
            }
        }
        Ok(found)
    }
}

impl Inner {
    /// The idempotency record may be written: none is there, or it has expired.
    fn record_free(&self, record: Option<&IdempotencyRecord>) -> bool {
        record.is_none_or(|r| {
            self.idempotency
                .get(&r.id)
                .is_none_or(|old| old.expires < r.created)
        })
    }

    fn at_version(&self, before: &StoredKey) -> bool {
        self.keys
            .get(&(before.key.org.clone(), before.key.id))
            .is_some_and(|s| s.key.version == before.key.version)
    }

    fn commit(&mut self, event: &Event, record: Option<&IdempotencyRecord>) {
        self.events.push(event.clone());
        if let Some(r) = record {
            self.idempotency.insert(r.id.clone(), r.clone());
        }
    }
}

impl KeyWriter for MemoryStore {
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        Ok(self.lock().keys.get(&(org.clone(), id)).cloned())
    }

    async fn insert(
        &self,
        key: &StoredKey,
        event: &Event,
        record: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        let mut inner = self.lock();
        let at = (key.key.org.clone(), key.key.id);
        if !inner.record_free(record) {
            return Err(WriteFailure::Idempotency);
        }
        if inner.keys.contains_key(&at) {
            return Err(WriteFailure::Key);
        }
        if inner.credentials.contains_key(&key.hash) {
            return Err(WriteFailure::Credential);
        }
        inner.credentials.insert(key.hash.clone(), at.clone());
        inner.keys.insert(at, key.clone());
        *inner.counts.entry(key.key.org.clone()).or_default() += 1;
        inner.commit(event, record);
        Ok(())
    }

    async fn replace(
        &self,
        before: &StoredKey,
        after: &StoredKey,
        event: &Event,
        record: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        let mut inner = self.lock();
        if !inner.record_free(record) {
            return Err(WriteFailure::Idempotency);
        }
        if !inner.at_version(before) {
            return Err(WriteFailure::Key);
        }
        let new: Vec<&SecretHash> = after
            .hashes()
            .filter(|h| !before.hashes().any(|b| b == *h))
            .collect();
        if new.iter().any(|h| inner.credentials.contains_key(*h)) {
            return Err(WriteFailure::Credential);
        }
        let at = (after.key.org.clone(), after.key.id);
        for gone in before.hashes().filter(|h| !after.hashes().any(|a| a == *h)) {
            inner.credentials.remove(gone);
        }
        for h in new {
            inner.credentials.insert(h.clone(), at.clone());
        }
        let last_used = inner.keys.get(&at).and_then(|s| s.key.last_used);
        let mut stored = after.clone();
        stored.key.last_used = last_used;
        inner.keys.insert(at, stored);
        inner.commit(event, record);
        Ok(())
    }

    async fn remove(&self, before: &StoredKey, event: &Event) -> Result<(), WriteFailure> {
        let mut inner = self.lock();
        if !inner.at_version(before) {
            return Err(WriteFailure::Key);
        }
        for h in before.hashes() {
            inner.credentials.remove(h);
        }
        inner.keys.remove(&(before.key.org.clone(), before.key.id));
        *inner.counts.entry(before.key.org.clone()).or_default() -= 1;
        inner.commit(event, None);
        Ok(())
    }

    async fn adjust_credits(&self, key: &ApiKey, event: &Event) -> Result<(), WriteFailure> {
        let mut inner = self.lock();
        let delta = event.credits.map_or(0, |a| a.delta());
        let at = (key.org.clone(), key.id);
        let Some(credits) = inner
            .keys
            .get_mut(&at)
            .and_then(|s| s.key.quota.credits.as_mut())
        else {
            return Err(WriteFailure::Key);
        };
        let next = i128::from(credits.remaining) + delta;
        credits.remaining = u64::try_from(next).map_err(|_| WriteFailure::Key)?;
        inner.commit(event, None);
        Ok(())
    }

    async fn idempotency_record(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().idempotency.get(id).cloned())
    }
}

impl AuditReader for MemoryStore {
    async fn read_events(
        &self,
        org: &OrgId,
        key: Option<KeyId>,
        range: EventRange,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut events: Vec<Event> = self
            .lock()
            .events
            .iter()
            .filter(|e| &e.org == org && key.is_none_or(|k| e.key_id == Some(k)))
            .filter(|e| range.first <= e.id && e.id <= range.last)
            .cloned()
            .collect();
        events.sort_by_key(|e| e.id);
        if !ascending {
            events.reverse();
        }
        events.truncate(max);
        Ok(events)
    }
}
