//! Credits and rate limits on one key, over HTTP on both payloads against DynamoDB Local:
//! a verification refused by a limit spends no credit and one refused for credits uses no
//! token; `cost` is spent whole or not at all; a disabled, expired or insufficient key
//! answers its own code and spends nothing; an unmetered key answers as it always did.

use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

/// A limit of `limit` per hour, exact: no window rolls over within a test that first
/// [`settle`]s.
fn hourly(limit: u64) -> Value {
    json!({"name": "hourly", "limit": limit, "duration_ms": 3_600_000})
}

/// Waits until the hour has a minute left, so that a test's verifications share a window.
async fn settle() {
    settle_window(3_600_000, std::time::Duration::from_secs(60)).await;
}

/// Asserts `answer` has this code, credits left and (if given) tokens left.
#[track_caller]
fn check(answer: &Value, code: &str, credits: Option<u64>, left: Option<u64>) {
    assert_eq!(answer["code"], code, "{answer}");
    assert_eq!(answer["valid"], code == "VALID", "{answer}");
    assert_eq!(remaining(answer), credits, "credits: {answer}");
    match left {
        Some(n) => assert_eq!(tokens(answer, 0), n, "tokens: {answer}"),
        None => assert!(
            answer.get("ratelimits").is_none(),
            "no limits checked: {answer}"
        ),
    }
}

#[tokio::test]
async fn a_verify_refused_by_a_limit_spends_no_credit() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    settle().await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 10}, "ratelimits": [hourly(3)]});
        let (key, secret) = create_json(&app, p, &admin, body).await;
        for (credits, left) in [(9, 2), (8, 1), (7, 0)] {
            let answer = verify_json(&app, p, &admin, &secret, None).await;
            check(&answer, "VALID", Some(credits), Some(left));
            assert_eq!(answer["ratelimits"][0]["name"], "hourly");
            assert_eq!(answer["ratelimits"][0]["limit"], 3);
            let reset = answer["ratelimits"][0]["reset"].as_u64().unwrap();
            assert_eq!(reset % 3_600_000, 0, "{answer}");
            assert!(
                reset > now_ms() && reset <= now_ms() + 3_600_000,
                "{answer}"
            );
        }
        for cost in [None, Some(1), Some(0)] {
            let answer = verify_json(&app, p, &admin, &secret, cost).await;
            check(&answer, "RATE_LIMITED", Some(7), Some(0));
            assert_eq!(answer["key"]["id"], key["id"]);
        }
        let now = get_json(&app, p, &admin, &id_of(&key)).await;
        assert_eq!(remaining(&now), Some(7), "{now}");
    }
}

#[tokio::test]
async fn a_verify_refused_for_credits_uses_no_token() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    settle().await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 2}, "ratelimits": [hourly(10)]});
        let (key, secret) = create_json(&app, p, &admin, body).await;
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "VALID",
            Some(1),
            Some(9),
        );
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "VALID",
            Some(0),
            Some(8),
        );
        // Cost 0 checks without spending, but still needs a credit left.
        for cost in [None, Some(1), Some(0), Some(3)] {
            let answer = verify_json(&app, p, &admin, &secret, cost).await;
            check(&answer, "USAGE_EXCEEDED", Some(0), Some(8));
        }
        let added = Call::adjust(p, id_of(&key), &json!({"increment": 1}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(added.status, 200, "{}", added.body);
        assert_eq!(remaining(&added.body), Some(1));
        // The refusals used no token: the next VALID leaves 7 of 10.
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "VALID",
            Some(0),
            Some(7),
        );
    }
}

#[tokio::test]
async fn a_cost_is_spent_whole_or_not_at_all_and_zero_spends_nothing() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    settle().await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 10}, "ratelimits": [hourly(8)]});
        let (_, secret) = create_json(&app, p, &admin, body).await;
        let steps = [
            (Some(0), "VALID", 10, 8),
            (Some(5), "VALID", 5, 3),
            // More than the tokens left: refused by the limit, whatever the credits.
            (Some(4), "RATE_LIMITED", 5, 3),
            (Some(6), "RATE_LIMITED", 5, 3),
            (Some(3), "VALID", 2, 0),
            (Some(0), "RATE_LIMITED", 2, 0),
        ];
        for (cost, code, credits, left) in steps {
            let answer = verify_json(&app, p, &admin, &secret, cost).await;
            check(&answer, code, Some(credits), Some(left));
        }
        // Credits alone: a cost above what is left spends nothing; the exact rest spends it.
        let body = json!({"credits": {"remaining": 5}});
        let (_, secret) = create_json(&app, p, &admin, body).await;
        let steps = [
            (Some(6), "USAGE_EXCEEDED", 5),
            (Some(10_000), "USAGE_EXCEEDED", 5),
            (Some(5), "VALID", 0),
            (Some(0), "USAGE_EXCEEDED", 0),
        ];
        for (cost, code, credits) in steps {
            let answer = verify_json(&app, p, &admin, &secret, cost).await;
            check(&answer, code, Some(credits), None);
        }
        // Limits alone: no credits member in the answer.
        let body = json!({"ratelimits": [hourly(2)]});
        let (_, secret) = create_json(&app, p, &admin, body).await;
        check(
            &verify_json(&app, p, &admin, &secret, Some(2)).await,
            "VALID",
            None,
            Some(0),
        );
        check(
            &verify_json(&app, p, &admin, &secret, Some(0)).await,
            "RATE_LIMITED",
            None,
            Some(0),
        );
    }
}

#[tokio::test]
async fn a_cost_above_the_limit_is_refused_with_what_is_left() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    settle().await;
    for p in PAYLOADS {
        let body = json!({"credits": {"remaining": 10}, "ratelimits": [hourly(3)]});
        let (_, secret) = create_json(&app, p, &admin, body).await;
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "VALID",
            Some(9),
            Some(2),
        );
        // A cost no window of this limit can hold: refused, and the answer tells what the
        // key has left, as every other answer does.
        let answer = verify_json(&app, p, &admin, &secret, Some(4)).await;
        check(&answer, "RATE_LIMITED", Some(9), Some(2));
        check(
            &verify_json(&app, p, &admin, &secret, Some(2)).await,
            "VALID",
            Some(7),
            Some(0),
        );
    }
}

#[tokio::test]
async fn a_disabled_expired_or_insufficient_key_answers_its_code_and_spends_nothing() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    settle().await;
    for p in PAYLOADS {
        let body = json!({
            "permissions": ["calls.view"],
            "credits": {"remaining": 5},
            "ratelimits": [hourly(5)],
        });
        let (key, secret) = create_json(&app, p, &admin, body).await;
        let id = id_of(&key);
        let lacking = json!({"key": secret.expose(), "permissions": ["api_keys.view"]});
        let reply = Call::verify(p, &lacking).bearer(&admin).send(&app).await;
        check(&reply.body, "INSUFFICIENT_PERMISSIONS", Some(5), None);

        let patch = |body: Value| Call::update(p, &id, body).bearer(&admin);
        let off = patch(json!({"status": "disabled"})).send(&app).await;
        assert_eq!(off.status, 200, "{}", off.body);
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "DISABLED",
            Some(5),
            None,
        );
        // Disabled and out of credits: still DISABLED.
        let empty = patch(json!({"credits": {"remaining": 0}})).send(&app).await;
        assert_eq!(empty.status, 200, "{}", empty.body);
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "DISABLED",
            Some(0),
            None,
        );
        let on = patch(json!({"status": "active"})).send(&app).await;
        assert_eq!(on.status, 200, "{}", on.body);

        // Expired and out of credits: EXPIRED.
        let expires = chrono::Utc::now() + chrono::Duration::seconds(3);
        let body = json!({"credits": {"remaining": 0}, "ratelimits": [hourly(5)],
                          "expires_date": expires.to_rfc3339()});
        let (_, old) = create_json(&app, p, &admin, body).await;
        tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
        check(
            &verify_json(&app, p, &admin, &old, None).await,
            "EXPIRED",
            Some(0),
            None,
        );

        // None of those refusals used a token: out of credits, all 5 are left.
        let answer = verify_json(&app, p, &admin, &secret, None).await;
        check(&answer, "USAGE_EXCEEDED", Some(0), Some(5));
        let refill = patch(json!({"credits": {"remaining": 3}})).send(&app).await;
        assert_eq!(refill.status, 200, "{}", refill.body);
        check(
            &verify_json(&app, p, &admin, &secret, None).await,
            "VALID",
            Some(2),
            Some(4),
        );
    }
}

#[tokio::test]
async fn an_unmetered_key_answers_and_reads_as_it_always_did() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let (key, secret) = create_json(&app, p, &admin, json!({})).await;
        assert!(key.get("credits").is_none(), "{key}");
        assert!(key.get("ratelimits").is_none(), "{key}");
        for cost in [None, Some(0), Some(10_000)] {
            let answer = verify_json(&app, p, &admin, &secret, cost).await;
            let mut members: Vec<&String> = answer.as_object().unwrap().keys().collect();
            members.sort();
            assert_eq!(members, ["code", "key", "valid"], "{answer}");
            assert_eq!(answer["code"], "VALID");
            assert!(answer["key"].get("credits").is_none(), "{answer}");
            assert!(answer["key"].get("ratelimits").is_none(), "{answer}");
        }
        let read = get_json(&app, p, &admin, &id_of(&key)).await;
        assert!(read.get("credits").is_none() && read.get("ratelimits").is_none());
    }
}
