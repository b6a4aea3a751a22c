//! `key.credits_low` and `key.credits_exhausted`: read from the key item's stream records
//! (old and new images), so verify does no extra work for them. A record is a crossing when
//! the write took the credits left below the key's `low_at` (or to 0), from at or above it,
//! or when it refilled them into a new period and they are still below: so each is
//! published once per crossing, not once per verify, and a refill then a new drop is a new
//! crossing. A write that only changes `low_at` crosses nothing.
//!
//! These notices are on the bus only, not in the audit trail: verifies cause them, and the
//! trail records the writes that change a key, not its use. Their `id` is derived from the
//! stream record (its id and sequence number), so a retried batch publishes the same id.

use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Serialize;
use serde_dynamo::{AttributeValue, Item};
use sha2::{Digest, Sha256};

use super::entry::{Entry, SOURCE};
use crate::audit::EventId;
use crate::audit::event::MillisTime;
use crate::key::{KeyId, OrgId};
use crate::store::dynamo::SK;

pub const LOW: &str = "key.credits_low";
pub const EXHAUSTED: &str = "key.credits_exhausted";

/// What an image of a key item holds of its credits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Side {
    remaining: Option<u64>,
    low_at: Option<u64>,
    period: Option<i64>,
}

fn number<T: std::str::FromStr>(image: &Item, name: &str) -> Option<T> {
    match image.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

fn side(image: &Item) -> Side {
    Side {
        remaining: number(image, "credits_remaining"),
        low_at: number(image, "credits_low_at"),
        period: number(image, "credits_period_ms"),
    }
}

/// Whether going from `old` to `new` crosses below `threshold` (what `new` holds).
fn crosses(old: Side, new: Side, threshold: Option<u64>) -> bool {
    let (Some(was), Some(now), Some(t)) = (old.remaining, new.remaining, threshold) else {
        return false;
    };
    now < t && (was >= t || new.period != old.period)
}

/// The actions a key item's change publishes: none, or `key.credits_low` and/or
/// `key.credits_exhausted`, in that order.
pub fn actions(old: &Item, new: &Item) -> Vec<&'static str> {
    let is_key = matches!(new.get(SK), Some(AttributeValue::S(sk)) if sk.starts_with("KEY#"));
    if !is_key {
        return Vec::new();
    }
    let (old, new) = (side(old), side(new));
    let mut out = Vec::new();
    if crosses(old, new, new.low_at) {
        out.push(LOW);
    }
    if crosses(old, new, Some(1)) {
        out.push(EXHAUSTED);
    }
    out
}

/// The credits a notice shows: as the key's view does (`low_at` when set).
#[derive(Serialize)]
struct Left {
    remaining: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    low_at: Option<u64>,
}

/// A notice's detail: the organization, the key, and the credits left; no secret, no hash.
#[derive(Serialize)]
struct Notice {
    organization: OrgId,
    id: EventId,
    time: MillisTime,
    action: &'static str,
    key_id: KeyId,
    credits: Left,
}

fn text(image: &Item, name: &str) -> Result<String, String> {
    match image.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(format!("a key item without {name}")),
    }
}

/// The same id for the same record and action, on every retry: a UUIDv7 of the record's
/// time, its other bits from a SHA-256 of the record's id, sequence number and the action.
fn notice_id(record: &EventRecord, action: &str) -> EventId {
    let seq = record.change.sequence_number.as_deref().unwrap_or_default();
    let digest = Sha256::digest(format!("{}\n{seq}\n{action}", record.event_id));
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&digest[..10]);
    let ms = record
        .change
        .approximate_creation_date_time
        .timestamp_millis();
    let uuid = uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bits).into_uuid();
    uuid.to_string().parse().unwrap_or(EventId::MIN)
}

/// The entries a modified key item's record publishes (none for most records).
pub fn entries(record: &EventRecord) -> Result<Vec<Entry>, String> {
    let (old, new) = (&record.change.old_image, &record.change.new_image);
    let actions = actions(old, new);
    if actions.is_empty() {
        return Ok(Vec::new());
    }
    let organization: OrgId = text(new, "org")?.parse().map_err(|_| "a bad org")?;
    let key_id: KeyId = text(new, "id")?.parse().map_err(|_| "a bad key id")?;
    let credits = side(new);
    actions
        .into_iter()
        .map(|action| {
            let notice = Notice {
                organization: organization.clone(),
                id: notice_id(record, action),
                time: MillisTime(record.change.approximate_creation_date_time),
                action,
                key_id,
                credits: Left {
                    remaining: credits.remaining.unwrap_or_default(),
                    low_at: credits.low_at,
                },
            };
            Ok(Entry {
                detail_type: format!("{SOURCE} {action}"),
                detail: serde_json::to_string(&notice).map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(remaining: Option<u64>, low_at: Option<u64>, period: Option<i64>) -> Item {
        let mut item = Item::from(std::collections::HashMap::<String, AttributeValue>::new());
        let n = |v: String| AttributeValue::N(v);
        item.insert(
            "sk".into(),
            AttributeValue::S(format!("KEY#{}", KeyId::generate())),
        );
        item.insert("org".into(), AttributeValue::S("acme".into()));
        item.insert(
            "id".into(),
            AttributeValue::S(KeyId::generate().to_string()),
        );
        item.insert("secret_hash".into(), AttributeValue::S("h4sh".into()));
        if let Some(r) = remaining {
            item.insert("credits_remaining".into(), n(r.to_string()));
        }
        if let Some(l) = low_at {
            item.insert("credits_low_at".into(), n(l.to_string()));
        }
        if let Some(p) = period {
            item.insert("credits_period_ms".into(), n(p.to_string()));
        }
        item
    }

    fn acts(old: (u64, Option<u64>, i64), new: (u64, Option<u64>, i64)) -> Vec<&'static str> {
        actions(
            &image(Some(old.0), old.1, Some(old.2)),
            &image(Some(new.0), new.1, Some(new.2)),
        )
    }

    #[test]
    fn each_crossing_is_one_notice_and_staying_below_is_none() {
        assert_eq!(acts((10, Some(10), 0), (9, Some(10), 0)), [LOW]);
        assert!(acts((9, Some(10), 0), (8, Some(10), 0)).is_empty());
        assert!(acts((11, Some(10), 0), (10, Some(10), 0)).is_empty());
        assert_eq!(acts((1, Some(10), 0), (0, Some(10), 0)), [EXHAUSTED]);
        assert_eq!(acts((12, Some(10), 0), (0, Some(10), 0)), [LOW, EXHAUSTED]);
        assert!(acts((0, Some(10), 0), (0, Some(10), 0)).is_empty());
        assert_eq!(acts((5, None, 0), (0, None, 0)), [EXHAUSTED]);
        assert!(acts((50, None, 0), (3, None, 0)).is_empty(), "no threshold");
    }

    #[test]
    fn a_refill_then_a_new_drop_is_a_new_crossing_and_a_new_threshold_is_none() {
        // The refill (a new period) back above the threshold crosses nothing...
        assert!(acts((0, Some(10), 0), (99, Some(10), 86_400_000)).is_empty());
        // ... the next drop does; a refill that leaves it below is a new period's crossing.
        assert_eq!(
            acts((10, Some(10), 86_400_000), (9, Some(10), 86_400_000)),
            [LOW]
        );
        assert_eq!(acts((2, Some(10), 0), (4, Some(10), 86_400_000)), [LOW]);
        // Setting or raising the threshold above what is left is no drop.
        assert!(acts((8, None, 0), (8, Some(10), 0)).is_empty());
        assert!(acts((8, Some(5), 0), (8, Some(10), 0)).is_empty());
        // Credits given to an unlimited key are no drop either.
        let none = image(None, None, None);
        assert!(actions(&none, &image(Some(0), Some(10), Some(0))).is_empty());
    }

    #[test]
    fn a_notice_names_the_key_and_its_credits_and_its_id_is_the_records() {
        let mut r = EventRecord::default();
        r.event_id = "e1".into();
        r.event_name = "MODIFY".into();
        r.change.sequence_number = Some("000000000000000000001".into());
        r.change.old_image = image(Some(10), Some(10), None);
        r.change.new_image = image(Some(9), Some(10), None);
        let entries = entries(&r).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].detail_type, "apikeys key.credits_low");
        let detail: serde_json::Value = serde_json::from_str(&entries[0].detail).unwrap();
        let fields: Vec<&str> = detail
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields,
            ["action", "credits", "id", "key_id", "organization", "time"]
        );
        assert_eq!(
            detail["credits"],
            serde_json::json!({"remaining": 9, "low_at": 10})
        );
        assert!(!entries[0].detail.contains("h4sh"), "no hash leaves");
        assert_eq!(super::entries(&r).unwrap(), entries, "the same on a retry");
        r.change.sequence_number = Some("000000000000000000002".into());
        assert_ne!(
            super::entries(&r).unwrap(),
            entries,
            "another record, another id"
        );
    }
}
