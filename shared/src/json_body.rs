//! JSON request bodies: their media type, their size bound, and how a body that cannot be
//! read becomes a precise problem: `415` when it is not JSON, `413` when it is too large,
//! `400` when the JSON itself breaks (saying where), `422` when a field is missing, unknown or
//! of the wrong type (naming the field).
//!
//! Bodies are parsed into a `serde_json::Value` and then read field by field, so that every
//! `422` names the field at fault (`key`, `permissions[2]`, `[3].token`) and no reason ever
//! echoes a value the client sent: a value may be a secret.

use lambda_http::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::redact_secrets;

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The `Content-Type` is not JSON (415).
    #[error("the body must be JSON: send Content-Type: application/json")]
    UnsupportedMediaType,
    /// More bytes than the endpoint accepts (413).
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// More entries than the endpoint accepts (413).
    #[error("the body holds more than {limit} entries")]
    TooManyEntries { limit: usize },
    /// Not JSON at all (400).
    #[error("the body is not valid JSON: {reason} at line {line}, column {column}")]
    Syntax {
        reason: String,
        line: usize,
        column: usize,
    },
    /// Valid JSON of the wrong shape (422).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TooLarge { .. } | BodyError::TooManyEntries { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            BodyError::Syntax { .. } => StatusCode::BAD_REQUEST,
            BodyError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// A `422` for `field`. Both texts are redacted of anything shaped like a secret.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        BodyError::Invalid {
            field: redact_secrets(field.into()),
            reason: redact_secrets(reason.into()),
        }
    }

    /// The field at fault, for a `422`.
    pub fn field(&self) -> Option<&str> {
        match self {
            BodyError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Accepts `application/json` and any `+json` type, with parameters (`; charset=utf-8`).
pub fn check_content_type(value: Option<&str>) -> Result<(), BodyError> {
    let essence = value
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if json {
        Ok(())
    } else {
        Err(BodyError::UnsupportedMediaType)
    }
}

/// Parses a body of at most `limit` bytes as JSON. The size is checked before any parsing.
pub fn parse_json(body: &[u8], limit: usize) -> Result<Value, BodyError> {
    if body.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's syntax messages name what it expected, never the input itself; its
        // text ends with the position, which the problem gives separately.
        let text = e.to_string();
        let reason = match text.rfind(" at line ") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        BodyError::Syntax {
            reason: redact_secrets(reason),
            line: e.line(),
            column: e.column(),
        }
    })
}

/// `value` as an object, or a `422` naming `path` (`body` for the whole body).
pub fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BodyError> {
    value.as_object().ok_or_else(|| {
        BodyError::invalid(path, format!("must be a JSON object, not {}", kind(value)))
    })
}

/// Refuses any member of `map` not in `allowed`, naming the first one found.
pub fn reject_unknown(
    map: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), BodyError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(BodyError::invalid(
            join(prefix, unknown),
            format!(
                "is not a known field; the fields are {}",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The string member `name`: `None` when absent or null, a `422` when of another type.
pub fn optional_string<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<&'a str>, BodyError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(BodyError::invalid(
            join(prefix, name),
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

/// The string member `name`, which must be present.
pub fn required_string<'a>(
    map: &'a Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<&'a str, BodyError> {
    optional_string(map, name, prefix)?
        .ok_or_else(|| BodyError::invalid(join(prefix, name), "is required"))
}

/// The JSON type of a value, as a problem names it.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `prefix.name`, or `name` at the top level.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_accepted_and_others_are_415() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert_eq!(check_content_type(Some(ok)), Ok(()), "{ok}");
        }
        for bad in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/jsonx"),
        ] {
            let err = check_content_type(bad).unwrap_err();
            assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad:?}");
        }
    }

    #[test]
    fn the_size_is_checked_before_the_json() {
        let err = parse_json(b"{not json at all", 4).unwrap_err();
        assert_eq!(err, BodyError::TooLarge { limit: 4 });
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(parse_json(b"[1]", 3).is_ok(), "the limit is inclusive");
    }

    #[test]
    fn broken_json_is_a_400_that_says_where() {
        let err = parse_json(b"{\n  \"key\": [1,,2]\n}", 100).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let BodyError::Syntax { line, reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*line, 2);
        assert!(!reason.contains("at line"), "{reason}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn shape_errors_are_422s_naming_the_field_without_echoing_values() {
        let secret = crate::secret::Secret::from_random([3; 24]);
        let v = serde_json::json!({"key": 5, "extra": secret.expose()});
        let map = object(&v, "body").unwrap();
        let err = required_string(map, "key", "").unwrap_err();
        assert_eq!(err.field(), Some("key"));
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.to_string(), "key: must be a string, not a number");
        let err = reject_unknown(map, &["key"], "[0]").unwrap_err();
        assert_eq!(err.field(), Some("[0].extra"));
        assert!(!err.to_string().contains(secret.expose()));
        assert_eq!(
            required_string(map, "absent", "").unwrap_err().to_string(),
            "absent: is required"
        );
        let err = object(&serde_json::json!([]), "body").unwrap_err();
        assert_eq!(err.to_string(), "body: must be a JSON object, not an array");
    }
}
