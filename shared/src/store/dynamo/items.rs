//! The items as stored, mapped with serde_dynamo.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{creator_pk, key_sk, org_pk};
use crate::key::{Access, ApiKey, KeyId, KeyState, OrgId, permission_bits, permissions_from_bits};
use crate::secret::SecretHash;
use crate::store::StoreError;

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
    /// Lets writes find the credential item. Never rendered.
    pub(super) secret_hash: String,
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
        }
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
        })
    }
}
