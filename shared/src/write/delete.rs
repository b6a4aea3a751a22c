//! Deleting a key: the key item and every credential of it go, the organization's key
//! count goes down by one, and a `key.deleted` event stays (events outlive their key).

use super::update::changed_error;
use super::{CHANGED_RETRIES, Expected, WriteContext, WriteError, WritePolicy, diff, meets};
use crate::audit::Action;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::{KeyWriter, WriteFailure};

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
    let mut attempts = 0;
    loop {
        let stored = store
            .key_for_write(org, id)
            .await?
            .ok_or(WriteError::NotFound)?;
        if !meets(expected, stored.key.version) {
            return Err(WriteError::VersionMismatch);
        }
        ctx.authority.may_delete(&stored.key)?;
        let event = ctx.event(
            policy,
            org,
            id,
            Action::Deleted,
            diff::all(&stored.key, false),
        );
        match store.remove(&stored, &event).await {
            Ok(()) => return Ok(stored.key),
            Err(WriteFailure::Key) if expected.is_none() && attempts < CHANGED_RETRIES => {
                attempts += 1;
            }
            Err(WriteFailure::Key | WriteFailure::Credential | WriteFailure::Idempotency) => {
                return Err(match store.key_for_write(org, id).await? {
                    None => WriteError::NotFound,
                    Some(_) => changed_error(expected),
                });
            }
            Err(WriteFailure::Store(e)) => return Err(e.into()),
        }
    }
}
