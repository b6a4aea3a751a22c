//! Changing a key's name, access, expiry or state: the key item and every credential of it
//! (they copy access, state and expiry) in one transaction with the event, on condition
//! that the key is still at the version the write read.

use super::retry::{Attempts, Retries};
use super::{Expected, KeyChange, WriteContext, WriteError, WritePolicy, diff};
use crate::audit::Action;
use crate::key::{ApiKey, KeyId, KeyState, OrgId};
use crate::store::{KeyWriter, StoredKey, WriteFailure};

/// Applies `change` to the key, read once: with `expected` (the versions the caller's
/// `If-Match` names), it must be at one of them.
///
/// - Should the key change between the read and the write, nothing is written:
///   [`WriteError::VersionMismatch`] when `expected` was given, else
///   [`WriteError::Conflict`] (or [`WriteError::NotFound`]). The caller decides again.
/// - The patch's own rules ([`KeyChange::apply`]) and the authority rule
///   ([`crate::authority::Authority::may_update`]) decide on the key as read.
/// - Enabling a key while it holds a secret reported leaked is refused
///   ([`WriteError::LeakedSecret`]): it must be rolled first.
/// - The event is `key.disabled` or `key.enabled` when the state changes, else
///   `key.updated`; its `changes` hold every changed field.
/// - When nothing changes, nothing is written and no event recorded: the key is returned
///   as it is.
#[tracing::instrument(skip_all, fields(%org, key = %id), err(Display))]
pub async fn update_key<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    change: &KeyChange,
    expected: Expected<'_>,
) -> Result<ApiKey, WriteError> {
    let mut attempts = Attempts::new(org, id, expected, Retries::None);
    changed(store, policy, ctx, &mut attempts, change).await
}

/// Disables or enables a key, whatever its version, as `ctx` says: for the admin CLI and
/// fixtures. Setting the state a key already has writes nothing; a race with another write
/// is retried on the fresh key.
pub async fn set_state<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    state: KeyState,
) -> Result<ApiKey, WriteError> {
    let mut attempts = Attempts::new(org, id, None, Retries::Changed);
    changed(store, policy, ctx, &mut attempts, &KeyChange::state(state)).await
}

/// The attempts of an update: read, apply, commit, until one lands or the write gives up.
async fn changed<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    attempts: &mut Attempts<'_>,
    change: &KeyChange,
) -> Result<ApiKey, WriteError> {
    loop {
        let stored = attempts.read(store).await?;
        match commit(store, policy, ctx, &stored, change).await? {
            Ok(key) => return Ok(key),
            Err(failure) => attempts.lost(store, failure).await?,
        }
    }
}

/// One attempt: `change` applied to `stored`, checked, and committed with its event.
async fn commit<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    stored: &StoredKey,
    change: &KeyChange,
) -> Result<Result<ApiKey, WriteFailure>, WriteError> {
    let mut next = change.apply(&stored.key)?;
    next.expires = next.expires.map(super::to_millis);
    if next.state == KeyState::Active {
        // Enabled again: whatever made the service disable it is settled.
        next.disabled_reason = None;
    }
    ctx.authority.may_update(&stored.key, &next)?;
    let changes = diff::between(&stored.key, &next);
    if changes.is_empty() {
        return Ok(Ok(stored.key.clone()));
    }
    let action = match (stored.key.state, next.state) {
        (KeyState::Active, KeyState::Disabled) => Action::Disabled,
        (KeyState::Disabled, KeyState::Active) => Action::Enabled,
        _ => Action::Updated,
    };
    next.updated = ctx.now;
    next.version = stored.key.version + 1;
    let after = StoredKey {
        key: next,
        hash: stored.hash.clone(),
        // A previous secret whose grace period is over goes now.
        previous: stored.previous.clone().filter(|p| p.until > ctx.now),
        leaked: stored.leaked.clone(),
        notified: stored.notified,
    }
    .without_dropped_leaks();
    if action == Action::Enabled && after.holds_leaked() {
        return Err(WriteError::LeakedSecret);
    }
    let event = ctx.event(policy, &stored.key.org, stored.key.id, action, changes);
    Ok(store
        .replace(stored, &after, &event, None)
        .await
        .map(|()| after.key))
}
