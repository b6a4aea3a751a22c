//! What the writes need from storage. Each write is one transaction: the key item, its
//! credentials, the organization's key count, the write's audit event and, for an
//! idempotent request, its idempotency record all change together or not at all.
//!
//! The store checks conditions, not rules: a key item is replaced only at the version the
//! write read, an idempotency record is written only where none is, a new credential only
//! where no credential is. What a write means (which fields, which event) is decided by
//! `crate::write`.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::audit::Event;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::StoreError;

/// A key as the writes see it: its metadata and where its credentials live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub key: ApiKey,
    /// The current secret's hash.
    pub hash: SecretHash,
    /// The secret a roll replaced, while its grace period lasts.
    pub previous: Option<PreviousSecret>,
    /// The hashes of this key's secrets (current or previous) that a secret scanning report
    /// named: while one is among them, the key cannot be enabled.
    pub leaked: Vec<SecretHash>,
    /// The expiry notices it has had (`crate::expiry`): writes keep them, and list the key
    /// under the notice it has still to get.
    pub notified: crate::store::Notified,
}

/// A rolled-out secret that keeps working until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: SecretHash,
    pub until: DateTime<Utc>,
}

impl StoredKey {
    /// Every credential of the key: the current one, then the previous one if any.
    pub fn hashes(&self) -> impl Iterator<Item = &SecretHash> {
        std::iter::once(&self.hash).chain(self.previous.as_ref().map(|p| &p.hash))
    }

    /// Whether a secret of this key that was reported leaked is still one of its secrets.
    pub fn holds_leaked(&self) -> bool {
        self.hashes().any(|h| self.leaked.contains(h))
    }

    /// This key with the leak marks of secrets it no longer has dropped.
    pub fn without_dropped_leaks(mut self) -> Self {
        let held: Vec<SecretHash> = self.hashes().cloned().collect();
        self.leaked.retain(|h| held.contains(h));
        self
    }

    /// The expiry a credential of this key carries: the key's, and for the previous secret
    /// no later than the end of its grace period.
    pub fn credential_expiry(&self, hash: &SecretHash) -> Option<DateTime<Utc>> {
        match &self.previous {
            Some(p) if &p.hash == hash => {
                Some(self.key.expires.map_or(p.until, |e| e.min(p.until)))
            }
            _ => self.key.expires,
        }
    }
}

/// What an idempotent create or roll left behind, so that a retry gets the same answer.
/// It holds no secret: the secret is derived again from `nonce` (see
/// `crate::write::idempotency`), and checked against `secret_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Names the record: a digest of the organization, the caller and the Idempotency-Key.
    pub id: String,
    pub org: OrgId,
    /// A digest of the operation, its target and the request body.
    pub request: String,
    /// Random bytes (hex) the secret was derived from.
    pub nonce: String,
    pub secret_hash: SecretHash,
    /// The key as the response showed it.
    pub key: ApiKey,
    pub created: DateTime<Utc>,
    /// After this, the record no longer counts (DynamoDB's TTL deletes it later).
    pub expires: DateTime<Utc>,
}

/// Why a write's transaction did not apply.
#[derive(Debug, thiserror::Error)]
pub enum WriteFailure {
    /// The key item is not at the version read (changed or deleted since), or, for an
    /// insert, exists already; for an owner's write, the owner item is not as read.
    #[error("the key changed since it was read")]
    Key,
    /// An idempotency record with this id exists already.
    #[error("the idempotency key was used by another request")]
    Idempotency,
    /// A credential item was not as expected (a new secret's hash is taken).
    #[error("a credential is not as expected")]
    Credential,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changing an organization's keys, one transaction per write.
pub trait KeyWriter: Send + Sync {
    /// The key and its credentials, read strongly consistently; `None` if the organization
    /// has no such key.
    fn key_for_write(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<Option<StoredKey>, StoreError>> + Send;

    /// Stores a new key, its credential, the organization's count plus one, the event and
    /// the idempotency record. Fails with [`WriteFailure::Key`] if the id is taken.
    fn insert(
        &self,
        key: &StoredKey,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// Replaces `before` by `after` (same organization and id), on condition that the key
    /// is still at `before`'s version: credentials only `before` has are deleted, those only
    /// `after` has are created, those both have are updated. Writes the event and the
    /// idempotency record with it.
    fn replace(
        &self,
        before: &StoredKey,
        after: &StoredKey,
        event: &Event,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// Deletes the key and its credentials, on condition that it is still at `before`'s
    /// version; the organization's count goes down by one; the event is written.
    fn remove(
        &self,
        before: &StoredKey,
        event: &Event,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// Adds to or takes from the credits left of `key` as `event` says (its adjustment),
    /// with the event: on condition that the key has credits, and for a decrement that at
    /// least that many are left. Not on its version: verifies spend from the same count
    /// meanwhile, and an adjustment adds to whatever is left. Fails with
    /// [`WriteFailure::Key`] when a condition fails.
    fn adjust_credits(
        &self,
        key: &ApiKey,
        event: &Event,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// The idempotency record with this id, read strongly consistently, expired or not.
    fn idempotency_record(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}
