//! A store whose writes commit late: the gap real DynamoDB leaves between the time an
//! event's id carries (its request's start) and the moment its transaction commits, made
//! deterministic. Each write reads as usual, then waits at [`LateCommit::replace`] until
//! the test releases it, and only then commits through the real store. Only the writes go
//! through it; reads go to the real store.

use apikeys::audit::Event;
use apikeys::key::{KeyId, OrgId};
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{IdempotencyRecord, KeyWriter, StoreError, StoredKey, WriteFailure};
use tokio::sync::Notify;

/// A DynamoDB store whose replacing writes wait for [`LateCommit::release`].
pub struct LateCommit {
    inner: DynamoStore,
    holding: Notify,
    released: Notify,
}

impl LateCommit {
    pub fn new(inner: DynamoStore) -> Self {
        LateCommit {
            inner,
            holding: Notify::new(),
            released: Notify::new(),
        }
    }

    /// Returns once a write is waiting to commit: its event's id is made.
    pub async fn holding(&self) {
        self.holding.notified().await
    }

    /// Lets the waiting write commit.
    pub fn release(&self) {
        self.released.notify_one()
    }
}

impl KeyWriter for LateCommit {
    async fn key_for_write(&self, org: &OrgId, id: KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.inner.key_for_write(org, id).await
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
        self.holding.notify_one();
        self.released.notified().await;
        self.inner.replace(before, after, event, idempotency).await
    }

    async fn remove(&self, before: &StoredKey, event: &Event) -> Result<(), WriteFailure> {
        self.inner.remove(before, event).await
    }

    async fn idempotency_record(&self, id: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(id).await
    }
}
