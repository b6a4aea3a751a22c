//! Rolling a key: a new secret (and credential) under the same key id, while the secret it
//! replaces keeps working for a grace period. At most one previous secret lives: a roll
//! ends the grace of the one before at once.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::create::{RecordOf, replay};
use super::idempotency::{SecretKeys, nonce};
use super::update::changed_error;
use super::{
    CHANGED_RETRIES, Expected, Idempotency, InvalidWrite, WriteContext, WriteError, WritePolicy,
    meets,
};
use crate::audit::{Action, Change, Changes, WhichSecret, time_value};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::secret::Secret;
use crate::store::{KeyWriter, PreviousSecret, StoreError, StoredKey, WriteFailure};

/// The longest grace period: a week.
pub const MAX_GRACE_SECS: u64 = 604_800;

/// A rolled key and its new secret, shown this once (and to the retries of an idempotent
/// request).
#[derive(Clone, Debug)]
pub struct Rolled {
    pub key: ApiKey,
    pub secret: Secret,
    /// Whether this is the answer of an earlier request with the same Idempotency-Key.
    pub replayed: bool,
}

/// Gives the key a new secret. The previous secret keeps working until `ctx.now` plus
/// `grace_secs` (0 to [`MAX_GRACE_SECS`]; 0 ends it at once), then is refused; a previous
/// secret of an earlier roll stops at once, and so does a secret reported leaked, whatever
/// the grace asked. `last_four_digits` becomes the new secret's; the key id stays.
///
/// In this order:
/// 1. With `idempotency`, a retry gets the recorded answer and rolls nothing, before any
///    precondition is looked at. An idempotent roll of the caller's own key needs a grace
///    period ([`InvalidWrite::SelfRollWithoutGrace`]).
/// 2. The key is read; with `expected`, it must be at one of those versions
///    ([`WriteError::VersionMismatch`]).
/// 3. The authority rule decides on the key as read ([`WriteError::Refused`]), and the
///    roll commits only on condition that the key is still at that version.
/// 4. Should it have changed in between: with `expected`, a 412; without, the roll starts
///    again at 2, deciding again on the fresh key, never rolling what it did not authorize.
///
/// The event's `changes` hold `last_four_digits` and `previous_secret_expires_date`: when
/// the secret this roll replaced stops working (`from`: when the earlier one would have,
/// if it still worked).
#[tracing::instrument(skip_all, fields(%org, key = %id, grace_secs), err(Display))]
#[allow(clippy::too_many_arguments)]
pub async fn roll_key<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    grace_secs: u64,
    expected: Expected<'_>,
    idempotency: Option<&Idempotency>,
) -> Result<Rolled, WriteError> {
    check_grace(ctx, id, grace_secs, idempotency.is_some())?;
    let asked_end = ctx.now + chrono::Duration::seconds(grace_secs as i64);
    let idem = match idempotency {
        None => None,
        Some(idem) => {
            let keys = policy.secret_keys()?;
            let record_id = idem.record_id(org, &ctx.actor);
            let request = idem.request(&format!("roll {id}"));
            if let Some(done) = replay(store, policy, ctx, &record_id, &request).await? {
                // The secret goes again only to a caller that still holds the key.
                let now = store
                    .key_for_write(org, id)
                    .await?
                    .ok_or(WriteError::NotFound)?;
                ctx.authority.may_roll(&now.key)?;
                return Ok(Rolled {
                    key: done.key,
                    secret: done.secret,
                    replayed: true,
                });
            }
            Some((keys, record_id, request))
        }
    };
    let mut attempts = 0;
    loop {
        let stored = store
            .key_for_write(org, id)
            .await?
            .ok_or(WriteError::NotFound)?;
        if !meets(expected, stored.key.version) {
            return Err(WriteError::VersionMismatch);
        }
        ctx.authority.may_roll(&stored.key)?;
        // A leaked secret stops now, whatever the grace asked.
        let grace_end = if stored.leaked.contains(&stored.hash) {
            ctx.now
        } else {
            asked_end
        };
        let (secret, record) = new_secret(idem.as_ref())?;
        let (after, changes) = rolled(&stored, &secret, ctx.now, grace_end);
        let event = ctx.event(policy, org, id, Action::Rolled, changes);
        let record = record.map(|r| r.with(ctx, &after.key, &secret));
        match store
            .replace(&stored, &after, &event, record.as_ref())
            .await
        {
            Ok(()) => {
                return Ok(Rolled {
                    key: after.key,
                    secret,
                    replayed: false,
                });
            }
            Err(WriteFailure::Idempotency) => {
                let (_, record_id, request) = idem.as_ref().ok_or(WriteError::Conflict)?;
                return replay(store, policy, ctx, record_id, request)
                    .await?
                    .map(|done| Rolled {
                        key: done.key,
                        secret: done.secret,
                        replayed: true,
                    })
                    .ok_or(WriteError::Conflict);
            }
            // Changed since read: read and authorize again.
            Err(WriteFailure::Key) if expected.is_none() && attempts < CHANGED_RETRIES => {
                attempts += 1;
            }
            Err(WriteFailure::Key) => {
                return Err(match store.key_for_write(org, id).await? {
                    None => WriteError::NotFound,
                    Some(_) => changed_error(expected),
                });
            }
            Err(WriteFailure::Credential) => return Err(WriteError::Conflict),
            Err(WriteFailure::Store(e)) => return Err(e.into()),
        }
    }
}

/// Refuses a grace period out of range, and an idempotent roll of the caller's own key that
/// its retry could not authenticate for: one with no grace, or one by its previous secret
/// (which any roll ends at once).
fn check_grace(
    ctx: &WriteContext,
    id: KeyId,
    grace_secs: u64,
    idempotent: bool,
) -> Result<(), WriteError> {
    if grace_secs > MAX_GRACE_SECS {
        return Err(InvalidWrite::Grace(grace_secs).into());
    }
    let by_previous = ctx
        .actor
        .secret
        .as_ref()
        .is_some_and(|s| s.which == WhichSecret::Previous);
    if idempotent && ctx.actor.is_key(id) && (grace_secs == 0 || by_previous) {
        return Err(InvalidWrite::SelfRollWithoutGrace.into());
    }
    Ok(())
}

/// The roll's new secret: drawn, or for an idempotent request derived, with the record a
/// retry will find.
fn new_secret(
    idem: Option<&(&SecretKeys, String, String)>,
) -> Result<(Secret, Option<RecordOf>), StoreError> {
    let internal = |e: getrandom::Error| StoreError::Internal(Box::new(e));
    let Some((keys, record_id, request)) = idem else {
        return Ok((Secret::generate().map_err(internal)?, None));
    };
    let nonce = nonce().map_err(internal)?;
    let secret = keys.derive(record_id, request, &nonce);
    let record = RecordOf {
        id: record_id.clone(),
        request: request.clone(),
        nonce,
    };
    Ok((secret, Some(record)))
}

/// The key after the roll, and what changed.
fn rolled(
    stored: &StoredKey,
    secret: &Secret,
    now: DateTime<Utc>,
    grace_end: DateTime<Utc>,
) -> (StoredKey, Changes) {
    let mut key = stored.key.clone();
    key.last_four = secret.last_four();
    key.updated = now;
    key.version = stored.key.version + 1;
    let earlier_end = stored
        .previous
        .as_ref()
        .map(|p| p.until)
        .filter(|until| *until > now);
    let changes = Changes::from([
        (
            "last_four_digits".to_owned(),
            Change {
                from: Value::String(stored.key.last_four.clone()),
                to: Value::String(key.last_four.clone()),
            },
        ),
        (
            "previous_secret_expires_date".to_owned(),
            Change {
                from: earlier_end.map_or(Value::Null, time_value),
                to: time_value(grace_end),
            },
        ),
    ]);
    let previous = (grace_end > now).then(|| PreviousSecret {
        hash: stored.hash.clone(),
        until: grace_end,
    });
    let after = StoredKey {
        key,
        hash: secret.hash(),
        previous,
        leaked: stored.leaked.clone(),
    }
    .without_dropped_leaks();
    (after, changes)
}
