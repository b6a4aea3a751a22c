//! Spending from a key's counters: one conditional write of the key item per attempt
//! (see [`crate::quota::plan`] for what it checks).

use std::future::Future;

use crate::key::{ApiKey, KeyId, OrgId};
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
}
