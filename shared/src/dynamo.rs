//! The DynamoDB implementation of [`KeyStore`]: one table, items mapped with serde_dynamo.
//!
//! | item        | pk                | sk          |
//! | ----------- | ----------------- | ----------- |
//! | key         | `ORG#<org>`       | `KEY#<id>`  |
//! | credential  | `SECRET#<sha256>` | `SECRET`    |
//! | key count   | `ORG#<org>`       | `COUNT`     |
//!
//! A key lives in its organization's partition, so a get is one GetItem on a primary key
//! that names the organization, and a run of keys for a list page is one Query on that
//! partition (or on the `by-creator` index), with no Scan and no filter expression; a
//! filtered page reads up to four runs (see `page::budget`). The credential item copies what authentication needs (organization, key
//! id, access, state, expiry), so authenticating is one GetItem by hash; every write keeps
//! the two items in step in one transaction. Creating and deleting a key also adjust the
//! organization's key count in that transaction; its sort key lies outside `KEY#`, so lists
//! never see it.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, Delete,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, Put,
    ReturnConsumedCapacity, ScalarAttributeType, TransactWriteItem, Update,
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
/// The attribute last-use tracking writes, on key and credential items; the only one the
/// functions may update (see template.yaml).
pub const LAST_USED: &str = "last_used_ms";
/// The organization's key count item: sort key and attribute.
pub const COUNT_SK: &str = "COUNT";
pub const KEY_COUNT: &str = "key_count";
/// The global secondary index of keys by organization and creator, and its partition key
/// attribute `ORG#<org>#CREATOR#<uuid>`; its sort key is the table's `sk`, so it lists a
/// creator's keys in the same order as the partition.
pub const BY_CREATOR: &str = "by-creator";
pub const CREATOR_PK: &str = "creator_pk";
/// How many times a transaction that lost a race for the key count is retried.
const CONFLICT_RETRIES: u32 = 8;

fn millis(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(at.timestamp_millis().to_string())
}

/// The key store on a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// When set, reads ask for their consumed capacity and add it here, in thousandths of a
    /// read unit: for measuring what an operation costs.
    meter: Option<Arc<AtomicU64>>,
}

fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

fn key_sk(id: KeyId) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn creator_pk(org: &OrgId, creator: Uuid) -> String {
    format!("ORG#{org}#CREATOR#{creator}")
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
    /// The `by-creator` index's partition key.
    #[serde(default)]
    creator_pk: String,
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
    #[serde(
        with = "chrono::serde::ts_milliseconds_option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    last_used_ms: Option<DateTime<Utc>>,
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
            meter: None,
        }
    }

    /// This store, counting the read capacity its reads consume (see [`Self::read_units`]).
    pub fn metered(mut self) -> Self {
        self.meter = Some(Arc::new(AtomicU64::new(0)));
        self
    }

    /// The read units consumed since the last call, as DynamoDB reports them
    /// (ReturnConsumedCapacity=TOTAL); 0 unless [`Self::metered`].
    pub fn read_units(&self) -> f64 {
        self.meter
            .as_ref()
            .map_or(0.0, |m| m.swap(0, Ordering::Relaxed) as f64 / 1000.0)
    }

    fn capacity_mode(&self) -> Option<ReturnConsumedCapacity> {
        self.meter.as_ref().map(|_| ReturnConsumedCapacity::Total)
    }

    fn charge(&self, consumed: Option<&ConsumedCapacity>) {
        if let (Some(meter), Some(units)) = (&self.meter, consumed.and_then(|c| c.capacity_units()))
        {
            meter.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
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
        let by_creator = GlobalSecondaryIndex::builder()
            .index_name(BY_CREATOR)
            .key_schema(key(CREATOR_PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .expect("name, keys and projection are set");
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK))
            .attribute_definitions(attr(SK))
            .attribute_definitions(attr(CREATOR_PK))
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .global_secondary_indexes(by_creator)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Up to `max` keys of the organization past `from`, from its partition or, for one
    /// creator, from the `by-creator` index (same sort key, so the same order).
    async fn query_run(
        &self,
        org: &OrgId,
        creator: Option<Uuid>,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let pk = org_pk(org);
        let index_pk = creator.map(|c| creator_pk(org, c));
        let mut start = from.map(|id| {
            let mut key = primary_key(pk.clone(), key_sk(id));
            if let Some(ipk) = &index_pk {
                key.insert(CREATOR_PK.to_owned(), s(ipk.clone()));
            }
            key
        });
        let (partition_attr, partition) = match &index_pk {
            Some(ipk) => (CREATOR_PK, ipk.clone()),
            None => (PK, pk.clone()),
        };
        let mut keys = Vec::with_capacity(max);
        // One Query returns all `max` items: the list pages ask for at most 1,001, and
        // validated keys are small enough that 1,001 fit in DynamoDB's 1 MB response. The
        // loop only guards against items written by other tools, which could make DynamoDB
        // cut a response short; the request's deadline bounds it.
        loop {
            let want = i32::try_from(max - keys.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index_pk.as_ref().map(|_| BY_CREATOR.to_owned()))
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", partition_attr)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(partition.clone()))
                .expression_attribute_values(":prefix", s(KEY_PREFIX))
                .scan_index_forward(ascending)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(self.capacity_mode())
                .send()
                .await
                .map_err(classify)?;
            self.charge(out.consumed_capacity());
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

    /// Runs a transaction; one that lost a race with another for the same items (the
    /// organization's key count) is retried with a short random backoff.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let reasons: Vec<String> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => vec![],
            };
            if reasons.iter().any(|c| c == "ConditionalCheckFailed") {
                return Err(TransactFailure::Condition);
            }
            let conflict = reasons.iter().any(|c| c == "TransactionConflict")
                || matches!(
                    err.as_service_error(),
                    Some(TransactWriteItemsError::TransactionInProgressException(_))
                );
            if conflict && attempt < CONFLICT_RETRIES {
                attempt += 1;
                let jitter = u64::from(getrandom::u32().unwrap_or(0) % 20);
                let backoff = 5 * u64::from(attempt) + jitter;
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                continue;
            }
            return Err(TransactFailure::Store(classify(err)));
        }
    }

    /// The update of the organization's key count by `delta`, for a transaction.
    fn count_update(&self, org: &OrgId, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let update = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(org_pk(org), COUNT_SK.to_owned())))
                .update_expression("ADD #count :delta")
                .expression_attribute_names("#count", KEY_COUNT)
                .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// Why a transaction did not apply.
enum TransactFailure {
    /// One of its conditions failed: the item it expected is gone (or already there).
    Condition,
    Store(StoreError),
}

impl From<TransactFailure> for StoreError {
    fn from(value: TransactFailure) -> Self {
        match value {
            TransactFailure::Condition => {
                StoreError::Internal("a transaction's condition failed".into())
            }
            TransactFailure::Store(e) => e,
        }
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
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.charge(out.consumed_capacity());
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
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.charge(out.consumed_capacity());
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
                last_used: c.last_used_ms,
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
        self.query_run(org, None, from, ascending, max).await
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn read_run_by_creator(
        &self,
        org: &OrgId,
        creator: Uuid,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.query_run(org, Some(creator), from, ascending, max)
            .await
    }

    #[tracing::instrument(skip(self, hash), err(Display))]
    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Two independent conditional writes, not a transaction: each item is stamped at
        // most once a minute, and a lost race only means the other request stamped it. No
        // retries: a throttled stamp fails at once (the caller backs off, see `usage`)
        // instead of sleeping, and spends none of the client's retry quota that reads need.
        let stamp = |key| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("SET #used = :at")
                .condition_expression(
                    "attribute_exists(#pk) AND (attribute_not_exists(#used) OR #used < :stale)",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#used", LAST_USED)
                .expression_attribute_values(":at", millis(at))
                .expression_attribute_values(":stale", millis(stale_before))
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Builder::new()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
        };
        let (on_key, on_credential) = tokio::join!(
            stamp(primary_key(org_pk(org), key_sk(id))),
            stamp(primary_key(credential_pk(hash), CREDENTIAL_SK.to_owned())),
        );
        let mut wrote = false;
        for outcome in [on_key.map(|_| ()), on_credential.map(|_| ())] {
            match outcome {
                Ok(()) => wrote = true,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(wrote)
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
            last_used_ms: key.last_used,
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
        self.transact(vec![
            put(key_item)?,
            put(credential)?,
            self.count_update(&key.org, 1)?,
        ])
        .await
        .map_err(StoreError::from)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), COUNT_SK.to_owned())))
            .projection_expression("#count")
            .expression_attribute_names("#count", KEY_COUNT)
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.charge(out.consumed_capacity());
        match out.item.as_ref().and_then(|i| i.get(KEY_COUNT)) {
            None => Ok(0),
            Some(AttributeValue::N(n)) => n
                .parse::<i64>()
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(|e| StoreError::Internal(Box::new(e))),
            Some(_) => Err(StoreError::Internal("the key count is not a number".into())),
        }
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
        match self
            .transact(vec![
                TransactWriteItem::builder().update(on_key).build(),
                TransactWriteItem::builder().update(on_credential).build(),
            ])
            .await
        {
            Ok(()) => Ok(true),
            // Deleted since it was read.
            Err(TransactFailure::Condition) => Ok(false),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn delete_key(&self, org: &OrgId, id: KeyId) -> Result<bool, StoreError> {
        let Some(item) = self.key_item(org, id).await? else {
            return Ok(false);
        };
        let hash = SecretHash::from_stored(item.secret_hash);
        // The key must still be there, so that two deletes racing each other count once.
        let delete = |key| {
            built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(#pk)")
                    .expression_attribute_names("#pk", PK)
                    .build(),
            )
            .map(|d| TransactWriteItem::builder().delete(d).build())
        };
        match self
            .transact(vec![
                delete(primary_key(item.pk, item.sk))?,
                delete(primary_key(credential_pk(&hash), CREDENTIAL_SK.to_owned()))?,
                self.count_update(org, -1)?,
            ])
            .await
        {
            Ok(()) => Ok(true),
            Err(TransactFailure::Condition) => Ok(false),
            Err(TransactFailure::Store(e)) => Err(e),
        }
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
