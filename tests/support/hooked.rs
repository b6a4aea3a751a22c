//! A DynamoDB store with a hook into its writes: the one wrapper the tests' races are made
//! of ([`crate::late`], [`crate::rival`], and the tests' own). Every call goes straight to
//! the real store, but for the two moments a [`WriteHook`] may act at: after a write has
//! read its key, and before a replacing write commits.

use std::collections::HashMap;
use std::future::Future;

use apikeys::audit::Event;
use apikeys::key::{ApiKey, KeyId, OrgId};
use apikeys::secret::SecretHash;
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{
    AuditReader, Candidate, Credential, CredentialStore, EventRange, IdempotencyRecord, KeyReader,
    KeyWriter, LeakLookup, Position, StoreError, StoredKey, WriteFailure,
};
use chrono::{DateTime, Utc};

/// What a test does at a moment of a write, through the real store `store`.
pub trait WriteHook: Send + Sync {
    /// After a write has read its key (`read`, as the real store returned it).
    fn after_read(
        &self,
        _store: &DynamoStore,
        _read: Option<&StoredKey>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// After a write of an owner's limits has read the owner (`read`, as the real store
    /// returned it).
    fn after_owner_read(
        &self,
        _store: &DynamoStore,
        _read: Option<&apikeys::owner::Owner>,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Before a replacing write of `before` commits.
    fn before_replace(
        &self,
        _store: &DynamoStore,
        _before: &StoredKey,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The real store `inner`, with `hook` into its writes.
pub struct Hooked<H> {
    pub inner: DynamoStore,
    pub hook: H,
}

impl<H> Hooked<H> {
    pub fn with(inner: DynamoStore, hook: H) -> Self {
        Hooked { inner, hook }
    }
}

impl<H: WriteHook> KeyWriter for Hooked<H> {
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        let read = self.inner.key_for_write(org, id).await?;
        self.hook.after_read(&self.inner, read.as_ref()).await;
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
        self.hook.before_replace(&self.inner, before).await;
        self.inner.replace(before, after, event, idempotency).await
    }

    async fn remove(&self, before: &StoredKey, event: &Event) -> Result<(), WriteFailure> {
        self.inner.remove(before, event).await
    }

    async fn adjust_credits(&self, key: &ApiKey, event: &Event) -> Result<(), WriteFailure> {
        self.inner.adjust_credits(key, event).await
    }

    async fn idempotency_record(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(id).await
    }
}

impl<H: Send + Sync> apikeys::store::QuotaStore for Hooked<H> {
    async fn spend(
        &self,
        org: &OrgId,
        id: KeyId,
        version: u64,
        op: &str,
        spend: &apikeys::quota::plan::Spend,
    ) -> Result<apikeys::store::Spending, StoreError> {
        self.inner.spend(org, id, version, op, spend).await
    }

    async fn spent(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> Result<Option<apikeys::store::quota::Spent>, StoreError> {
        self.inner.spent(org, id).await
    }

    async fn owner_spent(
        &self,
        org: &OrgId,
        owner: &apikeys::owner::OwnerId,
    ) -> Result<Option<apikeys::store::OwnerSpent>, StoreError> {
        self.inner.owner_spent(org, owner).await
    }

    async fn spend_jointly(
        &self,
        org: &OrgId,
        key: Option<apikeys::store::Part<'_, KeyId>>,
        owner: apikeys::store::Part<'_, &apikeys::owner::OwnerId>,
        op: &str,
    ) -> Result<apikeys::store::Joint, StoreError> {
        self.inner.spend_jointly(org, key, owner, op).await
    }
}

impl<H: Send + Sync> KeyReader for Hooked<H> {
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

    async fn read_run_in(
        &self,
        org: &OrgId,
        index: &apikeys::store::KeyIndex,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner
            .read_run_in(org, index, from, ascending, max)
            .await
    }

    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.inner.key_count(org).await
    }

    async fn unprojected(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> Result<HashMap<KeyId, apikeys::store::Unprojected>, StoreError> {
        self.inner.unprojected(org, ids).await
    }
}

impl<H: Send + Sync> CredentialStore for Hooked<H> {
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

impl<H: Send + Sync> AuditReader for Hooked<H> {
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

impl<H: Send + Sync> LeakLookup for Hooked<H> {
    async fn find_candidates(
        &self,
        hashes: &[SecretHash],
    ) -> Result<HashMap<SecretHash, Candidate>, StoreError> {
        self.inner.find_candidates(hashes).await
    }
}

impl<H: WriteHook> apikeys::store::OwnerStore for Hooked<H> {
    async fn owner(
        &self,
        org: &OrgId,
        id: &apikeys::owner::OwnerId,
    ) -> Result<Option<apikeys::owner::Owner>, StoreError> {
        let read = self.inner.owner(org, id).await?;
        self.hook.after_owner_read(&self.inner, read.as_ref()).await;
        Ok(read)
    }

    async fn set_owner(
        &self,
        before: Option<&apikeys::owner::Owner>,
        after: &apikeys::owner::Owner,
        event: &Event,
    ) -> Result<(), WriteFailure> {
        self.inner.set_owner(before, after, event).await
    }
}
