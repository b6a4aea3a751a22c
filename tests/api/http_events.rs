//! The audit trail over HTTP, on both API Gateway payloads: every write through the API
//! gives exactly one event, with who made it, the gateway's request id and the client's
//! address, and a refused write gives none; the event lists' order, filters, cursors and
//! isolation; and no response or log line of a write holds a secret, except the one
//! `secret` field of a create or roll.

use apikeys::App;
use apikeys::key::{KeyId, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use serde_json::{Value, json};

use crate::http_writes::{all_events, by_api, caller, get, send_traced};

/// The secret a create or roll answered.
fn secret_in(reply: &Reply) -> Secret {
    Secret::parse(reply.body["secret"].as_str().expect("a secret")).expect("well formed")
}

/// Asserts `event` is the one event of a write: its action and key, the caller as actor,
/// the gateway's request id and address, a UUIDv7 id and an RFC 3339 UTC time.
#[track_caller]
/// Checks an event of a write by the key `actor`, made with its current secret `secret`.
fn assert_event(
    event: &Value,
    action: &str,
    key: &str,
    actor: KeyId,
    secret: &Secret,
    request_id: &str,
) {
    assert_eq!(event["action"], action, "{event}");
    assert_eq!(event["key_id"], key, "{event}");
    assert_eq!(
        event["actor"],
        json!({"type": "api_key", "id": actor.to_string(),
               "secret": {"which": "current", "last_four": secret.last_four()}})
    );
    assert_eq!(event["request_id"], request_id, "{event}");
    assert_eq!(event["source_ip"], "127.0.0.1", "{event}");
    let id: uuid::Uuid = event["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 7);
    let time = event["time"].as_str().unwrap();
    assert!(time.ends_with('Z'), "{time}");
    chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339");
}

#[tokio::test]
async fn every_write_over_http_records_exactly_one_event_naming_its_caller_and_request() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (me, admin) = caller(&app, &org, None).await;
        let mut secrets = vec![admin.clone()];
        // The fixtures' own event: the caller's creation.
        let mut seen = all_events(&app, payload, &admin, None).await.len();
        let mut key = String::new();

        // (the call, once the key exists; the action it records; the fields it changes)
        type Step = (
            fn(Payload, &str) -> Call,
            &'static str,
            &'static [&'static str],
        );
        let steps: [Step; 6] = [
            (
                |p, _| Call::create(p, json!({"name": "audited", "permissions": ["calls.view"]})),
                "key.created",
                &[],
            ),
            (
                |p, id| Call::update(p, id, json!({"name": "renamed", "permissions": []})),
                "key.updated",
                &["name", "permissions"],
            ),
            (
                |p, id| Call::update(p, id, json!({"status": "disabled"})),
                "key.disabled",
                &["status"],
            ),
            (
                |p, id| Call::update(p, id, json!({"status": "active"})),
                "key.enabled",
                &["status"],
            ),
            (
                |p, id| Call::roll(p, id, Some(json!({"grace_period_seconds": 60}))),
                "key.rolled",
                &["last_four_digits", "previous_secret_expires_date"],
            ),
            (|p, id| Call::delete(p, id), "key.deleted", &[]),
        ];
        for (make, action, changed) in steps {
            let (reply, request_id) = send_traced(&app, &make(payload, &key).bearer(&admin)).await;
            assert!(
                [200, 201, 204].contains(&reply.status),
                "{action}: {}",
                reply.body
            );
            if action == "key.created" {
                key = reply.body["id"].as_str().unwrap().to_owned();
            }
            if reply.body.get("secret").is_some() {
                secrets.push(secret_in(&reply));
            }
            let events = all_events(&app, payload, &admin, None).await;
            assert_eq!(events.len(), seen + 1, "{payload:?} {action}: one event");
            seen += 1;
            let event = &events[0];
            assert_event(event, action, &key, me.id, &admin, &request_id);
            let changes = event["changes"].as_object().expect("changes");
            for field in changed {
                assert!(changes.contains_key(*field), "{action}: {event}");
            }
            if action == "key.rolled" {
                let last_four = secrets.last().unwrap().last_four();
                assert_eq!(changes["last_four_digits"]["to"], last_four.as_str());
            }
            assert_no_leak("an event", &event.to_string(), &secrets, false);
            for (field, _) in changes {
                assert!(
                    !field.contains("secret") || field.contains("expires"),
                    "{field}"
                );
                assert!(!field.contains("hash"), "{field}");
            }
        }
        // The deleted key's events are still listed, newest first.
        let of_key = all_events(&app, payload, &admin, Some(&key)).await;
        let actions: Vec<&str> = of_key
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "key.deleted",
                "key.rolled",
                "key.enabled",
                "key.disabled",
                "key.updated",
                "key.created"
            ]
        );
    }
}

#[tokio::test]
async fn a_refused_write_records_no_event_and_its_problem_carries_the_gateway_request_id() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (_, limited) = caller(
            &app,
            &org,
            Some(&[Permission::ApiKeysUpdate, Permission::ApiKeysCreate]),
        )
        .await;
        let (key, _) = create(&app, new_key(&org, "target")).await;
        let stale = get(&app, payload, &admin, &key.id.to_string())
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        let renamed = Call::update(payload, key.id, json!({"name": "moved on"}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(renamed.status, 200);
        let before = all_events(&app, payload, &admin, None).await;

        let refused = [
            (
                Call::create(payload, json!({"name": "x", "colour": 1})).bearer(&admin),
                422,
            ),
            (
                Call::update(payload, key.id, json!({"id": "x"})).bearer(&admin),
                422,
            ),
            (
                Call::roll(payload, key.id, Some(json!({"grace_period_seconds": 1e9})))
                    .bearer(&admin),
                422,
            ),
            (
                Call::create(payload, json!({"name": "x", "restricted": false})).bearer(&limited),
                403,
            ),
            (Call::roll(payload, key.id, None).bearer(&limited), 403),
            (
                Call::update(payload, key.id, json!({"name": "late"}))
                    .header("If-Match", &stale)
                    .bearer(&admin),
                412,
            ),
            (
                Call::delete(payload, key.id)
                    .header("If-Match", &stale)
                    .bearer(&admin),
                412,
            ),
            (Call::delete(payload, KeyId::generate()).bearer(&admin), 404),
            (
                Call::update(payload, KeyId::generate(), json!({"name": "x"})).bearer(&admin),
                404,
            ),
            (
                Call::roll(payload, KeyId::generate(), None).bearer(&admin),
                404,
            ),
            (
                Call::create(payload, json!({}))
                    .body("text/plain", "x")
                    .bearer(&admin),
                415,
            ),
        ];
        for (call, status) in refused {
            let (reply, request_id) = send_traced(&app, &call).await;
            reply.problem(status);
            assert_eq!(reply.body["request_id"], request_id.as_str());
        }
        assert_eq!(all_events(&app, payload, &admin, None).await, before);
        assert_eq!(
            get(&app, payload, &admin, &key.id.to_string()).await.body["name"],
            "moved on"
        );
    }
}

/// Writes a history through the API: three keys created, each renamed, one disabled,
/// one rolled, one deleted. Returns the keys' ids.
async fn history(app: &App<DynamoStore>, payload: Payload, admin: &Secret) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..3 {
        let reply = Call::create(payload, json!({"name": format!("k{i}"), "permissions": []}))
            .bearer(admin)
            .send(app)
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    for (i, id) in ids.iter().enumerate() {
        let r = Call::update(payload, id, json!({"name": format!("renamed {i}")}))
            .bearer(admin)
            .send(app)
            .await;
        assert_eq!(r.status, 200);
    }
    let steps = [
        Call::update(payload, &ids[0], json!({"status": "disabled"})),
        Call::roll(payload, &ids[1], None),
        Call::delete(payload, &ids[2]),
    ];
    for call in steps {
        let r = call.bearer(admin).send(app).await;
        assert!(r.status < 300, "{}", r.body);
    }
    ids
}

fn event_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn event_lists_come_newest_first_and_page_filter_and_order_as_the_key_list_does() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let ids = history(&app, payload, &admin).await;
        let all = all_events(&app, payload, &admin, None).await;
        // The history, and the caller's own creation.
        assert_eq!(all.len(), 3 + 3 + 3 + 1);
        assert_eq!(by_api(&all).len(), 3 + 3 + 3);
        let listed = event_ids(&all);
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(listed, sorted, "newest first");
        assert_eq!(all[0]["action"], "key.deleted");

        // Pages of two, walked by cursor: the same events, in the page shape.
        let mut walked = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut call = Call::events(payload).query("limit", 2).bearer(&admin);
            if let Some(c) = &cursor {
                call = call.query("cursor", c);
            }
            let page = call.send(&app).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let data = page.body["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            assert_eq!(page.body["first_id"], data[0]["id"]);
            assert_eq!(page.body["last_id"], data[data.len() - 1]["id"]);
            walked.extend(event_ids(data));
            if page.body["has_more"] == false {
                assert_eq!(page.body["next_cursor"], Value::Null);
                break;
            }
            cursor = Some(page.body["next_cursor"].as_str().unwrap().to_owned());
        }
        assert_eq!(walked, listed);

        // Oldest first on request; after/before positions.
        let asc = Call::events(payload)
            .query("order", "asc")
            .query("limit", 100)
            .bearer(&admin)
            .send(&app)
            .await;
        let mut reversed = listed.clone();
        reversed.reverse();
        assert_eq!(asc.ids(), reversed);
        let after = Call::events(payload)
            .query("order", "asc")
            .query("after", &reversed[2])
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(after.ids(), reversed[3..]);
        // The page just before a position, in the list's order: newer events, newest first.
        let before = Call::events(payload)
            .query("before", &listed[7])
            .query("limit", 2)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(before.ids(), listed[5..7]);

        // Filters.
        for (a, n) in [
            ("key.created", 3 + 1), // and the caller's
            ("key.updated", 3),
            ("key.disabled", 1),
            ("key.enabled", 0),
            ("key.rolled", 1),
            ("key.deleted", 1),
        ] {
            let page = Call::events(payload)
                .query("action", a)
                .bearer(&admin)
                .send(&app)
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            let data = page.body["data"].as_array().unwrap();
            assert_eq!(data.len(), n, "{a}");
            assert!(data.iter().all(|e| e["action"] == a));
        }
        for id in &ids {
            let by_query = Call::events(payload)
                .query("key_id", id)
                .bearer(&admin)
                .send(&app)
                .await;
            let by_path = Call::key_events(payload, id)
                .bearer(&admin)
                .send(&app)
                .await;
            assert_eq!(by_query.body["data"], by_path.body["data"]);
            let data = by_path.body["data"].as_array().unwrap();
            assert_eq!(data.len(), 3, "{id}");
            assert!(data.iter().all(|e| e["key_id"] == id.as_str()));
        }
        // A key's events filtered by action; the path without its slash.
        let page = Call::events(payload)
            .path("/v1/api_key_events")
            .query("key_id", &ids[1])
            .query("action", "key.rolled")
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(page.body["data"].as_array().unwrap().len(), 1);

        // since (inclusive) and until (exclusive), at an event's own time.
        let mid = &all[4];
        let at = mid["time"].as_str().unwrap();
        let since = Call::events(payload)
            .query("since", at)
            .query("limit", 100)
            .bearer(&admin)
            .send(&app)
            .await;
        let until = Call::events(payload)
            .query("until", at)
            .query("limit", 100)
            .bearer(&admin)
            .send(&app)
            .await;
        let times = |r: &Reply| -> Vec<String> {
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["time"].as_str().unwrap().to_owned())
                .collect()
        };
        assert!(times(&since).iter().all(|t| t.as_str() >= at));
        assert!(times(&until).iter().all(|t| t.as_str() < at));
        assert!(
            since
                .ids()
                .contains(&mid["id"].as_str().unwrap().to_owned())
        );
        assert_eq!(since.ids().len() + until.ids().len(), all.len());
        // A cursor is tied to its filters.
        let first = Call::events(payload)
            .query("action", "key.created")
            .query("limit", 1)
            .bearer(&admin)
            .send(&app)
            .await;
        let cursor = first.body["next_cursor"].as_str().unwrap();
        let reply = Call::events(payload)
            .query("cursor", cursor)
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "cursor");

        // Bad parameters: 422 naming them.
        for (name, value) in [
            ("action", "key.exploded"),
            ("key_id", "nope"),
            ("since", "yesterday"),
            ("until", "2020-13-01T00:00:00Z"),
            ("settled", "yes"),
            ("limit", "0"),
            ("order", "sideways"),
            ("colour", "red"),
        ] {
            let reply = Call::events(payload)
                .query(name, value)
                .bearer(&admin)
                .send(&app)
                .await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], name);
        }
    }
}

#[tokio::test]
async fn an_organization_sees_none_of_another_organizations_events() {
    let app = app().await;
    for payload in PAYLOADS {
        let (mine, theirs) = (org(), org());
        let (_, me) = caller(&app, &mine, None).await;
        let (_, them) = caller(&app, &theirs, None).await;
        let their_ids = history(&app, payload, &them).await;
        let my_ids = history(&app, payload, &me).await;
        let their_events = all_events(&app, payload, &them, None).await;
        let mine_listed = by_api(&all_events(&app, payload, &me, None).await);
        assert_eq!(mine_listed.len(), 9);
        assert!(
            mine_listed
                .iter()
                .all(|e| my_ids.contains(&e["key_id"].as_str().unwrap().to_owned()))
        );
        let theirs_text = serde_json::to_string(&their_events).unwrap();
        for id in &their_ids {
            // By path or by filter, their key is one without events.
            let missing = KeyId::generate().to_string();
            for (theirs, absent) in [
                (
                    Call::key_events(payload, id),
                    Call::key_events(payload, &missing),
                ),
                (
                    Call::events(payload).query("key_id", id),
                    Call::events(payload).query("key_id", &missing),
                ),
            ] {
                let theirs = theirs.bearer(&me).send(&app).await;
                let absent = absent.bearer(&me).send(&app).await;
                assert_eq!(theirs.status, absent.status);
                assert_eq!(theirs.body["data"], json!([]), "{}", theirs.body);
            }
        }
        // Positions and cursors of theirs lead nowhere.
        let their_page = Call::events(payload)
            .query("limit", 1)
            .bearer(&them)
            .send(&app)
            .await;
        let cursor = their_page.body["next_cursor"].as_str().unwrap();
        let reply = Call::events(payload)
            .query("limit", 1)
            .query("cursor", cursor)
            .bearer(&me)
            .send(&app)
            .await;
        reply.problem(422);
        let after = Call::events(payload)
            .query("after", their_events[8]["id"].as_str().unwrap())
            .query("order", "asc")
            .query("limit", 100)
            .bearer(&me)
            .send(&app)
            .await;
        assert!(
            after
                .ids()
                .iter()
                .all(|id| !theirs_text.contains(id.as_str()))
        );
        for reply in [&after, &reply] {
            assert!(!String::from_utf8_lossy(&reply.raw).contains(theirs.as_str()));
        }
        // And theirs are as they were.
        assert_eq!(all_events(&app, payload, &them, None).await, their_events);
    }
}

#[tokio::test]
async fn no_response_or_log_line_of_a_write_holds_a_secret_but_the_one_it_hands_out() {
    let app = app().await;
    let logs = LogCapture::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber("trace"));
    let mut secrets = Vec::new();
    let mut replies = Vec::new();
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        secrets.push(admin.clone());
        let created = Call::create(payload, json!({"name": "k", "permissions": []}))
            .header("Idempotency-Key", "leak-1")
            .bearer(&admin)
            .send(&app)
            .await;
        let id = created.body["id"].as_str().unwrap().to_owned();
        let first = secret_in(&created);
        let replay = Call::create(payload, json!({"name": "k", "permissions": []}))
            .header("Idempotency-Key", "leak-1")
            .bearer(&admin)
            .send(&app)
            .await;
        let rolled = Call::roll(payload, &id, Some(json!({"grace_period_seconds": 60})))
            .bearer(&admin)
            .send(&app)
            .await;
        let second = secret_in(&rolled);
        // A secret sent as an idempotency key is not echoed either.
        let rolled_again = Call::roll(payload, &id, None)
            .header("Idempotency-Key", first.expose())
            .bearer(&admin)
            .send(&app)
            .await;
        let third = secret_in(&rolled_again);
        for reply in [created, replay, rolled, rolled_again] {
            replies.push((reply, true));
        }
        let mut unknown = serde_json::Map::new();
        unknown.insert("name".into(), json!("x"));
        unknown.insert(second.expose().to_owned(), json!(1));
        let others = [
            Call::update(payload, &id, json!({"name": "renamed"})).bearer(&admin),
            // Secrets sent where they do not belong are not echoed.
            Call::create(payload, Value::Object(unknown)).bearer(&admin),
            Call::create(payload, json!({}))
                .body(&format!("text/{}", second.expose()), "{}")
                .bearer(&admin),
            Call::create(payload, json!({}))
                .body("application/json", format!("{{\"{}\" ", second.expose()))
                .bearer(&admin),
            Call::update(payload, &id, json!({"permissions": [third.expose()]})).bearer(&admin),
            Call::get(payload, &id).bearer(&admin),
            Call::delete(payload, &id).bearer(&admin),
            Call::list(payload).bearer(&third),
        ];
        for call in others {
            replies.push((call.send(&app).await, true));
        }
        // The event lists show the client's address, which is no leak.
        for call in [Call::events(payload), Call::key_events(payload, &id)] {
            replies.push((call.bearer(&admin).send(&app).await, false));
        }
        secrets.extend([first, second, third]);
    }
    drop(_logging);
    for (reply, internal) in &replies {
        let mut body = reply.body.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.remove("secret");
        }
        assert_no_leak("a response", &body.to_string(), &secrets, *internal);
        // Headers name the API's own host (Location), so only secrets are looked for.
        let headers = format!("{:?}", reply.headers);
        assert_no_leak("a response's headers", &headers, &secrets, false);
    }
    let text = logs.text();
    assert!(text.lines().count() >= replies.len());
    for line in text.lines() {
        assert_no_leak("a log line", line, &secrets, false);
    }
}

#[tokio::test]
async fn an_event_names_which_of_its_callers_secrets_acted() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (me, first) = caller(&app, &org, None).await;
        // The caller rolls itself, keeping its first secret for an hour.
        let rolled = Call::roll(payload, me.id, Some(json!({"grace_period_seconds": 3600})))
            .bearer(&first)
            .send(&app)
            .await;
        assert_eq!(rolled.status, 200, "{}", rolled.body);
        let second = Secret::parse(rolled.body["secret"].as_str().unwrap()).unwrap();
        for (secret, which) in [(&first, "previous"), (&second, "current")] {
            let name = format!("renamed by the {which} secret");
            let renamed = Call::update(payload, me.id, json!({ "name": name }))
                .bearer(secret)
                .send(&app)
                .await;
            assert_eq!(renamed.status, 200, "{}", renamed.body);
            let events = all_events(&app, payload, &second, Some(&me.id.to_string())).await;
            assert_eq!(
                events[0]["actor"]["secret"],
                json!({"which": which, "last_four": secret.last_four()}),
                "{}",
                events[0]
            );
        }
    }
}

/// `settled=true` holds back the events that may not have committed yet: a change made an
/// hour ago is listed, one made just now only in the default list, until it is older than
/// `page::SETTLE`. A cursor of a settled list is followed under `settled=true` only.
#[tokio::test]
async fn a_settled_list_holds_back_the_newest_events() {
    let app = app().await;
    let org = org();
    let an_hour_ago =
        apikeys::write::WriteContext::cli().at(chrono::Utc::now() - chrono::Duration::hours(1));
    let policy = policy();
    let mut old = Vec::new();
    for name in ["old 1", "old 2"] {
        let made =
            apikeys::write::create(&app.store, &policy, &an_hour_ago, new_key(&org, name), None);
        old.push(made.await.unwrap().key.id);
    }
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let all = Call::events(p)
            .query("order", "asc")
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(all.status, 200, "{}", all.body);
        assert_eq!(all.ids().len(), 3, "both creates, and the admin's just now");
        let settled = || {
            Call::events(p)
                .query("order", "asc")
                .query("settled", "true")
                .bearer(&admin)
        };
        let first = settled().query("limit", 1).send(&app).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.ids(), all.ids()[..1]);
        let cursor = first.body["next_cursor"]
            .as_str()
            .expect("a cursor")
            .to_owned();
        let rest = settled().query("cursor", &cursor).send(&app).await;
        assert_eq!(
            rest.ids(),
            all.ids()[1..2],
            "the admin's create is not settled yet"
        );
        assert_eq!(rest.body["has_more"], false);
        let unsettled = Call::events(p)
            .query("order", "asc")
            .query("cursor", &cursor);
        unsettled.bearer(&admin).send(&app).await.problem(422);
    }
    assert_eq!(old.len(), 2);
}
