//! What the read functions need from storage: one key, runs of keys in id order (all of
//! an organization's, or one creator's), and the organization's key count.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::{Position, StoreError};

/// Reading an organization's keys.
pub trait KeyReader: Send + Sync {
    /// The organization's key with this id, if any.
    fn get_key(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;

    /// Up to `max` keys of the organization, strictly past `from` (or from the start), in
    /// ascending id order when `ascending`, else descending.
    fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// Like [`KeyReader::read_run`], over only the keys `creator` created (read from an
    /// index, so other creators' keys cost nothing). The keys may lack their last use
    /// (`last_used` `None`): the index does not carry it, so that stamping a use does not
    /// write to it; [`KeyReader::last_uses`] reads it for the keys a page keeps.
    fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// When each of these keys of the organization was last used; keys never used (or not
    /// found) are absent.
    fn last_uses(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> impl Future<Output = Result<HashMap<KeyId, DateTime<Utc>>, StoreError>> + Send;

    /// How many keys the organization has: a counter kept in the same transaction as every
    /// create and delete, so it is exact.
    fn key_count(&self, org: &OrgId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
