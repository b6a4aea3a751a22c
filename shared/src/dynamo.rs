//! The DynamoDB implementation of [`KeyStore`]: one table, items mapped with serde_dynamo.
//!
//! | item        | pk                | sk          |
//! | ----------- | ----------------- | ----------- |
//! | key         | `ORG#<org>`       | `KEY#<id>`  |
//! | credential  | `SECRET#<sha256>` | `SECRET`    |
//!
//! A key lives in its organization's partition, so a get is one GetItem on a primary key
//! that names the organization, and a list page is one Query on that partition, with no Scan
//! and no filter. The credential item copies what authentication needs (organization, key
//! id, access, state, expiry), so authenticating is one GetItem by hash; every write keeps
//! the two items in step in one transaction.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::key::{Access, ApiKey, KeyId, KeyState, OrgId, permission_bits, permissions_from_bits};
use crate::secret::SecretHash;
use crate::store::{Credential, KeyStore, Position, StoreError};

pub const PK: &str = "pk";
pub const SK: &str = "sk";
const KEY_PREFIX: &str = "KEY#";
const CREDENTIAL_SK: &str = "SECRET";

/// The key store on a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

fn key_sk(id: KeyId) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn credential_pk(hash: &SecretHash) -> String {
    format!("SECRET#{}", hash.as_str())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn primary_key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// The key item as stored.
#[derive(Serialize, Deserialize)]
struct KeyItem {
    pk: String,
    sk: String,
    id: KeyId,
    org: OrgId,
    name: String,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    created_ms: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    updated_ms: DateTime<Utc>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    last_used_ms: Option<DateTime<Utc>>,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    expires_ms: Option<DateTime<Utc>>,
    creator_id: Uuid,
    restricted: bool,
    /// The permission set, one bit per permission (see `Permission::bit`): a fixed 8 bytes
    /// however many a key has, so 1,001 keys always fit in one 1 MB Query response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permissions: Option<u64>,
    state: KeyState,
    last_four: String,
    /// Lets writes find the credential item. Never rendered.
    secret_hash: String,
}

/// The credential item: what authenticating a secret needs, under the secret's hash.
#[derive(Serialize, Deserialize)]
struct CredentialItem {
    pk: String,
    sk: String,
    org: OrgId,
    key_id: KeyId,
    restricted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permissions: Option<u64>,
    state: KeyState,
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    expires_ms: Option<DateTime<Utc>>,
}

fn bits_of(access: &Access) -> Option<u64> {
    access.permissions().map(permission_bits)
}

fn access_of(restricted: bool, bits: Option<u64>) -> Result<Access, StoreError> {
    let list = permissions_from_bits(bits.unwrap_or(0)).ok_or_else(|| {
        StoreError::Internal("a stored permission set names unknown permissions".into())
    })?;
    Ok(Access::new(restricted, list))
}

impl KeyItem {
    fn new(key: &ApiKey, hash: &SecretHash) -> Self {
        KeyItem {
            pk: org_pk(&key.org),
            sk: key_sk(key.id),
            id: key.id,
            org: key.org.clone(),
            name: key.name.clone(),
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

    fn into_key(self) -> Result<ApiKey, StoreError> {
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

/// The key item for `key` as this store writes it, for bulk loaders (the benchmark seeds
/// organizations of 100,000 keys with BatchWriteItem). It carries no credential item.
pub fn key_item(
    key: &ApiKey,
    hash: &SecretHash,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(KeyItem::new(key, hash)).map_err(corrupt)
}

/// Sorts an SDK failure into "retry shortly" and "a bug or misconfiguration".
fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const TRANSIENT_CODES: &[&str] = &[
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    ];
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            e.raw().status().is_server_error()
                || e.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    if transient {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Internal(Box::new(err))
    }
}

fn corrupt(err: serde_dynamo::Error) -> StoreError {
    StoreError::Internal(Box::new(err))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with this store's key schema, on-demand.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK))
            .attribute_definitions(attr(SK))
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The key item, read strongly consistently, for writes that must see the latest state.
    async fn key_item(&self, org: &OrgId, id: KeyId) -> Result<Option<KeyItem>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), key_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(Box::new(e)))
}

impl KeyStore for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), key_sk(id))))
            .send()
            .await
            .map_err(classify)?;
        let item: Option<KeyItem> = out
            .item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        item.map(KeyItem::into_key).transpose()
    }

    #[tracing::instrument(skip_all, err(Display))]
    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(
                credential_pk(hash),
                CREDENTIAL_SK.to_owned(),
            )))
            .send()
            .await
            .map_err(classify)?;
        let item: Option<CredentialItem> = out
            .item
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        item.map(|c| {
            Ok(Credential {
                org: c.org,
                key_id: c.key_id,
                access: access_of(c.restricted, c.permissions)?,
                state: c.state,
                expires: c.expires_ms,
            })
        })
        .transpose()
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let pk = org_pk(org);
        let mut start = from.map(|id| primary_key(pk.clone(), key_sk(id)));
        let mut keys = Vec::with_capacity(max);
        // One Query returns all `max` items: validated keys are small enough that 1,001 fit
        // in DynamoDB's 1 MB response. The loop only guards against items written by other
        // tools, which could make DynamoDB cut a response short.
        loop {
            let want = i32::try_from(max - keys.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(KEY_PREFIX))
                .scan_index_forward(ascending)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                let item: KeyItem = serde_dynamo::from_item(item).map_err(corrupt)?;
                keys.push(item.into_key()?);
            }
            match out.last_evaluated_key {
                Some(lek) if keys.len() < max => start = Some(lek),
                _ => break,
            }
        }
        Ok(keys)
    }

    #[tracing::instrument(skip_all, fields(org = %key.org, key = %key.id), err(Display))]
    async fn insert_key(&self, key: &ApiKey, hash: &SecretHash) -> Result<(), StoreError> {
        let key_item = serde_dynamo::to_item(KeyItem::new(key, hash)).map_err(corrupt)?;
        let credential = serde_dynamo::to_item(CredentialItem {
            pk: credential_pk(hash),
            sk: CREDENTIAL_SK.to_owned(),
            org: key.org.clone(),
            key_id: key.id,
            restricted: key.access.is_restricted(),
            permissions: bits_of(&key.access),
            state: key.state,
            expires_ms: key.expires,
        })
        .map_err(corrupt)?;
        let put = |item| {
            built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build(),
            )
            .map(|p| TransactWriteItem::builder().put(p).build())
        };
        self.transact(vec![put(key_item)?, put(credential)?]).await
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn set_state(
        &self,
        org: &OrgId,
        id: KeyId,
        state: KeyState,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.key_item(org, id).await? else {
            return Ok(false);
        };
        let state_value: AttributeValue =
            serde_dynamo::to_attribute_value(state).map_err(corrupt)?;
        let hash = SecretHash::from_stored(item.secret_hash);
        let update = |key, set: &str| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression(set)
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":state", state_value.clone())
        };
        let on_key = built(
            update(
                primary_key(item.pk, item.sk),
                "SET #state = :state, updated_ms = :now",
            )
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.timestamp_millis().to_string()),
            )
            .build(),
        )?;
        let on_credential = built(
            update(
                primary_key(credential_pk(&hash), CREDENTIAL_SK.to_owned()),
                "SET #state = :state",
            )
            .build(),
        )?;
        self.transact(vec![
            TransactWriteItem::builder().update(on_key).build(),
            TransactWriteItem::builder().update(on_credential).build(),
        ])
        .await?;
        Ok(true)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn delete_key(&self, org: &OrgId, id: KeyId) -> Result<bool, StoreError> {
        let Some(item) = self.key_item(org, id).await? else {
            return Ok(false);
        };
        let hash = SecretHash::from_stored(item.secret_hash);
        let delete = |key| {
            built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .build(),
            )
            .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        self.transact(vec![
            delete(primary_key(item.pk, item.sk))?,
            delete(primary_key(credential_pk(&hash), CREDENTIAL_SK.to_owned()))?,
        ])
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: &str, status: u16) -> StoreError {
        let err = GetItemError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        classify(SdkError::service_error(err, raw))
    }

    #[test]
    fn throttling_timeouts_and_server_errors_are_worth_a_retry() {
        for (code, status) in [
            ("ProvisionedThroughputExceededException", 400),
            ("ThrottlingException", 400),
            ("RequestLimitExceeded", 400),
            ("InternalServerError", 500),
            ("Anything", 503),
        ] {
            assert!(
                matches!(service_error(code, status), StoreError::Unavailable(_)),
                "{code}"
            );
        }
        let timeout: SdkError<GetItemError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(matches!(classify(timeout), StoreError::Unavailable(_)));
    }

    #[test]
    fn other_failures_are_internal() {
        for code in [
            "ResourceNotFoundException",
            "ValidationException",
            "AccessDeniedException",
        ] {
            assert!(
                matches!(service_error(code, 400), StoreError::Internal(_)),
                "{code}"
            );
        }
    }
}
