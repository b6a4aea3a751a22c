//! Reads of the audit trail: a consistent Query on the organization's event partition, or
//! one on a key's partition of the `by-key` index (eventually consistent, as every index
//! is), over a range of sort keys (event ids are UUIDv7, so a time range is a key range).

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::EventItem;
use super::{
    BY_KEY, DynamoStore, KEY_PK, PK, SK, classify, corrupt, event_pk, event_sk, key_events_pk, s,
};
use crate::audit::Event;
use crate::key::{KeyId, OrgId};
use crate::store::{AuditReader, EventRange, StoreError};

impl AuditReader for DynamoStore {
    #[tracing::instrument(skip(self), err(Display))]
    async fn read_events(
        &self,
        org: &OrgId,
        key: Option<KeyId>,
        range: EventRange,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if range.is_empty() || max == 0 {
            return Ok(Vec::new());
        }
        let (index, partition_attr, partition) = match key {
            Some(k) => (Some(BY_KEY.to_owned()), KEY_PK, key_events_pk(org, k)),
            None => (None, PK, event_pk(org)),
        };
        let mut events = Vec::with_capacity(max.min(1024));
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        loop {
            let want = i32::try_from(max - events.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.clone())
                // The organization's events are read consistently: an event committed before
                // the read is listed (twice the read units; see README, "Capacity"). An index
                // cannot be read so: one key's events lag by its propagation delay.
                .consistent_read(index.is_none())
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
                .expression_attribute_names("#pk", partition_attr)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(partition.clone()))
                .expression_attribute_values(":first", s(event_sk(range.first)))
                .expression_attribute_values(":last", s(event_sk(range.last)))
                .scan_index_forward(ascending)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .set_return_consumed_capacity(self.capacity_mode())
                .send()
                .await
                .map_err(classify)?;
            self.charge(out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                let item: EventItem = serde_dynamo::from_item(item).map_err(corrupt)?;
                events.push(item.into_event()?);
            }
            match out.last_evaluated_key {
                Some(lek) if events.len() < max => start = Some(lek),
                _ => break,
            }
        }
        Ok(events)
    }
}
