//! Reading the JSON body of a write: its media type (415), its size (413), its syntax (400),
//! and its top level, which must be one object whose members each appear once (422).
//!
//! What the fields mean is for the endpoint's own module ([`super::create`],
//! [`super::patch`], [`super::roll`]); this module only hands them over as [`Fields`].

use lambda_http::Request;
use lambda_http::http::{HeaderMap, header};
use serde::Deserialize;
use serde::de::value::MapDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::{ParamError, redact_secrets};
use crate::http::problem::ApiError;

/// The largest body a write takes, in bytes. It is measured on the bytes the JSON parser
/// reads, after API Gateway's base64 encoding (if any) is undone by `lambda_http`.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The name under which a problem with the body as a whole (not one of its fields) is
/// reported in a 422's `parameter`.
pub const WHOLE_BODY: &str = "body";

/// The media types a write endpoint takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// `application/json` (create, roll).
    Json,
    /// `application/merge-patch+json` or `application/json` (update, RFC 7396).
    MergePatch,
}

impl Accepts {
    fn describe(self) -> &'static str {
        match self {
            Accepts::Json => "application/json",
            Accepts::MergePatch => "application/merge-patch+json or application/json",
        }
    }

    fn admits(self, media: &str) -> bool {
        media == "application/json"
            || (self == Accepts::MergePatch && media == "application/merge-patch+json")
    }
}

/// Whether the endpoint's body may be left out. An empty body (no bytes, or only JSON
/// whitespace) without a Content-Type then means "all defaults".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
}

/// The members of the body's top-level object, in the order they were sent, each name
/// once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(pub Vec<(String, Value)>);

/// A 422 naming a field of the body.
pub fn field_error(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::InvalidField(ParamError::new(field, reason))
}

/// The checked members as the endpoint's body type `T`, a `deny_unknown_fields` struct whose
/// field types carry their own rule (their error message is the reason shown). `known` and
/// `read_only` are the fields `T` takes and the key object's fields that cannot be written
/// here, for the reason given for an unknown field. Members are read in the order sent.
pub fn parse<'de, T: Deserialize<'de>>(
    fields: &'de Fields,
    known: &[&str],
    read_only: &[&str],
) -> Result<T, ApiError> {
    let members = fields.0.iter().map(|(name, value)| (name.as_str(), value));
    let de = MapDeserializer::<_, serde_json::Error>::new(members);
    serde_path_to_error::deserialize(de).map_err(|e| body_error(e, known, read_only))
}

/// The one map from a failed deserialization to a 422: the field is the path that failed
/// (`[3].token` inside an array), and serde's own categories take the API's wording.
pub fn body_error(
    err: serde_path_to_error::Error<serde_json::Error>,
    known: &[&str],
    read_only: &[&str],
) -> ApiError {
    let path = err.path().clone();
    let message = err.into_inner().to_string();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.strip_suffix('`').unwrap_or(rest);
        let name = match path.to_string().as_str() {
            "." => name.to_owned(),
            parent => format!("{parent}.{name}"),
        };
        return field_error(&name, "is required");
    }
    if message.starts_with("unknown field `") {
        let name = match path.iter().next_back() {
            Some(Segment::Map { key }) => key.clone(),
            _ => path.to_string(),
        };
        let reason = if read_only.contains(&name.as_str()) {
            format!(
                "cannot be written; the fields you may send are {}",
                known.join(", ")
            )
        } else {
            format!("is not a known field; the fields are {}", known.join(", "))
        };
        return field_error(&name, reason);
    }
    field_error(&path.to_string(), message)
}

/// The member names serde reads for the struct `T`: a body's `FIELDS` list is checked
/// against them in its tests.
#[cfg(test)]
pub(crate) fn serde_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Names<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Names<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("names taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

/// The body's top-level members, from a request: see [`read`].
pub fn read_request(
    req: &Request,
    accepts: Accepts,
    presence: Presence,
) -> Result<Option<Fields>, ApiError> {
    // lambda_http has already decoded a base64 body (`isBase64Encoded`), so these are the
    // bytes the client sent.
    read(req.headers(), req.body().as_ref(), accepts, presence)
}

/// Checks the Content-Type, the size and the syntax of `body`, in that order, and returns
/// its top-level members. `None` when the body is optional and empty, and no Content-Type
/// was sent (or a JSON one).
pub fn read(
    headers: &HeaderMap,
    body: &[u8],
    accepts: Accepts,
    presence: Presence,
) -> Result<Option<Fields>, ApiError> {
    let empty = body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match content_type(headers, accepts)? {
        None if empty && presence == Presence::Optional => return Ok(None),
        None if empty => {
            return Err(ApiError::MalformedBody(format!(
                "this endpoint needs a JSON object as its body, sent as {}",
                accepts.describe()
            )));
        }
        None => return Err(unsupported(accepts, None)),
        Some(()) => {}
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    if empty {
        return match presence {
            Presence::Optional => Ok(None),
            Presence::Required => Err(ApiError::MalformedBody(
                "the body is empty; this endpoint needs a JSON object".into(),
            )),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = de
        .deserialize_any(TopLevelVisitor)
        .and_then(|top| de.end().map(|()| top))
        .map_err(syntax_error)?;
    match top {
        TopLevel::Object(fields) => Ok(Some(Fields(fields))),
        TopLevel::Repeated(name) => Err(field_error(&name, "was given more than once")),
        TopLevel::Other(kind) => Err(field_error(
            WHOLE_BODY,
            format!("must be a JSON object, not {kind}"),
        )),
    }
}

/// Like [`read`], for a body whose top level need not be an object (GitHub's secret scanning
/// report is an array): checks the Content-Type (`application/json`), the size (at most
/// `limit` bytes) and the syntax, in that order, and returns the JSON value. An empty body
/// is a 400.
pub fn read_value(headers: &HeaderMap, body: &[u8], limit: usize) -> Result<Value, ApiError> {
    if content_type(headers, Accepts::Json)?.is_none() {
        return Err(unsupported(Accepts::Json, None));
    }
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge {
            size: body.len(),
            limit,
        });
    }
    if body
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Err(ApiError::MalformedBody(
            "the body is empty; this endpoint needs JSON".into(),
        ));
    }
    serde_json::from_slice(body).map_err(syntax_error)
}

/// A 400 for JSON that does not parse. serde_json's syntax messages say what it expected
/// and where, never the input itself.
fn syntax_error(e: serde_json::Error) -> ApiError {
    ApiError::MalformedBody(format!("the body is not valid JSON: {e}"))
}

/// `Ok(Some(()))` for a Content-Type the endpoint takes, `Ok(None)` for none at all.
fn content_type(headers: &HeaderMap, accepts: Accepts) -> Result<Option<()>, ApiError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.get_all(header::CONTENT_TYPE).iter().count() {
            0 => Ok(None),
            _ => Err(unsupported(accepts, Some("several Content-Type headers"))),
        };
    };
    let Ok(text) = value.to_str() else {
        return Err(unsupported(accepts, Some("a value that is not ASCII")));
    };
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if !accepts.admits(&media) {
        return Err(unsupported(accepts, Some(text)));
    }
    // JSON is UTF-8 (RFC 8259): a charset parameter may say so, and nothing else.
    for parameter in parts {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") {
                return Err(unsupported(accepts, Some(text)));
            }
        }
    }
    Ok(Some(()))
}

/// A 415. What the client sent is shown shortened and with any secret redacted.
fn unsupported(accepts: Accepts, got: Option<&str>) -> ApiError {
    let got = got.map(|g| {
        let short: String = g.chars().take(100).collect();
        redact_secrets(short)
    });
    ApiError::UnsupportedMediaType {
        accepted: match accepts {
            Accepts::Json => "application/json (charset UTF-8 if any)",
            Accepts::MergePatch => {
                "application/merge-patch+json or application/json (charset UTF-8 if any)"
            }
        },
        got,
    }
}

/// The top level of a body, read in one pass: an object's members (with the first name
/// that appears twice, which `serde_json::Value` would silently collapse), or the kind of
/// value it is instead.
enum TopLevel {
    Object(Vec<(String, Value)>),
    Repeated(String),
    Other(&'static str),
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let mut fields: Vec<(String, Value)> = Vec::new();
        let mut repeated = None;
        while let Some(name) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if fields.iter().any(|(n, _)| *n == name) {
                repeated.get_or_insert(name);
            } else {
                fields.push((name, value));
            }
        }
        Ok(match repeated {
            Some(name) => TopLevel::Repeated(name),
            None => TopLevel::Object(fields),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other("an array"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("a string"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other("null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn ct(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        h
    }

    fn status(r: Result<Option<Fields>, ApiError>) -> u16 {
        r.err().map_or(200, |e| e.status().as_u16())
    }

    fn field_of(r: Result<Option<Fields>, ApiError>) -> String {
        match r {
            Err(ApiError::InvalidField(p)) => p.param,
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn json_media_types_are_accepted_with_a_utf8_charset() {
        for value in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            "application/json; foo=bar",
        ] {
            let r = read(&ct(value), b"{}", Accepts::Json, Presence::Required);
            assert_eq!(r.unwrap(), Some(Fields::default()), "{value}");
        }
        let r = read(
            &ct("application/merge-patch+json"),
            b"{}",
            Accepts::MergePatch,
            Presence::Required,
        );
        assert!(r.is_ok());
    }

    #[test]
    fn any_other_media_type_is_415() {
        for (value, accepts) in [
            ("text/plain", Accepts::Json),
            ("application/x-www-form-urlencoded", Accepts::Json),
            ("application/merge-patch+json", Accepts::Json),
            ("application/json-patch+json", Accepts::MergePatch),
            ("application/json; charset=latin1", Accepts::Json),
            ("application/json, text/plain", Accepts::Json),
            ("", Accepts::Json),
        ] {
            let r = read(&ct(value), b"{}", accepts, Presence::Required);
            assert_eq!(status(r), 415, "{value}");
        }
        // Even with an empty body: the client said it sends something else.
        let r = read(&ct("text/plain"), b"", Accepts::Json, Presence::Optional);
        assert_eq!(status(r), 415);
        // A body without any Content-Type.
        let r = read(&HeaderMap::new(), b"{}", Accepts::Json, Presence::Optional);
        assert_eq!(status(r), 415);
        let mut two = ct("application/json");
        two.append(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            status(read(&two, b"{}", Accepts::Json, Presence::Required)),
            415
        );
    }

    #[test]
    fn the_415_detail_says_what_is_taken_and_redacts_secrets() {
        let secret = crate::secret::Secret::from_random([5; 24]);
        let value = format!("text/plain; x={}", secret.expose());
        let err = read(&ct(&value), b"{}", Accepts::MergePatch, Presence::Required).unwrap_err();
        let detail = err.problem("r").detail;
        assert!(detail.contains("application/merge-patch+json"), "{detail}");
        assert!(detail.contains("text/plain") && !detail.contains(secret.expose()));
        assert!(!err.to_string().contains(secret.expose()));
    }

    #[test]
    fn an_empty_body_is_the_default_only_where_the_body_is_optional() {
        for body in [&b""[..], b"  \n"] {
            let r = read(&HeaderMap::new(), body, Accepts::Json, Presence::Optional);
            assert_eq!(r.unwrap(), None);
            let r = read(
                &ct("application/json"),
                body,
                Accepts::Json,
                Presence::Optional,
            );
            assert_eq!(r.unwrap(), None);
            for h in [HeaderMap::new(), ct("application/json")] {
                let r = read(&h, body, Accepts::Json, Presence::Required);
                assert_eq!(status(r), 400);
            }
        }
    }

    #[test]
    fn a_body_over_16_kib_is_413_and_16_kib_is_taken() {
        let fits = format!("{{\"name\":\"{}\"}}", " ".repeat(MAX_BODY_BYTES - 11));
        assert_eq!(fits.len(), MAX_BODY_BYTES);
        let r = read(
            &ct("application/json"),
            fits.as_bytes(),
            Accepts::Json,
            Presence::Required,
        );
        assert!(r.is_ok());
        let over = format!("{fits} ");
        let r = read(
            &ct("application/json"),
            over.as_bytes(),
            Accepts::Json,
            Presence::Required,
        );
        let err = r.unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        assert!(err.problem("r").detail.contains("16384"));
    }

    #[test]
    fn malformed_json_is_400_saying_where() {
        for (body, at) in [
            (&b"{\"name\": }"[..], "line 1 column 10"),
            (b"{\n  \"a\": 1,\n  \"b\" 2\n}", "line 3 column 7"),
            (b"{} x", "line 1 column 4"),
            (b"{\"a\": \"\\ud800\"}", "line 1 column"),
            (b"\xef\xbb\xbf{}", "line 1 column 1"),
            (b"{\"a\": \"\xff\"}", "line 1 column"),
        ] {
            let err = read(
                &ct("application/json"),
                body,
                Accepts::Json,
                Presence::Required,
            )
            .unwrap_err();
            assert_eq!(err.status().as_u16(), 400);
            let detail = err.problem("r").detail;
            assert!(detail.contains(at), "{detail}");
            assert!(detail.starts_with("the body is not valid JSON"), "{detail}");
        }
    }

    #[test]
    fn the_top_level_must_be_an_object_with_each_member_once() {
        for body in ["[]", "[1, {}]", "42", "\"x\"", "null", "true", "-1.5"] {
            let r = read(
                &ct("application/json"),
                body.as_bytes(),
                Accepts::Json,
                Presence::Required,
            );
            assert_eq!(field_of(r), WHOLE_BODY, "{body}");
        }
        let r = read(
            &ct("application/json"),
            br#"{"name": "a", "x": 1, "name": "b"}"#,
            Accepts::Json,
            Presence::Required,
        );
        assert_eq!(field_of(r), "name");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct OnlyA {
        a: Option<u8>,
    }

    #[test]
    fn members_keep_their_order_and_unknown_ones_are_named() {
        let fields = read(
            &ct("application/json"),
            br#"{"b": 1, "a": null}"#,
            Accepts::Json,
            Presence::Required,
        )
        .unwrap()
        .unwrap();
        assert_eq!(fields.0[0], ("b".to_owned(), serde_json::json!(1)));
        assert_eq!(fields.0[1], ("a".to_owned(), Value::Null));
        let err = parse::<OnlyA>(&fields, &["a"], &[]).unwrap_err();
        assert_eq!(err.problem("r").parameter.as_deref(), Some("b"));
        assert!(err.problem("r").detail.contains("not a known field"));
        let err = parse::<OnlyA>(&fields, &["a"], &["b"]).unwrap_err();
        assert!(err.problem("r").detail.contains("cannot be written"));
        // A member named "" is named as it is, so that the client can find it.
        let fields = read(
            &ct("application/json"),
            br#"{"": 1}"#,
            Accepts::Json,
            Presence::Required,
        );
        let err = parse::<OnlyA>(&fields.unwrap().unwrap(), &["a"], &[]).unwrap_err();
        assert_eq!(err.problem("r").parameter.as_deref(), Some(""));
        assert!(
            err.problem("r")
                .detail
                .starts_with("body field \"\" is not a known field")
        );
    }

    #[test]
    fn a_base64_body_is_measured_and_parsed_decoded() {
        use base64::Engine as _;
        let json = br#"{"grace_period_seconds": 5}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /v1/api_key/{id}/roll",
            "rawPath": "/v1/api_key/x/roll",
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "host": "localhost"},
            "requestContext": {
                "http": {"method": "POST", "path": "/v1/api_key/x/roll"},
                "routeKey": "POST /v1/api_key/{id}/roll",
                "stage": "$default",
                "requestId": "r1"
            },
            "body": encoded,
            "isBase64Encoded": true
        });
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let fields = read_request(&req, Accepts::Json, Presence::Optional)
            .unwrap()
            .unwrap();
        assert_eq!(
            fields.0,
            [("grace_period_seconds".to_owned(), serde_json::json!(5))]
        );
    }
}
