//! `POST /v1/api_key/verify`: an organization's other services check a key their own
//! clients present ([`crate::verify`]). The caller needs `api_keys.view`; every well-formed
//! request is a `200` whose body says whether the key is valid. The verified secret is read
//! from the body once and never rendered or logged: the answer holds the key object (last
//! four characters only), and [`crate::verify::VerifyRequest`]'s `Debug` hides it.

use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};

use super::params::{ONLY_PRETTY, known_parameters};
use super::respond::to_json;
use super::{Answer, Authorized, Endpoint, serve};
use crate::App;
use crate::http::body::verify::parse_verify_body;
use crate::key::Permission;
use crate::store::{CredentialStore, KeyReader, QuotaStore};
use crate::verify::{Moment, VerifyCache, verify};

/// `POST /v1/api_key/verify`: `{valid, code, key}` for the key in the body, looked up in
/// `app.store`, which no caller cache is in front of (see [`crate::cache`]). `cache` matches
/// the caller cache's TTL ([`VerifyCache::matching`]) and lives as long as the process.
pub async fn verify_key<S: CredentialStore + KeyReader + QuotaStore>(
    app: &App<S>,
    cache: &VerifyCache,
    req: Request,
) -> Response<Body> {
    let endpoint = Endpoint {
        serves: &[Method::POST],
        allow: "POST",
        permission: Permission::ApiKeysView,
    };
    serve(app, &req, endpoint, async |call: &Authorized<'_>| {
        known_parameters(req.query_string_parameters_ref(), ONLY_PRETTY)?;
        let request = parse_verify_body(req.headers(), req.body().as_ref())?;
        let now = Moment::now();
        let verdict = verify(
            &app.store,
            cache,
            &app.usage,
            &call.caller.org,
            &request,
            now,
        )
        .await?;
        tracing::info!(code = ?verdict.code, "verified");
        Ok(Answer::untagged(to_json(
            &verdict.body(now.wall),
            call.pretty,
        )))
    })
    .await
}
