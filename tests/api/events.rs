//! Every sample event in `events/` (the ones `sam local invoke -e` and `cargo lambda invoke`
//! take) runs through its function's handler against the seeded demo organization.

use std::path::PathBuf;

use apikeys_tests::*;

/// The status each sample event must produce. A file missing here fails the test, so no
/// event goes unexercised.
const EXPECTED: &[(&str, u16)] = &[
    ("get-key.rest.json", 200),
    ("get-key.http.json", 200),
    ("get-key.rest.not-found.json", 404),
    ("get-key.http.bad-id.json", 422),
    ("get-key.discue.rest.json", 200),
    ("get-key.discue.http.json", 200),
    ("list-keys.rest.json", 200),
    ("list-keys.http.json", 200),
    ("list-keys.rest.no-key.json", 401),
    ("list-keys.http.bad-limit.json", 422),
    ("list-keys.http.forbidden.json", 403),
    // An owner's keys: the demo's have none, so the page is empty.
    ("list-keys.rest.owner.json", 200),
    ("list-keys.http.owner.json", 200),
    // The writes change the demo organization: each event here runs once, in file name
    // order, so none of them touches a key another event reads (the admin's, whose secret
    // they all use, and the call center's, whose secret is refused the list).
    ("create-key.rest.json", 201),
    ("create-key.http.json", 201),
    ("create-key.http.unknown-field.json", 422),
    ("create-key.rest.forbidden.json", 403),
    ("update-key.rest.json", 200),
    ("update-key.http.json", 200),
    ("update-key.http.stale.json", 412),
    // The demo's keys have no credits: adjusting them is a 409 that says so.
    ("update-key.rest.credits-unlimited.json", 409),
    ("update-key.http.credits-unlimited.json", 409),
    ("roll-key.rest.json", 200),
    ("roll-key.http.json", 200),
    ("roll-key.http.bad-grace.json", 422),
    ("delete-key.rest.json", 204),
    ("delete-key.http.json", 204),
    ("delete-key.rest.not-found.json", 404),
    ("list-events.rest.json", 200),
    ("list-events.http.json", 200),
    ("list-events.http.bad-action.json", 422),
    // An owner's credits and rate limits (the demo's own owner, cus_demo). The changes (PUT)
    // sort before the reads of their payload, here and by file name, so those read what the
    // first one set (201: its limits were never set); the second sets the same again (200,
    // nothing to write). An owner no change names has no limits: 404. The bad body (credits
    // below zero) changes nothing.
    ("owner.http.change.json", 201),
    ("owner.http.json", 200),
    ("owner.http.not-found.json", 404),
    ("owner.rest.bad-body.json", 422),
    ("owner.rest.change.json", 200),
    ("owner.rest.json", 200),
    // Signed with the throwaway key of tools/github-test-signing-key.pem, whose public key
    // make run and tools/sam-local-env.json supply; the report names the demo's disabled key
    // and a token not ours, so it changes nothing.
    ("revoke-leaked.rest.json", 200),
    ("revoke-leaked.http.json", 200),
    ("revoke-leaked.http.bad-signature.json", 401),
    ("verify-key.rest.json", 200),
    ("verify-key.http.json", 200),
    ("verify-key.http.bad-body.json", 422),
    // EventBridge's scheduled event (not an API Gateway event): a run of the expiry notices,
    // which finds none due in the demo organization (its expired key expired in 2025, before
    // any run looks back). It answers what it did, `complete`, which counts as 200 here and in
    // tools/check-artifacts.py.
    ("expiry-notices.schedule.json", 200),
    // A batch of the table's stream (not an API Gateway event): a key count's insert and
    // change, which the stream mapping's filter would have kept from the function. It
    // publishes nothing and reports no failed record, which counts as 200 here and in
    // tools/check-artifacts.py, so it needs no bus.
    ("publish-events.stream.json", 200),
];

/// Whether a sample event is a scheduled one, for expiry-notices.
fn is_schedule(name: &str) -> bool {
    name.starts_with("expiry-notices.")
}

/// Whether a sample event is a batch of the table's stream, for publish-events.
fn is_stream(name: &str) -> bool {
    name.starts_with("publish-events.")
}

fn events_dir() -> PathBuf {
    crate::repo_root().join("events")
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_status() {
    let app = app().await;
    let seeded = apikeys_demo::seed(&app.store).await.unwrap();
    assert_eq!(seeded.len(), 5);
    assert!(
        apikeys_demo::seed(&app.store).await.unwrap().is_empty(),
        "seeding is idempotent"
    );

    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), EXPECTED.len(), "{files:?}");
    files.retain(|n| !is_schedule(n) && !is_stream(n));

    for name in files {
        let &(_, status) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no expected status"));
        let text = std::fs::read_to_string(events_dir().join(&name)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = &policy();
        let response = match name.split('.').next().unwrap_or_default() {
            "get-key" => apikeys::http::get_key(&app, req).await,
            "list-keys" => apikeys::http::list_keys(&app, req).await,
            "create-key" => apikeys::http::create_key(&app, policy, req).await,
            "update-key" => apikeys::http::update_key(&app, policy, req).await,
            "roll-key" => apikeys::http::roll_key(&app, policy, req).await,
            "delete-key" => apikeys::http::delete_key(&app, policy, req).await,
            "list-events" => apikeys::http::list_events(&app, req).await,
            "owner" => apikeys::http::owner(&app, policy, req).await,
            "verify-key" | "revoke-leaked" => sample_verify_or_report(&app, req).await,
            _ => panic!("{name} names no function"),
        };
        let reply = Reply::from(response);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        if status == 204 {
            assert!(reply.raw.is_empty(), "{name}: a 204 has no body");
        } else if status < 300 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{name}"
            );
        } else {
            reply.problem(status);
        }
    }
}

#[tokio::test]
async fn the_sample_list_event_returns_the_demo_keys_oldest_first() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    let text = std::fs::read_to_string(events_dir().join("list-keys.rest.json")).unwrap();
    let reply = Reply::from(
        apikeys::http::list_keys(&app, lambda_http::request::from_str(&text).unwrap()).await,
    );
    assert_eq!(
        reply.ids(),
        [apikeys_demo::ADMIN_ID, apikeys_demo::VIEWER_ID]
    );
    assert_eq!(reply.body["has_more"], true);
}

#[tokio::test]
async fn the_sample_discue_events_return_the_viewer_key_in_the_discue_view() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    for name in ["get-key.discue.rest.json", "get-key.discue.http.json"] {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        let reply = Reply::from(
            apikeys::http::get_key(&app, lambda_http::request::from_str(&text).unwrap()).await,
        );
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(
            reply.body["api_key"]["id"],
            apikeys_demo::VIEWER_ID,
            "{name}"
        );
        assert_eq!(
            reply.body["api_key"]["scopes"],
            serde_json::json!([{"resource": "api_keys", "access": "read", "targets": ["*"]}]),
            "{name}"
        );
        let href = reply.body["_links"]["self"]["href"].as_str().unwrap();
        assert!(href.ends_with(&format!("/v1/api_keys/{}", apikeys_demo::VIEWER_ID)));
    }
}

/// The GitHub keys revoke-leaked trusts locally: tools/sam-local-env.json's, which make run
/// supplies too.
fn local_github_keys() -> apikeys::leak::keys::KeySource<apikeys::leak::keys::NoFetch> {
    let path = crate::repo_root().join("tools/sam-local-env.json");
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let keys = env["RevokeLeakedFunction"]["GITHUB_SECRET_SCANNING_KEYS"]
        .as_str()
        .expect("the local GitHub keys");
    let keys = apikeys::leak::signature::PublicKeys::parse(keys.as_bytes()).unwrap();
    apikeys::leak::keys::KeySource::fixed(keys)
}

/// Runs a sample event through verify-key or revoke-leaked, by its route.
async fn sample_verify_or_report(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    req: lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body> {
    use lambda_http::RequestExt;
    let verify = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => {
            c.resource_path.as_deref() == Some("/v1/api_key/verify")
        }
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => {
            c.route_key.as_deref() == Some("ANY /v1/api_key/verify")
        }
        _ => panic!("an API Gateway event"),
    };
    if verify {
        let cache = apikeys::verify::VerifyCache::default();
        apikeys::http::verify_key(app, &cache, req).await
    } else {
        apikeys::http::revoke_leaked(app, &local_github_keys(), &policy(), req).await
    }
}

#[tokio::test]
async fn the_sample_verify_and_report_events_say_what_their_names_say() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    let run = |name: &'static str| {
        let app = &app;
        async move {
            let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
            let req = lambda_http::request::from_str(&text).unwrap();
            Reply::from(sample_verify_or_report(app, req).await)
        }
    };
    // The viewer holds api_keys.view; the call center does not.
    let valid = run("verify-key.rest.json").await;
    assert_eq!(
        (&valid.body["valid"], &valid.body["code"]),
        (&serde_json::json!(true), &serde_json::json!("VALID")),
        "{}",
        valid.body
    );
    assert_eq!(valid.body["key"]["id"], apikeys_demo::VIEWER_ID);
    let lacking = run("verify-key.http.json").await;
    assert_eq!(lacking.body["code"], "INSUFFICIENT_PERMISSIONS");
    assert!(
        run("verify-key.http.bad-body.json")
            .await
            .problem(422)
            .contains("secret")
    );
    // The reported keys are the demo's disabled one and a stranger's: the demo's is ours,
    // so it is marked leaked (a replay, the second time), the stranger's is not.
    for name in ["revoke-leaked.rest.json", "revoke-leaked.http.json"] {
        let report = run(name).await;
        let labels: Vec<&str> = report
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["true_positive", "false_positive"], "{name}");
    }
    run("revoke-leaked.http.bad-signature.json")
        .await
        .problem(401);
}

/// Runs a sample event through its write or audit function.
async fn sample(app: &apikeys::App<apikeys::store::dynamo::DynamoStore>, name: &str) -> Reply {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    let req = lambda_http::request::from_str(&text).unwrap();
    let policy = &policy();
    Reply::from(match name.split('.').next().unwrap_or_default() {
        "create-key" => apikeys::http::create_key(app, policy, req).await,
        "update-key" => apikeys::http::update_key(app, policy, req).await,
        "roll-key" => apikeys::http::roll_key(app, policy, req).await,
        "delete-key" => apikeys::http::delete_key(app, policy, req).await,
        "list-events" => apikeys::http::list_events(app, req).await,
        "owner" => apikeys::http::owner(app, policy, req).await,
        _ => panic!("{name} is no write or audit event"),
    })
}

#[tokio::test]
async fn the_sample_write_events_do_what_their_names_say() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();

    // The create carries an Idempotency-Key: sent again, it answers the same key and secret.
    let created = sample(&app, "create-key.rest.json").await;
    let again = sample(&app, "create-key.rest.json").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(again.body, created.body);
    let id = created.body["id"].as_str().unwrap();
    assert!(created.body["secret"].as_str().unwrap().starts_with("apk_"));
    assert!(
        created
            .header("location")
            .unwrap()
            .ends_with(&format!("/v1/api_key/{id}"))
    );

    let unknown = sample(&app, "create-key.http.unknown-field.json").await;
    assert!(unknown.problem(422).contains("id"), "{}", unknown.body);
    let forbidden = sample(&app, "create-key.rest.forbidden.json").await;
    assert!(
        forbidden.problem(403).contains("api_keys.create"),
        "{}",
        forbidden.body
    );

    let updated = sample(&app, "update-key.rest.json").await;
    assert_eq!(updated.body["name"], "Call center (EU)", "{}", updated.body);
    sample(&app, "update-key.http.stale.json")
        .await
        .problem(412);

    // The roll keeps the previous secret for its grace period.
    let rolled = sample(&app, "roll-key.rest.json").await;
    let secret = rolled.body["secret"].as_str().unwrap();
    assert_eq!(rolled.body["id"], apikeys_demo::VIEWER_ID);
    assert_eq!(
        rolled.body["last_four_digits"].as_str(),
        secret.get(secret.len() - 4..)
    );
    let old = apikeys_demo::secret_of(apikeys_demo::VIEWER_ID).unwrap();
    let new = apikeys::secret::Secret::parse(secret).unwrap();
    for (secret, what) in [
        (&old, "the old secret, in its grace"),
        (&new, "the new secret"),
    ] {
        let reply = Call::get(Payload::Rest, apikeys_demo::VIEWER_ID)
            .bearer(secret)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
    }

    assert_eq!(sample(&app, "delete-key.rest.json").await.status, 204);
    let again = sample(&app, "delete-key.rest.json").await;
    again.problem(404);

    // The call center's events, oldest first: created by the seed, then updated.
    let events = sample(&app, "list-events.http.json").await;
    let actions: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key.created", "key.updated"], "{}", events.body);
    let bad = sample(&app, "list-events.http.bad-action.json").await;
    assert!(bad.problem(422).contains("action"), "{}", bad.body);
}

#[tokio::test]
async fn the_sample_owner_events_set_the_demo_owners_limits_and_read_them() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();

    // Before any change, the owner has no limits of its own.
    sample(&app, "owner.http.json").await.problem(404);
    sample(&app, "owner.http.not-found.json").await.problem(404);

    // The change sets what its body says; both payloads' reads answer it.
    let text = std::fs::read_to_string(events_dir().join("owner.http.change.json")).unwrap();
    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let body: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let changed = sample(&app, "owner.http.change.json").await;
    assert_eq!(changed.status, 201, "{}", changed.body);
    for name in ["owner.http.json", "owner.rest.json"] {
        let read = sample(&app, name).await;
        assert_eq!(read.status, 200, "{name}: {}", read.body);
        assert_eq!(read.body["owner_id"], "cus_demo", "{name}: {}", read.body);
        assert!(holds(&read.body, &body), "{name}: {}", read.body);
    }

    // A bad body names the field it fails on and changes nothing.
    let bad = sample(&app, "owner.rest.bad-body.json").await;
    assert!(bad.problem(422).contains("remaining"), "{}", bad.body);
    let again = sample(&app, "owner.rest.json").await;
    assert!(holds(&again.body, &body), "{}", again.body);
}

/// Whether `answer` holds every field `sent` has, with its value: the answer also has the
/// fields left to their defaults (a monthly refill's day, a limit's mode).
fn holds(answer: &serde_json::Value, sent: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (answer, sent) {
        (Value::Object(a), Value::Object(s)) => s
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|got| holds(got, v))),
        (Value::Array(a), Value::Array(s)) => {
            a.len() == s.len() && a.iter().zip(s).all(|(got, v)| holds(got, v))
        }
        _ => answer == sent,
    }
}

/// A bus that must not be called: a batch without an audit event publishes nothing.
struct NoBus;

impl apikeys::publish::Bus for NoBus {
    async fn put(
        &self,
        entries: &[apikeys::publish::Entry],
    ) -> Result<Vec<Option<String>>, apikeys::publish::BusError> {
        panic!("nothing to publish, yet {entries:?}")
    }
}

#[tokio::test]
async fn the_sample_stream_batch_publishes_nothing_and_fails_no_record() {
    for (name, status) in EXPECTED.iter().filter(|(n, _)| is_stream(n)) {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        let batch: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!batch.records.is_empty(), "{name}");
        let outcome = apikeys::publish::publish(&NoBus, &batch.records).await;
        assert_eq!(outcome.published, 0, "{name}");
        let answer = serde_json::to_value(outcome.response()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": []}),
            "{name}"
        );
        assert_eq!(*status, 200, "{name}: no failed record");
    }
}

#[tokio::test]
async fn the_sample_schedule_runs_the_expiry_notices_to_the_end_and_writes_none() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    for (name, _) in EXPECTED.iter().filter(|(n, _)| is_schedule(n)) {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event", "{name}");
        let policy = apikeys::expiry::NoticePolicy::new(7, policy()).unwrap();
        let context = lambda_http::Context::default();
        let summary = apikeys::expiry::scheduled(&app.store, &policy, &context)
            .await
            .unwrap();
        let answer = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"expiring": 0, "expired": 0, "skipped": 0, "complete": true}),
            "{name}"
        );
    }
}
