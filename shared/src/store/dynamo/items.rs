//! The items as stored, mapped with serde_dynamo.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    CREDENTIAL_SK, EVENT_PREFIX, IDEMPOTENCY_SK, corrupt, creator_pk, credential_pk, event_pk,
    expiry_pk, idempotency_pk, key_events_pk, key_sk, org_pk, owner_pk,
};
use crate::allow::AllowList;
use crate::audit::{Action, Actor, ActorKind, Event, EventId};
use crate::key::{
    Access, ApiKey, DisabledReason, KeyId, KeyState, OrgId, permission_bits, permissions_from_bits,
};
use crate::meta::Meta;
use crate::owner::OwnerId;
use crate::quota::plan::{Counters, Window};
use crate::quota::{Credits, Quota, RateLimit, Refill};
use crate::secret::SecretHash;
use crate::store::quota::Spent;
use crate::store::{
    Credential, IdempotencyRecord, Notified, PreviousSecret, StoreError, StoredKey,
};

/// The key item as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct KeyItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) id: KeyId,
    pub(super) org: OrgId,
    pub(super) name: String,
    /// The `by-creator` index's partition key.
    #[serde(default)]
    pub(super) creator_pk: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) created_ms: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) updated_ms: DateTime<Utc>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) last_used_ms: Option<DateTime<Utc>>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) expires_ms: Option<DateTime<Utc>>,
    pub(super) creator_id: Uuid,
    pub(super) restricted: bool,
    /// The permission set, one bit per permission (see `Permission::bit`): a fixed 8 bytes
    /// however many a key has, so 1,001 keys always fit in one 1 MB Query response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) permissions: Option<u64>,
    pub(super) state: KeyState,
    pub(super) last_four: String,
    /// Lets writes find the credential item. Never rendered, and absent from the
    /// `by-creator` index (so empty on a key read from it).
    #[serde(default)]
    pub(super) secret_hash: String,
    /// One more with every change; absent (0) on items written before versions were.
    #[serde(default)]
    pub(super) version: u64,
    /// The secret a roll replaced, while its grace period lasts: its hash and the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous_hash: Option<String>,
    /// The hashes of its secrets a secret scanning report named (see `StoredKey::leaked`).
    /// Written, if only as an empty list, whenever the key is disabled for a leak, so that
    /// its absence on such a key tells an item revoked before marks were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) leaked_hashes: Option<Vec<String>>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) previous_until_ms: Option<DateTime<Utc>>,
    /// Why the service disabled the key (`leaked`), while it is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) disabled_reason: Option<DisabledReason>,
    /// Its credits left (absent: unlimited), their refill, and the start of the refill
    /// period they were last set or refilled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_refill: Option<Refill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_period_ms: Option<i64>,
    /// Below how many credits left the key is low (`key.credits_low`, published from the
    /// stream: `crate::publish::credits` reads this attribute by its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits_low_at: Option<u64>,
    /// Its rate limits, and each one's latest window by name (`rl`, present whenever
    /// limits are, so that a window can be set in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) ratelimits: Option<Vec<RateLimit>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rl: Option<BTreeMap<String, Window>>,
    /// The id of the last verify that spent from the key: a retried spend that finds its
    /// own id here was applied already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last_spend: Option<String>,
    /// The `by-expiry` index's partition key: the expiry notice the key has still to get,
    /// the day it expires and its shard (see [`super::expiry_pk`]). Absent when it gets
    /// none: no expiry, not active, or both notices written for its expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expiry_pk: Option<String>,
    /// The expiry the `key.expiring` notice, and the `key.expired` one, were written for.
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) expiring_notice_ms: Option<DateTime<Utc>>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) expired_notice_ms: Option<DateTime<Utc>>,
    /// Whom the key is for, and the `by-owner` index's partition key
    /// (`ORG#<org>#OWNER#<owner id>`); both absent on a key without an owner, which the
    /// sparse index then does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner_id: Option<OwnerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner_pk: Option<String>,
    /// Its metadata as compact JSON (a string: DynamoDB's numbers are not JSON's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) meta: Option<String>,
    /// Its IP allow-list, each network as the API shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) allowed_cidrs: Option<Vec<String>>,
}

/// The credential item: what authenticating a secret needs, under the secret's hash.
#[derive(Serialize, Deserialize)]
pub(super) struct CredentialItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) org: OrgId,
    pub(super) key_id: KeyId,
    pub(super) restricted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) permissions: Option<u64>,
    pub(super) state: KeyState,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) expires_ms: Option<DateTime<Utc>>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) last_used_ms: Option<DateTime<Utc>>,
    /// When DynamoDB's TTL may delete the item (epoch seconds): only a previous secret's
    /// credential has one, a day after its grace period ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) purge_at: Option<i64>,
    /// The key's credits and limits as of its last change, and its version then.
    #[serde(default, skip_serializing_if = "is_unmetered")]
    pub(super) quota: Quota,
    #[serde(default)]
    pub(super) key_version: u64,
    /// The key's owner, so that verify knows it without reading the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner_id: Option<OwnerId>,
    /// The key's metadata and allow-list, copied as the key item holds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) meta: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) allowed_cidrs: Option<Vec<String>>,
}

fn is_unmetered(q: &Quota) -> bool {
    !q.is_metered()
}

pub(super) fn bits_of(access: &Access) -> Option<u64> {
    access.permissions().map(permission_bits)
}

pub(super) fn access_of(restricted: bool, bits: Option<u64>) -> Result<Access, StoreError> {
    let list = permissions_from_bits(bits.unwrap_or(0)).ok_or_else(|| {
        StoreError::Internal("a stored permission set names unknown permissions".into())
    })?;
    Ok(Access::new(restricted, list))
}

impl KeyItem {
    pub(super) fn new(key: &ApiKey, hash: &SecretHash) -> Self {
        KeyItem {
            pk: org_pk(&key.org),
            sk: key_sk(key.id),
            id: key.id,
            org: key.org.clone(),
            name: key.name.clone(),
            creator_pk: creator_pk(&key.org, key.creator_id),
            created_ms: key.created,
            updated_ms: key.updated,
            last_used_ms: key.last_used,
            expires_ms: key.expires,
            creator_id: key.creator_id,
            restricted: key.access.is_restricted(),
            permissions: bits_of(&key.access),
            state: key.state,
            last_four: key.last_four.clone(),
            secret_hash: hash.as_str().to_owned(),
            version: key.version,
            previous_hash: None,
            previous_until_ms: None,
            leaked_hashes: None,
            disabled_reason: key.disabled_reason,
            credits_remaining: key.quota.credits.as_ref().map(|c| c.remaining),
            credits_refill: key.quota.credits.as_ref().and_then(|c| c.refill),
            credits_period_ms: key
                .quota
                .credits
                .as_ref()
                .and_then(|c| c.refill)
                .map(|r| r.period_start(key.updated)),
            credits_low_at: key.quota.credits.as_ref().and_then(|c| c.low_at),
            ratelimits: (!key.quota.ratelimits.is_empty()).then(|| key.quota.ratelimits.clone()),
            rl: (!key.quota.ratelimits.is_empty()).then(BTreeMap::new),
            last_spend: None,
            expiry_pk: listed_under(key, &Notified::default()),
            expiring_notice_ms: None,
            expired_notice_ms: None,
            owner_id: key.owner_id.clone(),
            owner_pk: key.owner_id.as_ref().map(|o| owner_pk(&key.org, o)),
            meta: key.meta.as_ref().map(Meta::to_json),
            allowed_cidrs: key.allowed_cidrs.as_ref().map(AllowList::to_strings),
        }
    }

    pub(super) fn stored(stored: &StoredKey) -> Self {
        KeyItem {
            previous_hash: stored.previous.as_ref().map(|p| p.hash.as_str().to_owned()),
            previous_until_ms: stored.previous.as_ref().map(|p| p.until),
            leaked_hashes: (!stored.leaked.is_empty()
                || stored.key.disabled_reason == Some(DisabledReason::Leaked))
            .then(|| {
                stored
                    .leaked
                    .iter()
                    .map(|h| h.as_str().to_owned())
                    .collect()
            }),
            expiry_pk: listed_under(&stored.key, &stored.notified),
            expiring_notice_ms: stored.notified.expiring,
            expired_notice_ms: stored.notified.expired,
            ..KeyItem::new(&stored.key, &stored.hash)
        }
    }

    pub(super) fn into_stored(self) -> Result<StoredKey, StoreError> {
        let hash = SecretHash::from_stored(self.secret_hash.clone());
        let previous = match (self.previous_hash.clone(), self.previous_until_ms) {
            (Some(h), Some(until)) => Some(PreviousSecret {
                hash: SecretHash::from_stored(h),
                until,
            }),
            _ => None,
        };
        let leaked = self.leaked_hash_list();
        let notified = Notified {
            expiring: self.expiring_notice_ms,
            expired: self.expired_notice_ms,
        };
        Ok(StoredKey {
            key: self.into_key()?,
            hash,
            previous,
            leaked,
            notified,
        })
    }

    /// The hashes of the key's secrets a report marked leaked. A key revoked before marks
    /// were kept (`disabled_reason: leaked`, no `leaked_hashes`) counts every secret it
    /// holds as marked: which one leaked is not known, and none may work again unrolled.
    pub(super) fn leaked_hash_list(&self) -> Vec<SecretHash> {
        let marks = match &self.leaked_hashes {
            Some(marks) => marks.iter().collect(),
            None if self.state == KeyState::Disabled
                && self.disabled_reason == Some(DisabledReason::Leaked) =>
            {
                std::iter::once(&self.secret_hash)
                    .chain(self.previous_hash.as_ref())
                    .collect()
            }
            None => Vec::new(),
        };
        marks
            .into_iter()
            .map(|h| SecretHash::from_stored(h.clone()))
            .collect()
    }

    /// The key and its counters: what a spend reads back.
    pub(super) fn into_spent(mut self) -> Result<Spent, StoreError> {
        let counters = Counters {
            period_ms: self.credits_period_ms,
            windows: self.rl.take().unwrap_or_default(),
        };
        let last_spend = self.last_spend.take();
        Ok(Spent {
            key: self.into_key()?,
            counters,
            last_spend,
        })
    }

    pub(super) fn into_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: self.id,
            org: self.org,
            name: self.name,
            created: self.created_ms,
            updated: self.updated_ms,
            last_used: self.last_used_ms,
            expires: self.expires_ms,
            creator_id: self.creator_id,
            access: access_of(self.restricted, self.permissions)?,
            state: self.state,
            last_four: self.last_four,
            version: self.version,
            disabled_reason: self.disabled_reason,
            quota: Quota {
                credits: self.credits_remaining.map(|remaining| Credits {
                    remaining,
                    refill: self.credits_refill,
                    low_at: self.credits_low_at,
                }),
                ratelimits: self.ratelimits.unwrap_or_default(),
            },
            owner_id: self.owner_id,
            meta: stored_meta(self.meta.as_deref())?,
            allowed_cidrs: stored_list(self.allowed_cidrs.as_deref())?,
        })
    }
}

/// Where the `by-expiry` index lists `key`: under the notice it has still to get, while it
/// is active and has an expiry; nowhere otherwise (a disabled key gets no notice, and is
/// listed again when enabled).
fn listed_under(key: &ApiKey, notified: &Notified) -> Option<String> {
    let expires = key.expires.filter(|_| key.state == KeyState::Active)?;
    notified
        .next(expires)
        .map(|phase| expiry_pk(phase, expires, key.id))
}

/// Metadata as stored: what the store wrote, so a value that no longer reads is corrupt.
pub(super) fn stored_meta(text: Option<&str>) -> Result<Option<Meta>, StoreError> {
    text.map(|t| {
        Meta::from_json(t).ok_or_else(|| StoreError::Internal("a stored meta is not valid".into()))
    })
    .transpose()
}

/// An allow-list as stored.
pub(super) fn stored_list(items: Option<&[String]>) -> Result<Option<AllowList>, StoreError> {
    items
        .map(|l| {
            AllowList::from_stored(l).ok_or_else(|| {
                StoreError::Internal("a stored allowed_cidrs list is not valid".into())
            })
        })
        .transpose()
}

/// Purge a previous secret's credential this long after its grace period ends: DynamoDB's
/// TTL deletes items late and the expiry check refuses it from the end on, so the margin
/// only keeps a write from finding it gone while it still counts.
const PREVIOUS_PURGE_MARGIN: chrono::Duration = chrono::Duration::days(1);

impl CredentialItem {
    pub(super) fn into_credential(self) -> Result<Credential, StoreError> {
        Ok(Credential {
            org: self.org,
            key_id: self.key_id,
            access: access_of(self.restricted, self.permissions)?,
            state: self.state,
            expires: self.expires_ms,
            last_used: self.last_used_ms,
            // Only a previous secret's credential is purged by TTL.
            previous: self.purge_at.is_some(),
            quota: self.quota,
            version: self.key_version,
            owner_id: self.owner_id,
            meta: stored_meta(self.meta.as_deref())?,
            allowed_cidrs: stored_list(self.allowed_cidrs.as_deref())?,
        })
    }

    /// The credential item of `hash`, one of `stored`'s secrets.
    pub(super) fn of(stored: &StoredKey, hash: &SecretHash) -> Self {
        let key = &stored.key;
        let previous = stored.previous.as_ref().filter(|p| &p.hash == hash);
        CredentialItem {
            pk: credential_pk(hash),
            sk: CREDENTIAL_SK.to_owned(),
            org: key.org.clone(),
            key_id: key.id,
            restricted: key.access.is_restricted(),
            permissions: bits_of(&key.access),
            state: key.state,
            expires_ms: stored.credential_expiry(hash),
            last_used_ms: None,
            purge_at: previous.map(|p| (p.until + PREVIOUS_PURGE_MARGIN).timestamp()),
            quota: key.quota.clone(),
            key_version: key.version,
            owner_id: key.owner_id.clone(),
            meta: key.meta.as_ref().map(Meta::to_json),
            allowed_cidrs: key.allowed_cidrs.as_ref().map(AllowList::to_strings),
        }
    }
}

/// An audit event: in its organization's event partition (`ORG#<org>#EVENTS`, sorted by
/// id), and a key's event in its key's event partition of the `by-key` index (`key_pk`); an
/// owner's event (`owner_id`, no key) is in no key's.
#[derive(Serialize, Deserialize)]
pub(super) struct EventItem {
    pub(super) pk: String,
    pub(super) sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) key_pk: Option<String>,
    pub(super) id: EventId,
    pub(super) org: OrgId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) key_id: Option<KeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner_id: Option<crate::owner::OwnerId>,
    pub(super) action: Action,
    pub(super) actor_type: ActorKind,
    pub(super) actor_id: String,
    /// Which secret of the acting key made the request, as JSON (API callers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) actor_secret: Option<String>,
    /// The changes as JSON: what the API shows, kept as one string.
    pub(super) changes: String,
    pub(super) request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) leak: Option<String>,
    /// A credits adjustment, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) credits: Option<String>,
    /// The expiry an expiry notice is for.
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) notice_expires_ms: Option<DateTime<Utc>>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) time_ms: DateTime<Utc>,
    /// DynamoDB's TTL attribute: the end of the retention, in epoch seconds.
    pub(super) purge_at: i64,
}

impl EventItem {
    pub(super) fn new(event: &Event) -> Result<Self, StoreError> {
        let json = |e: serde_json::Error| StoreError::Internal(Box::new(e));
        Ok(EventItem {
            pk: event_pk(&event.org),
            sk: format!("{EVENT_PREFIX}{}", event.id),
            key_pk: event.key_id.map(|k| key_events_pk(&event.org, k)),
            id: event.id,
            org: event.org.clone(),
            key_id: event.key_id,
            owner_id: event.owner_id.clone(),
            action: event.action,
            actor_type: event.actor.kind,
            actor_id: event.actor.id.clone(),
            actor_secret: event
                .actor
                .secret
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?,
            changes: serde_json::to_string(&event.changes).map_err(json)?,
            request_id: event.request_id.clone(),
            source_ip: event.source_ip.clone(),
            leak: event
                .leak
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?,
            credits: event
                .credits
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(json)?,
            notice_expires_ms: event.expires,
            time_ms: event.time,
            purge_at: event.retain_until.timestamp(),
        })
    }

    pub(super) fn into_event(self) -> Result<Event, StoreError> {
        let json = |e: serde_json::Error| StoreError::Internal(Box::new(e));
        Ok(Event {
            id: self.id,
            time: self.time_ms,
            org: self.org,
            action: self.action,
            key_id: self.key_id,
            owner_id: self.owner_id,
            actor: Actor {
                kind: self.actor_type,
                id: self.actor_id,
                secret: self
                    .actor_secret
                    .map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(json)?,
            },
            changes: serde_json::from_str(&self.changes).map_err(json)?,
            request_id: self.request_id,
            source_ip: self.source_ip,
            leak: self
                .leak
                .map(|l| serde_json::from_str(&l))
                .transpose()
                .map_err(json)?,
            credits: self
                .credits
                .map(|c| serde_json::from_str(&c))
                .transpose()
                .map_err(json)?,
            expires: self.notice_expires_ms,
            retain_until: DateTime::from_timestamp(self.purge_at, 0).unwrap_or(self.time_ms),
        })
    }
}

/// An idempotency record, under `IDEM#<id>`.
#[derive(Serialize, Deserialize)]
pub(super) struct IdempotencyItem {
    pub(super) pk: String,
    pub(super) sk: String,
    pub(super) org: OrgId,
    pub(super) request: String,
    pub(super) nonce: String,
    pub(super) secret_hash: String,
    /// The key the response showed, as a key item.
    pub(super) key: KeyItem,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) created_ms: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub(super) expires_ms: DateTime<Utc>,
    pub(super) purge_at: i64,
}

impl IdempotencyItem {
    pub(super) fn new(r: &IdempotencyRecord) -> Self {
        IdempotencyItem {
            pk: idempotency_pk(&r.id),
            sk: IDEMPOTENCY_SK.to_owned(),
            org: r.org.clone(),
            request: r.request.clone(),
            nonce: r.nonce.clone(),
            secret_hash: r.secret_hash.as_str().to_owned(),
            key: KeyItem::new(&r.key, &r.secret_hash),
            created_ms: r.created,
            expires_ms: r.expires,
            purge_at: r.expires.timestamp(),
        }
    }

    pub(super) fn into_record(self, id: &str) -> Result<IdempotencyRecord, StoreError> {
        Ok(IdempotencyRecord {
            id: id.to_owned(),
            org: self.org,
            request: self.request,
            nonce: self.nonce,
            secret_hash: SecretHash::from_stored(self.secret_hash),
            key: self.key.into_key()?,
            created: self.created_ms,
            expires: self.expires_ms,
        })
    }
}

/// The item of any of these, for a write.
pub(super) fn item<T: Serialize>(
    value: T,
) -> Result<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, StoreError>
{
    serde_dynamo::to_item(value).map_err(corrupt)
}
