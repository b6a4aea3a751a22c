//! The write side: create, update, roll and delete a key.
//!
//! Each write is one DynamoDB transaction (see [`crate::store::KeyWriter`]) that changes the
//! key, its credentials and the organization's key count, and writes exactly one audit
//! event ([`crate::audit`]). A write that fails writes nothing, its event included; no write
//! is ever half done. Another organization's key id behaves exactly like a missing one.
//!
//! The HTTP handlers and the admin CLI call the same functions; they differ only in the
//! [`WriteContext`] (who acts, from where) they pass.
//!
//! | write | function | event |
//! | --- | --- | --- |
//! | create | [`create`] | `key.created` |
//! | change name, access, expiry, state | [`update_key`] | `key.updated`, `key.disabled`, `key.enabled` |
//! | new secret, old one kept for a grace period | [`roll_key`] | `key.rolled` |
//! | delete | [`delete_key`] | `key.deleted` |
//! | disable a key whose secret was found in public | [`revoke_leaked`] | `key.leaked` |
//! | set an owner's own credits and rate limits | [`set_owner`] | `owner.updated` |

mod create;
mod credits;
mod delete;
mod diff;
mod idempotency;
mod leaked;
mod owner;
mod patch;
mod retry;
mod roll;
mod update;

use chrono::{DateTime, Utc};

pub use create::{Created, NewKey, create, create_key, create_key_with_secret};
pub use credits::adjust_credits;
pub use delete::delete_key;
pub use idempotency::{
    IDEMPOTENCY_WINDOW, Idempotency, InvalidIdempotencyKey, MAX_IDEMPOTENCY_KEY_LEN, SecretKeys,
    WeakSecretKeys,
};
pub use leaked::{Revocation, revoke_leaked};
pub use owner::{OwnerSet, check_owner_quota, set_owner};
pub use patch::{CreditsChange, KeyChange};
pub use roll::{MAX_GRACE_SECS, Rolled, roll_key};
pub use update::{set_state, update_key};

use crate::audit::{ActingSecret, Action, Actor, Changes, Event, EventId};
use crate::authority::{Authority, Refusal};
use crate::key::{KeyId, OrgId};
use crate::store::{MAX_NAME_BYTES, StoreError};

/// Why a write did not happen. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The organization has no key with this id (another organization's key included).
    #[error("API key not found")]
    NotFound,
    /// The caller named the version it expected (`If-Match`), and the key is at another.
    #[error("the key has changed since the version the request names")]
    VersionMismatch,
    /// The key changed between the caller's read and this write, and the caller named no
    /// version: retrying with a fresh read is safe.
    #[error("the key was changed by another request at the same time")]
    Conflict,
    /// The Idempotency-Key was used before, within the idempotency window, by this caller,
    /// for another request (another body, operation or key).
    #[error("the Idempotency-Key was used for another request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Invalid(#[from] InvalidWrite),
    /// The authority rule refuses it (`crate::authority`).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Enabling a key while a secret of it reported leaked still works: roll it first.
    #[error("the key holds a secret that was reported leaked; roll it before enabling it")]
    LeakedSecret,
    /// Adjusting the credits of a key that has none (it is unlimited).
    #[error("the key has no credits (it is unlimited); set credits with PATCH first")]
    NoCredits,
    /// A decrement of more credits than the key has left.
    #[error("the key has {0} credits left, fewer than the decrement")]
    TooFewCredits(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The error creating a key reports (the name it had before the other writes existed).
pub type CreateKeyError = WriteError;

/// A value a write refuses whatever the stored state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWrite {
    #[error("a key name must be 1 to {MAX_NAME_BYTES} bytes of text without control characters")]
    Name,
    #[error("a key id must be a UUIDv7: its timestamp is the key's creation time")]
    IdNotV7,
    #[error("a grace period must be 0 to {MAX_GRACE_SECS} seconds, got {0}")]
    Grace(u64),
    #[error("an idempotent request needs IDEMPOTENCY_SECRET, which is not configured")]
    NoSecretKeys,
    /// An idempotent roll of the caller's own key with no grace period, or by its previous
    /// secret (which any roll ends at once): its retry could not authenticate.
    #[error(
        "a key rolling itself with an Idempotency-Key must use its current secret and a grace \
         period of at least 1 second: a retry authenticates with the secret the roll replaces"
    )]
    SelfRollWithoutGrace,
    /// A change that leaves the key's access undefined (see [`KeyChange`]): why, of its
    /// `permissions`.
    #[error("permissions {0}")]
    Access(&'static str),
    /// Credits or rate limits out of bounds: the field and why.
    #[error("{0} {1}")]
    Quota(&'static str, crate::quota::InvalidQuota),
    /// Metadata out of bounds (after a merge patch): why.
    #[error("meta {0}")]
    Meta(crate::meta::InvalidMeta),
}

/// Who makes a write, and when: what its audit event records, and the authority the write
/// is checked against.
#[derive(Clone, Debug)]
pub struct WriteContext {
    pub actor: Actor,
    /// What the actor may do ([`crate::authority`]).
    pub authority: Authority,
    pub request_id: String,
    /// The client's address, where the gateway gives one.
    pub source_ip: Option<String>,
    /// The time of the write, to the millisecond: the event's time, the key's
    /// `updated_date`, the start of a grace period. Tests pass their own.
    pub now: DateTime<Utc>,
}

impl WriteContext {
    /// A write by a caller of the HTTP API: its key, the secret of it that acted, and its
    /// authority.
    pub fn api_key(
        key: KeyId,
        secret: ActingSecret,
        authority: Authority,
        request_id: impl Into<String>,
        source_ip: Option<String>,
    ) -> Self {
        WriteContext {
            actor: Actor::api_key(key).with_secret(secret),
            authority,
            request_id: request_id.into(),
            source_ip,
            now: to_millis(Utc::now()),
        }
    }

    /// A write by the operator running this process (the admin CLI, seeding, fixtures): the
    /// OS user, a request id of its own, now.
    pub fn cli() -> Self {
        WriteContext {
            actor: Actor::cli_user(),
            authority: Authority::operator(),
            request_id: format!("cli-{}", uuid::Uuid::now_v7()),
            source_ip: None,
            now: to_millis(Utc::now()),
        }
    }

    /// A write by the operator `actor` (the admin CLI, as the caller's AWS identity says).
    pub fn operator(actor: Actor) -> Self {
        WriteContext {
            actor,
            ..WriteContext::cli()
        }
    }

    /// A revocation reported by GitHub's secret scanning, in the request `request_id`.
    pub fn github(request_id: impl Into<String>) -> Self {
        WriteContext {
            actor: Actor::github(),
            authority: Authority::operator(),
            request_id: request_id.into(),
            source_ip: None,
            now: to_millis(Utc::now()),
        }
    }

    /// This context at another time (to the millisecond, as times are stored).
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = to_millis(now);
        self
    }

    fn event(
        &self,
        policy: &WritePolicy,
        org: &OrgId,
        key_id: KeyId,
        action: Action,
        changes: Changes,
    ) -> Event {
        self.key_event(policy, org, Some(key_id), action, changes)
    }

    /// An event of this write, about the key `key_id` (`None`: about no key).
    fn key_event(
        &self,
        policy: &WritePolicy,
        org: &OrgId,
        key_id: Option<KeyId>,
        action: Action,
        changes: Changes,
    ) -> Event {
        let id = EventId::new_at(self.now);
        let time = id.time().unwrap_or(self.now);
        Event {
            id,
            time,
            org: org.clone(),
            action,
            key_id,
            owner_id: None,
            actor: self.actor.clone(),
            changes,
            request_id: self.request_id.clone(),
            source_ip: self.source_ip.clone(),
            leak: None,
            credits: None,
            expires: None,
            retain_until: time + policy.event_retention,
        }
    }
}

/// How long events are kept when not configured: a year.
pub const DEFAULT_EVENT_RETENTION_DAYS: u32 = 365;
/// The longest retention `EVENT_RETENTION_DAYS` may set: ten years.
pub const MAX_EVENT_RETENTION_DAYS: u32 = 3650;

/// What every write is configured with, once per process.
#[derive(Clone, Debug)]
pub struct WritePolicy {
    /// How long after its time an event may be deleted by DynamoDB's TTL.
    pub event_retention: chrono::Duration,
    /// The keys idempotent creates and rolls derive their secrets with; `None` refuses
    /// idempotent requests.
    pub secret_keys: Option<SecretKeys>,
}

impl Default for WritePolicy {
    fn default() -> Self {
        WritePolicy {
            event_retention: chrono::Duration::days(i64::from(DEFAULT_EVENT_RETENTION_DAYS)),
            secret_keys: None,
        }
    }
}

/// Why the write configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "EVENT_RETENTION_DAYS must be a whole number of days from 1 to {MAX_EVENT_RETENTION_DAYS}"
    )]
    Retention,
    #[error(transparent)]
    SecretKeys(#[from] WeakSecretKeys),
}

impl WritePolicy {
    /// `EVENT_RETENTION_DAYS` (default [`DEFAULT_EVENT_RETENTION_DAYS`]) and
    /// `IDEMPOTENCY_SECRET` (comma-separated secrets of 32 characters or more, the one that
    /// derives new secrets first; unset refuses idempotent requests).
    pub fn from_env() -> Result<Self, PolicyError> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let days = match var("EVENT_RETENTION_DAYS") {
            None => DEFAULT_EVENT_RETENTION_DAYS,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_EVENT_RETENTION_DAYS).contains(d))
                .ok_or(PolicyError::Retention)?,
        };
        let secret_keys = var("IDEMPOTENCY_SECRET")
            .map(|v| SecretKeys::parse(&v))
            .transpose()?;
        Ok(WritePolicy {
            event_retention: chrono::Duration::days(i64::from(days)),
            secret_keys,
        })
    }

    /// This policy with these secret keys.
    pub fn with_secret_keys(mut self, keys: SecretKeys) -> Self {
        self.secret_keys = Some(keys);
        self
    }

    fn secret_keys(&self) -> Result<&SecretKeys, WriteError> {
        self.secret_keys
            .as_ref()
            .ok_or(WriteError::Invalid(InvalidWrite::NoSecretKeys))
    }
}

/// Checks a key name: 1 to [`MAX_NAME_BYTES`] bytes of text, not blank, no control
/// characters.
pub fn check_name(name: &str) -> Result<(), InvalidWrite> {
    let ok = !name.trim().is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.chars().any(char::is_control);
    if ok { Ok(()) } else { Err(InvalidWrite::Name) }
}

/// Checks a key's credits and rate limits.
pub fn check_quota(quota: &crate::quota::Quota) -> Result<(), InvalidWrite> {
    if let Some(c) = &quota.credits {
        crate::quota::check_credits(c).map_err(|e| InvalidWrite::Quota("credits", e))?;
    }
    crate::quota::check_limits(&quota.ratelimits).map_err(|e| InvalidWrite::Quota("ratelimits", e))
}

/// A time as the store keeps it: to the millisecond. A write returns the key as a read
/// would show it.
pub(crate) fn to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// How many times a roll or delete that named no version starts again after the key
/// changed under it, each time deciding again on the fresh key.
const CHANGED_RETRIES: usize = 5;

/// The versions a write may find the key at: those `If-Match` names, or `None` for any.
/// An empty list (a weak tag, say) matches none.
pub type Expected<'a> = Option<&'a [u64]>;

/// Whether a key at `version` meets `expected`.
fn meets(expected: Expected<'_>, version: u64) -> bool {
    expected.is_none_or(|v| v.contains(&version))
}
