//! The DynamoDB implementation of every storage role: one table, items mapped with
//! serde_dynamo (`items`); reads in `read`, the credential lookup in `credential`, writes in
//! `write`, the audit trail in `audit`, the batched lookup of secret scanning reports in
//! `leak`.
//!
//! | item             | pk                        | sk              | index key                   |
//! | ---------------- | ------------------------- | --------------- | --------------------------- |
//! | key              | `ORG#<org>`               | `KEY#<id>`      | by-creator-v2: `creator_pk`; by-owner: `owner_pk`; by-expiry: `expiry_pk`, `expires_ms` |
//! | credential       | `SECRET#<sha256>`         | `SECRET`        |                             |
//! | key count shard  | `ORG#<org>`               | `COUNT#<nn>`    |                             |
//! | audit event      | `ORG#<org>#EVENTS`        | `EVENT#<id>`    | by-key: `key_pk` (`ORG#<org>#KEY#<key id>`) |
//! | idempotency      | `IDEM#<sha256>`           | `IDEM`          |                             |
//!
//! A key lives in its organization's partition, so a get is one GetItem on a primary key
//! that names the organization, and a run of keys for a list page is one Query on that
//! partition (or on the `by-creator-v2` index), with no Scan and no filter expression; a
//! filtered page reads up to four runs (see `page::budget`). The credential item copies what authentication needs (organization, key
//! id, access, state, expiry), so authenticating is one GetItem by hash; every write keeps
//! the items in step in one transaction. Creating and deleting a key also adjust the
//! organization's key count in that transaction, on one of [`COUNT_SHARDS`] items chosen at
//! random, so that concurrent writes of one organization seldom meet on one item; the count
//! is their sum, one Query. Their sort keys lie outside `KEY#`, so lists never see them.
//!
//! Events live in a partition of their own per organization, sorted by their UUIDv7 id, so
//! a page of them is one Query and a time range a range of sort keys; the `by-key` index
//! lists one key's events the same way, after the key is gone too. Events, idempotency
//! records and the credentials of rolled-out secrets carry `purge_at` (epoch seconds), the
//! table's TTL attribute.
//!
//! A key with an expiry, while active, is listed by the sparse `by-expiry` index under the
//! expiry notice it has still to get (`expiry_pk` = `EXPIRING#<day>#<shard>` or
//! `EXPIRED#<day>#<shard>`, the UTC day it expires), sorted by `expires_ms`: the scheduled
//! notices read only the keys that are due (see `crate::expiry`).

mod audit;
mod credential;
mod expiry;
mod items;
mod leak;
mod owner;
mod read;
mod spend;
mod transact;
mod write;

pub use audit::{event_image, event_of_image};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConsumedCapacity, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, ReturnConsumedCapacity,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::EventId;
use crate::key::{ApiKey, KeyId, OrgId};
use crate::owner::OwnerId;
use crate::secret::SecretHash;
use crate::store::StoreError;
use items::KeyItem;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
const KEY_PREFIX: &str = "KEY#";
const CREDENTIAL_SK: &str = "SECRET";
/// The attribute last-use tracking writes, on key and credential items; the only one the
/// functions may update (see template.yaml).
pub const LAST_USED: &str = "last_used_ms";
/// The organization's key count: the sort key prefix of its items and their attribute. The
/// count is the sum of `key_count` over the items of the organization's partition whose
/// sort key begins with `COUNT`: the shards `COUNT#00`… that writes add to, and the item
/// `COUNT` itself, which bulk loaders set (and earlier versions kept the whole count in).
pub const COUNT_SK: &str = "COUNT";
pub const KEY_COUNT: &str = "key_count";
/// How many items a create or delete spreads its count update over. Two concurrent
/// transactions on one item conflict (one is cancelled and retried); on one of 16 at random,
/// two concurrent writes of one organization meet with a chance of 1 in 16.
pub const COUNT_SHARDS: u32 = 16;
/// The global secondary index of keys by organization and creator, and its partition key
/// attribute `ORG#<org>#CREATOR#<uuid>`; its sort key is the table's `sk`, so it lists a
/// creator's keys in the same order as the partition. It carries only
/// [`CREATOR_INDEX_ATTRIBUTES`]: not [`LAST_USED`], so that last-use stamps never write to
/// it, nor the secrets' hashes, which no list shows. (`-v2`: the first `by-creator`
/// projected every attribute, and an index's projection cannot change in place; see
/// docs/deploy.md, "Upgrading".)
pub const BY_CREATOR: &str = "by-creator-v2";
pub const CREATOR_PK: &str = "creator_pk";
/// What the `by-creator` index carries besides the keys (`pk`, `sk`, `creator_pk`): what a
/// list shows and filters on, but the last use, which a page reads from the table.
pub const CREATOR_INDEX_ATTRIBUTES: [&str; 13] = [
    "id",
    "org",
    "name",
    "created_ms",
    "updated_ms",
    "expires_ms",
    "creator_id",
    "restricted",
    "permissions",
    "state",
    "last_four",
    "version",
    "disabled_reason",
];
/// The global secondary index of keys by organization and owner, and its partition key
/// attribute `ORG#<org>#OWNER#<owner id>`, sorted by the table's `sk` like `by-creator-v2`.
/// Sparse: only keys with an owner carry `owner_pk`, so keys without one cost it nothing.
/// It carries what `by-creator-v2` carries ([`CREATOR_INDEX_ATTRIBUTES`]), plus the owner.
pub const BY_OWNER: &str = "by-owner";
pub const OWNER_PK: &str = "owner_pk";
/// The global secondary index of audit events by key, and its partition key attribute
/// `ORG#<org>#KEY#<id>`; its sort key is the table's `sk` (`EVENT#<event id>`).
pub const BY_KEY: &str = "by-key";
pub const KEY_PK: &str = "key_pk";
/// The sparse global secondary index of keys by the expiry notice they have still to get,
/// its partition key attribute (see [`expiry_pk`]) and its sort key, the key's expiry (a
/// number: epoch milliseconds). It carries the keys only: the notice's transaction checks
/// the key item itself.
pub const BY_EXPIRY: &str = "by-expiry";
pub const EXPIRY_PK: &str = "expiry_pk";
pub const EXPIRES_MS: &str = "expires_ms";
/// How many partitions each day's list of a notice is split into, by key id. The index
/// partition of a day takes every write of a key expiring that day (its create, each
/// change, each notice); DynamoDB serves about 1,000 writes a second per partition key, so
/// one partition a day would throttle a bulk load of keys that all expire on one date (and,
/// through the index, the table's writes). 16 raise that to about 16,000 a second, as the
/// key count's 16 shards do, for 16 Queries per day listed per run (docs/design.md).
pub const EXPIRY_SHARDS: u32 = 16;
/// The table's TTL attribute: when DynamoDB may delete the item, in epoch seconds.
pub const PURGE_AT: &str = "purge_at";
const EVENT_PREFIX: &str = "EVENT#";
const IDEMPOTENCY_SK: &str = "IDEM";
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

fn count_sk(shard: u32) -> String {
    format!("{COUNT_SK}#{shard:02}")
}

fn key_sk(id: KeyId) -> String {
    format!("{KEY_PREFIX}{id}")
}

fn creator_pk(org: &OrgId, creator: Uuid) -> String {
    format!("ORG#{org}#CREATOR#{creator}")
}

fn owner_pk(org: &OrgId, owner: &OwnerId) -> String {
    format!("ORG#{org}#OWNER#{owner}")
}

fn event_pk(org: &OrgId) -> String {
    format!("ORG#{org}#EVENTS")
}

fn event_sk(id: EventId) -> String {
    format!("{EVENT_PREFIX}{id}")
}

fn key_events_pk(org: &OrgId, key: KeyId) -> String {
    format!("ORG#{org}#KEY#{key}")
}

/// The `by-expiry` partition of the keys expiring on `day` whose next notice is `phase`, in
/// `shard`.
fn expiry_partition(phase: crate::store::Phase, day: chrono::NaiveDate, shard: u32) -> String {
    let prefix = match phase {
        crate::store::Phase::Expiring => "EXPIRING",
        crate::store::Phase::Expired => "EXPIRED",
    };
    format!("{prefix}#{}#{shard:02}", day.format("%Y-%m-%d"))
}

/// Where the key `id`, expiring at `expires`, is listed for its next notice `phase`: its
/// day's partition, in the shard its id's random last bits choose.
fn expiry_pk(phase: crate::store::Phase, expires: DateTime<Utc>, id: KeyId) -> String {
    let shard = (id.as_uuid().as_u128() % u128::from(EXPIRY_SHARDS)) as u32;
    expiry_partition(phase, expires.date_naive(), shard)
}

fn idempotency_pk(id: &str) -> String {
    format!("IDEM#{id}")
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

/// The key item for `key` as this store writes it, for bulk loaders (the benchmark seeds
/// organizations of 100,000 keys with BatchWriteItem). It carries no credential item: see
/// [`credential_item`].
pub fn key_item(
    key: &ApiKey,
    hash: &SecretHash,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(KeyItem::new(key, hash)).map_err(corrupt)
}

/// The credential item of `key`'s only secret `hash`, as this store writes it, for bulk
/// loaders beside [`key_item`]: with it, the key authenticates, verifies and can be changed.
pub fn credential_item(
    key: &ApiKey,
    hash: &SecretHash,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let stored = crate::store::StoredKey {
        key: key.clone(),
        hash: hash.clone(),
        previous: None,
        leaked: Vec::new(),
        notified: Default::default(),
    };
    serde_dynamo::to_item(items::CredentialItem::of(&stored, hash)).map_err(corrupt)
}

/// The item of `owner`, its counters new (credits refilling from the period `period_ms`),
/// as this store writes it: for bulk loaders and tests, until owners are written through
/// the API.
pub fn owner_item(
    owner: &crate::owner::Owner,
    period_ms: Option<i64>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(owner::OwnerItem::new(owner, period_ms)).map_err(corrupt)
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
    /// The item at `(pk, sk)`, read strongly consistently (what a write or a spend reads).
    pub(super) async fn consistent_item(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

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

    /// Creates the table with this store's key schema, on-demand, with no stream.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        self.create_table_as(None).await
    }

    /// Creates the table as [`create_table`](Self::create_table) does, with the stream of
    /// template.yaml's StreamSpecification: `make run`'s table, which its publisher reads.
    pub async fn create_table_with_stream(&self) -> Result<(), StoreError> {
        self.create_table_as(Some(stream_of_images())).await
    }

    async fn create_table_as(&self, stream: Option<StreamSpecification>) -> Result<(), StoreError> {
        let attr = |name: &str| attribute(name, ScalarAttributeType::S);
        let creator_attributes = CREATOR_INDEX_ATTRIBUTES.map(str::to_owned).to_vec();
        let ([expiry_hash, expiry_range], by_expiry) = expiry_index()?;
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK))
            .attribute_definitions(attr(SK))
            .attribute_definitions(attr(CREATOR_PK))
            .attribute_definitions(attr(KEY_PK))
            .attribute_definitions(expiry_hash)
            .attribute_definitions(expiry_range)
            .attribute_definitions(attr(OWNER_PK))
            .key_schema(key(PK, KeyType::Hash))
            .key_schema(key(SK, KeyType::Range))
            .global_secondary_indexes(index(BY_CREATOR, CREATOR_PK, Some(creator_attributes)))
            .global_secondary_indexes(index(BY_KEY, KEY_PK, None))
            .global_secondary_indexes(by_expiry)
            .global_secondary_indexes(index(BY_OWNER, OWNER_PK, Some(owner_index_attributes())))
            .set_stream_specification(stream)
            .send()
            .await
            .map_err(classify)?;
        self.enable_ttl().await
    }

    /// The ARN of the table's stream, if it has one.
    pub async fn stream_arn(&self) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(classify)?;
        let table = out.table();
        let enabled = table
            .and_then(|t| t.stream_specification())
            .is_some_and(|s| s.stream_enabled());
        Ok(table
            .and_then(|t| t.latest_stream_arn())
            .filter(|_| enabled)
            .map(str::to_owned))
    }

    /// Turns on the table's stream of old and new images, as template.yaml's StreamSpecification
    /// does. [`create_table`](Self::create_table) makes no stream, so that the tests' many
    /// tables cost DynamoDB Local none: the local publisher (`publish::stream`) turns it on
    /// where it reads one (a test's table, or one `make run` kept from before it had one),
    /// and sees the writes from then on.
    pub async fn enable_stream(&self) -> Result<(), StoreError> {
        self.client
            .update_table()
            .table_name(&self.table)
            .stream_specification(stream_of_images())
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Turns on the TTL of [`PURGE_AT`], as template.yaml's TimeToLiveSpecification does.
    pub async fn enable_ttl(&self) -> Result<(), StoreError> {
        let spec = built(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(PURGE_AT)
                .build(),
        )?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// The update of the organization's key count by `delta`, on a shard chosen at random,
    /// for a transaction. A shard may go below 0; the sum of the shards is the count.
    fn count_update(&self, org: &OrgId, delta: i64) -> Result<TransactWriteItem, StoreError> {
        let shard = getrandom::u32().unwrap_or(0) % COUNT_SHARDS;
        let update = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(primary_key(org_pk(org), count_sk(shard))))
                .update_expression("ADD #count :delta")
                .expression_attribute_names("#count", KEY_COUNT)
                .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// A stream of each changed item's old and new images: the publisher reads an inserted
/// event's new image, and a key item's credits before and after a change.
fn stream_of_images() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .expect("enabled is set")
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

/// The `by-expiry` index and the definitions of its two key attributes.
fn expiry_index() -> Result<([AttributeDefinition; 2], GlobalSecondaryIndex), StoreError> {
    let index = GlobalSecondaryIndex::builder()
        .index_name(BY_EXPIRY)
        .key_schema(key(EXPIRY_PK, KeyType::Hash))
        .key_schema(key(EXPIRES_MS, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build();
    let attributes = [
        attribute(EXPIRY_PK, ScalarAttributeType::S),
        attribute(EXPIRES_MS, ScalarAttributeType::N),
    ];
    Ok((attributes, built(index)?))
}

/// A global secondary index on `partition` and the table's sort key, carrying `carried`
/// (INCLUDE) or, for `None`, every attribute (ALL).
fn index(name: &str, partition: &str, carried: Option<Vec<String>>) -> GlobalSecondaryIndex {
    let projection = match carried {
        Some(list) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(list)),
        None => Projection::builder().projection_type(ProjectionType::All),
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(partition, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .projection(projection.build())
        .build()
        .expect("name, keys and projection are set")
}

/// What the `by-owner` index carries besides its keys: `by-creator-v2`'s, and `owner_id`.
pub fn owner_index_attributes() -> Vec<String> {
    CREATOR_INDEX_ATTRIBUTES
        .iter()
        .chain(&["owner_id"])
        .map(|a| (*a).to_owned())
        .collect()
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(Box::new(e)))
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
