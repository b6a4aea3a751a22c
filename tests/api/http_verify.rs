//! `POST /v1/api_key/verify` over HTTP, on both API Gateway payloads against DynamoDB Local:
//! the codes, isolation that nothing tells apart, no read for a malformed secret, the use of
//! a valid key recorded, the permission and the body's statuses, and the verified secret in
//! no response and no log line.

use apikeys::App;
use apikeys::key::{KeyState, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use chrono::{Duration, Utc};
use serde_json::json;

/// The app on a store that counts its read units.
async fn metered_app() -> App<DynamoStore> {
    let app = app().await;
    App {
        store: app.store.metered(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors,
        usage: patient_recorder(),
    }
}

fn verify(p: Payload, key: &str, permissions: &[&str]) -> Call {
    if permissions.is_empty() {
        Call::verify(p, &json!({ "key": key }))
    } else {
        Call::verify(p, &json!({ "key": key, "permissions": permissions }))
    }
}

#[tokio::test]
async fn every_code_is_a_200_with_the_key_of_the_callers_organization() {
    use Permission::CallsView;
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let mut service = new_key(&org, "service");
    service.access = restricted(&[CallsView]);
    let (service, service_secret) = create(&app, service).await;
    let (off, off_secret) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, off.id, KeyState::Disabled).await);
    let mut trial = new_key(&org, "trial");
    trial.expires = Some(Utc::now() + Duration::seconds(2));
    let (trial, trial_secret) = create(&app, trial).await;
    let missing = Secret::from_random([7; 24]);

    for p in PAYLOADS {
        let cases = [
            (
                service_secret.expose(),
                vec!["calls.view"],
                "VALID",
                Some(service.id),
            ),
            (service_secret.expose(), vec![], "VALID", Some(service.id)),
            (
                service_secret.expose(),
                vec!["calls.view", "api_keys.view"],
                "INSUFFICIENT_PERMISSIONS",
                Some(service.id),
            ),
            (off_secret.expose(), vec![], "DISABLED", Some(off.id)),
            (missing.expose(), vec![], "NOT_FOUND", None),
            ("not a key", vec![], "NOT_FOUND", None),
        ];
        for (key, wanted, code, id) in cases {
            let reply = verify(p, key, &wanted).bearer(&caller).send(&app).await;
            assert_eq!(reply.status, 200, "{p:?} {code}: {}", reply.body);
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(reply.body["code"], code, "{p:?}: {}", reply.body);
            assert_eq!(reply.body["valid"], code == "VALID");
            match id {
                Some(id) => assert_eq!(reply.body["key"]["id"], id.to_string()),
                None => assert!(reply.body["key"].is_null(), "{}", reply.body),
            }
        }
    }
    // Once its expiry passed: EXPIRED, with the key as it reads now.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    for p in PAYLOADS {
        let reply = verify(p, trial_secret.expose(), &[])
            .bearer(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.body["code"], "EXPIRED", "{}", reply.body);
        assert_eq!(reply.body["key"]["id"], trial.id.to_string());
        assert_eq!(reply.body["key"]["status"], "expired");
    }
}

#[tokio::test]
async fn another_organizations_key_answers_exactly_as_a_missing_one() {
    let app = metered_app().await;
    let (mine, theirs) = (org(), org());
    let caller = admin(&app, &mine).await;
    let (_, foreign) = create(&app, new_key(&theirs, "theirs")).await;
    let missing = Secret::from_random([42; 24]);
    for p in PAYLOADS {
        // The caller's own use is recorded by the first request: the rest compare alike.
        verify(p, "warm-up", &[]).bearer(&caller).send(&app).await;
        app.store.read_units();
        let mut seen = Vec::new();
        for secret in [&foreign, &missing, &foreign, &missing] {
            let reply = verify(p, secret.expose(), &[])
                .bearer(&caller)
                .send(&app)
                .await;
            let mut headers: Vec<(String, String)> = reply
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            seen.push((reply.status, reply.raw, headers, app.store.read_units()));
        }
        assert!(seen.iter().all(|s| s == &seen[0]), "{p:?}: {seen:?}");
        assert_eq!(
            String::from_utf8_lossy(&seen[0].1),
            r#"{"valid":false,"code":"NOT_FOUND","key":null}"#
        );
    }
}

#[tokio::test]
async fn a_malformed_secret_is_not_found_without_reading_it() {
    let app = metered_app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (_, secret) = create(&app, new_key(&org, "k")).await;
    let mut tampered = secret.expose().to_owned();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    let unknown = Secret::from_random([9; 24]);
    for p in PAYLOADS {
        verify(p, "warm-up", &[]).bearer(&caller).send(&app).await;
        app.store.read_units();
        // What authenticating the caller costs, then one lookup of a well-formed secret
        // (a miss: 0.5 read units, then 1 for the consistent read again).
        let reply = verify(p, unknown.expose(), &[])
            .bearer(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.body["code"], "NOT_FOUND");
        let with_lookup = app.store.read_units();
        for token in [
            "",
            "apk_",
            tampered.as_str(),
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            let reply = verify(p, token, &[]).bearer(&caller).send(&app).await;
            assert_eq!(reply.body["code"], "NOT_FOUND", "{token:?}");
            assert_eq!(
                app.store.read_units(),
                with_lookup - 1.5,
                "{p:?} {token:?}: only the caller's credential is read"
            );
        }
    }
}

#[tokio::test]
async fn a_valid_verification_records_the_keys_use_and_others_do_not() {
    use Permission::CallsView;
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    for p in PAYLOADS {
        let mut new = new_key(&org, &format!("service {p:?}"));
        new.access = restricted(&[CallsView]);
        let (key, secret) = create(&app, new).await;
        let lacking = verify(p, secret.expose(), &["api_keys.view"]).bearer(&caller);
        assert_eq!(
            lacking.send(&app).await.body["code"],
            "INSUFFICIENT_PERMISSIONS"
        );
        let read = Call::get(p, key.id).bearer(&caller).send(&app).await;
        assert!(read.body["last_used_date"].is_null(), "{}", read.body);

        let before = Utc::now() - Duration::seconds(1);
        let valid = verify(p, secret.expose(), &["calls.view"]).bearer(&caller);
        assert_eq!(valid.send(&app).await.body["code"], "VALID");
        let read = Call::get(p, key.id).bearer(&caller).send(&app).await;
        let used = read.body["last_used_date"].as_str().expect("a last use");
        let used = chrono::DateTime::parse_from_rfc3339(used).unwrap();
        assert!(used >= before, "{used} before {before}");
    }
}

#[tokio::test]
async fn the_caller_needs_api_keys_view_and_bad_bodies_get_the_write_sides_problems() {
    use Permission::CallsView;
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let mut outsider = new_key(&org, "no view");
    outsider.access = restricted(&[CallsView]);
    let (_, outsider) = create(&app, outsider).await;
    for p in PAYLOADS {
        let any = || verify(p, "k", &[]);
        assert!(any().send(&app).await.problem(401).contains("no API key"));
        let refused = any().bearer(&outsider).send(&app).await;
        assert!(refused.problem(403).contains("api_keys.view"));
        let cases: Vec<(Call, u16, Option<&str>)> = vec![
            (any().body("application/json", "{\"key\": "), 400, None),
            (any().body("application/json", ""), 400, None),
            (
                any().body(
                    "application/json",
                    format!("{{\"key\":\"{}\"}}", "a".repeat(17_000)),
                ),
                413,
                None,
            ),
            (any().body("text/plain", "{\"key\":\"k\"}"), 415, None),
            (any().body("", "{\"key\":\"k\"}"), 415, None),
            (Call::verify(p, &json!({})), 422, Some("key")),
            (Call::verify(p, &json!({"key": 1})), 422, Some("key")),
            (
                Call::verify(p, &json!({"key": "k", "scope": 1})),
                422,
                Some("scope"),
            ),
            (
                Call::verify(p, &json!({"key": "k", "permissions": ["calls.read"]})),
                422,
                Some("permissions"),
            ),
        ];
        for (call, status, field) in cases {
            let reply = call.bearer(&caller).send(&app).await;
            reply.problem(status);
            assert_eq!(reply.body["parameter"].as_str(), field, "{}", reply.body);
        }
        let get = any().method("GET").bearer(&caller).send(&app).await;
        get.problem(405);
        assert_eq!(get.header("allow"), Some("POST"));
    }
}

#[tokio::test]
async fn the_verified_secret_is_in_no_response_and_no_log_line() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (_, secret) = create(&app, new_key(&org, "k")).await;
    let theirs = apikeys_tests::org();
    let (_, foreign) = create(&app, new_key(&theirs, "theirs")).await;
    let logs = LogCapture::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber("trace"));
    let mut replies = String::new();
    for p in PAYLOADS {
        for (key, wanted) in [
            (secret.expose(), vec![]),
            (secret.expose(), vec!["api_keys.view"]),
            (foreign.expose(), vec![]),
        ] {
            let reply = verify(p, key, &wanted).bearer(&caller).send(&app).await;
            assert_eq!(reply.status, 200);
            replies.push_str(&String::from_utf8_lossy(&reply.raw));
            replies.push_str(&format!("{:?}", reply.headers));
        }
        // The secret in the wrong field, or as a permission, is not echoed in the problem.
        let echo = json!({"key": "k", "permissions": [secret.expose()]});
        let reply = Call::verify(p, &echo).bearer(&caller).send(&app).await;
        reply.problem(422);
        replies.push_str(&String::from_utf8_lossy(&reply.raw));
    }
    drop(_guard);
    let secrets = [secret, foreign, caller];
    assert_no_leak("the responses", &replies, &secrets, true);
    let text = logs.text();
    assert!(
        text.contains("verified"),
        "a log line per verification:\n{text}"
    );
    assert_no_leak("the logs", &text, &secrets, false);
}
