//! The expiry notices on the table: a Query of one `by-expiry` partition (eventually
//! consistent, as every index is), and the notice's transaction, whose conditions on the key
//! item make it apply once per key and expiry whatever the index showed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, NaiveDate, Utc};

use super::items::{EventItem, item};
use super::transact::TransactFailure;
use super::{
    BY_EXPIRY, DynamoStore, EXPIRES_MS, EXPIRY_PK, EXPIRY_SHARDS, PK, SK, built, corrupt, event_pk,
    event_sk, expiry_partition, expiry_pk, key_sk, millis, org_pk, primary_key, s,
};
use crate::audit::{Action, Event};
use crate::key::{KeyId, KeyState, OrgId};
use crate::store::{Due, ExpiryStore, Phase, StoreError};

impl ExpiryStore for DynamoStore {
    fn shards(&self) -> u32 {
        EXPIRY_SHARDS
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn listed(
        &self,
        phase: Phase,
        day: NaiveDate,
        shard: u32,
        until: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<Due>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let partition = expiry_partition(phase, day, shard);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_EXPIRY)
            .key_condition_expression("#pk = :pk AND #expires <= :until")
            .expression_attribute_names("#pk", EXPIRY_PK)
            .expression_attribute_names("#expires", EXPIRES_MS)
            .expression_attribute_values(":pk", s(partition.clone()))
            .expression_attribute_values(":until", millis(until));
        self.query_items(query, None, max, |item| due(item, phase, &partition))
            .await
    }

    #[tracing::instrument(skip_all, fields(org = %due.org, key = %due.key_id), err(Display))]
    async fn notify(&self, due: &Due, event: &Event) -> Result<bool, StoreError> {
        let items = vec![
            self.notice_update(due, event.action)?,
            self.put_new(item(EventItem::new(event)?)?)?,
        ];
        let witness = primary_key(event_pk(&event.org), event_sk(event.id));
        match self.transact(items, &witness).await {
            Ok(()) => Ok(true),
            Err(TransactFailure::Condition(_)) => Ok(false),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }
}

/// A listed key as the index holds it: the key item's primary key and its expiry.
fn due(
    item: HashMap<String, AttributeValue>,
    phase: Phase,
    partition: &str,
) -> Result<Due, StoreError> {
    let (org, key_id) = key_of(&item)?;
    let expires = item
        .get(EXPIRES_MS)
        .map(|v| serde_dynamo::from_attribute_value::<_, i64>(v.clone()))
        .transpose()
        .map_err(corrupt)?
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| StoreError::Internal("a by-expiry item without its expiry".into()))?;
    Ok(Due {
        org,
        key_id,
        expires,
        phase,
        listed: partition.to_owned(),
    })
}

/// The organization and id of a key item, from its primary key.
fn key_of(item: &HashMap<String, AttributeValue>) -> Result<(OrgId, KeyId), StoreError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.as_str()),
        _ => Err(StoreError::Internal(
            format!("a key item without {name}").into(),
        )),
    };
    let org: OrgId = text(PK)?
        .strip_prefix("ORG#")
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| StoreError::Internal("a key item of no organization".into()))?;
    let key_id: KeyId = text(SK)?
        .strip_prefix("KEY#")
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| StoreError::Internal("a key item of no key".into()))?;
    Ok((org, key_id))
}

impl DynamoStore {
    /// The key item's update for the notice `action`: its mark set to the expiry, and the
    /// key listed under its next notice (none after `key.expired`), on condition that it is
    /// still active, expiring then, listed where it was found, and without this notice for
    /// this expiry. It names nothing else of the key: not its version, which clients use
    /// as an entity tag, for a notice changes nothing they set.
    fn notice_update(&self, due: &Due, action: Action) -> Result<TransactWriteItem, StoreError> {
        let mark = match action {
            Action::Expiring => "expiring_notice_ms",
            _ => "expired_notice_ms",
        };
        let next = match action {
            Action::Expiring => format!("SET {mark} = :expires, {EXPIRY_PK} = :next",),
            _ => format!("SET {mark} = :expires REMOVE {EXPIRY_PK}"),
        };
        let active = serde_dynamo::to_attribute_value(KeyState::Active).map_err(corrupt)?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(primary_key(org_pk(&due.org), key_sk(due.key_id))))
            .update_expression(next)
            .condition_expression(format!(
                "{EXPIRY_PK} = :listed AND {EXPIRES_MS} = :expires AND #state = :active \
                 AND (attribute_not_exists({mark}) OR {mark} <> :expires)"
            ))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":listed", s(due.listed.clone()))
            .expression_attribute_values(":expires", millis(due.expires))
            .expression_attribute_values(":active", active);
        if action == Action::Expiring {
            let listed = expiry_pk(Phase::Expired, due.expires, due.key_id);
            update = update.expression_attribute_values(":next", s(listed));
        }
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }
}

impl DynamoStore {
    /// The keys of the table that have an expiry, are active, are not in the `by-expiry`
    /// index and have not had `key.expired` for their expiry: those written before it
    /// existed (`apikeys backfill-expiry`). One Scan of the
    /// whole table, in pages: an operator's one-off, never a request's.
    pub async fn unlisted_expiring(&self) -> Result<Vec<(OrgId, KeyId)>, StoreError> {
        let active: AttributeValue =
            serde_dynamo::to_attribute_value(KeyState::Active).map_err(corrupt)?;
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(format!(
                    "begins_with({SK}, :key) AND attribute_exists({EXPIRES_MS}) \
                     AND attribute_not_exists({EXPIRY_PK}) AND #state = :active \
                     AND (attribute_not_exists(expired_notice_ms) \
                     OR expired_notice_ms <> {EXPIRES_MS})"
                ))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":key", s("KEY#"))
                .expression_attribute_values(":active", active.clone())
                .projection_expression(format!("{PK}, {SK}"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(super::classify)?;
            for item in out.items.unwrap_or_default() {
                found.push(key_of(&item)?);
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(found),
            }
        }
    }
}
