//! Reads of keys: a strongly consistent GetItem on the key's primary key, a Query on the
//! organization's partition (or the `by-creator-v2` or `by-owner` index), and the organization's key count
//! (the sum of its shards).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::items::{KeyItem, stored_list, stored_meta};
use super::{
    BY_CREATOR, BY_OWNER, COUNT_SK, CREATOR_PK, DynamoStore, KEY_COUNT, KEY_PREFIX, LAST_USED,
    OWNER_PK, PK, SK, classify, corrupt, creator_pk, key_sk, org_pk, owner_pk, primary_key, s,
};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::owner::OwnerId;
use crate::store::{KeyIndex, KeyReader, Position, StoreError, Unprojected};

impl DynamoStore {
    /// Up to `max` keys of the organization past `from`, from its partition or, for one
    /// creator or owner, from the `by-creator-v2` or `by-owner` index (same sort key, so
    /// the same order).
    async fn query_run(
        &self,
        org: &OrgId,
        index: Option<&KeyIndex>,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let pk = org_pk(org);
        let index = index.map(|i| match i {
            KeyIndex::Creator(c) => (BY_CREATOR, CREATOR_PK, creator_pk(org, *c)),
            KeyIndex::Owner(o) => (BY_OWNER, OWNER_PK, owner_pk(org, o)),
        });
        let start = from.map(|id| {
            let mut key = primary_key(pk.clone(), key_sk(id));
            if let Some((_, attr, ipk)) = &index {
                key.insert((*attr).to_owned(), s(ipk.clone()));
            }
            key
        });
        let (partition_attr, partition) = match &index {
            Some((_, attr, ipk)) => (*attr, ipk.clone()),
            None => (PK, pk.clone()),
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.as_ref().map(|(name, _, _)| (*name).to_owned()))
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", partition_attr)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":prefix", s(KEY_PREFIX))
            .scan_index_forward(ascending);
        self.query_items(query, start, max, |item| {
            let item: KeyItem = serde_dynamo::from_item(item).map_err(corrupt)?;
            item.into_key()
        })
        .await
    }

    /// The store's one Query pagination: up to `max` items of `query` (from `start`, an
    /// exclusive start key, if given), each turned into what the caller lists by `item`.
    /// One Query returns all `max` items in practice: the lists ask for at most 1,001, and
    /// validated items without `meta` are small enough that 1,001 fit in DynamoDB's 1 MB
    /// response. Following `LastEvaluatedKey` serves keys with large metadata (up to 4 KiB
    /// each, so a full page may take about five responses) and items written by other
    /// tools; the request's deadline bounds it.
    pub(super) async fn query_items<T>(
        &self,
        query: QueryFluentBuilder,
        mut start: Option<HashMap<String, AttributeValue>>,
        max: usize,
        item: impl Fn(HashMap<String, AttributeValue>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::with_capacity(max.min(1024));
        while found.len() < max {
            let want = i32::try_from(max - found.len()).unwrap_or(i32::MAX);
            let out = query
                .clone()
                .limit(want)
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(self.capacity_mode())
                .send()
                .await
                .map_err(classify)?;
            self.charge(out.consumed_capacity());
            for raw in out.items.unwrap_or_default() {
                found.push(item(raw)?);
            }
            match out.last_evaluated_key {
                Some(lek) => start = Some(lek),
                None => break,
            }
        }
        Ok(found)
    }
}

impl KeyReader for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(org), key_sk(id))))
            // Strongly consistent (1 read unit, not 0.5): a key is there as soon as its
            // create answered, and its ETag is the latest version's, so an If-Match built
            // from it does not fail for a write the reader did not miss.
            .consistent_read(true)
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
    async fn read_run_in(
        &self,
        org: &OrgId,
        index: &KeyIndex,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.query_run(org, Some(index), from, ascending, max).await
    }

    /// One BatchGetItem per 100 keys, of their id, last use, owner, metadata and allow-list
    /// only: 0.5 read units per 4 KB of key item, eventually consistent as the page's Query is.
    #[tracing::instrument(skip(self, ids), fields(keys = ids.len()), err(Display))]
    async fn unprojected(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> Result<HashMap<KeyId, Unprojected>, StoreError> {
        #[derive(Deserialize)]
        struct Found {
            id: KeyId,
            #[serde(with = "chrono::serde::ts_milliseconds_option", default)]
            last_used_ms: Option<DateTime<Utc>>,
            #[serde(default)]
            owner_id: Option<OwnerId>,
            meta: Option<String>,
            #[serde(default)]
            allowed_cidrs: Option<Vec<String>>,
        }
        let keys = ids
            .iter()
            .map(|id| primary_key(org_pk(org), key_sk(*id)))
            .collect();
        let mut found = HashMap::with_capacity(ids.len());
        let names = ["id", LAST_USED, "owner_id", "meta", "allowed_cidrs"];
        for item in self.batch_get(keys, &names).await? {
            let f: Found = serde_dynamo::from_item(item).map_err(corrupt)?;
            let u = Unprojected {
                last_used: f.last_used_ms,
                owner_id: f.owner_id,
                meta: stored_meta(f.meta.as_deref())?,
                allowed_cidrs: stored_list(f.allowed_cidrs.as_deref())?,
            };
            found.insert(f.id, u);
        }
        Ok(found)
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        // Every count item of the organization in one Query: at most 17 items of a few
        // dozen bytes, 0.5 read units, as one GetItem of the single count item was.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#count", KEY_COUNT)
            .expression_attribute_values(":pk", s(org_pk(org)))
            .expression_attribute_values(":prefix", s(COUNT_SK))
            .projection_expression("#count")
            .set_return_consumed_capacity(self.capacity_mode())
            .send()
            .await
            .map_err(classify)?;
        self.charge(out.consumed_capacity());
        let mut total: i64 = 0;
        for item in out.items() {
            total += match item.get(KEY_COUNT) {
                None => 0,
                Some(AttributeValue::N(n)) => n
                    .parse::<i64>()
                    .map_err(|e| StoreError::Internal(Box::new(e)))?,
                Some(_) => {
                    return Err(StoreError::Internal("the key count is not a number".into()));
                }
            };
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }
}
