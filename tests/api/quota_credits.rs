//! Changing a key's credits, over HTTP on both payloads against DynamoDB Local:
//! `POST /v1/api_key/{id}/credits` adds or takes credits, refuses (409) what it cannot do,
//! and records `key.credits_adjusted`; a PATCH of `credits` records `key.updated` with the
//! credits before and after; a PATCH of `ratelimits` replaces the list, null or [] removes it.

use apikeys::key::Permission;
use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

use crate::http_writes::{all_events, caller};

/// The actions of a key's events, newest first.
async fn actions(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    p: Payload,
    admin: &apikeys::secret::Secret,
    id: &str,
) -> Vec<Value> {
    let events = all_events(app, p, admin, Some(id)).await;
    events.iter().map(|e| e["action"].clone()).collect()
}

#[tokio::test]
async fn credits_go_up_and_down_and_never_below_zero_or_onto_an_unlimited_key() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create_json(&app, p, &admin, json!({"credits": {"remaining": 10}})).await;
        let id = id_of(&key);
        let adjust = |body: Value| Call::adjust(p, &id, &body).bearer(&admin);

        let up = adjust(json!({"increment": 5})).send(&app).await;
        assert_eq!(up.status, 200, "{}", up.body);
        assert_eq!(up.header("content-type"), Some("application/json"));
        assert_eq!(up.body["id"], key["id"], "the key object: {}", up.body);
        assert_eq!(remaining(&up.body), Some(15));
        let down = adjust(json!({"decrement": 15})).send(&app).await;
        assert_eq!(down.status, 200, "{}", down.body);
        assert_eq!(remaining(&down.body), Some(0));
        // More than is left: a conflict, and nothing changes.
        adjust(json!({"decrement": 1}))
            .send(&app)
            .await
            .problem(409);
        let read = get_json(&app, p, &admin, &id).await;
        assert_eq!(read, down.body, "the refused decrement changed nothing");

        let events = all_events(&app, p, &admin, Some(&id)).await;
        let adjusted: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == "key.credits_adjusted")
            .collect();
        assert_eq!(
            adjusted.len(),
            2,
            "one event per adjustment, none for a 409: {events:?}"
        );
        assert_eq!(
            events.len(),
            3,
            "created, and the two adjustments: {events:?}"
        );
        // Newest first: the decrement of 15, then the increment of 5, each as the event's
        // `credits` member (the body); `changes` is empty, for verifies spend at any moment.
        let deltas = [json!({"decrement": 15}), json!({"increment": 5})];
        for (event, delta) in adjusted.iter().zip(deltas) {
            assert_eq!(event["credits"], delta, "{event}");
            assert_eq!(event["changes"], json!({}), "{event}");
        }

        // A key without credits (unlimited) has nothing to adjust.
        let (free, _) = create_json(&app, p, &admin, json!({})).await;
        let free_id = id_of(&free);
        for body in [json!({"increment": 1}), json!({"decrement": 1})] {
            let reply = Call::adjust(p, &free_id, &body)
                .bearer(&admin)
                .send(&app)
                .await;
            reply.problem(409);
        }
        assert_eq!(
            actions(&app, p, &admin, &free_id).await,
            [json!("key.created")]
        );
        let read = get_json(&app, p, &admin, &free_id).await;
        assert!(read.get("credits").is_none(), "still unlimited: {read}");
        // A missing key is a 404.
        let missing = apikeys::key::KeyId::generate();
        let reply = Call::adjust(p, missing, &json!({"increment": 1}))
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(404);
    }
}

#[tokio::test]
async fn adjusting_credits_needs_api_keys_update() {
    use Permission::*;
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (_, viewer) = caller(&app, &org, Some(&[ApiKeysView, CallsView])).await;
        let (_, updater) = caller(&app, &org, Some(&[ApiKeysUpdate, CallsView])).await;
        let body = json!({"permissions": ["calls.view"], "credits": {"remaining": 10}});
        let (key, _) = create_json(&app, p, &admin, body).await;
        let id = id_of(&key);
        let add = Call::adjust(p, &id, &json!({"increment": 1}));
        assert!(
            add.clone()
                .send(&app)
                .await
                .problem(401)
                .contains("no API key")
        );
        let refused = add.clone().bearer(&viewer).send(&app).await;
        assert!(
            refused.problem(403).contains("api_keys.update"),
            "{}",
            refused.body
        );
        let reply = add.bearer(&updater).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(remaining(&reply.body), Some(11));
    }
}

#[tokio::test]
async fn a_patch_of_credits_records_them_before_and_after() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create_json(&app, p, &admin, json!({"credits": {"remaining": 10}})).await;
        let id = id_of(&key);
        let patch = |body: Value| Call::update(p, &id, body).bearer(&admin);

        let reply = patch(json!({"credits": {"remaining": 3}})).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["credits"],
            json!({"remaining": 3, "refill": null})
        );
        let events = all_events(&app, p, &admin, Some(&id)).await;
        assert_eq!(events[0]["action"], "key.updated", "{}", events[0]);
        let credits = &events[0]["changes"]["credits"];
        assert_eq!(credits["from"]["remaining"], 10, "{}", events[0]);
        assert_eq!(credits["to"]["remaining"], 3, "{}", events[0]);

        // A refill merges into the credits; `remaining` stays.
        let daily = json!({"interval": "daily", "amount": 5});
        let reply = patch(json!({"credits": {"refill": daily}}))
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["credits"],
            json!({"remaining": 3, "refill": daily})
        );
        let events = all_events(&app, p, &admin, Some(&id)).await;
        let credits = &events[0]["changes"]["credits"];
        assert_eq!(credits["from"]["refill"], Value::Null, "{}", events[0]);
        assert_eq!(credits["to"]["refill"], daily, "{}", events[0]);
        assert_eq!(credits["to"]["remaining"], 3, "{}", events[0]);

        // The same credits again: no change, no event.
        let reply = patch(json!({"credits": {"remaining": 3}})).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            all_events(&app, p, &admin, Some(&id)).await.len(),
            events.len()
        );

        // null removes them: unlimited again.
        let reply = patch(json!({"credits": null})).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.get("credits").is_none(), "{}", reply.body);
        let events = all_events(&app, p, &admin, Some(&id)).await;
        assert_eq!(
            events[0]["changes"]["credits"]["to"],
            Value::Null,
            "{}",
            events[0]
        );
        assert_eq!(events[0]["changes"]["credits"]["from"]["remaining"], 3);

        // Credits for a key without: `remaining` is required.
        let reply = patch(json!({"credits": {"refill": daily}}))
            .send(&app)
            .await;
        assert_eq!(
            parameter(&reply, 422).as_deref().map(field),
            Some("credits")
        );
        let reply = patch(json!({"credits": {"remaining": 7}})).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(remaining(&reply.body), Some(7));
    }
}

#[tokio::test]
async fn a_patch_of_ratelimits_replaces_the_list_and_null_or_empty_removes_it() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let second =
            json!({"name": "per_second", "limit": 10, "duration_ms": 1000, "mode": "exact"});
        let day = json!({"name": "per.day-1", "limit": 5000, "duration_ms": 86_400_000, "mode": "leased"});
        let (key, _) = create_json(&app, p, &admin, json!({"ratelimits": [second, day]})).await;
        assert_eq!(key["ratelimits"], json!([second, day]));
        let id = id_of(&key);
        // The mode defaults to exact.
        let minute = json!({"name": "per_minute", "limit": 100, "duration_ms": 60_000});
        let reply = Call::update(p, &id, json!({"ratelimits": [minute]}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut exact = minute.clone();
        exact["mode"] = json!("exact");
        assert_eq!(reply.body["ratelimits"], json!([exact]));
        let events = all_events(&app, p, &admin, Some(&id)).await;
        assert_eq!(events[0]["action"], "key.updated");
        assert!(
            events[0]["changes"].get("ratelimits").is_some(),
            "{}",
            events[0]
        );

        // null, or an empty list (docs/api.md), removes them.
        for none in [json!(null), json!([])] {
            let reply = Call::update(p, &id, json!({ "ratelimits": [minute] }))
                .bearer(&admin)
                .send(&app)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let reply = Call::update(p, &id, json!({ "ratelimits": none }))
                .bearer(&admin)
                .send(&app)
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert!(
                reply.body.get("ratelimits").is_none(),
                "{none}: {}",
                reply.body
            );
            let read = get_json(&app, p, &admin, &id).await;
            assert!(read.get("ratelimits").is_none(), "{none}: {read}");
        }
        let (key, _) = create_json(&app, p, &admin, json!({"ratelimits": []})).await;
        assert!(key.get("ratelimits").is_none(), "{key}");
    }
}

/// The member a problem's `parameter` names: "credits" for "credits.remaining" too.
pub(crate) fn field(parameter: &str) -> &str {
    parameter.split(['.', '[', '/']).next().unwrap_or(parameter)
}
