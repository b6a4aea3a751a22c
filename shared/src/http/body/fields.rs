//! The values a write's fields take, as types that check their value while serde reads it
//! (the reason they give is the 422's; [`super::read::parse`] names the field): a key name
//! (the same rule as the CLI's), a permission list, a time, a UUID, a bool, an owner id, a
//! key's metadata and IP allow-list, an IP address.

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::{self, Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::allow::AllowList;
use crate::key::Permission;
use crate::meta::Meta;
use crate::owner::OwnerId;
use crate::store::MAX_NAME_BYTES;

/// Why a key name is refused, if it is; `None` for a good name. The rule of
/// `write::NewKey::into_record`: 1 to [`MAX_NAME_BYTES`] bytes, not only whitespace, no
/// control characters.
pub fn name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("must not be empty or only whitespace".into())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "must be at most {MAX_NAME_BYTES} bytes of UTF-8, got {}",
            name.len()
        ))
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters (such as a newline or a tab)".into())
    } else {
        None
    }
}

pub use crate::error::kind;

/// A field's value for serde: read as JSON, then `check`ed; the reason `check` gives is the
/// error message, which becomes the 422's reason.
pub fn checked<'de, D, T>(
    d: D,
    check: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Value::deserialize(d)?;
    check(&value).map_err(de::Error::custom)
}

/// A body field's type that checks its value as it is deserialized: `$check` gives the
/// value or the reason it is refused.
macro_rules! checked_type {
    ($(#[$doc:meta])* $name:ident($inner:ty) by $check:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::http::body::fields::checked(d, |value| $check(value).map($name))
            }
        }
    };
}
pub(super) use checked_type;

checked_type!(
    /// A key name, by [`name_problem`]'s rule.
    Name(String) by name_value
);
checked_type!(
    /// Any string.
    Text(String) by text_value
);
checked_type!(
    /// `true` or `false`.
    Flag(bool) by bool_value
);
checked_type!(
    /// A list of permissions from the reference list, each at most once.
    Permissions(Vec<Permission>) by permission_list
);
checked_type!(
    /// An RFC 3339 time with an offset, kept to the whole second (as the API shows it);
    /// whether it is in the future is [`in_future`]'s.
    Time(DateTime<Utc>) by time_value
);
checked_type!(
    /// A UUID in any spelling that parses.
    Id(Uuid) by uuid_value
);
checked_type!(
    /// An owner id ([`crate::owner::OwnerId`]).
    Owner(OwnerId) by owner_value
);

checked_type!(
    /// A key's metadata: a JSON object within [`crate::meta`]'s bounds (`{}` is none).
    MetaField(Option<Meta>) by meta_value
);
checked_type!(
    /// A merge patch of a key's metadata: a JSON object, checked with the key's once merged.
    MetaPatch(serde_json::Map<String, Value>) by meta_patch_value
);
checked_type!(
    /// An IP allow-list: 1 to 50 CIDRs ([`crate::allow`]).
    Cidrs(AllowList) by cidrs_value
);
checked_type!(
    /// An IPv4 or IPv6 address.
    Ip(std::net::IpAddr) by ip_value
);

/// A merge patch's member: absent (`None`), null (`Some(None)`) or a value. For
/// `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A JSON number that is a whole number from 0 to 2^53 - 1, written with or without a zero
/// fraction (`60` or `60.0`: both are JSON Schema's `integer`).
pub fn whole_number(value: &Value) -> Option<u64> {
    const MAX: f64 = 9_007_199_254_740_991.0;
    let Value::Number(n) = value else {
        return None;
    };
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=MAX).contains(f))
            .map(|f| f as u64)
    })
}

/// A whole number member (see [`whole_number`]), for `#[serde(deserialize_with = "whole")]`.
pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    checked(d, |value| {
        whole_number(value).ok_or_else(|| format!("must be a whole number, not {value}"))
    })
}

/// An optional whole number member: absent or null is `None`.
pub fn whole_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    checked(d, |value| match value {
        Value::Null => Ok(None),
        v => whole_number(v)
            .map(Some)
            .ok_or_else(|| format!("must be a whole number, not {v}")),
    })
}

/// An optional whole number member that is never null: absent is `None` (with
/// `#[serde(default)]`), null is refused as any other non-number is.
pub fn whole_if_present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    whole(d).map(Some)
}

fn wrong_type(want: &str, got: &Value) -> String {
    format!("must be {want}, not {}", kind(got))
}

/// A key name, or why it is refused.
pub fn name_value(value: &Value) -> Result<String, String> {
    let Value::String(s) = value else {
        return Err(wrong_type("a string", value));
    };
    match name_problem(s) {
        Some(why) => Err(why),
        None => Ok(s.clone()),
    }
}

fn text_value(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_type("a string", other)),
    }
}

fn bool_value(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type("true or false", value))
}

/// A list of permissions, or why it is refused.
pub fn permission_list(value: &Value) -> Result<Vec<Permission>, String> {
    let Value::Array(items) = value else {
        return Err(wrong_type("an array of permission names", value));
    };
    let mut list: Vec<Permission> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(format!(
                "entry {i} must be a permission name, not {}",
                kind(item)
            ));
        };
        let p: Permission = s.parse().map_err(|_| {
            let shown: String = s.chars().take(64).collect();
            format!("entry {i}: {shown:?} is not a known permission (see the Permission enum)")
        })?;
        if list.contains(&p) {
            return Err(format!("entry {i}: {p} is listed twice"));
        }
        list.push(p);
    }
    Ok(list)
}

fn time_value(value: &Value) -> Result<DateTime<Utc>, String> {
    let Value::String(s) = value else {
        return Err(wrong_type(
            "an RFC 3339 time such as 2030-01-31T12:00:00Z",
            value,
        ));
    };
    let at = DateTime::parse_from_rfc3339(s).map_err(|_| {
        "must be an RFC 3339 time with an offset, such as 2030-01-31T12:00:00Z".to_owned()
    })?;
    Ok(at.with_timezone(&Utc).trunc_subsecs(0))
}

/// `at` if it is strictly after `now`; else why not.
pub fn in_future(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if at <= now {
        return Err(format!(
            "must be in the future (now is {}); to stop a key now, set status to disabled",
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    Ok(at)
}

fn meta_value(value: &Value) -> Result<Option<Meta>, String> {
    Meta::new(value).map_err(|why| why.to_string())
}

fn meta_patch_value(value: &Value) -> Result<serde_json::Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map.clone()),
        other => Err(crate::meta::InvalidMeta::NotObject(kind(other)).to_string()),
    }
}

fn cidrs_value(value: &Value) -> Result<AllowList, String> {
    let Value::Array(items) = value else {
        return Err(wrong_type(
            "an array of CIDRs such as \"203.0.113.0/24\" (or null for any address)",
            value,
        ));
    };
    let mut texts: Vec<&str> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(format!(
                "entry {i} must be a CIDR string, not {}",
                kind(item)
            ));
        };
        texts.push(s);
    }
    AllowList::parse(&texts).map_err(|why| why.to_string())
}

fn ip_value(value: &Value) -> Result<std::net::IpAddr, String> {
    let Value::String(s) = value else {
        return Err(wrong_type("an IP address string", value));
    };
    s.parse().map_err(|_| {
        "must be an IPv4 or IPv6 address such as 203.0.113.7 or 2001:db8::7".to_owned()
    })
}

fn uuid_value(value: &Value) -> Result<Uuid, String> {
    let Value::String(s) = value else {
        return Err(wrong_type("a UUID string", value));
    };
    Uuid::try_parse(s)
        .map_err(|_| "must be a UUID such as 0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11".to_owned())
}

fn owner_value(value: &Value) -> Result<OwnerId, String> {
    let Value::String(s) = value else {
        return Err(wrong_type("a string", value));
    };
    s.parse()
        .map_err(|e: crate::owner::InvalidOwnerId| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::write::{InvalidWrite, NewKey};
    use chrono::TimeZone;
    use serde_json::json;

    fn reason(r: Result<impl std::fmt::Debug, String>) -> String {
        r.unwrap_err()
    }

    fn future_time(value: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
        time_value(value).and_then(|at| in_future(at, now))
    }

    #[test]
    fn the_name_rule_is_the_clis() {
        let secret = Secret::from_random([1; 24]);
        let samples = [
            "ci deploy".to_owned(),
            String::new(),
            " \t ".to_owned(),
            "a\nb".to_owned(),
            "a\u{7f}b".to_owned(),
            "a\u{85}b".to_owned(),
            "é".repeat(128),
            "é".repeat(129),
            "x".repeat(MAX_NAME_BYTES),
            "x".repeat(MAX_NAME_BYTES + 1),
            "\u{3000}".to_owned(),
            "名前".to_owned(),
        ];
        for s in samples {
            let cli = NewKey {
                org: "o".parse().unwrap(),
                name: s.clone(),
                creator_id: Uuid::nil(),
                access: crate::key::Access::Unrestricted,
                expires: None,
                id: None,
                quota: Default::default(),
                owner_id: None,
                meta: None,
                allowed_cidrs: None,
            }
            .into_record(&secret, chrono::Utc::now());
            let cli_ok = !matches!(cli, Err(InvalidWrite::Name));
            assert_eq!(name_problem(&s).is_none(), cli_ok, "{s:?}");
            assert_eq!(name_value(&json!(s)).is_ok(), cli_ok, "{s:?}");
        }
        assert_eq!(
            reason(name_value(&json!(5))),
            "must be a string, not a number"
        );
        assert_eq!(
            reason(name_value(&json!(null))),
            "must be a string, not null"
        );
    }

    #[test]
    fn permissions_are_known_names_each_once() {
        let ok = permission_list(&json!(["calls.view", "api_keys.view"])).unwrap();
        assert_eq!(ok, [Permission::CallsView, Permission::ApiKeysView]);
        assert_eq!(permission_list(&json!([])).unwrap(), []);
        for (bad, says) in [
            (
                json!("calls.view"),
                "must be an array of permission names, not a string",
            ),
            (
                json!(["calls.view", 3]),
                "entry 1 must be a permission name, not a number",
            ),
            (
                json!(["calls.read"]),
                "entry 0: \"calls.read\" is not a known permission",
            ),
            (
                json!(["calls.view", "calls.view"]),
                "entry 1: calls.view is listed twice",
            ),
            (json!({"calls.view": true}), "not an object"),
        ] {
            let why = reason(permission_list(&bad));
            assert!(why.contains(says), "{why}");
        }
    }

    #[test]
    fn times_are_rfc3339_in_the_future_to_the_second() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap();
        let at = future_time(&json!("2025-06-01T14:00:01.900+02:00"), now);
        assert_eq!(at.unwrap(), now + chrono::Duration::seconds(1));
        for (bad, says) in [
            (json!("2025-06-01T12:00:00Z"), "must be in the future"),
            (json!("2025-06-01T12:00:00.999Z"), "must be in the future"),
            (json!("2020-01-01T00:00:00Z"), "set status to disabled"),
            (json!("2030-01-01"), "RFC 3339"),
            (json!("2030-01-01T00:00:00"), "with an offset"),
            (json!(1_900_000_000), "not a number"),
        ] {
            let why = reason(future_time(&bad, now));
            assert!(why.contains(says), "{bad}: {why}");
        }
    }

    #[test]
    fn uuids_and_booleans_say_what_they_take() {
        let id = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        assert_eq!(uuid_value(&json!(id)).unwrap().to_string(), id);
        assert!(uuid_value(&json!(id.to_uppercase())).is_ok());
        assert!(reason(uuid_value(&json!("x"))).starts_with("must be a UUID such as"));
        assert_eq!(
            reason(uuid_value(&json!(7))),
            "must be a UUID string, not a number"
        );
        assert_eq!(bool_value(&json!(false)), Ok(false));
        assert_eq!(
            reason(bool_value(&json!("true"))),
            "must be true or false, not a string"
        );
    }
}
