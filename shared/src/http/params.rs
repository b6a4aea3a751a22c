//! Query and path parameters: each known, given at most once, and well formed, else a 422
//! naming it. A query string is deserialized by serde into the endpoint's query type, which
//! names every parameter it takes (`deny_unknown_fields`).

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Request, RequestExt};
use serde::Deserialize;
use serde::de::value::{Error as ValueError, MapDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};

use crate::error::ParamError;
use crate::http::problem::ApiError;
use crate::key::{InvalidUuid, KeyId};
use crate::owner::OwnerId;
use crate::page::parse_flag;

/// The query parameters of the endpoints that take none but `pretty`.
pub(super) const ONLY_PRETTY: &[&str] = &["pretty"];

/// `pretty`: `true` or `false` (the default); anything else is refused.
pub(super) fn parse_pretty(value: Option<&str>) -> Result<bool, ParamError> {
    Ok(value
        .map(|s| parse_flag("pretty", s))
        .transpose()?
        .unwrap_or(false))
}

/// Refuses a parameter the endpoint does not know, so that a typo (`limt=5`) or a feature
/// this version lacks is an error, not a silently different answer.
pub(super) fn known_parameters(q: Option<&QueryMap>, known: &[&str]) -> Result<(), ParamError> {
    let Some(unknown) = q.and_then(|q| q.iter().map(|(k, _)| k).find(|k| !known.contains(k)))
    else {
        return Ok(());
    };
    let takes = if known.is_empty() {
        "this endpoint takes no query parameters".to_owned()
    } else {
        format!("this endpoint takes {}", known.join(", "))
    };
    Err(ParamError::new(
        unknown,
        format!("is not a known parameter: {takes}"),
    ))
}

/// The query string as `T`, whose parameters are `known` (in the order they are checked):
/// first any unknown parameter is refused, then any given more than once, then each value
/// is deserialized, in the order of `known`, and a value `T` refuses is a 422 naming it.
pub(super) fn query<'a, T: Deserialize<'a>>(
    q: Option<&'a QueryMap>,
    known: &[&'a str],
) -> Result<T, ParamError> {
    known_parameters(q, known)?;
    let mut pairs = Vec::new();
    for name in known {
        if let Some(value) = single(q, name)? {
            pairs.push((*name, Value(value)));
        }
    }
    serde_path_to_error::deserialize(MapDeserializer::new(pairs.into_iter())).map_err(|e| {
        let parameter = e.path().to_string();
        ParamError::new(parameter, e.into_inner().to_string())
    })
}

/// One value of a query parameter: a string, which an `Option` takes as `Some`.
struct Value<'a>(&'a str);

impl<'a> IntoDeserializer<'a, ValueError> for Value<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// A query parameter given at most once.
pub(super) fn single<'a>(
    q: Option<&'a QueryMap>,
    name: &str,
) -> Result<Option<&'a str>, ParamError> {
    let Some(values) = q.and_then(|q| q.all(name)) else {
        return Ok(None);
    };
    match values.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(ParamError::new(name, "was given more than once")),
    }
}

/// The key id path parameter (`id` or `api_key_id`), as API Gateway (or the local router)
/// passes it.
pub(super) fn path_id(req: &Request, name: &'static str) -> Result<KeyId, ApiError> {
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .or_else(|| id_segment(req.raw_http_path()))
        .unwrap_or("");
    // A path segment may be percent-encoded (RFC 3986: `%30` is `0`, `%3A` is `:`). API
    // Gateway may pass the parameter as the client sent it, and the local router does: decode
    // it once. A decoded id never holds `%`, so an id decoded earlier is left as it is.
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::Invalid(ParamError::new(name, InvalidUuid.to_string())))?;
    decoded
        .parse::<KeyId>()
        .map_err(|e| ApiError::Invalid(ParamError::new(name, e.to_string())))
}

/// The owner id path parameter (`owner_id`), decoded once as [`path_id`] decodes a key id.
pub(super) fn path_owner(req: &Request) -> Result<OwnerId, ApiError> {
    const NAME: &str = "owner_id";
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first(NAME))
        .or_else(|| segment_after(req.raw_http_path(), "owner"))
        .unwrap_or("");
    let invalid = |why: String| ApiError::Invalid(ParamError::new(NAME, why));
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| invalid("is not UTF-8 once percent-decoded".into()))?;
    decoded
        .parse::<OwnerId>()
        .map_err(|e| invalid(e.to_string()))
}

/// The path segment after the segment `name`.
fn segment_after<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == name)?;
    segments.next()
}

/// Without path parameters (a bare local invocation): the segment after `api_key` or
/// `api_keys`, as in `/v1/api_key/{id}/roll`.
fn id_segment(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == "api_key" || *s == "api_keys")?;
    segments.next()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::page::RawEventParams;
    use crate::page::RawListParams;

    fn map(pairs: &[(&str, &[&str])]) -> QueryMap {
        let map: HashMap<String, Vec<String>> = pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect();
        map.into()
    }

    /// The names serde knows for `T`: those it lists when refusing an unknown one.
    fn serde_fields<'a, T: Deserialize<'a>>() -> Vec<String> {
        let pairs = [("no such parameter", Value(""))];
        let err = T::deserialize(MapDeserializer::<_, ValueError>::new(pairs.into_iter()))
            .err()
            .expect("an unknown field is refused");
        let text = err.to_string();
        let (_, expected) = text.split_once("expected one of ").expect(&text);
        expected
            .split(", ")
            .map(|f| f.trim_matches('`').to_owned())
            .collect()
    }

    #[test]
    fn each_query_type_names_exactly_its_parameters_in_order() {
        assert_eq!(serde_fields::<RawListParams>(), RawListParams::PARAMETERS);
        assert_eq!(serde_fields::<RawEventParams>(), RawEventParams::PARAMETERS);
    }

    #[test]
    fn a_query_is_deserialized_with_each_value_borrowed() {
        let q = map(&[("limit", &["5"]), ("name", &["ci"]), ("pretty", &["true"])]);
        let raw: RawListParams = query(Some(&q), RawListParams::PARAMETERS).unwrap();
        assert_eq!(
            (raw.limit, raw.name, raw.pretty),
            (Some("5"), Some("ci"), Some("true"))
        );
        assert_eq!(raw.order, None);
        let none: RawListParams = query(None, RawListParams::PARAMETERS).unwrap();
        assert_eq!(none.limit, None);
    }

    #[test]
    fn an_unknown_parameter_then_a_repeated_one_is_refused_by_name() {
        let q = map(&[("limt", &["5"]), ("limit", &["1", "2"])]);
        let err = query::<RawListParams>(Some(&q), RawListParams::PARAMETERS).unwrap_err();
        assert_eq!(err.param, "limt");
        assert!(
            err.reason
                .starts_with("is not a known parameter: this endpoint takes limit, order")
        );
        let q = map(&[("order", &["asc", "desc"]), ("limit", &["1", "2"])]);
        let err = query::<RawEventParams>(Some(&q), RawEventParams::PARAMETERS).unwrap_err();
        assert_eq!(
            (err.param.as_str(), err.reason.as_str()),
            ("limit", "was given more than once")
        );
    }
}
