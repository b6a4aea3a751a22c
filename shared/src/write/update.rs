//! Changing a key's name, access, expiry or state: the key item and every credential of it
//! (they copy access, state and expiry) in one transaction with the event, on condition that
//! the key is still at the version the caller read.

use super::{Expected, WriteContext, WriteError, WritePolicy, check_name, diff, meets};
use crate::audit::Action;
use crate::key::{ApiKey, KeyId, KeyState, OrgId};
use crate::store::{KeyWriter, StoredKey, WriteFailure};

/// The key as it is now, read strongly consistently: the `before` of an update. Another
/// organization's key is [`WriteError::NotFound`].
pub async fn current_key<S: KeyWriter>(
    store: &S,
    org: &OrgId,
    id: KeyId,
) -> Result<ApiKey, WriteError> {
    Ok(store
        .key_for_write(org, id)
        .await?
        .ok_or(WriteError::NotFound)?
        .key)
}

/// Changes `before` (the key as the caller read it) into `after`: of `after`, only the name,
/// access, expiry and state are taken; the other fields stay as stored. `expected` holds
/// the versions the caller's `If-Match` names, if any.
///
/// - The write is made on condition that the key is still at `before.version`. If it is not
///   (or no longer exists), nothing is written: [`WriteError::VersionMismatch`] when
///   `expected` was given, else [`WriteError::Conflict`] (or [`WriteError::NotFound`]).
/// - The authority rule decides on the key as stored at that version
///   ([`crate::authority::Authority::may_update`]): [`WriteError::Refused`].
/// - Enabling a key while it holds a secret reported leaked is refused
///   ([`WriteError::LeakedSecret`]): it must be rolled first.
/// - The event is `key.disabled` or `key.enabled` when the state changes, else
///   `key.updated`; its `changes` hold every changed field.
/// - When nothing changes, nothing is written and no event recorded: the key is returned
///   as it is.
#[tracing::instrument(skip_all, fields(org = %before.org, key = %before.id), err(Display))]
pub async fn update_key<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    before: &ApiKey,
    after: ApiKey,
    expected: Expected<'_>,
) -> Result<ApiKey, WriteError> {
    let changed = || changed_error(expected);
    if !meets(expected, before.version) {
        return Err(WriteError::VersionMismatch);
    }
    check_name(&after.name)?;
    let stored = store
        .key_for_write(&before.org, before.id)
        .await?
        .ok_or(WriteError::NotFound)?;
    if stored.key.version != before.version {
        return Err(changed());
    }
    let mut next = stored.key.clone();
    next.name = after.name;
    next.access = after.access;
    next.expires = after.expires.map(super::to_millis);
    next.state = after.state;
    if next.state == KeyState::Active {
        // Enabled again: whatever made the service disable it is settled.
        next.disabled_reason = None;
    }
    ctx.authority.may_update(&stored.key, &next)?;
    let changes = diff::between(&stored.key, &next);
    if changes.is_empty() {
        return Ok(stored.key);
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
    }
    .without_dropped_leaks();
    if action == Action::Enabled && after.holds_leaked() {
        return Err(WriteError::LeakedSecret);
    }
    let event = ctx.event(policy, &before.org, before.id, action, changes);
    match store.replace(&stored, &after, &event, None).await {
        Ok(()) => Ok(after.key),
        Err(WriteFailure::Key) => match store.key_for_write(&before.org, before.id).await? {
            None => Err(WriteError::NotFound),
            Some(_) => Err(changed()),
        },
        Err(WriteFailure::Credential | WriteFailure::Idempotency) => Err(changed()),
        Err(WriteFailure::Store(e)) => Err(e.into()),
    }
}

/// What a write that found the key at another version reports: a precondition failure if
/// the caller named a version, else a conflict.
pub(super) fn changed_error(expected: Expected<'_>) -> WriteError {
    if expected.is_some() {
        WriteError::VersionMismatch
    } else {
        WriteError::Conflict
    }
}

/// Disables or enables a key, whatever its version, as `ctx` says: for the admin CLI and
/// fixtures. Setting the state a key already has writes nothing.
pub async fn set_state<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    state: KeyState,
) -> Result<ApiKey, WriteError> {
    let mut attempts = 0;
    loop {
        let before = current_key(store, org, id).await?;
        let after = ApiKey {
            state,
            ..before.clone()
        };
        match update_key(store, policy, ctx, &before, after, None).await {
            Err(WriteError::Conflict) if attempts < super::CHANGED_RETRIES => attempts += 1,
            other => return other,
        }
    }
}
