//! The endpoints over API Gateway requests (REST v1 and HTTP API v2): method and content
//! negotiation, authentication, permission, parameters, then the endpoint's own work, and
//! the rendering of its answer or problem.
//!
//! Checks run in this order, each answering with its own status: method (405), `Accept`
//! (406), credentials (401), permission (403), parameters and body (415, 413, 400, 422),
//! then the store (404, 409, 412, 503).
//!
//! | endpoint | module | permission |
//! | --- | --- | --- |
//! | `GET /v1/api_key/{id}`, `GET /v1/api_keys/{api_key_id}`, `GET /v1/api_key/` | [`keys`] | `api_keys.view` |
//! | `POST /v1/api_key/` | [`writes`] | `api_keys.create` |
//! | `PATCH /v1/api_key/{id}`, `POST /v1/api_key/{id}/roll`, `POST /v1/api_key/{id}/credits` | [`writes`] | `api_keys.update` |
//! | `DELETE /v1/api_key/{id}` | [`writes`] | `api_keys.delete` |
//! | `GET /v1/api_key/{id}/events`, `GET /v1/api_key_events/` | [`events`] | `api_keys.view` |
//! | `POST /v1/api_key/verify` | [`verify`] | `api_keys.view` |
//! | `GET /v1/owner/{owner_id}`, `PUT /v1/owner/{owner_id}` | [`owners`] | `api_keys.view`, `api_keys.update` (and an unrestricted key: [`crate::authority`]) |
//! | `POST /v1/secret_scanning/github` | [`leaks`] | none: GitHub's signature (401 before anything else but 405 and 406) |

pub mod body;
mod events;
mod keys;
pub(crate) mod leaks;
mod negotiate;
mod owners;
mod params;
mod preconditions;
pub mod problem;
mod respond;
mod verify;
pub mod views;
mod writes;

use std::time::Instant;

use chrono::Utc;
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{Instrument, field};

pub use events::list_events;
pub use keys::{get_key, list_keys};
pub use leaks::revoke_leaked;
pub use owners::owner;
pub use respond::MAX_AGE_SECS;
pub use verify::verify_key;
pub use writes::{adjust_credits, create_key, delete_key, roll_key, update_key};

use crate::App;
use crate::auth::{Caller, authenticate};
use crate::deadline::Deadline;
use crate::http::problem::ApiError;
use crate::key::Permission;
use crate::store::CredentialStore;
use crate::usage::KeyUse;
use negotiate::check_accept;
use params::{parse_pretty, single};
use respond::{JSON, cacheable, etag, if_none_match, not_modified, problem_response, respond};

/// The methods of `/v1/api_key/{id}`: get-key, update-key and delete-key together.
const KEY_RESOURCE: &str = "GET, HEAD, PATCH, DELETE";
/// The methods of `/v1/api_key/`: list-keys and create-key together.
const COLLECTION_RESOURCE: &str = "GET, HEAD, POST";

/// What one function serves of a resource, and the permission its caller needs.
#[derive(Clone, Copy, Debug)]
struct Endpoint {
    /// The methods this function answers.
    serves: &'static [Method],
    /// Every method of the resource, which other functions may serve: the `Allow` of a 405.
    allow: &'static str,
    permission: Permission,
}

impl Endpoint {
    fn check_method(&self, method: &Method) -> Result<(), ApiError> {
        if self.serves.contains(method) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed { allow: self.allow })
        }
    }
}

/// A request that passed the shared checks: who makes it, and how to answer.
struct Authorized<'a> {
    caller: &'a Caller,
    /// `pretty=true`: indented JSON.
    pretty: bool,
    /// The id a client can quote, and the audit trail records.
    request_id: &'a str,
}

/// What an endpoint answers when it succeeds.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    /// Empty for a 204.
    body: Vec<u8>,
    /// The entity tag, if the body is a representation a client may name in `If-Match` or
    /// `If-None-Match`.
    tag: Option<String>,
    /// Whether a client may cache it privately and revalidate it (a 200 of a read).
    cache: bool,
    location: Option<String>,
    /// An earlier request's answer, given again for its `Idempotency-Key`.
    replayed: bool,
}

impl Answer {
    /// 200 with this body, tagged by its digest.
    fn ok(body: Vec<u8>) -> Self {
        Answer {
            status: StatusCode::OK,
            tag: Some(etag(&body)),
            body,
            cache: false,
            location: None,
            replayed: false,
        }
    }

    /// 200 with one key's representation, tagged with its version (see
    /// [`preconditions::key_etag`]).
    fn key(body: Vec<u8>, version: u64) -> Self {
        Answer {
            tag: Some(preconditions::key_etag(version, &body)),
            ..Answer::ok(body)
        }
    }

    /// 200 with a body that holds a secret: never tagged, never cached.
    fn secret(body: Vec<u8>, replayed: bool) -> Self {
        Answer {
            replayed,
            ..Answer::untagged(body)
        }
    }

    /// 200 with the answer to one POST (a verification, a report's feedback): not a
    /// representation a client could name in a condition, so not tagged.
    fn untagged(body: Vec<u8>) -> Self {
        Answer {
            tag: None,
            ..Answer::ok(body)
        }
    }

    /// 201 with the new key and its secret, and where the key now lives.
    fn created(body: Vec<u8>, location: String, replayed: bool) -> Self {
        Answer {
            status: StatusCode::CREATED,
            location: Some(location),
            ..Answer::secret(body, replayed)
        }
    }

    fn no_content() -> Self {
        Answer {
            status: StatusCode::NO_CONTENT,
            tag: None,
            ..Answer::ok(Vec::new())
        }
    }

    fn cacheable(mut self) -> Self {
        self.cache = true;
        self
    }

    fn render(self, req: &Request, elapsed_ms: u64) -> Response<Body> {
        let status = self.status.as_u16();
        if let (true, Some(tag)) = (self.cache, &self.tag)
            && if_none_match(req, tag)
        {
            tracing::info!(status = 304, elapsed_ms, "not modified");
            return not_modified(tag);
        }
        tracing::info!(status, elapsed_ms, replayed = self.replayed, "served");
        let mut response = if self.status == StatusCode::NO_CONTENT {
            let mut r = respond(self.status, JSON, Vec::new());
            r.headers_mut().remove(header::CONTENT_TYPE);
            *r.body_mut() = Body::Empty;
            r
        } else {
            respond(self.status, JSON, self.body)
        };
        let headers = response.headers_mut();
        match (&self.tag, self.cache) {
            (Some(tag), true) => cacheable(headers, tag),
            (Some(tag), false) => {
                if let Ok(value) = HeaderValue::from_str(tag) {
                    headers.insert(header::ETAG, value);
                }
            }
            (None, _) => {}
        }
        if let Some(value) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, value);
        }
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

/// Runs the checks every endpoint shares, then `op`, all before the request's [`Deadline`],
/// and renders the outcome; logs one line per request with its id, organization, status and
/// duration.
async fn serve<S: CredentialStore>(
    app: &App<S>,
    req: &Request,
    endpoint: Endpoint,
    op: impl AsyncFnOnce(&Authorized<'_>) -> Result<Answer, ApiError>,
) -> Response<Body> {
    let started = Instant::now();
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
        endpoint.check_method(req.method())?;
        check_accept(req)?;
        let now = Utc::now();
        // Only authentication reads through the caller cache; `op` gets the store itself.
        let credentials = app.callers.over(&app.store);
        let caller = authenticate(&credentials, req.headers(), now).await?;
        let span = tracing::Span::current();
        span.record("org", field::display(&caller.org));
        span.record("caller", field::display(&caller.key_id));
        // Before anything else of the request: a refused address learns nothing more, and
        // is no use of the key.
        caller.admit(source_ip(req).and_then(|ip| ip.parse().ok()))?;
        let work = async {
            caller.require(endpoint.permission)?;
            let pretty = parse_pretty(pretty_query.clone()?)?;
            op(&Authorized {
                caller: &caller,
                pretty,
                request_id: &request_id,
            })
            .await
        };
        // Recording the use runs alongside the request's own read and waits at most
        // `usage::WAIT` beyond it; it never fails the request.
        let used = KeyUse::from(&caller);
        let (outcome, ()) = tokio::join!(work, app.usage.record(&credentials, &used, now));
        outcome
    };
    let served = Served {
        req,
        request_id: &request_id,
        span,
        started,
        pretty_errors,
        budget: crate::deadline::DEFAULT_BUDGET,
    };
    // Boxed here already: the pipeline, with the caller cache in front of the lookup and
    // the last-use write, is deeper than the compiler's default limit allows in the
    // largest futures that hold a handler's (the tests' dispatch to every function).
    served.conclude(Box::pin(pipeline)).await
}

/// A request on its way through an endpoint's pipeline: what [`Served::conclude`] needs to
/// bound it by the request's [`Deadline`], render its outcome and log it. Every endpoint
/// ends here, those authenticated by an API key ([`serve`]) and GitHub's signed reports
/// alike.
struct Served<'a> {
    req: &'a Request,
    request_id: &'a str,
    /// The request's span: its log line and the pipeline's are recorded in it.
    span: tracing::Span,
    started: Instant,
    /// Whether a problem body is indented (`pretty=true`).
    pretty_errors: bool,
    /// The request's time when its invocation gives no deadline (see [`Deadline::of`]).
    budget: std::time::Duration,
}

impl Served<'_> {
    /// Runs `pipeline` before the request's deadline, inside the request's span, and renders
    /// its answer or problem; logs one line with the status and duration (a 5xx with its
    /// causes). A HEAD gets the headers only.
    async fn conclude(
        self,
        pipeline: impl Future<Output = Result<Answer, ApiError>>,
    ) -> Response<Body> {
        let req = self.req;
        let deadline = Deadline::of(req.lambda_context_ref(), self.budget);
        // Boxed: the pipeline holds the endpoint's whole read or write, too large a future
        // to move around the stack once more inside the deadline's timer.
        let outcome = deadline
            .bound(Box::pin(pipeline))
            .instrument(self.span.clone())
            .await;

        let _enter = self.span.enter();
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        let response = match outcome {
            Ok(answer) => answer.render(req, elapsed_ms),
            Err(err) => {
                let status = err.status();
                if status.is_server_error() {
                    tracing::error!(status = status.as_u16(), elapsed_ms, error = %crate::telemetry::error_chain(&err), "failed");
                } else {
                    tracing::info!(status = status.as_u16(), elapsed_ms, reason = %err, "refused");
                }
                problem_response(&err, self.request_id, self.pretty_errors)
            }
        };
        if req.method() == Method::HEAD {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Body::Empty);
        }
        response
    }
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

/// The client's address, as the gateway saw it: the request context's (REST
/// `identity.sourceIp`, HTTP API `http.sourceIp`), never a header.
fn source_ip(req: &Request) -> Option<String> {
    let ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.identity.source_ip.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    };
    ip.filter(|ip| !ip.is_empty())
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
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let (key, secret) = crate::write::create_key(&store, new).await.unwrap();
        store.fail_record_use.store(true, Ordering::SeqCst);
        let metrics = crate::telemetry::MetricSink::memory();
        let app = App {
            store,
            callers: crate::cache::CallerCache::off(),
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
            assert!(negotiate::accepts_json(yes), "{yes}");
        }
        for no in [
            "text/html",
            "application/xml",
            "application/json;q=0",
            "application/json;q=0, */*",
            "*/*;q=0",
            "",
        ] {
            assert!(!negotiate::accepts_json(no), "{no}");
        }
    }

    #[test]
    fn a_function_answers_only_its_methods_and_names_every_method_of_the_resource() {
        let get = Endpoint {
            serves: keys::READS,
            allow: KEY_RESOURCE,
            permission: Permission::ApiKeysView,
        };
        assert!(get.check_method(&Method::GET).is_ok());
        assert!(get.check_method(&Method::HEAD).is_ok());
        for m in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::OPTIONS,
        ] {
            assert!(matches!(
                get.check_method(&m),
                Err(ApiError::MethodNotAllowed {
                    allow: "GET, HEAD, PATCH, DELETE"
                })
            ));
        }
    }
}
