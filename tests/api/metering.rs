//! Credits and rate limits on verify, over HTTP against DynamoDB Local: the core paths
//! (create, verify with a cost, refusals that spend nothing, PATCH, adjust).

use apikeys_tests::*;
use serde_json::{Value, json};

/// Creates a key with `extra` members through the API; its id and secret.
async fn create_with(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    admin: &apikeys::secret::Secret,
    extra: Value,
) -> (String, String) {
    let mut body = json!({"name": "metered", "restricted": false});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let reply = Call::create(Payload::Http, body)
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    (
        reply.body["id"].as_str().unwrap().to_owned(),
        reply.body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn verify(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    admin: &apikeys::secret::Secret,
    secret: &str,
    cost: Option<u64>,
) -> Value {
    let mut body = json!({"key": secret});
    if let Some(c) = cost {
        body["cost"] = json!(c);
    }
    let reply = Call::verify(Payload::Http, &body)
        .bearer(admin)
        .send(app)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn credits_are_spent_until_none_are_left_and_a_refusal_spends_nothing() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let (id, secret) = create_with(&app, &admin, json!({"credits": {"remaining": 3}})).await;
    let got = verify(&app, &admin, &secret, Some(2)).await;
    assert_eq!(
        (got["code"].as_str(), got["credits"]["remaining"].as_u64()),
        (Some("VALID"), Some(1)),
        "{got}"
    );
    assert_eq!(got["key"]["credits"]["remaining"], 1, "{got}");
    let got = verify(&app, &admin, &secret, Some(2)).await;
    assert_eq!(
        (got["code"].as_str(), got["credits"]["remaining"].as_u64()),
        (Some("USAGE_EXCEEDED"), Some(1)),
        "{got}"
    );
    let got = verify(&app, &admin, &secret, None).await;
    assert_eq!(
        (got["code"].as_str(), got["credits"]["remaining"].as_u64()),
        (Some("VALID"), Some(0)),
        "{got}"
    );
    let got = verify(&app, &admin, &secret, Some(0)).await;
    assert_eq!(got["code"], "USAGE_EXCEEDED", "{got}");
    // Adjusting, then a PATCH of remaining, recorded.
    let reply = Call::adjust(Payload::Http, &id, &json!({"increment": 5}))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["credits"]["remaining"], 5, "{}", reply.body);
    let reply = Call::update(Payload::Http, &id, json!({"credits": {"remaining": 7}}))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["credits"],
        json!({"remaining": 7, "refill": null})
    );
    let got = verify(&app, &admin, &secret, None).await;
    assert_eq!(got["credits"]["remaining"], 6, "{got}");
}

#[tokio::test]
async fn a_rate_limit_admits_its_limit_per_window_in_both_modes() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for mode in ["exact", "leased"] {
        let limits = json!([{"name": "burst", "limit": 5, "duration_ms": 60_000, "mode": mode}]);
        let (_, secret) = create_with(
            &app,
            &admin,
            json!({"ratelimits": limits, "credits": {"remaining": 100}}),
        )
        .await;
        let mut codes = Vec::new();
        for _ in 0..8 {
            let got = verify(&app, &admin, &secret, None).await;
            codes.push(got["code"].as_str().unwrap().to_owned());
            assert_eq!(got["ratelimits"][0]["limit"], 5, "{got}");
        }
        let valid = codes.iter().filter(|c| *c == "VALID").count();
        // One window of a minute, unless the test straddles its end.
        assert!((5..=8).contains(&valid), "{mode}: {codes:?}");
        assert!(
            codes.contains(&"RATE_LIMITED".to_owned()) || valid == 8,
            "{mode}: {codes:?}"
        );
        let got = verify(&app, &admin, &secret, Some(0)).await;
        let spent = 100 - got["credits"]["remaining"].as_u64().unwrap();
        assert_eq!(
            spent as usize, valid,
            "{mode}: refused verifies spent no credit: {got}"
        );
    }
}

/// A spend that DynamoDB applied but whose answer was lost is sent again by the SDK; the
/// retry finds its own id and counts once: 3 credits still give exactly 3 VALID.
#[tokio::test]
async fn a_spend_whose_answer_was_lost_counts_once() {
    use apikeys_tests::fault::FaultProxy;
    use apikeys_tests::realistic::Realism;
    let real = app().await;
    let org = org();
    let admin = admin(&real, &org).await;
    let (_, secret) = create_with(&real, &admin, json!({"credits": {"remaining": 3}})).await;
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    proxy.realistic(Realism {
        lose_spends: 2,
        ..Realism::default()
    });
    let mut left = Vec::new();
    for _ in 0..4 {
        let got = verify(&app, &admin, &secret, None).await;
        left.push((
            got["code"].as_str().unwrap().to_owned(),
            got["credits"]["remaining"].clone(),
        ));
    }
    assert_eq!(
        left,
        vec![
            ("VALID".to_owned(), json!(2)),
            ("VALID".to_owned(), json!(1)),
            ("VALID".to_owned(), json!(0)),
            ("USAGE_EXCEEDED".to_owned(), json!(0)),
        ]
    );
}

/// A window seen full stays full until it ends: the verifies refused in it are answered
/// without a write, so they answer even while DynamoDB refuses every UpdateItem.
#[tokio::test]
async fn verifies_refused_in_a_window_seen_full_need_no_write() {
    use apikeys_tests::fault::{Fault, FaultProxy};
    let real = app().await;
    let org = org();
    let admin = admin(&real, &org).await;
    let limits = json!([{"name": "per_day", "limit": 2, "duration_ms": 86_400_000}]);
    let (_, secret) = create_with(&real, &admin, json!({"ratelimits": limits})).await;
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    let cache = apikeys::verify::VerifyCache::new(std::time::Duration::from_secs(60));
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (status, body) = verify_through(&app, &cache, &admin, &secret).await;
        assert_eq!(status, 200, "{body}");
        codes.push(body["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes, ["VALID", "VALID", "RATE_LIMITED"]);
    // Every UpdateItem refused from now on: a write would be a 503.
    proxy.set(Fault::ThrottleOnly("UpdateItem"));
    for _ in 0..3 {
        let (status, body) = verify_through(&app, &cache, &admin, &secret).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["code"], "RATE_LIMITED", "{body}");
        assert_eq!(body["ratelimits"][0]["remaining"], 0, "{body}");
    }
}

/// One verify of `secret` through the handler, with this process's `cache` (and leases).
async fn verify_through(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    cache: &apikeys::verify::VerifyCache,
    admin: &apikeys::secret::Secret,
    secret: &str,
) -> (u16, Value) {
    let req = Call::verify(Payload::Http, &json!({"key": secret}))
        .bearer(admin)
        .request();
    let response = apikeys::http::verify_key(app, cache, req).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn scratch_leased_fresh_window() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let limits = json!([{"name": "burst", "limit": 100, "duration_ms": 60_000, "mode": "leased"}]);
    let (_, secret) = create_with(&app, &admin, json!({"ratelimits": limits})).await;
    let cache = std::sync::Arc::new(apikeys::verify::VerifyCache::new(
        std::time::Duration::from_secs(5),
    ));
    let app = std::sync::Arc::new(app);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (app, cache, admin, secret) =
            (app.clone(), cache.clone(), admin.clone(), secret.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            for _ in 0..3 {
                let (_, body) = verify_through(&app, &cache, &admin, &secret).await;
                out.push(format!("{} {}", body["code"], body["ratelimits"]));
            }
            out
        });
    }
    let all: Vec<String> = set.join_all().await.into_iter().flatten().collect();
    eprintln!("{all:#?}");
    assert!(all.iter().all(|c| c.starts_with("\"VALID\"")), "{all:#?}");
}
