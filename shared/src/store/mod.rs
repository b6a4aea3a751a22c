//! What the domain needs from storage: one trait per role, and the error they share.
//!
//! - [`KeyReader`]: what the read functions need (one key, runs of keys, the key count);
//! - [`CredentialStore`]: authenticating a secret and recording its use, the only part the
//!   caller cache (`crate::cache`) wraps;
//! - [`KeyWriter`]: what the writes need.
//!
//! [`dynamo::DynamoStore`] implements every role on one DynamoDB table;
//! [`memory::MemoryStore`] (unit tests only) is the other implementation. Every operation
//! takes the organization as an argument, so no call can reach a key without naming the
//! tenant it belongs to.

mod credential;
pub mod dynamo;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
mod read;
mod write;

pub use credential::{Credential, CredentialStore};
pub use read::KeyReader;
pub use write::KeyWriter;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::key::{Access, ApiKey, KeyId, KeyState, OrgId};
use crate::secret::Secret;

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

/// Creates a key with a fresh random secret and returns both. The secret is shown once.
pub async fn create_key<S: KeyWriter>(
    store: &S,
    new: NewKey,
) -> Result<(ApiKey, Secret), CreateKeyError> {
    let secret = Secret::generate().map_err(|e| StoreError::Internal(Box::new(e)))?;
    let key = create_key_with_secret(store, new, &secret).await?;
    Ok((key, secret))
}

/// Creates a key whose secret is given: for fixtures and the local demo, whose secrets are
/// known in advance.
pub async fn create_key_with_secret<S: KeyWriter>(
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
