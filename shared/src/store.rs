//! What the domain needs from storage, as a trait, with its error type.
//!
//! `dynamo::DynamoStore` is the real implementation; `memory::MemoryStore` (unit tests only)
//! is the other. Every read takes the organization as an argument, so no call can reach a
//! key without naming the tenant it belongs to.

use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::key::{Access, ApiKey, KeyId, KeyState, OrgId, status_at};
use crate::secret::{Secret, SecretHash};

/// A storage failure, split by what the client should be told.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out, or unreachable: worth retrying shortly (503).
    #[error("the key store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else: a bug or a misconfiguration (500). The source is logged, never shown.
    #[error("the key store failed")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What authentication learns from a secret's hash, in one read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub org: OrgId,
    pub key_id: KeyId,
    pub access: Access,
    pub state: KeyState,
    pub expires: Option<DateTime<Utc>>,
    /// When the key was last used, as far as its credential knows (to the minute).
    pub last_used: Option<DateTime<Utc>>,
}

impl Credential {
    pub fn status_at(&self, now: DateTime<Utc>) -> crate::key::KeyStatus {
        status_at(self.state, self.expires, now)
    }
}

/// A key to create.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub org: OrgId,
    pub name: String,
    pub creator_id: Uuid,
    pub access: Access,
    pub expires: Option<DateTime<Utc>>,
    /// The id, a UUIDv7 whose timestamp is the creation time; `None` means a new id for now.
    /// Fixtures and demos pass [`KeyId::new_at`] or a fixed id.
    pub id: Option<KeyId>,
}

/// The longest key name, in bytes. With it, a key item stays under 1 KB, so a page of 1,001
/// keys always fits in one DynamoDB Query response (1 MB).
pub const MAX_NAME_BYTES: usize = 256;

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("a key name must be 1 to {MAX_NAME_BYTES} bytes of text without control characters")]
    Name,
    #[error("a key id must be a UUIDv7: its timestamp is the key's creation time")]
    IdNotV7,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NewKey {
    /// The record to store for this key with this secret.
    pub fn into_record(self, secret: &Secret) -> Result<ApiKey, CreateKeyError> {
        let name_ok = !self.name.trim().is_empty()
            && self.name.len() <= MAX_NAME_BYTES
            && !self.name.chars().any(char::is_control);
        if !name_ok {
            return Err(CreateKeyError::Name);
        }
        let id = self.id.unwrap_or_else(KeyId::generate);
        // The stored creation time is the one the id carries, so that ordering by
        // (created_date, id) and ordering by id are the same order.
        let created = id.created_at().ok_or(CreateKeyError::IdNotV7)?;
        Ok(ApiKey {
            id,
            org: self.org,
            name: self.name,
            created,
            updated: created,
            last_used: None,
            expires: self.expires,
            creator_id: self.creator_id,
            access: self.access,
            state: KeyState::Active,
            last_four: secret.last_four(),
        })
    }
}

/// A position in an organization's keys, in id order. It needs no key to exist there.
pub type Position = KeyId;

/// The storage operations the service uses.
pub trait KeyStore: Send + Sync {
    /// The organization's key with this id, if any.
    fn get_key(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// Who holds the secret with this hash, if anyone.
    fn find_credential(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<Credential>, StoreError>> + Send;

    /// Up to `max` keys of the organization, strictly past `from` (or from the start), in
    /// ascending id order when `ascending`, else descending.
    fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// How many keys the organization has: a counter kept in the same transaction as every
    /// create and delete, so it is exact.
    fn key_count(&self, org: &OrgId) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records that the key was used `at`, unless the record is already at or after
    /// `stale_before` (a conditional write, so concurrent requests write it once). Returns
    /// whether it wrote. The credential and the key item are both stamped.
    fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Like [`KeyStore::read_run`], over only the keys `creator` created (read from an
    /// index, so other creators' keys cost nothing).
    fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// Stores a new key under its secret's hash, atomically with its credential.
    fn insert_key(
        &self,
        key: &ApiKey,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sets a key's state; `false` if the organization has no such key.
    fn set_state(
        &self,
        org: &OrgId,
        id: KeyId,
        state: KeyState,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a key and its credential; `false` if the organization has no such key.
    fn delete_key(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Creates a key with a fresh random secret and returns both. The secret is shown once.
pub async fn create_key<S: KeyStore>(
    store: &S,
    new: NewKey,
) -> Result<(ApiKey, Secret), CreateKeyError> {
    let secret = Secret::generate().map_err(|e| StoreError::Internal(Box::new(e)))?;
    let key = create_key_with_secret(store, new, &secret).await?;
    Ok((key, secret))
}

/// Creates a key whose secret is given: for fixtures and the local demo, whose secrets are
/// known in advance.
pub async fn create_key_with_secret<S: KeyStore>(
    store: &S,
    new: NewKey,
    secret: &Secret,
) -> Result<ApiKey, CreateKeyError> {
    let key = new.into_record(secret)?;
    store.insert_key(&key, &secret.hash()).await?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, id: Option<KeyId>) -> NewKey {
        NewKey {
            org: "o".parse().unwrap(),
            name: name.into(),
            creator_id: Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id,
        }
    }

    #[test]
    fn names_must_be_short_printable_text() {
        let s = Secret::from_random([0; 24]);
        assert!(new("ci deploy", None).into_record(&s).is_ok());
        assert!(new(&"é".repeat(128), None).into_record(&s).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_BYTES + 1)] {
            assert!(
                matches!(new(bad, None).into_record(&s), Err(CreateKeyError::Name)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_must_be_v7_so_that_id_order_is_creation_order() {
        let s = Secret::from_random([0; 24]);
        let v4: KeyId = "3c90c3cc-0d44-4b50-8888-8dd25736052a".parse().unwrap();
        assert!(matches!(
            new("k", Some(v4)).into_record(&s),
            Err(CreateKeyError::IdNotV7)
        ));
        let key = new("k", None).into_record(&s).unwrap();
        assert_eq!(key.id.created_at(), Some(key.created));
        assert_eq!(key.updated, key.created);
    }
}
