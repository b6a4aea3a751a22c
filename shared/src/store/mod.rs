//! What the domain needs from storage: one trait per role, and the error they share.
//!
//! - [`KeyReader`]: what the read functions need (one key, runs of keys, the key count);
//! - [`CredentialStore`]: authenticating a secret and recording its use, the only part the
//!   caller cache (`crate::cache`) caches;
//! - [`KeyWriter`]: what the writes need, each write one transaction with its audit event;
//! - [`AuditReader`]: what listing the audit trail needs;
//! - [`LeakLookup`]: the batched credential lookup of a secret scanning report;
//! - [`QuotaStore`]: spending a verify's cost from a key's credits and rate limits;
//! - [`ExpiryStore`]: listing the keys due an expiry notice, and writing it once.
//!
//! [`dynamo::DynamoStore`] implements every role on one DynamoDB table;
//! [`memory::MemoryStore`] (unit tests only) is the other implementation. Every operation
//! takes the organization as an argument (or a credential's hash, which names it), so no
//! call can reach a key without naming the tenant it belongs to.

mod audit;
mod credential;
pub mod dynamo;
mod expiry;
mod leak;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
mod owner;
pub mod quota;
mod read;
mod write;

pub use audit::{AuditReader, EventRange};
pub use credential::{Credential, CredentialStore};
pub use expiry::{Due, ExpiryStore, Notified, Phase};
pub use leak::{Candidate, LeakLookup};
pub use owner::OwnerStore;
pub use quota::{Joint, OwnerSpent, Part, QuotaStore, Spending};
pub use read::{KeyIndex, KeyReader, Unprojected};
pub use write::{IdempotencyRecord, KeyWriter, PreviousSecret, StoredKey, WriteFailure};

use crate::key::KeyId;

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

/// The longest key name, in bytes. With it, a key item stays under 1 KB, so a page of 1,001
/// keys always fits in one DynamoDB Query response (1 MB).
pub const MAX_NAME_BYTES: usize = 256;

/// A position in an organization's keys, in id order. It needs no key to exist there.
pub type Position = KeyId;

impl From<crate::deadline::DeadlinePassed> for StoreError {
    fn from(passed: crate::deadline::DeadlinePassed) -> Self {
        StoreError::Unavailable(Box::new(passed))
    }
}
