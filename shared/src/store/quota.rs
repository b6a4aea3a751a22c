//! Spending from a key's counters: one conditional write of the key item per attempt
//! (see [`crate::quota::plan`] for what it checks); for a key whose owner has credits or
//! rate limits of its own, one transaction of both items' writes.

use std::future::Future;

use crate::key::{ApiKey, KeyId, OrgId};
use crate::owner::{Owner, OwnerId};
use crate::quota::plan::{Counters, Spend};
use crate::store::StoreError;

/// The key item after a spend, or as it was when the spend's condition failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spent {
    pub key: ApiKey,
    pub counters: Counters,
    /// The id of the last spend applied to the key.
    pub last_spend: Option<String>,
}

/// How a spend went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spending {
    /// Applied: the key as it is now.
    Applied(Spent),
    /// A condition failed: the key as it is, to plan the next attempt from.
    Refused(Spent),
    /// The key is gone.
    Gone,
}

/// The owner item and its counters, as read or as a failed condition found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerSpent {
    pub owner: Owner,
    pub counters: Counters,
}

/// One item's part of a joint spend: its version as planned from, and its write.
#[derive(Clone, Copy, Debug)]
pub struct Part<'a, I> {
    pub id: I,
    pub version: u64,
    pub spend: &'a Spend,
}

/// How a joint spend went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Joint {
    /// Both writes applied, together.
    Applied,
    /// A condition failed, so neither applied: each item as it is now, where its own
    /// condition failed (`None`: as planned from, still).
    Refused {
        key: Option<Box<Spent>>,
        owner: Option<Box<OwnerSpent>>,
    },
    /// The key is gone.
    KeyGone,
    /// The owner item is gone.
    OwnerGone,
}

/// Spending from keys' counters.
pub trait QuotaStore: Send + Sync {
    /// Applies `spend` to the key `id` of `org`, on condition that the key is at `version`
    /// and that every counter is as the spend was planned from. `op` names this verify: a
    /// retry of the same write that finds it applied answers [`Spending::Applied`].
    fn spend(
        &self,
        org: &OrgId,
        id: KeyId,
        version: u64,
        op: &str,
        spend: &Spend,
    ) -> impl Future<Output = Result<Spending, StoreError>> + Send;

    /// The key item and its counters as they are, read consistently; `None` if gone.
    fn spent(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<Option<Spent>, StoreError>> + Send;

    /// The owner's item and counters, read consistently; `None` when it has none. The
    /// default: no store holds owners.
    fn owner_spent(
        &self,
        org: &OrgId,
        owner: &OwnerId,
    ) -> impl Future<Output = Result<Option<OwnerSpent>, StoreError>> + Send {
        let _ = (org, owner);
        async { Ok(None) }
    }

    /// Applies the key's spend (if any) and the owner's in one transaction, each on the
    /// conditions [`QuotaStore::spend`] puts on the key's: both or neither. `op` names the
    /// verify, as for [`QuotaStore::spend`].
    fn spend_jointly(
        &self,
        org: &OrgId,
        key: Option<Part<'_, KeyId>>,
        owner: Part<'_, &OwnerId>,
        op: &str,
    ) -> impl Future<Output = Result<Joint, StoreError>> + Send {
        let _ = (org, key, owner, op);
        async { Err(StoreError::Internal("this store holds no owners".into())) }
    }
}
