//! Reads of the audit trail: a consistent Query on the organization's event partition, or
//! one on a key's partition of the `by-key` index (eventually consistent, as every index
//! is), over a range of sort keys (event ids are UUIDv7, so a time range is a key range).

use super::items::EventItem;
use super::{BY_KEY, DynamoStore, KEY_PK, PK, SK, corrupt, event_pk, event_sk, key_events_pk, s};
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
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.clone())
            // The organization's events are read consistently: an event committed before
            // the read is listed (twice the read units; see bench/README.md, "Work per
            // request"). An index cannot be read so: one key's events lag by its
            // propagation delay.
            .consistent_read(index.is_none())
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :first AND :last")
            .expression_attribute_names("#pk", partition_attr)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":first", s(event_sk(range.first)))
            .expression_attribute_values(":last", s(event_sk(range.last)))
            .scan_index_forward(ascending);
        self.query_items(query, None, max, |item| {
            let item: EventItem = serde_dynamo::from_item(item).map_err(corrupt)?;
            item.into_event()
        })
        .await
    }
}

/// The audit event an item image from the table's stream holds, or `None` when the image is
/// of another item (a key, a credential, a count shard, an idempotency record).
pub fn event_of_image(image: serde_dynamo::Item) -> Result<Option<Event>, StoreError> {
    let is_event = matches!(
        image.get(SK),
        Some(serde_dynamo::AttributeValue::S(sk)) if sk.starts_with(super::EVENT_PREFIX)
    );
    if !is_event {
        return Ok(None);
    }
    let item: EventItem = serde_dynamo::from_item(image).map_err(corrupt)?;
    item.into_event().map(Some)
}

/// The item image of `event` as the table's stream shows an inserted one: what
/// [`event_of_image`] reads back (for tests of the publisher).
pub fn event_image(event: &Event) -> Result<serde_dynamo::Item, StoreError> {
    serde_dynamo::to_item(EventItem::new(event)?).map_err(corrupt)
}
