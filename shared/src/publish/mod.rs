//! Publishing the audit trail to EventBridge. The table's stream hands each batch of changed
//! items to [`publish`], which keeps the inserted audit events, turns each into the event as
//! `GET …/events` shows it with its organization ([`entry`]), adds the credits notices of
//! the modified key items ([`credits`]), and puts them on the bus in stream order, at most
//! [`MAX_ENTRIES`] a call, retrying the entries the bus refused.
//!
//! What still fails is reported as the batch's first failure: Lambda then retries the batch
//! from that record (so at least once, in order per key: an organization's events share one
//! partition, hence one shard), and after its retries sends the batch to the dead-letter queue.

pub mod bus;
pub mod credits;
pub mod entry;
#[cfg(feature = "local-stream")]
pub mod stream;

use std::time::Duration;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::store::dynamo::event_of_image;
pub use bus::{Bus, BusError, EventBridgeBus};
pub use entry::{Entry, SOURCE, entry};

/// PutEvents takes at most ten entries a call.
pub const MAX_ENTRIES: usize = 10;
/// Calls per group of entries: the first, and the retries of the entries it refused.
pub const ATTEMPTS: u32 = 3;
/// The function's timeout (template.yaml's): a batch of up to 100 records is up to ten
/// groups, each up to [`ATTEMPTS`] calls that the SDK may itself retry.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The wait before the first retry; it doubles with each one.
const BACKOFF: Duration = Duration::from_millis(100);

/// What one batch of stream records came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The events put on the bus.
    pub published: usize,
    /// The sequence number of the first record not published, if any: Lambda retries from it.
    pub failed_from: Option<String>,
}

impl Outcome {
    /// Lambda's answer for the batch (`ReportBatchItemFailures`): the first failed record.
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        if let Some(seq) = &self.failed_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.clone());
            response.batch_item_failures.push(failure);
        }
        response
    }
}

/// The sequence number of a record (Lambda's item identifier).
fn sequence(record: &EventRecord) -> String {
    record.change.sequence_number.clone().unwrap_or_default()
}

/// The entries of one record: its inserted audit event, or a modified key's credits
/// notices ([`credits`]), or none.
fn record_entries(record: &EventRecord) -> Result<Vec<Entry>, String> {
    match record.event_name.as_str() {
        "INSERT" => event_of_image(record.change.new_image.clone())
            .map_err(|e| e.to_string())?
            .map(|e| entry(&e).map_err(|e| e.to_string()))
            .into_iter()
            .collect(),
        "MODIFY" => credits::entries(record),
        _ => Ok(Vec::new()),
    }
}

/// The entries of `records`, each with its record's sequence number, in stream order; and
/// the sequence number of the first record that cannot be read, where the batch must stop.
fn entries(records: &[EventRecord]) -> (Vec<(String, Entry)>, Option<String>) {
    let mut out = Vec::new();
    for record in records {
        match record_entries(record) {
            Ok(entries) => out.extend(entries.into_iter().map(|e| (sequence(record), e))),
            Err(error) => {
                tracing::error!(%error, sequence = %sequence(record), "unreadable audit event");
                return (out, Some(sequence(record)));
            }
        }
    }
    (out, None)
}

/// Publishes the audit events among `records` (see the module docs).
#[tracing::instrument(skip_all, fields(records = records.len()))]
pub async fn publish(bus: &impl Bus, records: &[EventRecord]) -> Outcome {
    let (entries, unreadable) = entries(records);
    let mut outcome = Outcome::default();
    for group in entries.chunks(MAX_ENTRIES) {
        if let Err(first) = put_all(bus, group).await {
            outcome.published += first;
            outcome.failed_from = Some(group[first].0.clone());
            tracing::warn!(failed_from = ?outcome.failed_from, "events left for Lambda's retry");
            return outcome;
        }
        outcome.published += group.len();
    }
    outcome.failed_from = unreadable;
    outcome
}

/// Puts `group` on the bus, retrying what it refuses; `Err` holds the position of the first
/// entry still not put after [`ATTEMPTS`] calls.
async fn put_all(bus: &impl Bus, group: &[(String, Entry)]) -> Result<(), usize> {
    let mut todo: Vec<usize> = (0..group.len()).collect();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
        let batch: Vec<Entry> = todo.iter().map(|&i| group[i].1.clone()).collect();
        match bus.put(&batch).await {
            Ok(refused) => {
                todo = todo
                    .into_iter()
                    .enumerate()
                    .filter(|&(n, _)| refused.get(n).is_none_or(|r| r.is_some()))
                    .map(|(_, i)| i)
                    .collect();
                for code in refused.iter().flatten() {
                    tracing::warn!(attempt, code = %code, "an entry was refused");
                }
            }
            Err(error) => tracing::warn!(attempt, %error, "PutEvents failed"),
        }
        if todo.is_empty() {
            return Ok(());
        }
    }
    Err(todo[0])
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use serde_json::Value;

    use super::*;
    use crate::audit::{ActingSecret, Action, Actor, Event, EventId, Leak, WhichSecret};
    use crate::key::KeyId;
    use crate::store::dynamo::event_image;

    fn event(action: Action) -> Event {
        let now = Utc::now();
        Event {
            id: EventId::new_at(now),
            time: now,
            org: "acme".parse().unwrap(),
            action,
            key_id: Some(KeyId::new_at(now)),
            owner_id: None,
            actor: Actor::api_key(KeyId::new_at(now)).with_secret(ActingSecret {
                which: WhichSecret::Current,
                last_four: "Ab12".into(),
            }),
            changes: Default::default(),
            request_id: "req-1".into(),
            source_ip: Some("192.0.2.1".into()),
            leak: (action == Action::Leaked).then(|| Leak {
                url: "https://github.com/o/r".into(),
                source: "content".into(),
            }),
            credits: None,
            expires: None,
            retain_until: now,
        }
    }

    fn record(name: &str, seq: usize, image: serde_dynamo::Item) -> EventRecord {
        let mut r = EventRecord::default();
        r.event_name = name.into();
        r.change.sequence_number = Some(format!("{seq:021}"));
        r.change.new_image = image;
        r
    }

    fn inserted(seq: usize, e: &Event) -> EventRecord {
        record("INSERT", seq, event_image(e).unwrap())
    }

    /// Whether the bus refuses an entry on a call (numbered from 1).
    type Refusal = Box<dyn Fn(u32, &Entry) -> bool + Send + Sync>;

    /// A bus that keeps what it was given, and refuses entries `refuse` names (by their
    /// detail type) on the calls it names.
    struct FakeBus {
        put: Mutex<Vec<Entry>>,
        calls: Mutex<u32>,
        refuse: Refusal,
    }

    impl FakeBus {
        fn new(refuse: impl Fn(u32, &Entry) -> bool + Send + Sync + 'static) -> Self {
            FakeBus {
                put: Mutex::new(Vec::new()),
                calls: Mutex::new(0),
                refuse: Box::new(refuse),
            }
        }
    }

    impl Bus for FakeBus {
        async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, BusError> {
            assert!(entries.len() <= MAX_ENTRIES);
            let call = {
                let mut calls = self.calls.lock().unwrap();
                *calls += 1;
                *calls
            };
            let mut put = self.put.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| match (self.refuse)(call, e) {
                    true => Some("InternalFailure".to_owned()),
                    false => {
                        put.push(e.clone());
                        None
                    }
                })
                .collect())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_inserted_audit_events_are_published_in_stream_order() {
        let (a, b) = (event(Action::Created), event(Action::Leaked));
        let mut key_image = serde_dynamo::Item::from(std::collections::HashMap::<
            String,
            serde_dynamo::AttributeValue,
        >::new());
        key_image.insert("sk".into(), serde_dynamo::AttributeValue::S("KEY#x".into()));
        let records = [
            record("INSERT", 1, key_image),
            inserted(2, &a),
            record("MODIFY", 3, event_image(&a).unwrap()),
            record("REMOVE", 4, event_image(&b).unwrap()),
            inserted(5, &b),
        ];
        let bus = FakeBus::new(|_, _| false);
        let outcome = publish(&bus, &records).await;
        assert_eq!(
            outcome,
            Outcome {
                published: 2,
                failed_from: None
            }
        );
        assert!(outcome.response().batch_item_failures.is_empty());
        let put = bus.put.into_inner().unwrap();
        assert_eq!(put, [entry(&a).unwrap(), entry(&b).unwrap()]);
        assert_eq!(put[1].detail_type, "apikeys key.leaked");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_entry_is_retried_alone_and_a_lasting_refusal_names_its_record() {
        let events: Vec<Event> = (0..12).map(|_| event(Action::Updated)).collect();
        let records: Vec<EventRecord> = events
            .iter()
            .enumerate()
            .map(|(i, e)| inserted(i, e))
            .collect();
        let third = entry(&events[3]).unwrap();
        let bus = FakeBus::new(move |call, e| call == 1 && *e == third);
        let outcome = publish(&bus, &records).await;
        assert_eq!(
            outcome,
            Outcome {
                published: 12,
                failed_from: None
            }
        );
        let put = bus.put.into_inner().unwrap();
        assert_eq!(put.len(), 12, "each once");
        assert_eq!(*bus.calls.lock().unwrap(), 3, "two groups, one retry");

        let eleventh = entry(&events[11]).unwrap();
        let bus = FakeBus::new(move |_, e| *e == eleventh);
        let outcome = publish(&bus, &records).await;
        assert_eq!(outcome.failed_from, Some(format!("{:021}", 11)));
        assert_eq!(outcome.published, 11);
        let failures = outcome.response().batch_item_failures;
        assert_eq!(failures[0].item_identifier, outcome.failed_from);
        assert_eq!(
            *bus.calls.lock().unwrap(),
            1 + ATTEMPTS,
            "then Lambda's retry"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_event_stops_the_batch_at_its_record() {
        let (a, b) = (event(Action::Created), event(Action::Deleted));
        let mut broken = event_image(&b).unwrap();
        broken.insert(
            "action".into(),
            serde_dynamo::AttributeValue::S("key.read".into()),
        );
        let records = [
            inserted(1, &a),
            record("INSERT", 2, broken),
            inserted(3, &b),
        ];
        let bus = FakeBus::new(|_, _| false);
        let outcome = publish(&bus, &records).await;
        assert_eq!(outcome.published, 1);
        assert_eq!(outcome.failed_from, Some(format!("{:021}", 2)));
    }

    #[test]
    fn the_detail_is_the_api_view_with_the_organization_and_nothing_more() {
        let e = event(Action::Leaked);
        let detail: Value = serde_json::from_str(&entry(&e).unwrap().detail).unwrap();
        let mut view = serde_json::to_value(e.view()).unwrap();
        view["organization"] = "acme".into();
        assert_eq!(detail, view);
        let fields: Vec<&str> = detail
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "action",
                "actor",
                "changes",
                "id",
                "key_id",
                "leak",
                "organization",
                "request_id",
                "source_ip",
                "time"
            ]
        );
        assert_eq!(
            detail["actor"]["secret"]["last_four"], "Ab12",
            "never more of it"
        );
    }

    #[test]
    fn an_owners_event_names_its_owner_and_no_key() {
        let mut e = event(Action::OwnerUpdated);
        e.key_id = None;
        e.owner_id = Some("cus_1".parse().unwrap());
        let entry = entry(&e).unwrap();
        assert_eq!(entry.detail_type, "apikeys owner.updated");
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["owner_id"], "cus_1");
        assert!(detail.get("key_id").is_none(), "{detail}");
        let image = event_image(&e).unwrap();
        let back = crate::store::dynamo::event_of_image(image)
            .unwrap()
            .unwrap();
        assert_eq!(
            (back.action, back.key_id, back.owner_id),
            (e.action, None, e.owner_id)
        );
    }
}
