//! `GET`/`PUT /v1/owner/{owner_id}`: an owner's own credits and rate limits, shared by all
//! of its keys (verify spends from them with the key's own: `crate::verify`). `PUT` sets
//! them whole through the write domain ([`crate::write::set_owner`]), which applies the
//! authority rule and records `owner.updated` in the same transaction.

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use super::params::{ONLY_PRETTY, known_parameters, path_owner};
use super::preconditions::IfMatch;
use super::respond::to_json;
use super::writes::context;
use super::{Answer, Authorized, Endpoint, serve};
use crate::App;
use crate::http::body::owner as body;
use crate::http::problem::ApiError;
use crate::key::Permission;
use crate::store::{CredentialStore, KeyWriter, OwnerStore};
use crate::write::{self, WriteError, WritePolicy};

/// The methods of `/v1/owner/{owner_id}`, all served by one function.
const OWNER_RESOURCE: &str = "GET, HEAD, PUT";

/// The owner function: `GET` and `HEAD` read the owner, `PUT` sets its limits; any other
/// method is a 405.
pub async fn owner<S: CredentialStore + KeyWriter + OwnerStore>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    if req.method() == Method::PUT {
        put_owner(app, policy, req).await
    } else {
        get_owner(app, req).await
    }
}

/// `GET /v1/owner/{owner_id}`: the owner's limits and what is left of its credits; 404
/// when its limits were never set. Tagged with the owner's version, for `If-Match`.
async fn get_owner<S: CredentialStore + OwnerStore>(app: &App<S>, req: Request) -> Response<Body> {
    let endpoint = Endpoint {
        serves: super::keys::READS,
        allow: OWNER_RESOURCE,
        permission: Permission::ApiKeysView,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_owner(&req)?;
        let owner = app
            .store
            .owner(&call.caller.org, &id)
            .await?
            .ok_or(ApiError::OwnerNotFound)?;
        let body = to_json(&owner.view(), call.pretty);
        Ok(Answer::key(body, owner.version).cacheable())
    })
    .await
}

/// `PUT /v1/owner/{owner_id}`: the owner's credits and limits, whole (absent: none). 201
/// the first time, else 200, with the owner as set; 412 when `If-Match` names another
/// version (`*`: the owner must have limits set).
async fn put_owner<S: CredentialStore + KeyWriter + OwnerStore>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::PUT],
        allow: OWNER_RESOURCE,
        permission: Permission::ApiKeysUpdate,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_owner(&req)?;
        let ctx = context(&app.store, &req, call).await?;
        let quota = body::parse(req.headers(), req.body())?;
        let org = &call.caller.org;
        let if_match = IfMatch::of(&req);
        // Owners are never deleted, so one that exists now exists at the write.
        if if_match == IfMatch::Any && app.store.owner(org, &id).await?.is_none() {
            return Err(WriteError::VersionMismatch.into());
        }
        let expected = if_match.expected();
        let set = write::set_owner(&app.store, policy, &ctx, (org, &id), &quota, expected).await?;
        let mut answer = Answer::key(to_json(&set.owner.view(), call.pretty), set.owner.version);
        if set.created {
            answer.status = StatusCode::CREATED;
        }
        Ok(answer)
    })
    .await
}
