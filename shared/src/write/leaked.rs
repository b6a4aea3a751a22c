//! Revoking a key whose secret was found in public: the key is disabled, not deleted,
//! marked `disabled_reason: leaked`, and the leaked secret's hash is recorded on it; the
//! `key.leaked` event records where the secret was found. All in one transaction, on
//! condition that the key is still at the version read.
//!
//! Whatever the key's status (active, disabled by someone, expired), a secret it still
//! holds (current, or a previous one not yet dropped) is marked: while a marked secret is
//! among its secrets, the key cannot be enabled (`update_key` refuses), and a roll drops it
//! at once. So a secret known to be public never authenticates again.
//!
//! Idempotent: a secret already marked on its key is left as it is and no event is written,
//! so a report GitHub sends again changes nothing more.

use super::{CHANGED_RETRIES, WriteContext, WriteError, WritePolicy, diff};
use crate::audit::{Action, Leak};
use crate::key::{ApiKey, DisabledReason, KeyId, KeyState, OrgId};
use crate::secret::SecretHash;
use crate::store::{KeyWriter, StoredKey, WriteFailure};

/// What revoking a leaked key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// Disabled now, with its `key.leaked` event: the key as it is after.
    Revoked(ApiKey),
    /// This secret was marked before (a replayed or repeated report): nothing written.
    AlreadyRevoked(ApiKey),
    /// Deleted, or the leaked secret dropped from it since it was looked up: the secret no
    /// longer works, so nothing is written.
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
        if !holds(&stored, hash, ctx) {
            return Ok(Revocation::NotLive);
        }
        if stored.leaked.contains(hash) && stored.key.state == KeyState::Disabled {
            return Ok(Revocation::AlreadyRevoked(stored.key));
        }
        let after = disabled(&stored, hash, ctx);
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

/// Whether the key still holds the secret `hash`: as its current secret, or as a previous
/// one whose grace has not ended (a previous secret past its grace can never work again,
/// and every write drops it).
fn holds(stored: &StoredKey, hash: &SecretHash, ctx: &WriteContext) -> bool {
    &stored.hash == hash
        || stored
            .previous
            .as_ref()
            .is_some_and(|p| &p.hash == hash && p.until > ctx.now)
}

/// The key disabled for a leak of the secret `hash`, marked, one version on.
fn disabled(stored: &StoredKey, hash: &SecretHash, ctx: &WriteContext) -> StoredKey {
    let mut key = stored.key.clone();
    key.state = KeyState::Disabled;
    key.disabled_reason = Some(DisabledReason::Leaked);
    key.updated = ctx.now;
    key.version = stored.key.version + 1;
    let mut leaked = stored.leaked.clone();
    if !leaked.contains(hash) {
        leaked.push(hash.clone());
    }
    StoredKey {
        key,
        hash: stored.hash.clone(),
        // As every write does: a previous secret whose grace is over goes now.
        previous: stored.previous.clone().filter(|p| p.until > ctx.now),
        leaked,
        notified: stored.notified,
    }
}
