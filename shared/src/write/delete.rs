//! Deleting a key: the key item and every credential of it go, the organization's key
//! count goes down by one, and a `key.deleted` event stays (events outlive their key).

use super::retry::{Attempts, Retries};
use super::{Expected, WriteContext, WriteError, WritePolicy, diff};
use crate::audit::Action;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::KeyWriter;

/// Deletes the key and returns it as it was. With `expected`, the key must be at one of
/// those versions ([`WriteError::VersionMismatch`]). The authority rule decides on the key
/// as read ([`WriteError::Refused`]); without `expected`, a delete racing another change
/// reads and decides again on the fresh key. The event's `changes` hold every field, to
/// `null`.
#[tracing::instrument(skip_all, fields(%org, key = %id), err(Display))]
pub async fn delete_key<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    expected: Expected<'_>,
) -> Result<ApiKey, WriteError> {
    let mut attempts = Attempts::new(org, id, expected, Retries::Changed);
    loop {
        let stored = attempts.read(store).await?;
        ctx.authority.may_delete(&stored.key)?;
        let changes = diff::all(&stored.key, false);
        let event = ctx.event(policy, org, id, Action::Deleted, changes);
        match store.remove(&stored, &event).await {
            Ok(()) => return Ok(stored.key),
            Err(failure) => attempts.lost(store, failure).await?,
        }
    }
}
