//! `GET`/`PUT /v1/owner/{owner_id}` over HTTP against DynamoDB Local, on both payloads: an
//! owner's own credits and rate limits set whole, shown, spent by its keys' verifies at
//! once; each change one `owner.updated` event in the same transaction; `If-Match`; bad
//! input; the authority rule for owners; and organizations that never share an owner.

use apikeys::App;
use apikeys::key::Permission;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::NewKey;
use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

fn credits(n: u64) -> Value {
    json!({"credits": {"remaining": n, "refill": null}})
}

async fn put(app: &App<DynamoStore>, p: Payload, who: &Secret, id: &str, body: Value) -> Reply {
    Call::put_owner(p, id, &body).bearer(who).send(app).await
}

/// The organization's `owner.updated` events, oldest first, as `GET /v1/api_key_events/`
/// lists them.
async fn owner_events(app: &App<DynamoStore>, p: Payload, admin: &Secret) -> Vec<Value> {
    let call = Call::events(p)
        .query("action", "owner.updated")
        .query("order", "asc");
    let reply = call.bearer(admin).send(app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"].as_array().expect("a page").clone()
}

fn code(answer: &Value) -> &str {
    answer["code"].as_str().expect("a code")
}

#[tokio::test]
async fn put_sets_an_owners_limits_get_shows_them_and_its_keys_spend_them_at_once() {
    for p in PAYLOADS {
        let app = app().await;
        let org = org();
        let admin = admin(&app, &org).await;
        let (_, key) = create_json(&app, p, &admin, json!({"owner_id": "cus_1"})).await;
        let nothing = put(&app, p, &admin, "cus_1", json!({})).await;
        assert_eq!(
            (nothing.status, &nothing.body["credits"]),
            (200, &Value::Null),
            "{p:?}"
        );
        let missing = Call::owner(p, "cus_1").bearer(&admin).send(&app).await;
        assert_eq!(
            missing.status, 404,
            "{p:?}: no limits set is no owner: {}",
            missing.body
        );
        assert!(missing.body["detail"].as_str().unwrap().contains("owner"));
        // Before: the key is unmetered.
        assert_eq!(
            code(&verify_json(&app, p, &admin, &key, None).await),
            "VALID"
        );

        let set = put(&app, p, &admin, "cus_1", credits(2)).await;
        assert_eq!(set.status, 201, "{p:?}: {}", set.body);
        let want = json!({"owner_id": "cus_1", "credits": {"remaining": 2, "refill": null},
                          "ratelimits": [], "updated_date": set.body["updated_date"]});
        assert_eq!(set.body, want);
        let got = Call::owner(p, "cus_1").bearer(&admin).send(&app).await;
        assert_eq!((got.status, &got.body), (200, &want), "{p:?}");
        assert_eq!(got.headers.get("etag"), set.headers.get("etag"));
        let codes: Vec<String> = futures_codes(&app, p, &admin, &key, 3).await;
        assert_eq!(codes, ["VALID", "VALID", "USAGE_EXCEEDED"], "{p:?}");

        // A new PUT applies to the next verify: credits 1 more, and a limit.
        let body = json!({"credits": {"remaining": 1},
                          "ratelimits": [{"name": "shared", "limit": 100, "duration_ms": 60000}]});
        let again = put(&app, p, &admin, "cus_1", body).await;
        assert_eq!(again.status, 200, "{p:?}: {}", again.body);
        assert_eq!(again.body["ratelimits"][0]["mode"], "exact");
        let a = verify_json(&app, p, &admin, &key, None).await;
        assert_eq!(
            (code(&a), &a["owner"]["credits"]["remaining"]),
            ("VALID", &json!(0))
        );
        assert_eq!(a["owner"]["ratelimits"][0]["remaining"], 99, "{a}");

        // Nothing at all: the owner is unmetered again.
        assert_eq!(put(&app, p, &admin, "cus_1", json!({})).await.status, 200);
        assert_eq!(
            code(&verify_json(&app, p, &admin, &key, None).await),
            "VALID"
        );
    }
}

/// `n` verifies of `key`, one after another: their codes.
async fn futures_codes(
    app: &App<DynamoStore>,
    p: Payload,
    admin: &Secret,
    key: &Secret,
    n: usize,
) -> Vec<String> {
    let mut codes = Vec::new();
    for _ in 0..n {
        codes.push(code(&verify_json(app, p, admin, key, None).await).to_owned());
    }
    codes
}

#[tokio::test]
async fn each_change_is_one_owner_updated_event_and_an_identical_put_writes_none() {
    for p in PAYLOADS {
        let app = app().await;
        let org = org();
        let (admin_key, admin) = create(&app, new_key(&org, "admin")).await;
        let (key, _) = create_json(&app, p, &admin, json!({"owner_id": "cus_1"})).await;
        assert_eq!(put(&app, p, &admin, "cus_1", credits(5)).await.status, 201);
        assert_eq!(put(&app, p, &admin, "cus_1", credits(5)).await.status, 200);
        let limits = json!({"credits": {"remaining": 5},
                            "ratelimits": [{"name": "r", "limit": 3, "duration_ms": 1000}]});
        assert_eq!(put(&app, p, &admin, "cus_1", limits).await.status, 200);
        let events = owner_events(&app, p, &admin).await;
        assert_eq!(events.len(), 2, "{p:?}: {events:?}");
        let first = &events[0];
        assert_eq!(first["owner_id"], "cus_1");
        assert!(
            first.get("key_id").is_none(),
            "an owner's event names no key: {first}"
        );
        assert_eq!(first["actor"]["id"], admin_key.id.to_string());
        assert_eq!(
            first["changes"],
            json!({"credits": {"from": null, "to": {"remaining": 5, "refill": null}}})
        );
        let second = &events[1];
        assert_eq!(second["changes"]["ratelimits"]["from"], Value::Null);
        assert_eq!(second["changes"]["ratelimits"]["to"][0]["limit"], 3);
        assert!(second["changes"].get("credits").is_none(), "{second}");
        // Not in any key's trail.
        let reply = Call::key_events(p, id_of(&key))
            .bearer(&admin)
            .send(&app)
            .await;
        let actions: Vec<&Value> = reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["action"])
            .collect();
        assert!(!actions.contains(&&json!("owner.updated")), "{actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_match_names_the_owners_version_and_of_two_concurrent_puts_one_wins() {
    for p in PAYLOADS {
        let app = std::sync::Arc::new(app().await);
        let org = org();
        let admin = std::sync::Arc::new(admin(&app, &org).await);
        let star = Call::put_owner(p, "cus_1", &credits(1)).header("If-Match", "*");
        assert_eq!(
            star.bearer(&admin).send(&app).await.status,
            412,
            "{p:?}: not set yet"
        );
        let set = put(&app, p, &admin, "cus_1", credits(1)).await;
        let tag = set.headers["etag"].to_str().unwrap().to_owned();
        let mut racers = tokio::task::JoinSet::new();
        for n in [10, 20] {
            let (app, admin, tag) = (app.clone(), admin.clone(), tag.clone());
            racers.spawn(async move {
                let call = Call::put_owner(p, "cus_1", &credits(n)).header("If-Match", tag);
                call.bearer(&admin).send(&app).await.status
            });
        }
        let mut statuses = racers.join_all().await;
        statuses.sort();
        assert_eq!(statuses, [200, 412], "{p:?}");
        let stale = Call::put_owner(p, "cus_1", &credits(7)).header("If-Match", &tag);
        assert_eq!(stale.bearer(&admin).send(&app).await.status, 412);
        assert_eq!(owner_events(&app, p, &admin).await.len(), 2);
    }
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_other_methods_a_405() {
    for p in PAYLOADS {
        let app = app().await;
        let admin = admin(&app, &org()).await;
        let leased = json!({"ratelimits": [{"name": "r", "limit": 3, "duration_ms": 1000,
                                            "mode": "leased"}]});
        let cases = [
            (leased, "ratelimits"),
            (json!({"credits": {"remaining": 5, "low_at": 2}}), "credits"),
            (json!({"credits": {"remaining": -1}}), "credits"),
            (json!({"credits": {"refill": null}}), "credits"),
            (json!({"owner_id": "cus_2"}), "owner_id"),
            (json!({"ratelimits": "many"}), "ratelimits"),
        ];
        for (body, field) in cases {
            let reply = put(&app, p, &admin, "cus_1", body.clone()).await;
            assert_eq!(
                parameter(&reply, 422).as_deref(),
                Some(field),
                "{p:?} {body}"
            );
        }
        let long = "x".repeat(129);
        let reply = Call::owner(p, &long).bearer(&admin).send(&app).await;
        assert_eq!(parameter(&reply, 422).as_deref(), Some("owner_id"));
        let reply = Call::owner(p, "cus_1")
            .method("DELETE")
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.headers["allow"], "GET, HEAD, PUT");
        let reply = Call::owner(p, "cus_1").bearer(&admin).send(&app).await;
        assert_eq!(reply.status, 404, "nothing was set by a refused PUT");
    }
}

#[tokio::test]
async fn only_an_unrestricted_caller_sets_an_owner_and_none_lifts_its_own_owner() {
    for p in PAYLOADS {
        let app = app().await;
        let org = org();
        let admin = admin(&app, &org).await;
        let writer = restricted(&[Permission::ApiKeysUpdate, Permission::ApiKeysView]);
        let weak = NewKey {
            access: writer,
            ..new_key(&org, "weak")
        };
        let (_, weak) = create(&app, weak).await;
        let reply = put(&app, p, &weak, "cus_1", credits(5)).await;
        assert_eq!(reply.status, 403, "{p:?}: {}", reply.body);
        assert_eq!(put(&app, p, &admin, "cus_1", credits(5)).await.status, 201);
        assert_eq!(
            Call::owner(p, "cus_1")
                .bearer(&weak)
                .send(&app)
                .await
                .status,
            200
        );

        // An admin key of the owner: it may tighten its owner, never loosen it, and makes
        // keys for its owner only.
        let body = json!({"owner_id": "cus_1"});
        let (_, member) = create_json(&app, p, &admin, body).await;
        assert_eq!(put(&app, p, &member, "cus_1", credits(4)).await.status, 200);
        let lift = put(&app, p, &member, "cus_1", credits(50)).await;
        assert_eq!(parameter(&lift, 403).as_deref(), Some("credits"), "{p:?}");
        let elsewhere = Call::create(p, json!({"name": "x", "restricted": false}));
        let reply = elsewhere.bearer(&member).send(&app).await;
        assert_eq!(parameter(&reply, 403).as_deref(), Some("owner_id"), "{p:?}");
        let mine = json!({"name": "x", "restricted": false, "owner_id": "cus_1"});
        assert_eq!(
            Call::create(p, mine)
                .bearer(&member)
                .send(&app)
                .await
                .status,
            201
        );

        // A metered admin key cannot loosen an owner past its own, nor move keys out.
        let (_, metered) = create_json(&app, p, &admin, credits(10)).await;
        assert_eq!(
            put(&app, p, &metered, "cus_2", credits(1000)).await.status,
            201
        );
        let more = put(&app, p, &metered, "cus_2", credits(2000)).await;
        assert_eq!(parameter(&more, 403).as_deref(), Some("credits"), "{p:?}");
        let (owned, _) = create_json(&app, p, &admin, json!({"owner_id": "cus_2"})).await;
        let out = Call::update(p, id_of(&owned), json!({"owner_id": null}));
        let reply = out.bearer(&metered).send(&app).await;
        assert_eq!(parameter(&reply, 403).as_deref(), Some("owner_id"), "{p:?}");
        assert_eq!(
            owner_events(&app, p, &admin).await.len(),
            3,
            "no refusal wrote"
        );
    }
}

#[tokio::test]
async fn two_organizations_with_one_owner_id_never_see_or_change_each_others() {
    for p in PAYLOADS {
        let app = app().await;
        let (a, b) = (org(), org());
        let (admin_a, admin_b) = (admin(&app, &a).await, admin(&app, &b).await);
        let (_, key_a) = create_json(&app, p, &admin_a, json!({"owner_id": "cus_1"})).await;
        assert_eq!(
            put(&app, p, &admin_a, "cus_1", credits(1)).await.status,
            201
        );
        let seen = Call::owner(p, "cus_1").bearer(&admin_b).send(&app).await;
        assert_eq!(seen.status, 404, "{p:?}: {}", seen.body);
        let theirs = put(&app, p, &admin_b, "cus_1", credits(100)).await;
        assert_eq!(theirs.status, 201, "b's own owner, not a's");
        assert!(owner_events(&app, p, &admin_b).await.len() == 1);
        let codes = futures_codes(&app, p, &admin_a, &key_a, 2).await;
        assert_eq!(
            codes,
            ["VALID", "USAGE_EXCEEDED"],
            "{p:?}: a's owner kept 1 credit"
        );
        let mine = Call::owner(p, "cus_1").bearer(&admin_a).send(&app).await;
        assert_eq!(mine.body["credits"]["remaining"], 0);
    }
}
