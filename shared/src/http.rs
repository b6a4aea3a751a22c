//! The two endpoints over API Gateway requests (REST v1 and HTTP API v2): method and content
//! negotiation, authentication, parameters, and rendering of bodies and problems.
//!
//! Checks run in this order, each answering with its own status: method (405), `Accept`
//! (406), credentials (401), permission (403), parameters (422), then the store (404, 503).

use std::time::Instant;

use chrono::Utc;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use tracing::{Instrument, field};

use crate::App;
use crate::auth::{Caller, authenticate};
use crate::deadline::Deadline;
use crate::error::{ApiError, ParamError, RETRY_AFTER_SECS};
use crate::filter::RawFilters;
use crate::key::{InvalidUuid, KeyId, KeyView, Permission};
use crate::page::{ListRequest, RawListParams, list_keys as read_page};
use crate::store::{CredentialStore, KeyReader};

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

/// `GET /v1/api_key/{id}` (the diga view) and `GET /v1/api_keys/{api_key_id}` (the discue
/// view): one key of the caller's organization. The route is told apart by the path
/// parameter's name or the route template, never by the raw path, which may carry a stage.
pub async fn get_key<S: KeyReader + CredentialStore>(app: &App<S>, req: Request) -> Response<Body> {
    let route = GetRoute::of(&req);
    serve(app, &req, async |caller: &Caller, pretty: bool| {
        known_parameters(req.query_string_parameters_ref(), GET_PARAMETERS)?;
        let id = path_id(&req, route.parameter())?;
        let key = app
            .store
            .get_key(&caller.org, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let now = Utc::now();
        Ok(match route {
            GetRoute::Diga => to_json(&key.view(now), pretty),
            GetRoute::Discue => to_json(&key.discue_view(now, self_href(&req)), pretty),
        })
    })
    .await
}

/// Which of the get-key function's routes a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GetRoute {
    /// `/v1/api_key/{id}`
    Diga,
    /// `/v1/api_keys/{api_key_id}`
    Discue,
}

impl GetRoute {
    const DISCUE_TEMPLATE: &str = "/v1/api_keys/{api_key_id}";

    fn of(req: &Request) -> Self {
        if let Some(params) = req.path_parameters_ref() {
            if params.first("api_key_id").is_some() {
                return GetRoute::Discue;
            }
            if params.first("id").is_some() {
                return GetRoute::Diga;
            }
        }
        let template = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(ctx)) => ctx.resource_path.as_deref(),
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
            _ => None,
        };
        match template {
            Some(t) if t.ends_with(Self::DISCUE_TEMPLATE) => GetRoute::Discue,
            Some(_) => GetRoute::Diga,
            // No route information (a bare local invocation): the path's last two segments.
            None if req.raw_http_path().contains("/api_keys/") => GetRoute::Discue,
            None => GetRoute::Diga,
        }
    }

    fn parameter(self) -> &'static str {
        match self {
            GetRoute::Diga => "id",
            GetRoute::Discue => "api_key_id",
        }
    }
}

/// The URL the client asked for, without its query: the discue view's `_links.self.href`.
/// The gateway's URI carries the host and, for a named stage, the stage.
fn self_href(req: &Request) -> String {
    let uri = req.uri();
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

/// `GET /v1/api_key/`: a page of the caller's organization's keys.
pub async fn list_keys<S: KeyReader + CredentialStore>(
    app: &App<S>,
    req: Request,
) -> Response<Body> {
    serve(app, &req, async |caller: &Caller, pretty: bool| {
        let q = req.query_string_parameters_ref();
        known_parameters(q, LIST_PARAMETERS)?;
        let raw = RawListParams {
            limit: single(q, "limit")?,
            order: single(q, "order")?,
            after: single(q, "after")?,
            before: single(q, "before")?,
            cursor: single(q, "cursor")?,
            page: single(q, "page")?,
            filters: RawFilters {
                status: single(q, "status")?,
                creator_id: single(q, "creator_id")?,
                restricted: single(q, "restricted")?,
                permission: single(q, "permission")?,
                name: single(q, "name")?,
            },
        };
        let request = ListRequest::parse(raw, &caller.org, &app.cursors)?;
        let page = read_page(&app.store, &caller.org, &request, &app.cursors).await?;
        let now = Utc::now();
        Ok(to_json(
            &PageBody {
                data: page.keys.iter().map(|k| k.view(now)).collect(),
                has_more: page.has_more,
                first_id: page.keys.first().map(|k| k.id),
                last_id: page.keys.last().map(|k| k.id),
                next_cursor: page.next_cursor.as_deref(),
                current_page: page.numbers.map(|n| n.current_page),
                total_pages: page.numbers.map(|n| n.total_pages),
                read_budget_exhausted: page.budget_exhausted,
            },
            pretty,
        ))
    })
    .await
}

/// The list response. `first_id`/`last_id` are null on an empty page; `next_cursor` is
/// null when `has_more` is false.
#[derive(Serialize)]
struct PageBody<'a> {
    data: Vec<KeyView<'a>>,
    has_more: bool,
    first_id: Option<KeyId>,
    last_id: Option<KeyId>,
    next_cursor: Option<&'a str>,
    /// Only for a numbered page (`page`).
    #[serde(skip_serializing_if = "Option::is_none")]
    current_page: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_pages: Option<u64>,
    /// Only for a filtered list: whether the page stopped at the read budget rather than at
    /// `limit` matches or the end, so that more matches may follow a short page.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_budget_exhausted: Option<bool>,
}

/// Runs the checks every endpoint shares, then `op`, all before the request's [`Deadline`],
/// and renders the outcome; logs one line per request with its id, organization, status and
/// duration.
async fn serve<S: CredentialStore>(
    app: &App<S>,
    req: &Request,
    op: impl AsyncFnOnce(&Caller, bool) -> Result<Vec<u8>, ApiError>,
) -> Response<Body> {
    let started = Instant::now();
    let deadline = Deadline::of(req.lambda_context_ref());
    let request_id = request_id(req);
    // `pretty=true` also shapes error bodies, even those refused before the parameters
    // are validated; an invalid value is a 422 at the parameter stage.
    let pretty_query = single(req.query_string_parameters_ref(), "pretty");
    let pretty_errors = matches!(pretty_query, Ok(Some("true")));
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        org = field::Empty,
        caller = field::Empty,
    );
    let pipeline = async {
        check_method(req.method())?;
        check_accept(req)?;
        let now = Utc::now();
        let caller = authenticate(&app.store, req.headers(), now).await?;
        let span = tracing::Span::current();
        span.record("org", field::display(&caller.org));
        span.record("caller", field::display(&caller.key_id));
        let work = async {
            caller.require(Permission::ApiKeysView)?;
            let pretty = parse_pretty(pretty_query.clone()?)?;
            op(&caller, pretty).await
        };
        // Recording the use runs alongside the request's own read and waits at most
        // `usage::WAIT` beyond it; it never fails the request.
        let (outcome, ()) = tokio::join!(work, app.usage.record(&app.store, &caller, now));
        outcome
    };
    // Boxed: the pipeline holds the endpoint's whole read, too large a future to move
    // around the stack once more inside the deadline's timer.
    let outcome = deadline
        .bound(Box::pin(pipeline))
        .instrument(span.clone())
        .await;

    let _enter = span.enter();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let response = match outcome {
        Ok(body) => {
            let tag = etag(&body);
            if if_none_match(req, &tag) {
                tracing::info!(status = 304, elapsed_ms, "not modified");
                not_modified(&tag)
            } else {
                tracing::info!(status = 200, elapsed_ms, "served");
                let mut response = respond(StatusCode::OK, JSON, body);
                cacheable(response.headers_mut(), &tag);
                response
            }
        }
        Err(err) => {
            let status = err.status();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), elapsed_ms, error = %error_chain(&err), "failed");
            } else {
                tracing::info!(status = status.as_u16(), elapsed_ms, reason = %err, "refused");
            }
            problem_response(&err, &request_id, pretty_errors)
        }
    };
    if req.method() == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::Empty);
    }
    response
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
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
fn etag(body: &[u8]) -> String {
    format!("\"{}\"", crate::digest::sha256_hex(body, 16))
}

/// Whether `If-None-Match` names this tag, or is `*` (RFC 9110, section 13.1.2: weak
/// comparison, so `W/"x"` matches `"x"`).
fn if_none_match(req: &Request, tag: &str) -> bool {
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
fn cacheable(headers: &mut lambda_http::http::HeaderMap, tag: &str) {
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
fn not_modified(tag: &str) -> Response<Body> {
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

fn problem_response(err: &ApiError, request_id: &str, pretty: bool) -> Response<Body> {
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
        ApiError::MethodNotAllowed => {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        ApiError::Store(crate::store::StoreError::Unavailable(_)) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        _ => {}
    }
    response
}

fn to_json<T: Serialize>(value: &T, pretty: bool) -> Vec<u8> {
    // Our response types hold only strings, numbers and bools: serializing cannot fail.
    if pretty {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        body
    } else {
        serde_json::to_vec(value).unwrap_or_default()
    }
}

/// `pretty`: `true` or `false` (the default); anything else is refused.
fn parse_pretty(value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ParamError::new(
            "pretty",
            format!("must be \"true\" or \"false\", got {other:?}"),
        )),
    }
}

/// The error and its causes, for the log line of a 5xx.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The id a client can quote: API Gateway's request id, else Lambda's, else a new one.
fn request_id(req: &Request) -> String {
    let from_gateway = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    from_gateway
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.lambda_context_ref()
                .map(|c| c.request_id.clone())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn check_method(method: &Method) -> Result<(), ApiError> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

fn check_accept(req: &Request) -> Result<(), ApiError> {
    let mut values = req.headers().get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let ranges: Vec<&str> = values.filter_map(|v| v.to_str().ok()).collect();
    let accept = ranges.join(",");
    // An empty Accept header says nothing, like an absent one.
    if accept.trim().is_empty() || accepts_json(&accept) {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable)
    }
}

/// Whether an `Accept` header value admits `application/json`: the most specific matching
/// media range decides, and `q=0` excludes (RFC 9110, section 12.5.1).
fn accepts_json(accept: &str) -> bool {
    let mut best: Option<(u8, f32)> = None; // (specificity, q)
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = match media.as_str() {
            "application/json" => 3,
            "application/*" => 2,
            "*/*" => 1,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().unwrap_or(0.0))
            })
            .next()
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
}

/// The query parameters of the list endpoint.
const LIST_PARAMETERS: &[&str] = &[
    "limit",
    "order",
    "after",
    "before",
    "cursor",
    "page",
    "pretty",
    "status",
    "creator_id",
    "restricted",
    "permission",
    "name",
];

/// The query parameters of the endpoints that return one key.
const GET_PARAMETERS: &[&str] = &["pretty"];

/// Refuses a parameter the endpoint does not know, so that a typo (`limt=5`) or a feature
/// this version lacks is an error, not a silently different answer.
fn known_parameters(q: Option<&QueryMap>, known: &[&str]) -> Result<(), ParamError> {
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
fn single<'a>(q: Option<&'a QueryMap>, name: &str) -> Result<Option<&'a str>, ParamError> {
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
fn path_id(req: &Request, name: &'static str) -> Result<KeyId, ApiError> {
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .or_else(|| req.raw_http_path().trim_end_matches('/').rsplit('/').next())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_to_record_the_use_is_counted_once_and_does_not_fail_the_request() {
        use crate::store::memory::MemoryStore;
        use std::sync::atomic::Ordering;
        let store = MemoryStore::default();
        let new = crate::write::NewKey {
            org: "o".parse().unwrap(),
            name: "k".into(),
            creator_id: uuid::Uuid::nil(),
            access: crate::key::Access::Unrestricted,
            expires: None,
            id: None,
        };
        let (key, secret) = crate::write::create_key(&store, new).await.unwrap();
        store.fail_record_use.store(true, Ordering::SeqCst);
        let metrics = crate::telemetry::MetricSink::memory();
        let app = App {
            store,
            cursors: crate::page::CursorKeys::parse("0123456789abcdef0123456789abcdef").unwrap(),
            usage: crate::usage::Recorder::new(crate::usage::WAIT, metrics.clone()),
        };
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "ANY /v1/api_key/{id}",
            "rawPath": format!("/v1/api_key/{}", key.id),
            "rawQueryString": "",
            "headers": {"x-api-key": secret.expose(), "host": "localhost"},
            "pathParameters": {"id": key.id.to_string()},
            "requestContext": {
                "http": {"method": "GET", "path": format!("/v1/api_key/{}", key.id)},
                "routeKey": "ANY /v1/api_key/{id}",
                "stage": "$default",
                "requestId": "r1"
            },
            "isBase64Encoded": false
        });
        for _ in 0..2 {
            let req = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = get_key(&app, req).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        // The first request tried and failed: one metric line. The second, within the
        // back-off, did not try again.
        assert_eq!(app.store.record_use_calls.load(Ordering::SeqCst), 1);
        let lines = metrics.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line[crate::usage::FAILURE_METRIC], 1);
        assert_eq!(line["caller"], key.id.to_string());
    }

    #[test]
    fn accept_negotiation_follows_the_most_specific_range() {
        for yes in [
            "application/json",
            "*/*",
            "application/*",
            "text/html, application/json;q=0.5",
            "application/json;q=0.1, */*;q=0",
            "APPLICATION/JSON",
        ] {
            assert!(accepts_json(yes), "{yes}");
        }
        for no in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "application/json;q=0, */*",
            "*/*;q=0",
            "",
        ] {
            assert!(!accepts_json(no), "{no}");
        }
    }

    #[test]
    fn only_get_and_head_are_allowed() {
        assert!(check_method(&Method::GET).is_ok());
        assert!(check_method(&Method::HEAD).is_ok());
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            assert!(matches!(check_method(&m), Err(ApiError::MethodNotAllowed)));
        }
    }
}
