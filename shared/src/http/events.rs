//! The audit trail's endpoints: `GET /v1/api_key_events/` (the organization's events) and
//! `GET /v1/api_key/{id}/events` (one key's, listed after the key is deleted too).

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::keys::READS;
use super::params::{known_parameters, query};
use super::respond::to_json;
use super::{Answer, Authorized, Endpoint, serve};
use crate::App;
use crate::audit::{EventId, EventView};
use crate::key::{KeyId, Permission};
use crate::page::{EventCursors, EventListRequest, RawEventParams};
use crate::store::{AuditReader, CredentialStore};

/// A page of events, in the key list's shape.
#[derive(Serialize)]
struct EventPageBody<'a> {
    data: Vec<EventView<'a>>,
    has_more: bool,
    first_id: Option<EventId>,
    last_id: Option<EventId>,
    next_cursor: Option<&'a str>,
    /// Only with an `action` filter, as for a filtered key list.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_budget_exhausted: Option<bool>,
}

/// A page of the caller's organization's events, newest first unless `order=asc`; of one
/// key when the route names it.
pub async fn list_events<S: CredentialStore + AuditReader>(
    app: &App<S>,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: READS,
        allow: "GET, HEAD",
        permission: Permission::ApiKeysView,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        let q = req.query_string_parameters_ref();
        // Unknown parameters are refused before the path's id is checked.
        known_parameters(q, RawEventParams::PARAMETERS)?;
        let path_key = match req.path_parameters_ref().and_then(|p| p.first("id")) {
            Some(_) => Some(super::params::path_id(&req, "id")?),
            None if req
                .raw_http_path()
                .trim_end_matches('/')
                .ends_with("/events") =>
            {
                Some(super::params::path_id(&req, "id")?)
            }
            None => None::<KeyId>,
        };
        let raw: RawEventParams = query(q, RawEventParams::PARAMETERS)?;
        let cursors = EventCursors::new(app.cursors.clone());
        let org = &call.caller.org;
        let request = EventListRequest::parse(raw, org, path_key, &cursors)?;
        let now = chrono::Utc::now();
        let page = crate::page::list_events(&app.store, org, &request, &cursors, now).await?;
        let body = EventPageBody {
            data: page.events.iter().map(|e| e.view()).collect(),
            has_more: page.has_more,
            first_id: page.events.first().map(|e| e.id),
            last_id: page.events.last().map(|e| e.id),
            next_cursor: page.next_cursor.as_deref(),
            read_budget_exhausted: page.budget_exhausted,
        };
        Ok(Answer::ok(to_json(&body, call.pretty)).cacheable())
    })
    .await
}
