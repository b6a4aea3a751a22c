//! What an audit event records: who changed which key (or which owner's limits), how, when,
//! and from where.
//!
//! An event is written in the same transaction as the change it describes (by the write
//! use cases above), so no change goes unrecorded and no event describes a change that did
//! not happen. `changes` never holds a secret or a hash: a roll records the new last four
//! characters and when the previous secret stops working.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::key::{InvalidUuid, KeyId, OrgId};
use crate::owner::OwnerId;

/// An event's id: a UUIDv7 whose timestamp is the event's time, so id order is time order
/// and a time range is a range of ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A new id for an event at `at` (millisecond precision).
    pub fn new_at(at: DateTime<Utc>) -> Self {
        EventId(KeyId::new_at(at).as_uuid())
    }

    /// The smallest id an event at or after `at` can have.
    pub fn floor(at: DateTime<Utc>) -> Self {
        let ms = at.timestamp_millis()
            + i64::from(!at.timestamp_subsec_nanos().is_multiple_of(1_000_000));
        EventId(Uuid::from_u128(u128::from(ms.max(0) as u64) << 80))
    }

    /// The largest id an event before `at` can have.
    pub fn ceiling_before(at: DateTime<Utc>) -> Self {
        let ms = at.timestamp_millis()
            - i64::from(at.timestamp_subsec_nanos().is_multiple_of(1_000_000));
        if ms < 0 {
            return EventId(Uuid::nil());
        }
        EventId(Uuid::from_u128(((ms as u128) << 80) | ((1u128 << 80) - 1)))
    }

    pub const MIN: EventId = EventId(Uuid::nil());
    pub const MAX: EventId = EventId(Uuid::max());

    /// The next id after this one, if any: an exclusive bound made inclusive.
    pub fn next(self) -> Option<Self> {
        self.0
            .as_u128()
            .checked_add(1)
            .map(|n| EventId(Uuid::from_u128(n)))
    }

    /// The id before this one, if any.
    pub fn prev(self) -> Option<Self> {
        self.0
            .as_u128()
            .checked_sub(1)
            .map(|n| EventId(Uuid::from_u128(n)))
    }

    /// The time the id carries.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        KeyId::from(self.0).created_at()
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for EventId {
    type Err = InvalidUuid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(EventId).map_err(|_| InvalidUuid)
    }
}

/// What happened to the key (`key.*`) or to an owner (`owner.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    #[serde(rename = "key.created")]
    Created,
    /// Name, access or expiry changed, and the state did not.
    #[serde(rename = "key.updated")]
    Updated,
    /// The state became `disabled` (other fields may have changed with it).
    #[serde(rename = "key.disabled")]
    Disabled,
    #[serde(rename = "key.enabled")]
    Enabled,
    #[serde(rename = "key.rolled")]
    Rolled,
    #[serde(rename = "key.deleted")]
    Deleted,
    /// The secret was found in public and the key disabled (the leak use case's revocation);
    /// the event carries a [`Leak`].
    #[serde(rename = "key.leaked")]
    Leaked,
    /// Credits added or taken by `POST /v1/api_key/{id}/credits`; the event carries the
    /// [`Adjustment`].
    #[serde(rename = "key.credits_adjusted")]
    CreditsAdjusted,
    /// The key expires within the notice lead time (`expiry`); the event carries the
    /// expiry it is for. Once per key and expiry date.
    #[serde(rename = "key.expiring")]
    Expiring,
    /// The key's expiry has come (`expiry`); once per key and expiry date.
    #[serde(rename = "key.expired")]
    Expired,
    /// An owner's own credits or rate limits were set (`PUT /v1/owner/{owner_id}`); the
    /// event names the owner, not a key.
    #[serde(rename = "owner.updated")]
    OwnerUpdated,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::Created,
        Action::Updated,
        Action::Disabled,
        Action::Enabled,
        Action::Rolled,
        Action::Deleted,
        Action::Leaked,
        Action::CreditsAdjusted,
        Action::Expiring,
        Action::Expired,
        Action::OwnerUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "key.created",
            Action::Updated => "key.updated",
            Action::Disabled => "key.disabled",
            Action::Enabled => "key.enabled",
            Action::Rolled => "key.rolled",
            Action::Deleted => "key.deleted",
            Action::Leaked => "key.leaked",
            Action::CreditsAdjusted => "key.credits_adjusted",
            Action::Expiring => "key.expiring",
            Action::Expired => "key.expired",
            Action::OwnerUpdated => "owner.updated",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// Who made the change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// The caller's key id, or the operator's name.
    pub id: String,
    /// For a caller of the HTTP API: which of its key's secrets acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ActingSecret>,
}

/// Which of a key's secrets made a request: its current one, or the previous one a roll
/// keeps for its grace period; named by its last four characters, which the key view shows
/// too (never more of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActingSecret {
    pub which: WhichSecret,
    pub last_four: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhichSecret {
    Current,
    Previous,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A caller of the HTTP API, by its key's id.
    ApiKey,
    /// An operator of the admin CLI, by OS user.
    Cli,
    /// GitHub's secret scanning, reporting a secret found in public (id `secret_scanning`).
    Github,
    /// The service itself, on a schedule: the expiry notices (id `expiry_notices`).
    Service,
}

impl Actor {
    pub fn api_key(id: KeyId) -> Self {
        Actor {
            kind: ActorKind::ApiKey,
            id: id.to_string(),
            secret: None,
        }
    }

    /// This actor, naming the secret that acted.
    pub fn with_secret(mut self, secret: ActingSecret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Whether this is the key `id` acting through the HTTP API.
    pub fn is_key(&self, id: KeyId) -> bool {
        self.kind == ActorKind::ApiKey && self.id == id.to_string()
    }

    pub fn cli(name: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Cli,
            id: name.into(),
            secret: None,
        }
    }

    /// GitHub's secret scanning partner program, which reports leaked secrets.
    pub fn github() -> Self {
        Actor {
            kind: ActorKind::Github,
            id: "secret_scanning".into(),
            secret: None,
        }
    }

    /// The scheduled function that writes the expiry notices (`key.expiring`, `key.expired`).
    pub fn expiry_notices() -> Self {
        Actor {
            kind: ActorKind::Service,
            id: "expiry_notices".into(),
            secret: None,
        }
    }

    /// The operator running this process: `$USER`, else `$LOGNAME`, else the uid that owns
    /// the process, else `unknown`.
    pub fn cli_user() -> Self {
        let from_env = ["USER", "LOGNAME"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.trim().is_empty());
        let name = from_env.or_else(uid).unwrap_or_else(|| "unknown".into());
        Actor::cli(name)
    }
}

#[cfg(unix)]
fn uid() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .ok()
        .map(|m| format!("uid:{}", m.uid()))
}

#[cfg(not(unix))]
fn uid() -> Option<String> {
    None
}

/// One field's change. Values are as the API shows them (RFC 3339 times, permission
/// strings, `null` for absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: Value,
    pub to: Value,
}

/// Changed fields by name, in name order.
pub type Changes = BTreeMap<String, Change>;

/// Where a leaked secret was found (for `key.leaked`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leak {
    pub url: String,
    pub source: String,
}

/// How many credits an adjustment added or took (for `key.credits_adjusted`). Verifies
/// spend from the same credits at any moment, so the event records the change, not a
/// count before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Adjustment {
    Increment(u64),
    Decrement(u64),
}

impl Adjustment {
    /// The change of the credits left: positive adds.
    pub fn delta(self) -> i128 {
        match self {
            Adjustment::Increment(n) => i128::from(n),
            Adjustment::Decrement(n) => -i128::from(n),
        }
    }
}

/// An audit event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// The id's time.
    pub time: DateTime<Utc>,
    pub org: OrgId,
    pub action: Action,
    /// The key it is about; `None` for an owner's event.
    pub key_id: Option<KeyId>,
    /// The owner it is about (`owner.updated`); `None` for a key's event.
    pub owner_id: Option<OwnerId>,
    pub actor: Actor,
    pub changes: Changes,
    pub request_id: String,
    pub source_ip: Option<String>,
    pub leak: Option<Leak>,
    pub credits: Option<Adjustment>,
    /// For `key.expiring` and `key.expired`: the expiry the notice is for.
    pub expires: Option<DateTime<Utc>>,
    /// When DynamoDB's TTL may delete it: its time plus the configured retention.
    pub retain_until: DateTime<Utc>,
}

impl Event {
    /// The API's representation (the organization is the caller's, so it is not shown).
    pub fn view(&self) -> EventView<'_> {
        EventView {
            id: self.id,
            time: MillisTime(self.time),
            action: self.action,
            key_id: self.key_id,
            owner_id: self.owner_id.as_ref(),
            actor: &self.actor,
            changes: &self.changes,
            request_id: &self.request_id,
            source_ip: self.source_ip.as_deref(),
            leak: self.leak.as_ref(),
            credits: self.credits,
            expires_date: self.expires.map(Secs),
        }
    }
}

/// An event as the API and the CLI show it.
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    pub id: EventId,
    pub time: MillisTime,
    pub action: Action,
    /// Absent for an owner's event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    /// For `owner.updated`: the owner whose limits were set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<&'a OwnerId>,
    pub actor: &'a Actor,
    pub changes: &'a Changes,
    pub request_id: &'a str,
    pub source_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak: Option<&'a Leak>,
    /// For `key.credits_adjusted`: `{"increment": N}` or `{"decrement": N}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<Adjustment>,
    /// For `key.expiring` and `key.expired`: the expiry the notice is for, as the key's
    /// `expires_date` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_date: Option<Secs>,
}

/// A time as `changes` shows it: as the key's own view does, in whole seconds.
pub fn time_value(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A time as the key's view shows it: RFC 3339, UTC, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secs(pub DateTime<Utc>);

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

/// An event's time: RFC 3339, UTC, to the millisecond (the precision of its id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MillisTime(pub DateTime<Utc>);

impl Serialize for MillisTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn actions_round_trip_through_their_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(*a));
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        assert!("key.read".parse::<Action>().is_err());
    }

    #[test]
    fn time_bounds_enclose_exactly_the_ids_of_their_milliseconds() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let id = EventId::new_at(t);
        assert!(EventId::floor(t) <= id);
        assert!(id <= EventId::ceiling_before(t + chrono::Duration::milliseconds(1)));
        assert!(id > EventId::ceiling_before(t));
        assert!(id < EventId::floor(t + chrono::Duration::milliseconds(1)));
        // A bound inside a millisecond rounds inward.
        let mid = t + chrono::Duration::microseconds(500);
        assert!(EventId::floor(mid) > id);
        assert!(EventId::ceiling_before(mid) >= id);
        assert_eq!(id.time(), Some(t));
    }

    #[test]
    fn an_actor_shows_its_type_and_id() {
        let a = Actor::cli("ops");
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"type": "cli", "id": "ops"})
        );
        assert!(!Actor::cli_user().id.is_empty());
        let id = KeyId::generate();
        let acting = ActingSecret {
            which: WhichSecret::Previous,
            last_four: "Ab3_".into(),
        };
        assert_eq!(
            serde_json::to_value(Actor::api_key(id).with_secret(acting)).unwrap(),
            serde_json::json!({"type": "api_key", "id": id.to_string(),
                               "secret": {"which": "previous", "last_four": "Ab3_"}})
        );
    }
}
