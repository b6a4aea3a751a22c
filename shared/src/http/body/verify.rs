//! The verify request body: `{"key": "<secret>", "permissions": ["calls.view", …], "cost": 1}`.
//!
//! `key` is a required string; `permissions` is optional (absent or null: none required),
//! a list of the application's permission names, each once; `cost` is optional (absent or
//! null: 1), an integer from 0 to 10,000 that the verify spends from the key's credits and
//! rate limits; `client_ip` is optional (absent or null: none), the IPv4 or IPv6 address a
//! key's allow-list is checked against. The body is read as the write
//! side reads its bodies ([`super::read`]): `415` for another media type, `413`
//! over 16 KiB, `400` for broken JSON, `422` naming the field for an unknown field, a
//! wrong type or an unknown permission. A `key` that is not one of our secrets is not an
//! error here: the answer is `NOT_FOUND`, like any key that does not exist.

use lambda_http::http::HeaderMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::fields::{Ip, Text, checked, checked_type, permission_list};
use super::read::{Accepts, Presence, parse, read};
use crate::http::problem::ApiError;
use crate::key::Permission;
use crate::quota::MAX_COST;
use crate::verify::VerifyRequest;

/// The fields a verify body may hold.
pub const FIELDS: &[&str] = &["key", "permissions", "cost", "client_ip"];

/// A verify body as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// Any string: one that is not a secret of ours is `NOT_FOUND`, not a body error.
    key: Text,
    #[serde(default, deserialize_with = "wanted")]
    permissions: Vec<Permission>,
    #[serde(default)]
    cost: Option<Cost>,
    /// Where the calling service's client is: what a key's allow-list is checked against.
    #[serde(default)]
    client_ip: Option<Ip>,
}

checked_type!(
    /// What a verify spends: an integer from 0 to [`MAX_COST`].
    Cost(u64) by cost_value
);

fn cost_value(value: &Value) -> Result<u64, String> {
    super::fields::whole_number(value)
        .filter(|c| *c <= MAX_COST)
        .ok_or_else(|| format!("must be an integer from 0 to {MAX_COST}"))
}

/// Reads a verify body (the request's headers for its Content-Type, and its bytes).
pub fn parse_verify_body(headers: &HeaderMap, body: &[u8]) -> Result<VerifyRequest, ApiError> {
    let fields = read(headers, body, Accepts::Json, Presence::Required)?.unwrap_or_default();
    let body: VerifyBody = parse(&fields, FIELDS, &[])?;
    let cost = body.cost.map_or(1, |c| c.0);
    Ok(VerifyRequest::new(body.key.0, body.permissions)
        .costing(cost)
        .from_client(body.client_ip.map(|ip| ip.0)))
}

/// The permissions the caller needs the key to hold; `null` is none.
fn wanted<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Permission>, D::Error> {
    checked(d, |value| match value {
        Value::Null => Ok(Vec::new()),
        list => permission_list(list),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::{HeaderValue, header};

    #[test]
    fn fields_lists_what_serde_reads() {
        assert_eq!(
            crate::http::body::read::serde_fields::<VerifyBody>(),
            FIELDS
        );
    }

    fn json() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    fn parse(body: &[u8]) -> Result<VerifyRequest, ApiError> {
        parse_verify_body(&json(), body)
    }

    #[test]
    fn a_key_with_or_without_permissions_parses() {
        let r = parse(br#"{"key":"apk_x"}"#).unwrap();
        assert_eq!((r.key(), r.permissions.len()), ("apk_x", 0));
        let r = parse(br#"{"key":"apk_x","permissions":null}"#).unwrap();
        assert!(r.permissions.is_empty());
        let r = parse(br#"{"permissions":["calls.view","api_keys.view"],"key":""}"#).unwrap();
        assert_eq!(
            r.permissions,
            [Permission::CallsView, Permission::ApiKeysView]
        );
        assert_eq!(
            r.key(),
            "",
            "a malformed key is NOT_FOUND, not a body error"
        );
    }

    #[test]
    fn bad_bodies_get_the_write_sides_statuses_naming_the_field() {
        let secret = crate::secret::Secret::from_random([1; 24]);
        let echo = format!(
            r#"{{"key":"{}","permissions":["{}"]}}"#,
            secret.expose(),
            secret.expose()
        );
        let cases: Vec<(Vec<u8>, u16, Option<&str>)> = vec![
            (b"{\"key\": ".to_vec(), 400, None),
            (b"".to_vec(), 400, None),
            (b"[]".to_vec(), 422, Some("body")),
            (b"{}".to_vec(), 422, Some("key")),
            (b"{\"key\":null}".to_vec(), 422, Some("key")),
            (b"{\"key\":42}".to_vec(), 422, Some("key")),
            (b"{\"key\":\"k\",\"key\":\"j\"}".to_vec(), 422, Some("key")),
            (b"{\"key\":\"k\",\"scope\":1}".to_vec(), 422, Some("scope")),
            (
                b"{\"key\":\"k\",\"permissions\":\"calls.view\"}".to_vec(),
                422,
                Some("permissions"),
            ),
            (
                b"{\"key\":\"k\",\"permissions\":[\"calls.view\",1]}".to_vec(),
                422,
                Some("permissions"),
            ),
            (
                b"{\"key\":\"k\",\"permissions\":[\"calls.read\"]}".to_vec(),
                422,
                Some("permissions"),
            ),
            (echo.into_bytes(), 422, Some("permissions")),
        ];
        for (body, status, field) in &cases {
            let err = parse(body).unwrap_err();
            let text = String::from_utf8_lossy(body);
            assert_eq!(err.status().as_u16(), *status, "{text}");
            let problem = err.problem("r");
            assert_eq!(problem.parameter.as_deref(), *field, "{text}");
            assert!(
                !problem.detail.contains(&secret.expose()[4..]),
                "{problem:?}"
            );
        }
        let big = format!(
            r#"{{"key":"{}"}}"#,
            "a".repeat(crate::http::body::MAX_BODY_BYTES)
        );
        assert_eq!(parse(big.as_bytes()).unwrap_err().status().as_u16(), 413);
        let mut text = json();
        text.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let err = parse_verify_body(&text, br#"{"key":"k"}"#).unwrap_err();
        assert_eq!(err.status().as_u16(), 415);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let secret = crate::secret::Secret::from_random([2; 24]);
        let r = VerifyRequest::new(secret.expose(), vec![]);
        assert!(!format!("{r:?}").contains(&secret.expose()[4..]));
    }
}
