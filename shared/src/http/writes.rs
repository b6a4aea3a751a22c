//! The write endpoints: create, update, roll and delete a key. Each reads its request (body,
//! `If-Match`, `Idempotency-Key`), calls the write domain ([`crate::write`]) with who makes
//! it, and renders the key. The domain applies the authority rule ([`crate::authority`]) to
//! the key as it reads it, and makes each write one transaction with its audit event; this
//! module adds nothing to that but the HTTP.

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::keys::self_href;
use super::params::{ONLY_PRETTY, known_parameters, path_id};
use super::preconditions::{IfMatch, idempotency};
use super::respond::to_json;
use super::{Answer, Authorized, COLLECTION_RESOURCE, Endpoint, KEY_RESOURCE, serve, source_ip};
use crate::App;
use crate::http::body::{CreateKey, KeyPatch, RollKey};
use crate::http::views::KeyView;
use crate::key::Permission;
use crate::store::{CredentialStore, KeyWriter};
use crate::write::{self, WriteContext, WritePolicy};

/// A key with its secret: the answer of a create or a roll, the only times the secret is
/// shown.
#[derive(Serialize)]
struct WithSecret<'a> {
    #[serde(flatten)]
    key: KeyView<'a>,
    secret: &'a str,
}

/// Who makes the write, from where, with what authority: what its audit event records and
/// what the domain checks it against. A caller with credits is bound by the credits its own
/// key has left now, read consistently (its credential knows them only as of its key's
/// last change).
pub(super) async fn context<S: KeyWriter>(
    store: &S,
    req: &Request,
    call: &Authorized<'_>,
) -> Result<WriteContext, crate::http::problem::ApiError> {
    let caller = call.caller;
    let mut authority = caller.authority();
    if caller.quota.credits.is_some()
        && let Some(own) = store.key_for_write(&caller.org, caller.key_id).await?
    {
        authority.quota = own.key.quota;
    }
    Ok(WriteContext::api_key(
        caller.key_id,
        caller.secret.clone(),
        authority,
        call.request_id,
        source_ip(req),
    ))
}

/// `POST /v1/api_key/`: a new key of the caller's organization. 201 with the key and its
/// secret, and `Location`; with `Idempotency-Key`, a retry gets the same answer.
pub async fn create_key<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::POST],
        allow: COLLECTION_RESOURCE,
        permission: Permission::ApiKeysCreate,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let ctx = context(&app.store, &req, call).await?;
        let new = CreateKey::from_request(&req, ctx.now)?.new_key(call.caller)?;
        let idem = idempotency(&req)?;
        let created = write::create(&app.store, policy, &ctx, new, idem.as_ref()).await?;
        let body = WithSecret {
            key: created.key.view(ctx.now),
            secret: created.secret.expose(),
        };
        let location = format!(
            "{}/{}",
            self_href(&req).trim_end_matches('/'),
            created.key.id
        );
        Ok(Answer::created(
            to_json(&body, call.pretty),
            location,
            created.replayed,
        ))
    })
    .await
}

/// `PATCH /v1/api_key/{id}`: a JSON merge patch of the key's name, access, expiry or
/// status. 200 with the key; 412 when `If-Match` names another version.
async fn patch_key<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::PATCH],
        allow: KEY_RESOURCE,
        permission: Permission::ApiKeysUpdate,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_id(&req, "id")?;
        let ctx = context(&app.store, &req, call).await?;
        let change = KeyPatch::from_request(&req, ctx.now)?;
        let if_match = IfMatch::of(&req);
        let org = &call.caller.org;
        let expected = if_match.expected();
        let key = write::update_key(&app.store, policy, &ctx, org, id, &change, expected).await?;
        Ok(Answer::key(
            to_json(&key.view(ctx.now), call.pretty),
            key.version,
        ))
    })
    .await
}

/// The update-key function's two routes: `PATCH /v1/api_key/{id}` ([`patch_key`]) and
/// `/v1/api_key/{id}/credits` ([`adjust_credits`]).
pub async fn update_key<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    if req
        .raw_http_path()
        .trim_end_matches('/')
        .ends_with("/credits")
    {
        adjust_credits(app, policy, req).await
    } else {
        patch_key(app, policy, req).await
    }
}

/// `POST /v1/api_key/{id}/credits`: `{"increment": N}` or `{"decrement": N}` added to or
/// taken from the key's credits, recorded as `key.credits_adjusted`. 200 with the key as it
/// reads after; 409 for a key without credits or a decrement of more than are left.
pub async fn adjust_credits<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::POST],
        allow: "POST",
        permission: Permission::ApiKeysUpdate,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_id(&req, "id")?;
        let ctx = context(&app.store, &req, call).await?;
        let adjustment = crate::http::body::quota::adjust::parse(req.headers(), req.body())?;
        let org = &call.caller.org;
        let key = write::adjust_credits(&app.store, policy, &ctx, org, id, adjustment).await?;
        Ok(Answer::key(
            to_json(&key.view(ctx.now), call.pretty),
            key.version,
        ))
    })
    .await
}

/// `POST /v1/api_key/{id}/roll`: a new secret for the key, the previous one kept for
/// `grace_period_seconds`. 200 with the key and its new secret; with `Idempotency-Key`, a
/// retry gets the same answer.
pub async fn roll_key<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::POST],
        allow: "POST",
        permission: Permission::ApiKeysUpdate,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_id(&req, "id")?;
        let ctx = context(&app.store, &req, call).await?;
        let roll = RollKey::from_request(&req)?;
        let idem = idempotency(&req)?;
        let if_match = IfMatch::of(&req);
        let grace = u64::from(roll.grace_period_seconds);
        let rolled = write::roll_key(
            &app.store,
            policy,
            &ctx,
            &call.caller.org,
            id,
            grace,
            if_match.expected(),
            idem.as_ref(),
        )
        .await?;
        let body = WithSecret {
            key: rolled.key.view(ctx.now),
            secret: rolled.secret.expose(),
        };
        Ok(Answer::secret(to_json(&body, call.pretty), rolled.replayed))
    })
    .await
}

/// `DELETE /v1/api_key/{id}`: 204; the key and every secret of it are gone, its events
/// stay.
pub async fn delete_key<S: CredentialStore + KeyWriter>(
    app: &App<S>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::DELETE],
        allow: KEY_RESOURCE,
        permission: Permission::ApiKeysDelete,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let id = path_id(&req, "id")?;
        let ctx = context(&app.store, &req, call).await?;
        let if_match = IfMatch::of(&req);
        let org = &call.caller.org;
        write::delete_key(&app.store, policy, &ctx, org, id, if_match.expected()).await?;
        Ok(Answer::no_content())
    })
    .await
}
