//! A key's metadata (`meta`): a JSON object the organization attaches to a key, which verify
//! hands back to the calling service, so that it needs no lookup of its own.
//!
//! A [`Meta`] is a non-empty object of at most [`MAX_META_BYTES`] (compact JSON) nested at
//! most [`MAX_META_DEPTH`] levels deep. Writes change it as a JSON merge patch (RFC 7396,
//! [`Meta::merged`]). Its members may hold anything, secrets included: its `Debug` shows
//! only its size, so that no log line ever holds a member.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::kind;

/// The largest `meta`, as compact JSON (`serde_json::to_string`), in bytes.
pub const MAX_META_BYTES: usize = 4096;
/// The deepest `meta`: the object itself is level 1, each object or array in it one more.
pub const MAX_META_DEPTH: usize = 8;

/// A key's metadata: a JSON object within the bounds above, never empty (an empty object
/// is no metadata: `null`).
#[derive(Clone, PartialEq, Eq)]
pub struct Meta(Map<String, Value>);

/// Why a value cannot be a key's metadata; its text is the 422's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMeta {
    #[error("must be a JSON object (or null to remove it), not {0}")]
    NotObject(&'static str),
    #[error("must be at most {MAX_META_BYTES} bytes as compact JSON, got {0}")]
    TooLarge(usize),
    #[error("must be nested at most {MAX_META_DEPTH} levels deep (the object itself is level 1)")]
    TooDeep,
}

impl Meta {
    /// The metadata `value` gives, checked: `None` for an empty object.
    pub fn new(value: &Value) -> Result<Option<Meta>, InvalidMeta> {
        match value {
            Value::Object(map) => Meta::checked(map.clone()),
            other => Err(InvalidMeta::NotObject(kind(other))),
        }
    }

    fn checked(map: Map<String, Value>) -> Result<Option<Meta>, InvalidMeta> {
        if map.is_empty() {
            return Ok(None);
        }
        let object = Value::Object(map);
        if depth(&object) > MAX_META_DEPTH {
            return Err(InvalidMeta::TooDeep);
        }
        let bytes = object.to_string().len();
        if bytes > MAX_META_BYTES {
            return Err(InvalidMeta::TooLarge(bytes));
        }
        let Value::Object(map) = object else {
            unreachable!("built as an object above")
        };
        Ok(Some(Meta(map)))
    }

    /// `current` after the merge patch `patch` (RFC 7396): a member set to null is removed,
    /// an object merges into the object it replaces, anything else replaces. Checked again
    /// as a whole: a patch may not grow it past the bounds. `None` when nothing is left.
    pub fn merged(
        current: Option<&Meta>,
        patch: &Map<String, Value>,
    ) -> Result<Option<Meta>, InvalidMeta> {
        let mut target = Value::Object(current.map(|m| m.0.clone()).unwrap_or_default());
        merge_patch(&mut target, &Value::Object(patch.clone()));
        match target {
            Value::Object(map) => Meta::checked(map),
            other => Err(InvalidMeta::NotObject(kind(&other))),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The metadata as compact JSON: how the store keeps it.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    /// Metadata the store kept ([`Meta::to_json`]); `None` if it is not metadata any more.
    pub fn from_json(text: &str) -> Option<Meta> {
        let value: Value = serde_json::from_str(text).ok()?;
        Meta::new(&value).ok().flatten()
    }
}

/// RFC 7396's MergePatch(target, patch), in place.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (name, value) in members {
        if value.is_null() {
            map.remove(name);
        } else {
            merge_patch(map.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

/// How deep a value is nested: a scalar is 0, an object or array one more than its deepest
/// member.
fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the members: they may hold secrets.
        write!(f, "Meta({} members)", self.0.len())
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Option<Meta> {
        Meta::new(&v).unwrap()
    }

    #[test]
    fn an_object_within_the_bounds_is_metadata_and_empty_is_none() {
        let m = meta(json!({"plan": "pro", "seats": 3})).unwrap();
        assert_eq!(m.to_json(), r#"{"plan":"pro","seats":3}"#);
        assert_eq!(Meta::from_json(&m.to_json()), Some(m));
        assert_eq!(meta(json!({})), None);
    }

    #[test]
    fn a_non_object_too_large_or_too_deep_value_is_refused() {
        assert_eq!(
            Meta::new(&json!([1])),
            Err(InvalidMeta::NotObject("an array"))
        );
        assert_eq!(
            Meta::new(&json!("x")),
            Err(InvalidMeta::NotObject("a string"))
        );
        // {"a":"…"} is 8 bytes besides the string: 4,096 in all is the largest.
        let fits = json!({"a": "x".repeat(MAX_META_BYTES - 8)});
        assert!(Meta::new(&fits).unwrap().is_some());
        let over = json!({"a": "x".repeat(MAX_META_BYTES - 7)});
        assert_eq!(
            Meta::new(&over),
            Err(InvalidMeta::TooLarge(MAX_META_BYTES + 1))
        );
        let eight = json!({"1": {"2": {"3": {"4": {"5": {"6": {"7": [0]}}}}}}});
        assert!(Meta::new(&eight).unwrap().is_some());
        let nine = json!({"1": {"2": {"3": {"4": {"5": {"6": {"7": [[0]]}}}}}}});
        assert_eq!(Meta::new(&nine), Err(InvalidMeta::TooDeep));
    }

    #[test]
    fn a_merge_patch_sets_merges_and_removes_members() {
        let current = meta(json!({"plan": "pro", "limits": {"a": 1, "b": 2}, "tags": [1]}));
        let patch = json!({"plan": null, "limits": {"b": null, "c": 3}, "tags": [2], "new": true});
        let Value::Object(patch) = patch else {
            panic!()
        };
        let next = Meta::merged(current.as_ref(), &patch).unwrap().unwrap();
        assert_eq!(
            Value::Object(next.as_map().clone()),
            json!({"limits": {"a": 1, "c": 3}, "tags": [2], "new": true})
        );
        let Value::Object(all) = json!({"limits": null, "tags": null, "new": null}) else {
            panic!()
        };
        assert_eq!(Meta::merged(Some(&next), &all), Ok(None));
        let Value::Object(big) = json!({"x": "y".repeat(MAX_META_BYTES)}) else {
            panic!()
        };
        assert!(matches!(
            Meta::merged(Some(&next), &big),
            Err(InvalidMeta::TooLarge(_))
        ));
    }

    #[test]
    fn debug_shows_no_member() {
        let m = meta(json!({"apk_secret": "apk_live_value"})).unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("apk_"), "{shown}");
    }
}
