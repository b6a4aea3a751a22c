//! Query and path parameters: each known, given at most once, and well formed, else a 422
//! naming it.

use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Request, RequestExt};

use crate::error::ParamError;
use crate::http::problem::ApiError;
use crate::key::{InvalidUuid, KeyId};

/// The query parameters of the endpoints that take none but `pretty`.
pub(super) const ONLY_PRETTY: &[&str] = &["pretty"];

/// `pretty`: `true` or `false` (the default); anything else is refused.
pub(super) fn parse_pretty(value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ParamError::new(
            "pretty",
            format!("must be \"true\" or \"false\", got {other:?}"),
        )),
    }
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

/// Without path parameters (a bare local invocation): the segment after `api_key` or
/// `api_keys`, as in `/v1/api_key/{id}/roll`.
fn id_segment(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    segments.find(|s| *s == "api_key" || *s == "api_keys")?;
    segments.next()
}
