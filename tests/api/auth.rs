//! Authentication and permission: who may read, and what a refusal looks like.

use apikeys::key::{KeyState, Permission};
use apikeys::secret::Secret;
use apikeys_tests::*;
use chrono::Utc;

#[tokio::test]
async fn both_auth_headers_are_accepted() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    for payload in PAYLOADS {
        let reply = Call::list(payload).bearer(&secret).send(&app).await;
        assert_eq!(reply.status, 200, "bearer, {payload:?}");
        let reply = Call::list(payload).api_key(&secret).send(&app).await;
        assert_eq!(reply.status, 200, "x-api-key, {payload:?}");
        let reply = Call::list(payload)
            .header("x-api-key", secret.expose())
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "lower-case header, {payload:?}");
    }
}

#[tokio::test]
async fn missing_or_invalid_credentials_are_401_with_a_challenge() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let unknown = Secret::generate().unwrap();
    let cases: Vec<(Call, &str, &str)> = vec![
        (
            Call::list(Payload::Rest),
            "no API key",
            "Bearer realm=\"apikeys\"",
        ),
        (
            Call::list(Payload::Http).header("Authorization", "Bearer "),
            "no API key",
            "Bearer realm=\"apikeys\"",
        ),
        (
            Call::list(Payload::Http).header("Authorization", format!("Basic {}", secret.expose())),
            "Bearer scheme",
            "invalid_token",
        ),
        (
            Call::list(Payload::Rest).header("Authorization", "Bearer apk_made_up"),
            "not valid",
            "invalid_token",
        ),
        (
            Call::list(Payload::Rest).bearer(&unknown),
            "not valid",
            "invalid_token",
        ),
        (
            Call::list(Payload::Http).bearer(&secret).api_key(&unknown),
            "different keys",
            "invalid_token",
        ),
    ];
    for (call, detail, challenge) in cases {
        let reply = call.send(&app).await;
        assert!(reply.problem(401).contains(detail), "{}", reply.body);
        assert!(
            reply
                .header("www-authenticate")
                .unwrap()
                .contains(challenge)
        );
    }
}

/// The 401 of a key that is unknown, disabled or expired: one detail and one challenge for
/// all three (SECURITY.md, "What a 401 tells").
const NOT_VALID: &str = "the API key is not valid: it is unknown, disabled or expired";

#[track_caller]
fn not_valid(reply: &Reply) {
    assert_eq!(reply.problem(401), NOT_VALID, "{}", reply.body);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"apikeys\", error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn a_disabled_caller_is_refused_and_works_again_when_enabled() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "soon off")).await;
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    for payload in PAYLOADS {
        not_valid(&Call::get(payload, key.id).bearer(&secret).send(&app).await);
    }
    assert!(set_state(&app, &org, key.id, KeyState::Active).await);
    let reply = Call::get(Payload::Rest, key.id)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn unknown_disabled_and_expired_keys_get_the_same_answer() {
    let app = app().await;
    let org = org();
    let (off, disabled) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, off.id, KeyState::Disabled).await);
    let mut trial = new_key(&org, "trial");
    trial.expires = Some(Utc::now() - chrono::Duration::milliseconds(1));
    let (_, expired) = create(&app, trial).await;
    let unknown = Secret::generate().unwrap();
    for payload in PAYLOADS {
        for secret in [&unknown, &disabled, &expired] {
            let reply = Call::list(payload).api_key(secret).send(&app).await;
            not_valid(&reply);
            let mut body = reply.body.clone();
            body["request_id"] = serde_json::Value::Null;
            assert_eq!(
                body,
                serde_json::json!({"type": "about:blank", "title": "Unauthorized", "status": 401,
                                   "detail": NOT_VALID, "request_id": null}),
                "{payload:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_deleted_callers_secret_stops_working() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "gone")).await;
    assert!(delete(&app, &org, key.id).await);
    not_valid(&Call::list(Payload::Rest).bearer(&secret).send(&app).await);
}

#[tokio::test]
async fn a_restricted_caller_needs_api_keys_view() {
    let app = app().await;
    let org = org();
    let mut without = new_key(&org, "calls only");
    without.access = restricted(&[Permission::CallsView, Permission::ApiKeysCreate]);
    let (target, without) = create(&app, without).await;
    let mut with = new_key(&org, "viewer");
    with.access = restricted(&[Permission::ApiKeysView]);
    let (_, with) = create(&app, with).await;

    for payload in PAYLOADS {
        let reply = Call::list(payload).bearer(&without).send(&app).await;
        assert!(reply.problem(403).contains("api_keys.view"));
        let reply = Call::get(payload, target.id)
            .bearer(&without)
            .send(&app)
            .await;
        assert!(reply.problem(403).contains("api_keys.view"));
        assert_eq!(
            Call::list(payload).bearer(&with).send(&app).await.status,
            200
        );
        assert_eq!(
            Call::get(payload, target.id)
                .bearer(&with)
                .send(&app)
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn x_api_key_wins_over_an_authorization_header_of_another_scheme() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let other = Secret::generate().unwrap();
    for payload in PAYLOADS {
        // A proxy's own credentials, say, beside our key.
        let reply = Call::list(payload)
            .header("Authorization", "Basic cHJveHk6c2VjcmV0")
            .api_key(&secret)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{payload:?}: {}", reply.body);
        // With nothing else, the other scheme is refused, and the detail says why.
        let reply = Call::list(payload)
            .header("Authorization", "Basic cHJveHk6c2VjcmV0")
            .send(&app)
            .await;
        assert!(
            reply.problem(401).contains("Bearer scheme"),
            "{}",
            reply.body
        );
        // A Bearer key and an X-API-KEY key count alike: two different ones are refused.
        let reply = Call::list(payload)
            .bearer(&other)
            .api_key(&secret)
            .send(&app)
            .await;
        assert!(reply.problem(401).contains("different keys"));
    }
}

/// A credential header sent twice. The HTTP API joins the values with commas, and the
/// function refuses them. The REST API passes every value in `multiValueHeaders` and the
/// last in `headers`, and the runtime lets `headers` win: the function sees the last value
/// alone and checks it like any single one.
#[tokio::test]
async fn a_credential_header_sent_twice() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let unknown = Secret::generate().unwrap();
    let twice = |payload, name: &str, first: &Secret, last: &Secret| match name {
        "X-API-KEY" => Call::list(payload).api_key(first).api_key(last),
        _ => Call::list(payload).bearer(first).bearer(last),
    };
    for name in ["X-API-KEY", "Authorization"] {
        for (first, last) in [(&secret, &secret), (&unknown, &secret), (&secret, &unknown)] {
            let reply = twice(Payload::Http, name, first, last).send(&app).await;
            assert_eq!(
                reply.problem(401),
                format!("the {name} header is sent more than once; send one API key, once")
            );

            let reply = twice(Payload::Rest, name, first, last).send(&app).await;
            if last == &secret {
                assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            } else {
                not_valid(&reply);
            }

            // A REST event with the header in multiValueHeaders only (a hand-written event,
            // say): the function sees both values, and refuses them.
            let mut event = twice(Payload::Rest, name, first, last).event();
            event["headers"].as_object_mut().unwrap().remove(name);
            let req = lambda_http::request::from_str(&event.to_string()).unwrap();
            let reply = Reply::from(apikeys::http::list_keys(&app, req).await);
            assert!(reply.problem(401).contains("sent more than once"));
        }
    }
}
