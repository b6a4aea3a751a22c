//! No organization ever sees another's keys: by id, by listing, by position, or by cursor.

use apikeys::key::ApiKey;
use apikeys_tests::*;
use chrono::{TimeZone, Utc};

struct Tenant {
    secret: apikeys::secret::Secret,
    keys: Vec<ApiKey>,
}

/// Two organizations whose keys interleave in time, so positions of one fall among the other's.
async fn two_tenants(app: &apikeys::App<apikeys::store::dynamo::DynamoStore>) -> (Tenant, Tenant) {
    let (a, b) = (org(), org());
    let start = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    let a_keys = create_many(app, &a, 30, start).await;
    let b_keys = create_many(app, &b, 30, start + chrono::Duration::microseconds(500)).await;
    let a_secret = admin(app, &a).await;
    let b_secret = admin(app, &b).await;
    (
        Tenant {
            secret: a_secret,
            keys: a_keys,
        },
        Tenant {
            secret: b_secret,
            keys: b_keys,
        },
    )
}

fn foreign(reply: &Reply, other: &Tenant) -> Vec<String> {
    let theirs: Vec<String> = other.keys.iter().map(|k| k.id.to_string()).collect();
    reply
        .ids()
        .into_iter()
        .filter(|id| theirs.contains(id))
        .collect()
}

#[tokio::test]
async fn another_organizations_key_is_404_exactly_like_a_missing_one() {
    let app = app().await;
    let (a, b) = two_tenants(&app).await;
    for payload in PAYLOADS {
        let theirs = Call::get(payload, b.keys[3].id)
            .bearer(&a.secret)
            .send(&app)
            .await;
        let missing = Call::get(payload, apikeys::key::KeyId::generate())
            .bearer(&a.secret)
            .send(&app)
            .await;
        assert_eq!(theirs.problem(404), missing.problem(404));
        // The same headers with the same values: nothing tells the two apart.
        assert_eq!(theirs.headers, missing.headers);
    }
}

#[tokio::test]
async fn a_listing_holds_only_the_callers_keys() {
    let app = app().await;
    let (a, b) = two_tenants(&app).await;
    for order in ["asc", "desc"] {
        let reply = Call::list(Payload::Rest)
            .query("order", order)
            .query("limit", 1000)
            .bearer(&a.secret)
            .send(&app)
            .await;
        assert_eq!(reply.ids().len(), 31);
        assert!(foreign(&reply, &b).is_empty());
        assert_eq!(reply.body["has_more"], false);
    }
}

#[tokio::test]
async fn positions_at_foreign_keys_only_ever_yield_the_callers_keys() {
    let app = app().await;
    let (a, b) = two_tenants(&app).await;
    let all = Call::list(Payload::Http)
        .query("limit", 1000)
        .bearer(&a.secret)
        .send(&app)
        .await;
    let mut mine = all.ids();
    mine.sort();
    assert_eq!(mine.len(), 31);
    for k in [&b.keys[0], &b.keys[15], &b.keys[29]] {
        for order in ["asc", "desc"] {
            // A foreign key's position splits the caller's keys in two: every one of them is
            // on exactly one side, so an empty page cannot pass for a right one.
            let mut sides = Vec::new();
            for param in ["after", "before"] {
                let reply = Call::list(Payload::Http)
                    .query(param, k.id)
                    .query("order", order)
                    .query("limit", 1000)
                    .bearer(&a.secret)
                    .send(&app)
                    .await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert!(foreign(&reply, &b).is_empty(), "{param} {order}");
                sides.extend(reply.ids());
            }
            sides.sort();
            assert_eq!(sides, mine, "{order}: the two sides of {}", k.id);
        }
    }
}

#[tokio::test]
async fn another_organizations_cursor_is_refused() {
    let app = app().await;
    let (a, b) = two_tenants(&app).await;
    let theirs = Call::list(Payload::Rest)
        .query("limit", 5)
        .bearer(&b.secret)
        .send(&app)
        .await;
    let cursor = theirs.body["next_cursor"].as_str().unwrap();
    let reply = Call::list(Payload::Rest)
        .query("cursor", cursor)
        .bearer(&a.secret)
        .send(&app)
        .await;
    assert!(
        reply
            .problem(422)
            .contains("not a cursor this service issued")
    );
    // And the owner can still use it.
    let reply = Call::list(Payload::Rest)
        .query("cursor", cursor)
        .bearer(&b.secret)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    assert!(foreign(&reply, &a).is_empty());
}

#[tokio::test]
async fn a_verify_or_write_by_one_organization_never_changes_anothers_counters() {
    use apikeys_tests::quota::*;
    use serde_json::json;
    let app = app().await;
    let (a, b) = (org(), org());
    let (a_admin, b_admin) = (admin(&app, &a).await, admin(&app, &b).await);
    settle_window(3_600_000, std::time::Duration::from_secs(60)).await;
    let metered = json!({
        "credits": {"remaining": 10},
        "ratelimits": [{"name": "hourly", "limit": 5, "duration_ms": 3_600_000}],
    });
    let (theirs, their_secret) = create_json(&app, Payload::Rest, &b_admin, metered.clone()).await;
    let (_, my_secret) = create_json(&app, Payload::Rest, &a_admin, metered).await;
    let missing = apikeys::secret::Secret::from_random([77; 24]);
    for p in PAYLOADS {
        for cost in [None, Some(0), Some(1), Some(10_000)] {
            for secret in [&their_secret, &missing] {
                let mut body = json!({"key": secret.expose()});
                if let Some(c) = cost {
                    body["cost"] = json!(c);
                }
                let reply = Call::verify(p, &body).bearer(&a_admin).send(&app).await;
                assert_eq!(
                    String::from_utf8_lossy(&reply.raw),
                    r#"{"valid":false,"code":"NOT_FOUND","key":null}"#
                );
            }
        }
        // A's own verifications and writes touch only A's key.
        let answer = verify_json(&app, p, &a_admin, &my_secret, None).await;
        assert_eq!(answer["code"], "VALID", "{answer}");
        let theirs_id = id_of(&theirs);
        let nowhere = apikeys::key::KeyId::generate().to_string();
        for body in [json!({"increment": 5}), json!({"decrement": 1})] {
            let foreign = Call::adjust(p, &theirs_id, &body)
                .bearer(&a_admin)
                .send(&app)
                .await;
            let absent = Call::adjust(p, &nowhere, &body)
                .bearer(&a_admin)
                .send(&app)
                .await;
            assert_eq!(foreign.problem(404), absent.problem(404));
        }
        for patch in [
            json!({"credits": {"remaining": 1000}}),
            json!({"credits": null}),
            json!({"ratelimits": null}),
        ] {
            let foreign = Call::update(p, &theirs_id, patch)
                .bearer(&a_admin)
                .send(&app)
                .await;
            foreign.problem(404);
        }
    }
    // B's key is as it was made: nothing spent, no token used.
    assert_eq!(
        get_json(&app, Payload::Http, &b_admin, &id_of(&theirs)).await,
        theirs
    );
    let answer = verify_json(&app, Payload::Http, &b_admin, &their_secret, None).await;
    assert_eq!(answer["code"], "VALID", "{answer}");
    assert_eq!(remaining(&answer), Some(9), "{answer}");
    assert_eq!(tokens(&answer, 0), 4, "{answer}");
    let answer = verify_json(&app, Payload::Http, &a_admin, &my_secret, None).await;
    assert_eq!(
        (remaining(&answer), tokens(&answer, 0)),
        (Some(7), 2),
        "{answer}"
    );
}
