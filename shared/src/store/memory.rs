//! An in-memory store of every role, for unit tests of the domain and HTTP layers. Integration tests
//! use DynamoDB Local instead; nothing in production builds this.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::key::{ApiKey, KeyId, KeyState, OrgId};
use crate::secret::SecretHash;
use crate::store::{Credential, CredentialStore, KeyReader, KeyWriter, Position, StoreError};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// When set, `record_use` fails as if the store were unreachable.
    pub fail_record_use: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Inner {
    keys: BTreeMap<(OrgId, KeyId), (ApiKey, SecretHash)>,
    credentials: HashMap<SecretHash, (OrgId, KeyId)>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyReader for MemoryStore {
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .lock()
            .keys
            .get(&(org.clone(), id))
            .map(|(k, _)| k.clone()))
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
            .map(|(k, _)| k)
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
        Ok(self.lock().keys.keys().filter(|(o, _)| o == org).count() as u64)
    }

    async fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: uuid::Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let all = self.read_run(org, from, ascending, usize::MAX).await?;
        Ok(all
            .into_iter()
            .filter(|k| k.creator_id == creator)
            .take(max)
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
            .map(|(k, _)| Credential {
                org: k.org.clone(),
                key_id: k.id,
                access: k.access.clone(),
                state: k.state,
                expires: k.expires,
                last_used: k.last_used,
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
        if self
            .fail_record_use
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(StoreError::Unavailable("record_use is set to fail".into()));
        }
        Ok(match self.lock().keys.get_mut(&(org.clone(), id)) {
            Some((k, _)) if k.last_used.is_none_or(|t| t < stale_before) => {
                k.last_used = Some(at);
                true
            }
            _ => false,
        })
    }
}

impl KeyWriter for MemoryStore {
    async fn insert_key(&self, key: &ApiKey, hash: &SecretHash) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner
            .credentials
            .insert(hash.clone(), (key.org.clone(), key.id));
        inner
            .keys
            .insert((key.org.clone(), key.id), (key.clone(), hash.clone()));
        Ok(())
    }

    async fn set_state(
        &self,
        org: &OrgId,
        id: KeyId,
        state: KeyState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(match self.lock().keys.get_mut(&(org.clone(), id)) {
            Some((k, _)) => {
                k.state = state;
                k.updated = now;
                true
            }
            None => false,
        })
    }

    async fn delete_key(&self, org: &OrgId, id: KeyId) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.keys.remove(&(org.clone(), id)) {
            Some((_, hash)) => {
                inner.credentials.remove(&hash);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
