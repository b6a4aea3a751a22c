//! What the writes need from storage: each write is one transaction, so a key, its
//! credential and the organization's key count never disagree.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::key::{ApiKey, KeyId, KeyState, OrgId};
use crate::secret::SecretHash;
use crate::store::StoreError;

/// Changing an organization's keys.
pub trait KeyWriter: Send + Sync {
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
