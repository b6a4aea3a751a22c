//! What the read functions need from storage: one key, runs of keys in id order (all of
//! an organization's, or one creator's or owner's), and the organization's key count.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::key::{ApiKey, KeyId, OrgId};
use crate::owner::OwnerId;
use crate::store::{Position, StoreError};

/// The keys of one creator, or of one owner: a run read from a secondary index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyIndex {
    Creator(Uuid),
    Owner(OwnerId),
}

impl KeyIndex {
    /// Whether `key` belongs to this run.
    pub fn holds(&self, key: &ApiKey) -> bool {
        match self {
            KeyIndex::Creator(c) => key.creator_id == *c,
            KeyIndex::Owner(o) => key.owner_id.as_ref() == Some(o),
        }
    }
}

/// What a key read from an index lacks: its last use (so that stamping a use does not write
/// to an index), its owner (`by-creator-v2` does not carry it), its metadata and allow-list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unprojected {
    pub last_used: Option<DateTime<Utc>>,
    pub owner_id: Option<OwnerId>,
    pub meta: Option<crate::meta::Meta>,
    pub allowed_cidrs: Option<crate::allow::AllowList>,
}

impl Unprojected {
    /// Fills these fields in on `key`, read from an index.
    pub fn fill(self, key: &mut ApiKey) {
        key.last_used = self.last_used;
        key.owner_id = self.owner_id;
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

    /// Like [`KeyReader::read_run`], over only the keys of one creator or one owner (read
    /// from an index, so other keys cost nothing). The keys lack what the indexes do not
    /// carry ([`Unprojected`]): their last use, so that stamping a use does not write to
    /// an index, their owner (`by-creator-v2`), metadata and allow-list;
    /// [`KeyReader::unprojected`] reads those for the keys a page keeps.
    fn read_run_in(
        &self,
        org: &OrgId,
        index: &KeyIndex,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;

    /// What the indexes do not carry of these keys of the organization ([`Unprojected`]).
    /// Keys not found are absent.
    fn unprojected(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> impl Future<Output = Result<HashMap<KeyId, Unprojected>, StoreError>> + Send;

    /// How many keys the organization has: a counter kept in the same transaction as every
    /// create and delete, so it is exact.
    fn key_count(&self, org: &OrgId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
