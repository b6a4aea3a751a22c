//! `GET /v1/api_keys/{api_key_id}`: the discue view of a key, served by the get-key function.

use apikeys::key::{KeyId, KeyState, Permission};
use apikeys_tests::*;
use chrono::{TimeZone, Utc};
use serde_json::json;

#[tokio::test]
async fn the_discue_view_has_every_field_with_the_secret_redacted() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let created = Utc.with_ymd_and_hms(2023, 11, 7, 5, 31, 56).unwrap();
    let mut new = new_key(&org, "billing export");
    new.access = restricted(&[
        Permission::CallsView,
        Permission::PhonesView,
        Permission::PhonesPurchase,
    ]);
    new.id = Some(KeyId::new_at(created));
    let (key, secret) = create(&app, new).await;
    let last_four = &secret.expose()[secret.expose().len() - 4..];

    for (payload, href_prefix) in [
        (
            Payload::Rest,
            "https://abc123.execute-api.us-east-1.amazonaws.com/Prod",
        ),
        (
            Payload::Http,
            "https://abc123.execute-api.us-east-1.amazonaws.com",
        ),
    ] {
        let reply = Call::discue(payload, key.id)
            .api_key(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{payload:?}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let expected = json!({
            "api_key": {
                "id": key.id.to_string(),
                "name": "billing export",
                "created_at": 1_699_335_116_000i64,
                "updated_at": 1_699_335_116_000i64,
                "last_used_at": null,
                "key": format!("apk_...{last_four}"),
                "status": "enabled",
                "scopes": [
                    {"resource": "calls", "access": "read", "targets": ["*"]},
                    {"resource": "phones", "access": "write", "targets": ["*"]},
                ],
            },
            "_links": {"self": {"href": format!("{href_prefix}/v1/api_keys/{}", key.id)}},
        });
        assert_eq!(reply.body, expected, "{payload:?}");
        let text = String::from_utf8(reply.raw.clone()).unwrap();
        assert!(!text.contains(secret.expose()));
        assert!(!text.contains(secret.hash().as_str()));
    }
}

#[tokio::test]
async fn disabled_and_expired_keys_are_disabled_and_unrestricted_keys_write_everything() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (disabled, _) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, disabled.id, KeyState::Disabled).await);
    let mut new = new_key(&org, "old");
    new.expires = Some(Utc::now() - chrono::Duration::seconds(1));
    let (expired, _) = create(&app, new).await;
    let (open, _) = create(&app, new_key(&org, "open")).await;

    for id in [disabled.id, expired.id] {
        let reply = Call::discue(Payload::Http, id)
            .bearer(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.body["api_key"]["status"], "disabled");
    }
    let reply = Call::discue(Payload::Rest, open.id)
        .bearer(&caller)
        .send(&app)
        .await;
    assert_eq!(reply.body["api_key"]["status"], "enabled");
    let scopes = reply.body["api_key"]["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 20);
    assert_eq!(
        scopes[0],
        json!({"resource": "companies", "access": "write", "targets": ["*"]})
    );
}

#[tokio::test]
async fn errors_carry_title_and_status_and_name_the_api_key_id_parameter() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let other = self::org();
    let (foreign, _) = create(&app, new_key(&other, "theirs")).await;
    for payload in PAYLOADS {
        let reply = Call::discue(payload, foreign.id)
            .api_key(&caller)
            .send(&app)
            .await;
        reply.problem(404);
        assert_eq!(reply.body["title"], "Not Found");
        assert_eq!(reply.body["status"], 404);

        let reply = Call::discue(payload, "not-a-uuid")
            .api_key(&caller)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "api_key_id");

        Call::discue(payload, foreign.id)
            .send(&app)
            .await
            .problem(401);
    }
}

#[tokio::test]
async fn the_route_is_chosen_by_the_route_template_not_the_raw_path() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    for payload in PAYLOADS {
        // Without path parameters, the route template still tells the two routes apart.
        for (call, discue) in [
            (Call::discue(payload, key.id), true),
            (Call::get(payload, key.id), false),
        ] {
            let mut event = call.bearer(&caller).event();
            event["pathParameters"] = serde_json::Value::Null;
            let req = lambda_http::request::from_str(&event.to_string()).unwrap();
            let reply = Reply::from(apikeys::http::get_key(&app, req).await);
            assert_eq!(reply.status, 200, "{payload:?}: {}", reply.body);
            assert_eq!(reply.body.get("api_key").is_some(), discue, "{payload:?}");
        }
    }
}
