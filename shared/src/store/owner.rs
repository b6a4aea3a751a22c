//! An owner's own credits and rate limits, as `GET`/`PUT /v1/owner/{owner_id}` read and set
//! them (verify spends from them through [`crate::store::QuotaStore`]).

use std::future::Future;

use crate::audit::Event;
use crate::key::OrgId;
use crate::owner::{Owner, OwnerId};
use crate::store::{StoreError, WriteFailure};

/// Reading and setting owners' limits.
pub trait OwnerStore: Send + Sync {
    /// The owner `id` of `org`, read consistently (the credits left as of now); `None` when
    /// its limits were never set.
    fn owner(
        &self,
        org: &OrgId,
        id: &OwnerId,
    ) -> impl Future<Output = Result<Option<Owner>, StoreError>> + Send;

    /// Sets the owner's limits from `before` (as read; `None`: never set) to `after`, and
    /// writes `event`, in one transaction, on condition that the owner is still at
    /// `before`'s version (or still has none) and, where its credits change, still has
    /// the credits left that `before` read (a verify may have spent since). The counters of
    /// what does not change are left alone. [`WriteFailure::Key`] when a condition fails.
    fn set_owner(
        &self,
        before: Option<&Owner>,
        after: &Owner,
        event: &Event,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;
}
