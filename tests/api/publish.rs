//! Every audit event out to EventBridge, with no AWS account: writes over HTTP against
//! DynamoDB Local, the publisher driven from the table's real stream (DynamoDB Local serves
//! DynamoDB Streams), and moto's server as the bus, whose rule delivers each event to an SQS
//! queue the test reads back (`support/moto.rs`).

use std::time::{Duration, Instant};

use apikeys::App;
use apikeys::publish::stream::LocalStream;
use apikeys::publish::{Bus, EventBridgeBus};
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::github::github;
use apikeys_tests::moto::Moto;
use apikeys_tests::*;
use serde_json::{Value, json};

use crate::http_writes::{all_events, caller};

/// Pumps the stream into `bus` until `want` events were published in all (at most 30 s).
async fn publish_all(stream: &mut LocalStream, bus: &impl Bus, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut published = 0;
    while published < want || stream.pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "{published} of {want} events published"
        );
        let outcome = stream.pump(bus).await.expect("the local stream");
        assert_eq!(outcome.failed_from, None, "a working bus");
        published += outcome.published;
        if outcome.published == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    published
}

/// What the bus `name` delivered, until `want` events came (at most 10 s).
async fn delivered(moto: &Moto, name: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        out.extend(moto.delivered(name).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

/// The stream of the app's table, turned on (the tests' tables are made without one).
async fn stream_of(app: &App<DynamoStore>) -> LocalStream {
    let sdk = apikeys::config::sdk_config().await;
    LocalStream::open(&app.store, &sdk, true)
        .await
        .expect("DynamoDB Local's stream")
}

/// Creates a key with credits over HTTP, updates it, disables and enables it, adds to its
/// credits, rolls and deletes it, and has GitHub report another's secret: a write of each
/// action. Returns the secrets the writes handed out.
async fn writes_over_http(app: &App<DynamoStore>, admin: &apikeys::secret::Secret) -> Vec<String> {
    let p = Payload::Http;
    let body = json!({"name": "one", "restricted": false, "credits": {"remaining": 5}});
    let created = Call::create(p, body).bearer(admin).send(app).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    for change in [
        json!({"name": "renamed"}),
        json!({"status": "disabled"}),
        json!({"status": "active"}),
    ] {
        let updated = Call::update(p, &id, change).bearer(admin).send(app).await;
        assert_eq!(updated.status, 200, "{}", updated.body);
    }
    let adjusted = Call::adjust(p, &id, &json!({"increment": 2}))
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.body);
    let rolled = Call::roll(p, &id, None).bearer(admin).send(app).await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let deleted = Call::delete(p, &id).bearer(admin).send(app).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let leaked = Call::create(p, json!({"name": "leaked", "restricted": false}))
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(leaked.status, 201, "{}", leaked.body);
    let token = leaked.body["secret"].as_str().unwrap().to_owned();
    let entry = json!([{"token": token, "type": "apikeys_api_key",
        "url": "https://github.com/o/r/blob/0/.env", "source": "content"}]);
    let report = Call::report(p, entry.to_string())
        .signed(github())
        .send(app)
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    let owner = Call::put_owner(p, "cus_1", &json!({"credits": {"remaining": 9}}))
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(owner.status, 201, "{}", owner.body);
    [&created, &rolled, &leaked]
        .iter()
        .map(|r| r.body["secret"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_write_over_http_is_published_once_as_get_events_shows_it() {
    let moto = Moto::start().await;
    let bus = moto.bus("audit").await;
    let app = app().await;
    let mut stream = stream_of(&app).await;
    let org = org();
    let (_, admin) = caller(&app, &org, None).await;
    let secrets = writes_over_http(&app, &admin).await;

    // Newest first, as GET shows them: the caller's creation, then the ten writes, one of
    // each action.
    let listed = all_events(&app, Payload::Http, &admin, None).await;
    let actions: Vec<&str> = listed
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "owner.updated",
            "key.leaked",
            "key.created",
            "key.deleted",
            "key.rolled",
            "key.credits_adjusted",
            "key.enabled",
            "key.disabled",
            "key.updated",
            "key.created",
            "key.created"
        ]
    );
    let every: std::collections::BTreeSet<&str> = actions.iter().copied().collect();
    // The expiry notices are no request's: the scheduled run writes them as events like
    // these (tests/api/expiry.rs), which the stream publishes the same way.
    let all: std::collections::BTreeSet<&str> = apikeys::audit::Action::ALL
        .iter()
        .map(|a| a.as_str())
        .filter(|a| !["key.expiring", "key.expired"].contains(a))
        .collect();
    assert_eq!(every, all, "a write of every action over HTTP");
    assert_eq!(
        publish_all(&mut stream, &bus, listed.len()).await,
        listed.len()
    );
    let got = delivered(&moto, "audit", listed.len()).await;
    assert_eq!(got.len(), listed.len(), "each event exactly once: {got:#?}");

    let mut details = Vec::new();
    for message in &got {
        let detail = &message["detail"];
        assert_eq!(message["source"], "apikeys");
        assert_eq!(
            message["detail-type"],
            format!("apikeys {}", detail["action"].as_str().unwrap())
        );
        assert_eq!(detail["organization"], org.to_string());
        let mut view = detail.clone();
        view.as_object_mut().unwrap().remove("organization");
        details.push(view);
        // The same rule as the API: no secret, nor its hash, leaves.
        let text = message.to_string();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret on the bus: {text}"
            );
            let hash = apikeys::leak::assess::token_hash(secret);
            assert!(!text.contains(&hash), "a secret's hash on the bus: {text}");
        }
        assert!(!text.contains("apk_"), "{text}");
    }
    // moto delivers in the order published, which is the stream's, which is the writes'.
    let oldest_first: Vec<Value> = listed.into_iter().rev().collect();
    assert_eq!(details, oldest_first);
}

#[tokio::test]
async fn a_bus_that_fails_leaves_the_batch_for_the_retry_and_nothing_is_lost() {
    let moto = Moto::start().await;
    let bus = moto.bus("audit").await;
    let app = app().await;
    let mut stream = stream_of(&app).await;
    let org = org();
    let (_, admin) = caller(&app, &org, None).await;
    writes_over_http(&app, &admin).await;
    let want = 11;
    // The records the stream mapping's filter lets through: the eleven events, and the five
    // changes of the key with credits (for their notices, of which they have none); not the
    // owner item's.
    let records = want + 5;

    // A bus that does not exist, then a closed port: every call fails, the batch is reported
    // from its first record (Lambda's retry, then the dead-letter queue), and kept.
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", socket.local_addr().unwrap())
    };
    let missing = EventBridgeBus::new(moto.eventbridge(), "no-such-bus");
    let unreachable = EventBridgeBus::new(moto.eventbridge_at(&closed), "audit");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream.pending() < records {
        assert!(
            Instant::now() < deadline,
            "{} records read",
            stream.pending()
        );
        let outcome = stream.pump(&missing).await.expect("the local stream");
        assert_eq!(outcome.published, 0);
    }
    for failing in [&missing, &unreachable] {
        let outcome = stream.pump(failing).await.expect("the local stream");
        assert_eq!(outcome.published, 0);
        let failures = outcome.response().batch_item_failures;
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0]
                .item_identifier
                .as_deref()
                .is_some_and(|s| !s.is_empty())
        );
        assert_eq!(stream.pending(), records, "kept for the retry");
    }
    assert!(delivered(&moto, "audit", 1).await.is_empty());

    // The retry, once the bus works: each event once, in order.
    assert_eq!(publish_all(&mut stream, &bus, want).await, want);
    let got = delivered(&moto, "audit", want).await;
    let actions: Vec<&str> = got
        .iter()
        .map(|m| m["detail"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "key.created",
            "key.created",
            "key.updated",
            "key.disabled",
            "key.enabled",
            "key.credits_adjusted",
            "key.rolled",
            "key.deleted",
            "key.created",
            "key.leaked",
            "owner.updated"
        ]
    );
}

/// Verifies `secret` once at cost 1 over HTTP, and returns the answer's code.
async fn verify_once(
    app: &App<DynamoStore>,
    admin: &apikeys::secret::Secret,
    secret: &str,
) -> String {
    let body = json!({"key": secret, "cost": 1});
    let reply = Call::verify(Payload::Http, &body)
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn credits_low_and_exhausted_are_published_once_per_crossing_not_per_verify() {
    let moto = Moto::start().await;
    let bus = moto.bus("audit").await;
    let app = app().await;
    let mut stream = stream_of(&app).await;
    let org = org();
    let (_, admin) = caller(&app, &org, None).await;
    let body = json!({"name": "metered", "restricted": false,
        "credits": {"remaining": 4, "low_at": 2}});
    let created = Call::create(Payload::Http, body)
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();

    // 4 -> 3 -> 2 (not below 2) -> 1 (low) -> 0 (exhausted), then refusals that write nothing.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(verify_once(&app, &admin, &secret).await);
    }
    assert_eq!(codes[..4], ["VALID"; 4]);
    assert_eq!(codes[4..], ["USAGE_EXCEEDED"; 2]);
    // Back above the threshold, then a new drop: a new crossing.
    let refill = json!({"credits": {"remaining": 2}});
    let patched = Call::update(Payload::Http, &id, refill)
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(verify_once(&app, &admin, &secret).await, "VALID");

    // The audit events (the caller's and this key's creation, the PATCH), and three notices.
    let want = 6;
    assert_eq!(publish_all(&mut stream, &bus, want).await, want);
    let got = delivered(&moto, "audit", want).await;
    let types: Vec<&str> = got
        .iter()
        .map(|m| m["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "apikeys key.created",
            "apikeys key.created",
            "apikeys key.credits_low",
            "apikeys key.credits_exhausted",
            "apikeys key.updated",
            "apikeys key.credits_low",
        ]
    );
    let notices: Vec<&Value> = got
        .iter()
        .map(|m| &m["detail"])
        .filter(|d| d["action"].as_str().unwrap().starts_with("key.credits_"))
        .collect();
    let left: Vec<&Value> = notices.iter().map(|d| &d["credits"]).collect();
    assert_eq!(
        left,
        [
            &json!({"remaining": 1, "low_at": 2}),
            &json!({"remaining": 0, "low_at": 2}),
            &json!({"remaining": 1, "low_at": 2}),
        ]
    );
    for notice in &notices {
        assert_eq!(notice["organization"], org.to_string());
        assert_eq!(notice["key_id"], id.as_str());
        let text = notice.to_string();
        assert!(!text.contains(&secret), "a secret on the bus: {text}");
        let hash = apikeys::leak::assess::token_hash(&secret);
        assert!(!text.contains(&hash), "a secret's hash on the bus: {text}");
    }
    let ids: std::collections::BTreeSet<&str> =
        notices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "each notice its own id");
    // Bus-only: the audit trail lists the writes, not the notices.
    let listed = all_events(&app, Payload::Http, &admin, None).await;
    assert!(
        listed
            .iter()
            .all(|e| !e["action"].as_str().unwrap().starts_with("key.credits_")),
        "{listed:#?}"
    );
}
