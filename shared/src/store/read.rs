//! What the read functions need from storage: one key, runs of keys in id order (all of
//! an organization's, or one creator's), and the organization's key count.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::{Position, StoreError};

/// What a key item holds that the `by-creator` index does not: read by one batch for the keys
/// a page of one creator's keys shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unindexed {
    pub last_used: Option<DateTime<Utc>>,
    pub meta: Option<crate::meta::Meta>,
    pub allowed_cidrs: Option<crate::allow::AllowList>,
}

impl Unindexed {
    /// Fills these fields in on `key`, read from the index.
    pub fn fill(self, key: &mut ApiKey) {
        key.last_used = self.last_used;
        key.meta = self.meta;
        key.allowed_cidrs = self.allowed_cidrs;
    }
}

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
    /// index, so other creators' keys cost nothing). The keys lack what the index does not
    /// carry ([`Unindexed`]): their last use, so that stamping a use does not write to it,
    /// and their metadata and allow-list; [`KeyReader::unindexed`] reads those for the keys a
    /// page keeps.
    fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// What the `by-creator` index does not carry of each of these keys of the
    /// organization; keys not found are absent.
    fn unindexed(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> impl Future<Output = Result<HashMap<KeyId, Unindexed>, StoreError>> + Send;

    /// How many keys the organization has: a counter kept in the same transaction as every
    /// create and delete, so it is exact.
    fn key_count(&self, org: &OrgId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
