//! Revoking a key whose secret was found in public: the key is disabled, not deleted, and
//! marked `disabled_reason: leaked`; the `key.leaked` event records where the secret was
//! found. Both in one transaction, on condition that the key is still at the version read,
//! and only if the key is live then: active, not expired, and the leaked secret still one
//! of its credentials (a roll's previous secret within its grace period counts).
//!
//! Idempotent: a key already disabled for a leak, or no longer live, is left as it is and
//! no event is written, so a report GitHub sends again changes nothing more.

use super::{CHANGED_RETRIES, WriteContext, WriteError, WritePolicy, diff};
use crate::audit::{Action, Leak};
use crate::key::{ApiKey, DisabledReason, KeyId, KeyState, KeyStatus, OrgId};
use crate::secret::SecretHash;
use crate::store::{KeyWriter, StoredKey, WriteFailure};

/// What revoking a leaked key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Disabled now, with its `key.leaked` event: the key as it is after.
    Revoked(ApiKey),
    /// Disabled for a leak before (a replayed or repeated report): nothing written.
    AlreadyRevoked(ApiKey),
    /// Deleted, disabled by someone, expired, or the leaked secret rolled out of it since
    /// it was looked up: the secret no longer works, so nothing is written.
    NotLive,
}

/// Disables the organization's key `id` because its secret with hash `hash` was found at
/// `leak` (see the module header). `ctx` is the reporter (see [`WriteContext::github`]).
#[tracing::instrument(skip_all, fields(%org, key = %id), err(Display))]
pub async fn revoke_leaked<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    hash: &SecretHash,
    leak: &Leak,
) -> Result<Revocation, WriteError> {
    let mut attempts = 0;
    loop {
        let Some(stored) = store.key_for_write(org, id).await? else {
            return Ok(Revocation::NotLive);
        };
        if stored.key.disabled_reason == Some(DisabledReason::Leaked)
            && stored.key.state == KeyState::Disabled
        {
            return Ok(Revocation::AlreadyRevoked(stored.key));
        }
        if !live(&stored, hash, ctx) {
            return Ok(Revocation::NotLive);
        }
        let after = disabled(&stored, ctx);
        let mut event = ctx.event(
            policy,
            org,
            id,
            Action::Leaked,
            diff::between(&stored.key, &after.key),
        );
        event.leak = Some(leak.clone());
        match store.replace(&stored, &after, &event, None).await {
            Ok(()) => return Ok(Revocation::Revoked(after.key)),
            // Changed since read: decide again on the fresh key.
            Err(WriteFailure::Key | WriteFailure::Credential | WriteFailure::Idempotency)
                if attempts < CHANGED_RETRIES =>
            {
                attempts += 1;
            }
            Err(WriteFailure::Key | WriteFailure::Credential | WriteFailure::Idempotency) => {
                return Err(WriteError::Conflict);
            }
            Err(WriteFailure::Store(e)) => return Err(e.into()),
        }
    }
}

/// Whether the leaked secret authenticates at `ctx.now`.
fn live(stored: &StoredKey, hash: &SecretHash, ctx: &WriteContext) -> bool {
    let holds = &stored.hash == hash
        || stored
            .previous
            .as_ref()
            .is_some_and(|p| &p.hash == hash && p.until > ctx.now);
    holds && stored.key.status_at(ctx.now) == KeyStatus::Active
}

/// The key disabled for a leak, one version on.
fn disabled(stored: &StoredKey, ctx: &WriteContext) -> StoredKey {
    let mut key = stored.key.clone();
    key.state = KeyState::Disabled;
    key.disabled_reason = Some(DisabledReason::Leaked);
    key.updated = ctx.now;
    key.version = stored.key.version + 1;
    StoredKey {
        key,
        hash: stored.hash.clone(),
        // As every write does: a previous secret whose grace period is over goes now.
        previous: stored.previous.clone().filter(|p| p.until > ctx.now),
    }
}
