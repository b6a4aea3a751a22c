//! A store in which another writer changes a key between each read of it for a write and
//! that write: the race a write without `If-Match` loses, made deterministic. Each
//! [`KeyWriter::key_for_write`] reads the key, then renames it through the real store, as a
//! PATCH arriving at that moment would, and returns what it read: the write that follows
//! commits on a version the key no longer has. Everything else goes straight through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::audit::Event;
use apikeys::key::{ApiKey, KeyId, OrgId};
use apikeys::secret::SecretHash;
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{
    AuditReader, Candidate, Credential, CredentialStore, EventRange, IdempotencyRecord, KeyReader,
    KeyWriter, LeakLookup, Position, StoreError, StoredKey, WriteFailure,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A DynamoDB store with a rival writer (see the module header).
pub struct Rival {
    inner: DynamoStore,
    renames: AtomicUsize,
}

impl Rival {
    pub fn new(inner: DynamoStore) -> Self {
        Rival {
            inner,
            renames: AtomicUsize::new(0),
        }
    }

    /// The name the rival gave the key last, if it renamed it.
    pub fn last_name(&self) -> Option<String> {
        match self.renames.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Self::name(n)),
        }
    }

    fn name(n: usize) -> String {
        format!("renamed by a rival ({n})")
    }
}

impl KeyWriter for Rival {
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        let read = self.inner.key_for_write(org, id).await?;
        if read.is_some() {
            let n = self.renames.fetch_add(1, Ordering::SeqCst) + 1;
            let renamed = apikeys::write::KeyChange::name(Self::name(n));
            let (policy, ctx) = (crate::policy(), crate::ctx());
            apikeys::write::update_key(&self.inner, &policy, &ctx, org, id, &renamed, None)
                .await
                .expect("the rival's rename");
        }
        Ok(read)
    }

    async fn insert(
        &self,
        key: &StoredKey,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        self.inner.insert(key, event, idempotency).await
    }

    async fn replace(
        &self,
        before: &StoredKey,
        after: &StoredKey,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), WriteFailure> {
        self.inner.replace(before, after, event, idempotency).await
    }

    async fn remove(&self, before: &StoredKey, event: &Event) -> Result<(), WriteFailure> {
        self.inner.remove(before, event).await
    }

    async fn idempotency_record(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(id).await
    }
}

impl KeyReader for Rival {
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
}

impl CredentialStore for Rival {
    async fn spend_as_a_miss(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.inner.spend_as_a_miss(hash).await
    }

    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        self.inner.find_credential(hash).await
    }

    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.record_use(org, id, hash, at, stale_before).await
    }
}

impl AuditReader for Rival {
    async fn read_events(
        &self,
        org: &OrgId,
        key: Option<KeyId>,
        range: EventRange,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.inner
            .read_events(org, key, range, ascending, max)
            .await
    }
}

impl LeakLookup for Rival {
    async fn find_candidates(
        &self,
        hashes: &[SecretHash],
    ) -> Result<HashMap<SecretHash, Candidate>, StoreError> {
        self.inner.find_candidates(hashes).await
    }
}
