//! Rolling a key: a new secret (and credential) under the same key id, while the secret it
//! replaces keeps working for a grace period. At most one previous secret lives: a roll
//! ends the grace of the one before at once.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::create::{RecordOf, replay};
use super::idempotency::{SecretKeys, nonce};
use super::retry::{Attempts, Retries};
use super::{Expected, Idempotency, InvalidWrite, WriteContext, WriteError, WritePolicy};
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
/// 2. The key is read, once; with `expected`, it must be at one of those versions
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
    let idem = match idempotency {
        None => None,
        Some(idem) => match recorded(store, policy, ctx, (org, id), idem).await? {
            Recorded::Replayed(rolled) => return Ok(*rolled),
            Recorded::New(record) => Some(record),
        },
    };
    let grace = chrono::Duration::seconds(grace_secs as i64);
    let mut attempts = Attempts::new(org, id, expected, Retries::Changed);
    loop {
        let stored = attempts.read(store).await?;
        ctx.authority.may_roll(&stored.key)?;
        match commit(store, policy, ctx, &stored, grace, idem.as_ref()).await? {
            Ok(rolled) => return Ok(rolled),
            Err(failure) => attempts.lost(store, failure).await?,
        }
    }
}

/// The record an idempotent roll writes: the keys that derive its secret, the record's id
/// and the digest of the request.
type RecordPlan<'a> = (&'a SecretKeys, String, String);

/// What the idempotency record of a roll says before it is tried.
enum Recorded<'a> {
    /// A request with this Idempotency-Key rolled the key already: its answer again.
    Replayed(Box<Rolled>),
    /// None did: the record this roll will write.
    New(RecordPlan<'a>),
}

/// Looks for the answer of an earlier request with `idem`; the secret goes again only to
/// a caller that still holds the key.
async fn recorded<'a, S: KeyWriter>(
    store: &S,
    policy: &'a WritePolicy,
    ctx: &WriteContext,
    (org, id): (&OrgId, KeyId),
    idem: &Idempotency,
) -> Result<Recorded<'a>, WriteError> {
    let keys = policy.secret_keys()?;
    let record_id = idem.record_id(org, &ctx.actor);
    let request = idem.request(&format!("roll {id}"));
    let Some(done) = replay(store, policy, ctx, &record_id, &request).await? else {
        return Ok(Recorded::New((keys, record_id, request)));
    };
    let now = store
        .key_for_write(org, id)
        .await?
        .ok_or(WriteError::NotFound)?;
    ctx.authority.may_roll(&now.key)?;
    Ok(Recorded::Replayed(Box::new(Rolled {
        key: done.key,
        secret: done.secret,
        replayed: true,
    })))
}

/// One attempt: the new secret, the key after the roll and its event, committed; a record
/// taken meanwhile by the same request's twin answers with that request's roll.
async fn commit<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    stored: &StoredKey,
    grace: chrono::Duration,
    idem: Option<&RecordPlan<'_>>,
) -> Result<Result<Rolled, WriteFailure>, WriteError> {
    // A leaked secret stops now, whatever the grace asked.
    let grace_end = if stored.leaked.contains(&stored.hash) {
        ctx.now
    } else {
        ctx.now + grace
    };
    let (secret, record) = new_secret(idem)?;
    let (after, changes) = rolled(stored, &secret, ctx.now, grace_end);
    let (org, id) = (&stored.key.org, stored.key.id);
    let event = ctx.event(policy, org, id, Action::Rolled, changes);
    let record = record.map(|r| r.with(ctx, &after.key, &secret));
    match store.replace(stored, &after, &event, record.as_ref()).await {
        Ok(()) => Ok(Ok(Rolled {
            key: after.key,
            secret,
            replayed: false,
        })),
        Err(WriteFailure::Idempotency) => {
            let (_, record_id, request) = idem.ok_or(WriteError::Conflict)?;
            let done = replay(store, policy, ctx, record_id, request).await?;
            let done = done.ok_or(WriteError::Conflict)?;
            Ok(Ok(Rolled {
                key: done.key,
                secret: done.secret,
                replayed: true,
            }))
        }
        Err(other) => Ok(Err(other)),
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
fn new_secret(idem: Option<&RecordPlan<'_>>) -> Result<(Secret, Option<RecordOf>), StoreError> {
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
        notified: stored.notified,
    }
    .without_dropped_leaks();
    (after, changes)
}
