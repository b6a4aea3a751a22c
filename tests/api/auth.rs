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

#[tokio::test]
async fn a_disabled_caller_is_refused_and_works_again_when_enabled() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "soon off")).await;
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    for payload in PAYLOADS {
        let reply = Call::get(payload, key.id).bearer(&secret).send(&app).await;
        assert!(reply.problem(401).contains("disabled"));
    }
    assert!(set_state(&app, &org, key.id, KeyState::Active).await);
    let reply = Call::get(Payload::Rest, key.id)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_expired_caller_is_refused() {
    let app = app().await;
    let org = org();
    let mut new = new_key(&org, "trial");
    new.expires = Some(Utc::now() - chrono::Duration::milliseconds(1));
    let (_, secret) = create(&app, new).await;
    let reply = Call::list(Payload::Http).api_key(&secret).send(&app).await;
    assert!(reply.problem(401).contains("expired"));
}

#[tokio::test]
async fn a_deleted_callers_secret_stops_working() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "gone")).await;
    assert!(delete(&app, &org, key.id).await);
    let reply = Call::list(Payload::Rest).bearer(&secret).send(&app).await;
    assert!(reply.problem(401).contains("not valid"));
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
