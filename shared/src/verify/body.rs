//! The verify request body: `{"key": "<secret>", "permissions": ["calls.view", …]}`.
//!
//! `key` is a required string; `permissions` is optional (absent or null: none required),
//! a list of the application's permission names. Bodies follow the write side's rules: over
//! [`MAX_VERIFY_BODY_BYTES`] is `413`, broken JSON `400`, an unknown field, a wrong type or an
//! unknown permission `422` naming the field. A `key` that is not one of our secrets is not
//! an error here: the answer is `NOT_FOUND`, like any key that does not exist.

use std::fmt;

use serde_json::Value;

use crate::json_body::{BodyError, kind, object, parse_json, reject_unknown, required_string};
use crate::key::Permission;

/// The largest verify body accepted, as for every write body.
pub const MAX_VERIFY_BODY_BYTES: usize = 16 * 1024;

/// A parsed verify request. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    key: String,
    /// Every one must be granted; sorted, without duplicates.
    pub permissions: Vec<Permission>,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl VerifyRequest {
    pub fn new(key: impl Into<String>, mut permissions: Vec<Permission>) -> Self {
        permissions.sort();
        permissions.dedup();
        VerifyRequest {
            key: key.into(),
            permissions,
        }
    }

    /// The key to verify, as presented.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Parses a verify body.
pub fn parse_verify_body(body: &[u8]) -> Result<VerifyRequest, BodyError> {
    let value = parse_json(body, MAX_VERIFY_BODY_BYTES)?;
    let map = object(&value, "body")?;
    reject_unknown(map, &["key", "permissions"], "")?;
    let key = required_string(map, "key", "")?;
    let permissions = match map.get("permissions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("permissions[{i}]");
                let name = p.as_str().ok_or_else(|| {
                    BodyError::invalid(&field, format!("must be a string, not {}", kind(p)))
                })?;
                name.parse::<Permission>()
                    .map_err(|_| BodyError::invalid(&field, "is not a known permission"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(BodyError::invalid(
                "permissions",
                format!("must be an array of permission names, not {}", kind(other)),
            ));
        }
    };
    Ok(VerifyRequest::new(key, permissions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::StatusCode;

    #[test]
    fn a_key_with_or_without_permissions_parses() {
        let r = parse_verify_body(br#"{"key":"apk_x"}"#).unwrap();
        assert_eq!((r.key(), r.permissions.len()), ("apk_x", 0));
        let r = parse_verify_body(br#"{"key":"apk_x","permissions":null}"#).unwrap();
        assert!(r.permissions.is_empty());
        let r = parse_verify_body(
            br#"{"permissions":["calls.view","api_keys.view","calls.view"],"key":""}"#,
        )
        .unwrap();
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
            r#"{{"key":"{}","permissions":"{}"}}"#,
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
            (b"{\"key\":\"k\",\"scope\":1}".to_vec(), 422, Some("scope")),
            (
                b"{\"key\":\"k\",\"permissions\":\"calls.view\"}".to_vec(),
                422,
                Some("permissions"),
            ),
            (
                b"{\"key\":\"k\",\"permissions\":[\"calls.view\",1]}".to_vec(),
                422,
                Some("permissions[1]"),
            ),
            (
                b"{\"key\":\"k\",\"permissions\":[\"calls.read\"]}".to_vec(),
                422,
                Some("permissions[0]"),
            ),
            (echo.into_bytes(), 422, Some("permissions")),
        ];
        for (body, status, field) in &cases {
            let err = parse_verify_body(body).unwrap_err();
            assert_eq!(
                err.status().as_u16(),
                *status,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.field(), *field, "{err}");
            assert!(!err.to_string().contains(&secret.expose()[4..]), "{err}");
        }
        let big = format!(r#"{{"key":"{}"}}"#, "a".repeat(MAX_VERIFY_BODY_BYTES));
        let err = parse_verify_body(big.as_bytes()).unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let secret = crate::secret::Secret::from_random([2; 24]);
        let r = VerifyRequest::new(secret.expose(), vec![]);
        assert!(!format!("{r:?}").contains(&secret.expose()[4..]));
    }
}
