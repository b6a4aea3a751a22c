//! The read endpoints of keys: `GET /v1/api_key/{id}` (and its discue view) and
//! `GET /v1/api_key/`.

use chrono::Utc;
use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::params::{ONLY_PRETTY, known_parameters, path_id, query};
use super::respond::to_json;
use super::{Answer, Authorized, COLLECTION_RESOURCE, Endpoint, KEY_RESOURCE, serve};
use crate::App;
use crate::http::problem::ApiError;
use crate::http::views::KeyView;
use crate::key::{KeyId, Permission};
use crate::page::{ListRequest, RawListParams, list_keys as read_page};
use crate::store::{CredentialStore, KeyReader};

/// What a read serves: GET, and HEAD (the same answer without its body).
pub(super) const READS: &[Method] = &[Method::GET, Method::HEAD];

/// `GET /v1/api_key/{id}` (the diga view) and `GET /v1/api_keys/{api_key_id}` (the discue
/// view): one key of the caller's organization. The route is told apart by the path
/// parameter's name or the route template, never by the raw path, which may carry a stage.
pub async fn get_key<S: KeyReader + CredentialStore>(app: &App<S>, req: Request) -> Response<Body> {
    let route = GetRoute::of(&req);
    let endpoint = Endpoint {
        serves: READS,
        allow: route.allow(),
        permission: Permission::ApiKeysView,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_id(&req, route.parameter())?;
        let key = app
            .store
            .get_key(&call.caller.org, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let now = Utc::now();
        let body = match route {
            GetRoute::Diga => to_json(&key.view(now), call.pretty),
            GetRoute::Discue => to_json(&key.discue_view(now, self_href(&req)), call.pretty),
        };
        Ok(Answer::key(body, key.version).cacheable())
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

    /// The methods of the route's resource (`Allow`).
    fn allow(self) -> &'static str {
        match self {
            GetRoute::Diga => KEY_RESOURCE,
            GetRoute::Discue => "GET, HEAD",
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
pub(super) fn self_href(req: &Request) -> String {
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
    let endpoint = Endpoint {
        serves: READS,
        allow: COLLECTION_RESOURCE,
        permission: Permission::ApiKeysView,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        let caller = call.caller;
        let q = req.query_string_parameters_ref();
        let raw: RawListParams = query(q, RawListParams::PARAMETERS)?;
        let request = ListRequest::parse(raw, &caller.org, &app.cursors)?;
        let page = read_page(&app.store, &caller.org, &request, &app.cursors).await?;
        let now = Utc::now();
        Ok(Answer::ok(to_json(
            &PageBody {
                data: page.keys.iter().map(|k| k.list_view(now)).collect(),
                has_more: page.has_more,
                first_id: page.keys.first().map(|k| k.id),
                last_id: page.keys.last().map(|k| k.id),
                next_cursor: page.next_cursor.as_deref(),
                current_page: page.numbers.map(|n| n.current_page),
                total_pages: page.numbers.map(|n| n.total_pages),
                read_budget_exhausted: page.budget_exhausted,
            },
            call.pretty,
        ))
        .cacheable())
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
