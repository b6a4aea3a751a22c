//! Bad values of the quota members are 422 problems naming the member, over HTTP on both
//! payloads: verify's `cost`, create's and PATCH's `credits` and `ratelimits`, and the
//! credits endpoint's body. None of them changes anything.

use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

use crate::quota_credits::field;

const MAX_SAFE: u64 = 9_007_199_254_740_991;

fn limit(name: &str) -> Value {
    json!({"name": name, "limit": 10, "duration_ms": 1000})
}

/// Create bodies with one bad quota member each, and the member to be named.
fn bad_quota_members() -> Vec<(Value, &'static str)> {
    let six: Vec<Value> = (0..6).map(|i| limit(&format!("l{i}"))).collect();
    let with = |k: &str, v: Value| {
        let mut l = limit("l");
        l[k] = v;
        json!({ "ratelimits": [l] })
    };
    let refill = |r: Value| json!({"credits": {"remaining": 1, "refill": r}});
    vec![
        (json!({ "ratelimits": six }), "ratelimits"),
        (
            json!({"ratelimits": [limit("same"), limit("same")]}),
            "ratelimits",
        ),
        (json!({"ratelimits": limit("not a list")}), "ratelimits"),
        (with("duration_ms", json!(999)), "ratelimits"),
        (with("duration_ms", json!(86_400_001)), "ratelimits"),
        (with("duration_ms", json!(1500.5)), "ratelimits"),
        (with("limit", json!(0)), "ratelimits"),
        (with("limit", json!(1_000_000_001)), "ratelimits"),
        (with("limit", json!("10")), "ratelimits"),
        (with("name", json!("")), "ratelimits"),
        (with("name", json!("n".repeat(33))), "ratelimits"),
        (with("name", json!("per second")), "ratelimits"),
        (with("name", json!("débit")), "ratelimits"),
        (with("mode", json!("fast")), "ratelimits"),
        (
            json!({"ratelimits": [{"name": "x", "duration_ms": 1000}]}),
            "ratelimits",
        ),
        (json!({"credits": {"remaining": -1}}), "credits"),
        (json!({"credits": {"remaining": MAX_SAFE + 1}}), "credits"),
        (json!({"credits": {"remaining": 1.5}}), "credits"),
        (json!({"credits": {"remaining": "1"}}), "credits"),
        (json!({"credits": {}}), "credits"),
        (json!({"credits": 5}), "credits"),
        (
            refill(json!({"interval": "daily", "amount": 5, "day": 1})),
            "credits",
        ),
        (
            refill(json!({"interval": "monthly", "amount": 5, "day": 0})),
            "credits",
        ),
        (
            refill(json!({"interval": "monthly", "amount": 5, "day": 32})),
            "credits",
        ),
        (refill(json!({"interval": "daily", "amount": 0})), "credits"),
        (
            refill(json!({"interval": "daily", "amount": MAX_SAFE + 1})),
            "credits",
        ),
        (
            refill(json!({"interval": "weekly", "amount": 5})),
            "credits",
        ),
        (refill(json!({"interval": "daily"})), "credits"),
        (json!({"credits": {"remaining": 5, "low_at": 0}}), "credits"),
        (
            json!({"credits": {"remaining": 5, "low_at": MAX_SAFE + 1}}),
            "credits",
        ),
        (
            json!({"credits": {"remaining": 5, "low_at": "3"}}),
            "credits",
        ),
        (
            json!({"credits": {"remaining": 5, "low_at": 2.5}}),
            "credits",
        ),
    ]
}

/// Whether `reply` is a 422 problem whose `parameter` names `member`.
fn refused_naming(reply: &Reply, member: &str) -> bool {
    reply.status == 422 && {
        reply.problem(422);
        reply.body["parameter"].as_str().map(field) == Some(member)
    }
}

#[tokio::test]
async fn a_bad_cost_is_a_422_naming_cost() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let (key, secret) =
            create_json(&app, p, &admin, json!({"credits": {"remaining": 5}})).await;
        for cost in [
            json!(-1),
            json!(10_001),
            json!(1.5),
            json!("1"),
            json!(true),
            json!([1]),
        ] {
            let body = json!({"key": secret.expose(), "cost": cost});
            let reply = Call::verify(p, &body).bearer(&admin).send(&app).await;
            assert_eq!(parameter(&reply, 422).as_deref(), Some("cost"), "{cost}");
        }
        // The bounds themselves are good.
        let body = json!({"key": secret.expose(), "cost": 10_000});
        let reply = Call::verify(p, &body).bearer(&admin).send(&app).await;
        assert_eq!(reply.body["code"], "USAGE_EXCEEDED", "{}", reply.body);
        let read = get_json(&app, p, &admin, &id_of(&key)).await;
        assert_eq!(remaining(&read), Some(5), "nothing spent: {read}");
    }
}

#[tokio::test]
async fn bad_credits_or_ratelimits_in_a_create_are_422s_naming_the_member() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let mut wrong = Vec::new();
        for (quota, member) in bad_quota_members() {
            let mut body = quota.clone();
            body["name"] = json!("bad");
            body["restricted"] = json!(false);
            let reply = Call::create(p, body).bearer(&admin).send(&app).await;
            if !refused_naming(&reply, member) {
                wrong.push(format!("{p:?} {quota}: {} {}", reply.status, reply.body));
            }
        }
        assert!(
            wrong.is_empty(),
            "not 422s naming the member:\n{}",
            wrong.join("\n")
        );
        // The bounds themselves are good.
        let good = json!({
            "credits": {"remaining": MAX_SAFE,
                        "refill": {"interval": "monthly", "amount": MAX_SAFE, "day": 31},
                        "low_at": MAX_SAFE},
            "ratelimits": [
                {"name": "n".repeat(32), "limit": 1_000_000_000, "duration_ms": 86_400_000},
                {"name": "aZ09_-.", "limit": 1, "duration_ms": 1000, "mode": "leased"},
                limit("c"), limit("d"), limit("e"),
            ],
        });
        create_json(&app, p, &admin, good).await;
    }
    let list = Call::list(Payload::Rest).bearer(&admin).send(&app).await;
    assert_eq!(
        list.ids().len(),
        1 + PAYLOADS.len(),
        "no refused create made a key"
    );
}

#[tokio::test]
async fn bad_credits_or_ratelimits_in_a_patch_are_422s_and_change_nothing() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 5}, "ratelimits": [limit("l")]});
        let (key, _) = create_json(&app, p, &admin, body).await;
        let id = id_of(&key);
        let mut wrong = Vec::new();
        for (quota, member) in bad_quota_members() {
            // `{}` merges into the key's credits, which have `remaining`: not an error here.
            if quota == json!({"credits": {}}) {
                continue;
            }
            let reply = Call::update(p, &id, quota.clone())
                .bearer(&admin)
                .send(&app)
                .await;
            if !refused_naming(&reply, member) {
                wrong.push(format!("{p:?} {quota}: {} {}", reply.status, reply.body));
            }
        }
        assert!(
            wrong.is_empty(),
            "not 422s naming the member:\n{}",
            wrong.join("\n")
        );
        assert_eq!(
            get_json(&app, p, &admin, &id).await,
            key,
            "the key is as created"
        );
    }
}

#[tokio::test]
async fn a_credits_body_needs_exactly_one_of_increment_or_decrement() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let (key, _) = create_json(&app, p, &admin, json!({"credits": {"remaining": 5}})).await;
        let id = id_of(&key);
        let either = ["increment", "decrement"];
        let cases: Vec<(Value, &[&str])> = vec![
            (json!({"increment": 1, "decrement": 1}), &either),
            (json!({}), &either),
            (json!({"increment": 0}), &["increment"]),
            (json!({"decrement": 0}), &["decrement"]),
            (json!({"decrement": -1}), &["decrement"]),
            (json!({"increment": MAX_SAFE + 1}), &["increment"]),
            (json!({"increment": 1.5}), &["increment"]),
            (json!({"increment": "1"}), &["increment"]),
            (json!({"increment": null}), &either),
            (json!({"add": 1}), &["add"]),
        ];
        for (body, named) in cases {
            let reply = Call::adjust(p, &id, &body).bearer(&admin).send(&app).await;
            let got = parameter(&reply, 422);
            assert!(
                got.as_deref().is_some_and(|g| named.contains(&g)),
                "{p:?} {body}: {}",
                reply.body
            );
        }
        let reply = Call::adjust(p, &id, &json!([1]))
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(matches!(reply.status, 400 | 422), "{}", reply.body);
        assert_eq!(
            get_json(&app, p, &admin, &id).await,
            key,
            "the key is as created"
        );
    }
}

#[tokio::test]
async fn low_at_is_shown_set_and_removed_and_a_patch_of_it_alone_spends_nothing() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 5, "low_at": 3}});
        let (key, secret) = create_json(&app, p, &admin, body).await;
        assert_eq!(
            key["credits"],
            json!({"remaining": 5, "refill": null, "low_at": 3})
        );
        let id = id_of(&key);
        let body = json!({"key": secret.expose(), "cost": 1});
        let reply = Call::verify(p, &body).bearer(&admin).send(&app).await;
        assert_eq!(reply.body["code"], "VALID", "{}", reply.body);
        let set = json!({"credits": {"low_at": 4}});
        let set = Call::update(p, &id, set).bearer(&admin).send(&app).await;
        assert_eq!(set.status, 200, "{}", set.body);
        let want = json!({"remaining": 4, "refill": null, "low_at": 4});
        assert_eq!(set.body["credits"], want, "what verify left, kept");
        assert_eq!(get_json(&app, p, &admin, &id).await["credits"], want);
        let none = json!({"credits": {"low_at": null}});
        let none = Call::update(p, &id, none).bearer(&admin).send(&app).await;
        assert_eq!(none.status, 200, "{}", none.body);
        let want = json!({"remaining": 4, "refill": null});
        assert_eq!(get_json(&app, p, &admin, &id).await["credits"], want);
    }
}
