//! `POST /v1/secret_scanning/github`: GitHub's secret scanning reports of our secrets found
//! in public code ([`crate::leak`]). No API key: GitHub's signature over the raw body
//! authenticates the request, and it is checked before the body is read, so a missing or
//! bad signature is a `401` before any token is looked at. Then the body (`415`, `413`,
//! `400`, `422`), then every live key reported is disabled with its `key.leaked` event, and
//! the answer is GitHub's `[{token_hash, token_type, label}]`.
//!
//! A revocation that could not be written is a `503` with `Retry-After`, whatever stopped
//! it: GitHub sends the report again, the keys revoked so far stay revoked, and the replay
//! finishes the job. Tokens are never logged; the log line counts what the report held and
//! what it revoked, and each revocation logs its organization and key id.

use std::time::Instant;

use chrono::Utc;
use lambda_http::http::HeaderMap;
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::field;

use super::negotiate::check_accept;
use super::params::{ONLY_PRETTY, known_parameters, parse_pretty, single};
use super::respond::to_json;
use super::{Answer, Endpoint, Served, request_id};
use crate::App;
use crate::http::body::report::parse_report;
use crate::http::problem::ApiError;
use crate::key::Permission;
use crate::leak::keys::{FetchKeys, KeySource};
use crate::leak::report::ReportedToken;
use crate::leak::signature::SignatureHeaders;
use crate::leak::{Label, handle_report};
use crate::store::{KeyWriter, LeakLookup, StoreError};
use crate::write::{Revocation, WriteError, WritePolicy};

/// `POST /v1/secret_scanning/github`: authenticates GitHub's report with `keys`, revokes
/// each live key it names under `policy`, and answers GitHub's feedback.
pub async fn revoke_leaked<S: LeakLookup + KeyWriter, F: FetchKeys>(
    app: &App<S>,
    keys: &KeySource<F>,
    policy: &WritePolicy,
    req: Request,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let endpoint = Endpoint {
        serves: &[Method::POST],
        allow: "POST",
        // Unused: no API key, so no permission. GitHub's signature stands for both.
        permission: Permission::ApiKeysUpdate,
    };
    let request_id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        reporter = "github",
        tokens = field::Empty,
        revoked = field::Empty,
    );
    let pipeline = async {
        endpoint.check_method(req.method())?;
        check_accept(&req)?;
        let report = receive_report(keys, req.headers(), req.body().as_ref(), started).await?;
        let query = req.query_string_parameters_ref();
        known_parameters(query, ONLY_PRETTY)?;
        let pretty = parse_pretty(single(query, "pretty")?)?;
        let handled = handle_report(&app.store, policy, &request_id, &report, Utc::now())
            .await
            .map_err(retry_later)?;
        let span = tracing::Span::current();
        span.record("tokens", report.len());
        let revoked = handled
            .revocations
            .iter()
            .filter(|(_, r)| matches!(r, Revocation::Revoked(_)))
            .count();
        span.record("revoked", revoked);
        let true_positives = handled
            .feedback
            .iter()
            .filter(|f| f.label == Label::TruePositive)
            .count();
        tracing::info!(true_positives, "report handled");
        Ok(Answer::untagged(to_json(&handled.feedback, pretty)))
    };
    let served = Served {
        req: &req,
        request_id: &request_id,
        span,
        started,
        pretty_errors: false,
        // A report has its function's own, longer timeout (template.yaml).
        budget: crate::deadline::REPORT_BUDGET,
    };
    served.conclude(pipeline).await
}

/// Any failure to revoke is worth GitHub's retry: a store fault as it is, a key changed by
/// others again and again (after the write's own retries) as the store being busy.
fn retry_later(e: WriteError) -> ApiError {
    match e {
        WriteError::Store(s) => ApiError::Store(s),
        other => ApiError::Store(StoreError::Unavailable(Box::new(other))),
    }
}

/// Authenticates a report by its signature at `now`, then reads its body.
pub async fn receive_report<F: FetchKeys>(
    keys: &KeySource<F>,
    headers: &HeaderMap,
    body: &[u8],
    now: Instant,
) -> Result<Vec<ReportedToken>, ApiError> {
    let signed = SignatureHeaders::from_headers(headers)?;
    keys.verify(&signed, body, now).await?;
    parse_report(headers, body)
}

#[cfg(test)]
mod tests {
    use lambda_http::http::{HeaderValue, StatusCode, header};

    use super::*;
    use crate::leak::keys;
    use crate::leak::report;
    use crate::leak::signature::{self, PublicKeys, SignatureError};
    use apikeys_tests::github::{Signer, key_list};

    fn signed_headers(signer: &Signer, body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            signature::KEY_ID_HEADER,
            HeaderValue::from_str(&signer.key_id).unwrap(),
        );
        h.insert(
            signature::SIGNATURE_HEADER,
            HeaderValue::from_str(&signer.sign(body)).unwrap(),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    fn source(signer: &Signer) -> KeySource<keys::NoFetch> {
        KeySource::fixed(PublicKeys::parse(key_list(&[signer]).as_bytes()).unwrap())
    }

    #[tokio::test]
    async fn a_signed_report_is_parsed() {
        let github = Signer::named("gh");
        let body = br#"[{"token":"t","type":"apikeys_api_key","url":"u","source":"commit"}]"#;
        let report = receive_report(
            &source(&github),
            &signed_headers(&github, body),
            body,
            Instant::now(),
        )
        .await
        .unwrap();
        assert_eq!(report.len(), 1);
    }

    #[tokio::test]
    async fn the_signature_is_decided_before_the_body_is_read() {
        let github = Signer::named("gh");
        let forger = Signer::named("gh");
        let keys = source(&github);
        let now = Instant::now();
        // Garbage and oversize bodies, unsigned or badly signed: 401, never 400 or 413.
        let huge = vec![b'['; report::MAX_REPORT_BYTES + 1];
        for body in [&b"not json"[..], &huge] {
            let mut h = signed_headers(&forger, body);
            let err = receive_report(&keys, &h, body, now).await.unwrap_err();
            assert!(
                matches!(err, ApiError::Signature(SignatureError::BadSignature)),
                "{err:?}"
            );
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
            h.remove(signature::SIGNATURE_HEADER);
            let err = receive_report(&keys, &h, body, now).await.unwrap_err();
            assert!(matches!(
                err,
                ApiError::Signature(SignatureError::MissingSignature)
            ));
        }
        // The same bodies signed by GitHub get the body's own statuses.
        let err = receive_report(&keys, &signed_headers(&github, &huge), &huge, now)
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let err = receive_report(
            &keys,
            &signed_headers(&github, b"not json"),
            b"not json",
            now,
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let mut h = signed_headers(&github, b"[]");
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let err = receive_report(&keys, &h, b"[]", now).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
