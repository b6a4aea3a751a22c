//! A key's fields as an audit event's `changes` shows them, and the difference of two
//! versions. Never a secret or a hash: the key's own view holds neither.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::audit::{Change, Changes, time_value};
use crate::key::{ApiKey, KeyState};

/// The fields a change can show, by their names in the key object.
fn fields(key: &ApiKey) -> BTreeMap<&'static str, Value> {
    let state = match key.state {
        KeyState::Active => "active",
        KeyState::Disabled => "disabled",
    };
    BTreeMap::from([
        ("name", json!(key.name)),
        ("restricted", json!(key.access.is_restricted())),
        ("permissions", json!(key.access.permissions())),
        ("expires_date", key.expires.map_or(Value::Null, time_value)),
        ("status", json!(state)),
        ("last_four_digits", json!(key.last_four)),
        ("creator_id", json!(key.creator_id)),
        ("disabled_reason", json!(key.disabled_reason)),
        ("credits", json!(key.quota.credits)),
        (
            "ratelimits",
            if key.quota.ratelimits.is_empty() {
                Value::Null
            } else {
                json!(key.quota.ratelimits)
            },
        ),
        ("owner_id", json!(key.owner_id)),
        // Whole, from and to: a key's meta is at most 4 KiB (`crate::meta`), so each side is.
        ("meta", json!(key.meta)),
        ("allowed_cidrs", json!(key.allowed_cidrs)),
    ])
}

/// Every field, from `null` (a creation) or to `null` (a deletion).
pub(super) fn all(key: &ApiKey, created: bool) -> Changes {
    fields(key)
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(name, v)| {
            let change = if created {
                Change {
                    from: Value::Null,
                    to: v,
                }
            } else {
                Change {
                    from: v,
                    to: Value::Null,
                }
            };
            (name.to_owned(), change)
        })
        .collect()
}

/// The fields that differ from `before` to `after`.
pub(super) fn between(before: &ApiKey, after: &ApiKey) -> Changes {
    let (a, b) = (fields(before), fields(after));
    a.into_iter()
        .zip(b)
        .filter(|((_, from), (_, to))| from != to)
        .map(|((name, from), (_, to))| (name.to_owned(), Change { from, to }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Access, KeyId, Permission};

    fn key() -> ApiKey {
        let now = chrono::Utc::now();
        ApiKey {
            id: KeyId::generate(),
            org: "o".parse().unwrap(),
            name: "ci".into(),
            created: now,
            updated: now,
            last_used: None,
            expires: None,
            creator_id: uuid::Uuid::nil(),
            access: Access::new(true, vec![Permission::CallsView]),
            state: KeyState::Active,
            last_four: "abcd".into(),
            version: 1,
            disabled_reason: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        }
    }

    #[test]
    fn only_changed_fields_are_recorded_with_their_api_values() {
        let before = key();
        let mut after = before.clone();
        after.name = "cd".into();
        after.state = KeyState::Disabled;
        after.updated = before.updated + chrono::Duration::seconds(5);
        after.last_used = Some(after.updated);
        let changes = between(&before, &after);
        assert_eq!(
            serde_json::to_value(&changes).unwrap(),
            json!({
                "name": {"from": "ci", "to": "cd"},
                "status": {"from": "active", "to": "disabled"},
            })
        );
        assert!(between(&before, &before).is_empty());
    }

    #[test]
    fn a_creation_shows_every_set_field_from_null() {
        let changes = all(&key(), true);
        assert_eq!(changes["permissions"].to, json!(["calls.view"]));
        assert_eq!(changes["last_four_digits"].from, Value::Null);
        assert!(
            !changes.contains_key("expires_date"),
            "unset fields are left out"
        );
    }
}
