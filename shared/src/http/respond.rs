//! Rendering: JSON bodies, problems (RFC 9457) and their headers, entity tags and the
//! caching headers of a 200 or 304.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::http::problem::{ApiError, RETRY_AFTER_SECS};

pub(super) const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// How long a client may reuse a 200 without asking again: keys change rarely, and a
/// change (disabling a key, say) is visible to every client within this many seconds.
pub const MAX_AGE_SECS: u32 = 5;

/// The entity tag of a body: a strong validator, the first 128 bits of its SHA-256.
pub(super) fn etag(body: &[u8]) -> String {
    format!("\"{}\"", crate::digest::sha256_hex(body, 16))
}

/// Whether `If-None-Match` names this tag, or is `*` (RFC 9110, section 13.1.2: weak
/// comparison, so `W/"x"` matches `"x"`).
pub(super) fn if_none_match(req: &Request, tag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// Marks a 200 or 304 as privately cacheable for [`MAX_AGE_SECS`], under its tag. It varies
/// with the credentials, which decide the organization and so the body.
pub(super) fn cacheable(headers: &mut lambda_http::http::HeaderMap, tag: &str) {
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("private, max-age={MAX_AGE_SECS}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Authorization, X-API-KEY, Accept"),
    );
}

/// 304 Not Modified: no body, the same validator and caching headers as the 200.
pub(super) fn not_modified(tag: &str) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    cacheable(headers, tag);
    response
}

pub(super) fn problem_response(err: &ApiError, request_id: &str, pretty: bool) -> Response<Body> {
    let mut response = respond(
        err.status(),
        PROBLEM_JSON,
        to_json(&err.problem(request_id), pretty),
    );
    let headers = response.headers_mut();
    match err {
        ApiError::Unauthenticated(why) => {
            let challenge = match why {
                crate::error::AuthFailure::Missing => r#"Bearer realm="apikeys""#,
                _ => r#"Bearer realm="apikeys", error="invalid_token""#,
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        ApiError::MethodNotAllowed { allow } => {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Store(crate::store::StoreError::Unavailable(_)) | ApiError::KeysUnavailable => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        _ => {}
    }
    response
}

pub(super) fn to_json<T: Serialize>(value: &T, pretty: bool) -> Vec<u8> {
    // Our response types hold only strings, numbers and bools: serializing cannot fail.
    if pretty {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        body
    } else {
        serde_json::to_vec(value).unwrap_or_default()
    }
}
