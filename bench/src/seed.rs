//! Seeding an organization with many keys, straight into the table with BatchWriteItem.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apikeys::key::{Access, KeyId, OrgId};
use apikeys::quota::Quota;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::NewKey;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{TimeZone, Utc};

use crate::BoxError;

/// Writers at once while seeding, each sending BatchWriteItem requests of 25 items.
const SEED_CONCURRENCY: usize = 16;

type Item = HashMap<String, AttributeValue>;

/// The secret `seed_org` gives its `i`-th key of `salt`.
pub fn seeded_secret(i: usize, salt: u8) -> Secret {
    let mut bytes = [salt; 24];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Secret::from_random(bytes)
}

/// Seeds `n` keys into `org` with BatchWriteItem, made a millisecond apart from `year`'s
/// first day; returns their ids in ascending order (the `i`-th has `seeded_secret(i, salt)`).
pub async fn seed_org(
    store: &DynamoStore,
    org: &OrgId,
    n: usize,
    salt: u8,
    year: i32,
) -> Result<Vec<KeyId>, BoxError> {
    seed_metered(store, org, (n, salt, year), &Quota::default()).await
}

/// As [`seed_org`], every key with the credits and rate limits of `quota`.
pub async fn seed_metered(
    store: &DynamoStore,
    org: &OrgId,
    (n, salt, year): (usize, u8, i32),
    quota: &Quota,
) -> Result<Vec<KeyId>, BoxError> {
    seed_owned(store, org, (n, salt, year), quota, None).await
}

/// As [`seed_metered`], and with `owner`, every key the owner of its own id, an owner with
/// the credits and rate limits of `owner` (so that a floor that puts another key's id in
/// place of one key's names that key's owner too).
pub async fn seed_owned(
    store: &DynamoStore,
    org: &OrgId,
    (n, salt, year): (usize, u8, i32),
    quota: &Quota,
    owner: Option<&Quota>,
) -> Result<Vec<KeyId>, BoxError> {
    let (items, mut ids) = items(org, (n, salt, year), quota, owner)?;
    let batches: Vec<Vec<_>> = items.chunks(25).map(|c| c.to_vec()).collect();
    let queue = Arc::new(Mutex::new(batches));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SEED_CONCURRENCY {
        let queue = queue.clone();
        let client = store.client().clone();
        let table = store.table().to_owned();
        set.spawn(async move {
            loop {
                let batch = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(batch) = batch else {
                    return Ok::<(), BoxError>(());
                };
                write_batch(&client, &table, batch).await?;
            }
        });
    }
    for r in set.join_all().await {
        r?;
    }
    ids.sort();
    Ok(ids)
}

/// The key and credential items of `seed_org`'s keys, and the keys' ids.
fn items(
    org: &OrgId,
    (n, salt, year): (usize, u8, i32),
    quota: &Quota,
    owner: Option<&Quota>,
) -> Result<(Vec<Item>, Vec<KeyId>), BoxError> {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .ok_or("date")?;
    let mut items = Vec::with_capacity(2 * n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let secret = seeded_secret(i, salt);
        let id = KeyId::new_at(start + chrono::Duration::milliseconds(i as i64));
        let key = NewKey {
            org: org.clone(),
            name: format!("benchmark key {i:06}"),
            creator_id: uuid::Uuid::from_u128(0x5b1f6a52_7e3c_4d1a_9f0e_2c8b7a6d5e40),
            access: Access::Unrestricted,
            expires: None,
            id: Some(id),
            quota: quota.clone(),
            owner_id: owner
                .map(|_| id.to_string().parse::<apikeys::owner::OwnerId>())
                .transpose()?,
            meta: None,
            allowed_cidrs: None,
        }
        .into_record(&secret, start)?;
        if let (Some(rules), Some(owner_id)) = (owner, &key.owner_id) {
            let owner = apikeys::owner::Owner {
                org: org.clone(),
                id: owner_id.clone(),
                quota: rules.clone(),
                version: 1,
                updated: start,
            };
            items.push(apikeys::store::dynamo::owner_item(&owner, None)?);
        }
        items.push(apikeys::store::dynamo::key_item(&key, &secret.hash())?);
        items.push(apikeys::store::dynamo::credential_item(
            &key,
            &secret.hash(),
        )?);
        ids.push(id);
    }
    Ok((items, ids))
}

/// Writes one batch, again with what DynamoDB left unprocessed until nothing is.
async fn write_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    batch: Vec<Item>,
) -> Result<(), BoxError> {
    let mut writes: Vec<WriteRequest> = batch
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
        })
        .collect::<Result<_, _>>()?;
    for attempt in 0.. {
        if writes.is_empty() {
            break;
        }
        if attempt > 20 {
            return Err("BatchWriteItem kept leaving items unprocessed".into());
        }
        let out = client
            .batch_write_item()
            .request_items(table, writes)
            .send()
            .await?;
        writes = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    Ok(())
}
