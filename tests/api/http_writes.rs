//! The write endpoints over HTTP, on both API Gateway payloads: what create, update, roll
//! and delete answer (status, headers, body), how they refuse bad bodies, stale `If-Match`,
//! escalation and missing permissions, another organization's keys, and how idempotent
//! retries and concurrent writes behave. The domain rules behind them are proven in
//! `writes.rs`; this file proves the contract a client sees.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apikeys::App;
use apikeys::key::{Access, ApiKey, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use serde_json::{Value, json};

/// A caller in `org`, made by the fixtures: unrestricted for `None`, else restricted to
/// these permissions.
pub(crate) async fn caller(
    app: &App<DynamoStore>,
    org: &OrgId,
    permissions: Option<&[Permission]>,
) -> (ApiKey, Secret) {
    let mut new = new_key(org, "caller");
    new.access = match permissions {
        None => Access::Unrestricted,
        Some(p) => restricted(p),
    };
    create(app, new).await
}

/// Sends `call` as its function would get it, and returns the reply with the request id
/// the gateway gave it.
pub(crate) async fn send_traced(app: &App<DynamoStore>, call: &Call) -> (Reply, String) {
    let event = call.event();
    let id = event["requestContext"]["requestId"]
        .as_str()
        .expect("a gateway request id")
        .to_owned();
    let req = lambda_http::request::from_str(&event.to_string()).expect("a valid event");
    (Reply::from(dispatch(app, call.function().0, req).await), id)
}

/// Every event `secret`'s organization sees (of one key if `key` is given), newest first,
/// walked through the cursors.
pub(crate) async fn all_events(
    app: &App<DynamoStore>,
    payload: Payload,
    secret: &Secret,
    key: Option<&str>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut call = match key {
            Some(id) => Call::key_events(payload, id),
            None => Call::events(payload),
        }
        .query("limit", 100)
        .bearer(secret);
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let reply = call.send(app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        out.extend(reply.body["data"].as_array().unwrap().iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(c) if reply.body["has_more"] == true => cursor = Some(c.to_owned()),
            _ => return out,
        }
    }
}

/// The events of writes made over HTTP (an API key as actor): not those of the fixtures,
/// which write as the CLI does.
pub(crate) fn by_api(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["actor"]["type"] == "api_key")
        .cloned()
        .collect()
}

/// A key list without the callers' `last_used_date`, which their requests change.
fn unused(list: &Value) -> Value {
    let mut list = list.clone();
    for key in list["data"].as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("last_used_date");
    }
    list
}

/// The key as GET shows it to `secret`.
pub(crate) async fn get(
    app: &App<DynamoStore>,
    payload: Payload,
    secret: &Secret,
    id: &str,
) -> Reply {
    Call::get(payload, id).bearer(secret).send(app).await
}

/// A create, update or roll answer's key, with its `secret` taken out.
fn secret_of(reply: &Reply) -> (Value, Secret) {
    let mut key = reply.body.clone();
    let secret = key
        .as_object_mut()
        .and_then(|k| k.remove("secret"))
        .and_then(|s| s.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no secret in {}", reply.body));
    (key, Secret::parse(&secret).expect("a well-formed secret"))
}

/// Whether `secret` authenticates (a GET of the key list, which needs `api_keys.view`).
async fn status_with(app: &App<DynamoStore>, payload: Payload, secret: &Secret) -> u16 {
    Call::list(payload)
        .query("limit", 1)
        .bearer(secret)
        .send(app)
        .await
        .status
}

/// A problem body without its request id, which differs from one request to the next.
fn without_request_id(body: &Value) -> Value {
    let mut b = body.clone();
    b.as_object_mut().unwrap().remove("request_id");
    b
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn create_answers_201_with_the_key_as_get_shows_it_its_location_and_its_secret_once() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (me, admin) = caller(&app, &org, None).await;
        let expires = in_an_hour();
        let body = json!({
            "name": "deploy",
            "restricted": true,
            "permissions": ["api_keys.view", "calls.view"],
            "expires_date": expires,
            "creator_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        });
        let reply = Call::create(payload, body).bearer(&admin).send(&app).await;
        assert_eq!(reply.status, 201, "{payload:?}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let (key, secret) = secret_of(&reply);
        let id = key["id"].as_str().unwrap().to_owned();
        let location = reply.header("location").expect("a Location");
        assert!(
            location.ends_with(&format!("/v1/api_key/{id}")),
            "{payload:?}: {location}"
        );
        assert_eq!(key["name"], "deploy");
        assert_eq!(key["restricted"], true);
        // In the reference's order.
        assert_eq!(key["permissions"], json!(["calls.view", "api_keys.view"]));
        assert_eq!(key["expires_date"], expires);
        assert_eq!(key["creator_id"], "3c90c3cc-0d44-4b50-8888-8dd25736052a");
        assert_eq!(key["status"], "active");
        assert_eq!(key["last_four_digits"], secret.last_four());
        assert!(
            reply.header("etag").is_none(),
            "a body with a secret is not tagged"
        );
        assert!(
            reply
                .header("cache-control")
                .is_none_or(|c| c.contains("no-store")),
            "{:?}",
            reply.header("cache-control")
        );

        // GET shows the same key, never the secret.
        let got = get(&app, payload, &admin, &id).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, key, "{payload:?}");
        assert!(!String::from_utf8_lossy(&got.raw).contains(secret.expose()));
        let listed = Call::list(payload).bearer(&admin).send(&app).await;
        assert!(!String::from_utf8_lossy(&listed.raw).contains(secret.expose()));
        assert!(
            listed.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.get("secret").is_none())
        );

        // The new secret authenticates, with the permissions it was given.
        assert_eq!(status_with(&app, payload, &secret).await, 200);
        let refused = Call::create(payload, json!({"name": "x", "permissions": []}))
            .bearer(&secret)
            .send(&app)
            .await;
        assert!(refused.problem(403).contains("api_keys.create"));

        // The defaults: restricted, created by the caller's key, no expiry. The path
        // without its slash is the same route.
        let reply = Call::create(payload, json!({"name": "minimal", "permissions": []}))
            .path("/v1/api_key")
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let (key, _) = secret_of(&reply);
        assert_eq!(key["restricted"], true);
        assert_eq!(key["permissions"], json!([]));
        assert_eq!(key["creator_id"], me.id.to_string());
        assert_eq!(key["expires_date"], Value::Null);
        assert!(
            reply
                .header("location")
                .unwrap()
                .ends_with(&format!("/v1/api_key/{}", key["id"].as_str().unwrap()))
        );

        // Unrestricted: permissions absent or null, shown as null.
        for body in [
            json!({"name": "root", "restricted": false}),
            json!({"name": "root", "restricted": false, "permissions": null}),
        ] {
            let reply = Call::create(payload, body).bearer(&admin).send(&app).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            assert_eq!(reply.body["restricted"], false);
            assert_eq!(reply.body["permissions"], Value::Null);
        }
    }
}

#[tokio::test]
async fn a_bad_create_body_is_a_problem_that_says_what_is_wrong_and_creates_nothing() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        // (body, the field a 422 names)
        let cases = [
            (
                json!({"name": "a", "permissions": [], "colour": "red"}),
                "colour",
            ),
            (json!({"permissions": []}), "name"),
            (json!({"name": 7, "permissions": []}), "name"),
            (json!({"name": "", "permissions": []}), "name"),
            (
                json!({"name": "a", "restricted": "yes", "permissions": []}),
                "restricted",
            ),
            (json!({"name": "a"}), "permissions"),
            (json!({"name": "a", "permissions": null}), "permissions"),
            (
                json!({"name": "a", "permissions": "calls.view"}),
                "permissions",
            ),
            (
                json!({"name": "a", "permissions": ["calls.fly"]}),
                "permissions",
            ),
            (
                json!({"name": "a", "restricted": false, "permissions": []}),
                "permissions",
            ),
            (
                json!({"name": "a", "permissions": [], "expires_date": past}),
                "expires_date",
            ),
            (
                json!({"name": "a", "permissions": [], "expires_date": "tomorrow"}),
                "expires_date",
            ),
            (
                json!({"name": "a", "permissions": [], "creator_id": "me"}),
                "creator_id",
            ),
            (json!({"name": "a", "permissions": [], "id": "x"}), "id"),
            (
                json!({"name": "a", "permissions": [], "secret": "apk_x"}),
                "secret",
            ),
            (json!(["name"]), "body"),
        ];
        for (body, field) in cases {
            let reply = Call::create(payload, body.clone())
                .bearer(&admin)
                .send(&app)
                .await;
            let detail = reply.problem(422);
            assert_eq!(
                reply.body["parameter"], field,
                "{payload:?} {body}: {detail}"
            );
            assert!(detail.contains(&format!("{field:?}")), "{body}: {detail}");
        }
        // A field given twice is named too (a JSON object would silently keep one).
        let reply = Call::create(payload, json!({}))
            .body(
                "application/json",
                r#"{"name": "a", "permissions": [], "name": "b"}"#,
            )
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "name");

        // Malformed JSON: 400, saying where.
        let reply = Call::create(payload, json!({}))
            .body(
                "application/json",
                "{\"name\": \"a\",\n \"permissions\": [}",
            )
            .bearer(&admin)
            .send(&app)
            .await;
        let detail = reply.problem(400);
        assert!(detail.contains("line 2 column"), "{detail}");
        // An empty body: 400.
        let reply = Call::create(payload, json!({}))
            .body("application/json", "")
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(400);

        // Not JSON: 415, with or without a Content-Type.
        for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
            let reply = Call::create(payload, json!({}))
                .body(content_type, r#"{"name": "a", "permissions": []}"#)
                .bearer(&admin)
                .send(&app)
                .await;
            let detail = reply.problem(415);
            assert!(detail.contains("application/json"), "{detail}");
        }
        // Over 16 KiB: 413, even when valid JSON.
        let big = format!(
            r#"{{"name": "a", "permissions": [], "pad": "{}"}}"#,
            "x".repeat(16 * 1024)
        );
        let reply = Call::create(payload, json!({}))
            .body("application/json", big)
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(reply.problem(413).contains("16384"));

        // Nothing was created, nothing recorded.
        let listed = Call::list(payload).bearer(&admin).send(&app).await;
        assert_eq!(listed.ids().len(), 1, "only the caller");
        assert!(by_api(&all_events(&app, payload, &admin, None).await).is_empty());
    }
}

#[tokio::test]
async fn a_function_answers_405_naming_every_method_of_the_resource() {
    let app = app().await;
    let org = org();
    let (me, admin) = caller(&app, &org, None).await;
    for payload in PAYLOADS {
        for (call, allow) in [
            (
                Call::get(payload, me.id).method("PUT"),
                "GET, HEAD, PATCH, DELETE",
            ),
            (Call::list(payload).method("DELETE"), "GET, HEAD, POST"),
            (Call::roll(payload, me.id, None).method("GET"), "POST"),
            (Call::events(payload).method("POST"), "GET, HEAD"),
        ] {
            let reply = call.bearer(&admin).send(&app).await;
            reply.problem(405);
            assert_eq!(reply.header("allow"), Some(allow), "{payload:?}");
        }
    }
}

#[tokio::test]
async fn a_patch_changes_each_field_it_names_and_answers_the_key_with_its_etag() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let created = Call::create(
            payload,
            json!({"name": "ci", "permissions": ["api_keys.view"], "expires_date": in_an_hour()}),
        )
        .bearer(&admin)
        .send(&app)
        .await;
        let (key, secret) = secret_of(&created);
        let id = key["id"].as_str().unwrap().to_owned();
        let patch = |p: Value| Call::update(payload, &id, p).bearer(&admin);

        let later = (chrono::Utc::now() + chrono::Duration::days(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // (patch, what the key then shows)
        let steps = [
            (json!({"name": "ci deploy"}), json!({"name": "ci deploy"})),
            (
                json!({"permissions": ["api_keys.view", "calls.view"]}),
                json!({"permissions": ["calls.view", "api_keys.view"], "restricted": true}),
            ),
            (
                json!({"expires_date": later}),
                json!({"expires_date": later}),
            ),
            (json!({"expires_date": null}), json!({"expires_date": null})),
            (
                json!({"restricted": false}),
                json!({"restricted": false, "permissions": null}),
            ),
            (
                json!({"restricted": true, "permissions": ["api_keys.view"]}),
                json!({"restricted": true, "permissions": ["api_keys.view"]}),
            ),
        ];
        let mut etag = get(&app, payload, &admin, &id)
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        for (p, shows) in steps {
            let reply = patch(p.clone()).header("If-Match", &etag).send(&app).await;
            assert_eq!(reply.status, 200, "{payload:?} {p}: {}", reply.body);
            for (field, value) in shows.as_object().unwrap() {
                assert_eq!(&reply.body[field], value, "{p}: {}", reply.body);
            }
            assert_eq!(reply.body["id"], id);
            assert_eq!(reply.body["created_date"], key["created_date"]);
            assert_eq!(reply.body["last_four_digits"], key["last_four_digits"]);
            let got = get(&app, payload, &admin, &id).await;
            assert_eq!(got.body, reply.body, "GET shows what PATCH answered");
            // The answer's tag names the new version: good for the next If-Match.
            etag = reply
                .header("etag")
                .expect("PATCH answers an ETag")
                .to_owned();
            assert_eq!(Some(etag.as_str()), got.header("etag"));
        }

        // application/json is a merge patch too.
        let reply = Call::update(payload, &id, json!({}))
            .json(&json!({"name": "plain json"}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["name"], "plain json");

        // Disabled: the key's secret is refused at once, for writes too; enabled again, it
        // works again.
        let reply = patch(json!({"status": "disabled"})).send(&app).await;
        assert_eq!(reply.body["status"], "disabled", "{}", reply.body);
        assert_eq!(status_with(&app, payload, &secret).await, 401);
        let write = Call::update(payload, &id, json!({"name": "self"}))
            .bearer(&secret)
            .send(&app)
            .await;
        write.problem(401);
        let reply = patch(json!({"status": "active"})).send(&app).await;
        assert_eq!(reply.body["status"], "active", "{}", reply.body);
        assert_eq!(status_with(&app, payload, &secret).await, 200);
        // A patch with nothing in it changes nothing.
        let before = get(&app, payload, &admin, &id).await;
        let reply = patch(json!({})).send(&app).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, before.body);
    }
}

#[tokio::test]
async fn a_patch_of_a_read_only_or_unknown_field_or_a_bad_value_is_422_naming_it_and_changes_nothing()
 {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create(&app, new_key(&org, "target")).await;
        let before = get(&app, payload, &admin, &key.id.to_string()).await;
        let events_before = all_events(&app, payload, &admin, None).await.len();
        for (p, field) in [
            (json!({"id": "x"}), "id"),
            (
                json!({"created_date": "2020-01-01T00:00:00Z"}),
                "created_date",
            ),
            (json!({"last_four_digits": "abcd"}), "last_four_digits"),
            (
                json!({"creator_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}),
                "creator_id",
            ),
            (json!({"updated_date": null}), "updated_date"),
            (json!({"colour": "red"}), "colour"),
            (json!({"name": 3}), "name"),
            (json!({"name": null}), "name"),
            (json!({"status": "deleted"}), "status"),
            (json!({"restricted": 1}), "restricted"),
            (json!({"permissions": ["nope"]}), "permissions"),
            (
                json!({"expires_date": "2000-01-01T00:00:00Z"}),
                "expires_date",
            ),
        ] {
            let reply = Call::update(payload, key.id, p.clone())
                .bearer(&admin)
                .send(&app)
                .await;
            let detail = reply.problem(422);
            assert_eq!(reply.body["parameter"], field, "{p}: {detail}");
        }
        for content_type in ["text/plain", "application/json-patch+json", ""] {
            let reply = Call::update(payload, key.id, json!({}))
                .body(content_type, r#"{"name": "x"}"#)
                .bearer(&admin)
                .send(&app)
                .await;
            reply.problem(415);
        }
        let reply = Call::update(payload, key.id, json!({}))
            .body("application/merge-patch+json", r#"{"name": "x""#)
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(reply.problem(400).contains("line 1 column"));
        let reply = Call::update(payload, key.id, json!({}))
            .body(
                "application/merge-patch+json",
                format!(r#"{{"name": "{}"}}"#, " ".repeat(16 * 1024)),
            )
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(413);

        let after = get(&app, payload, &admin, &key.id.to_string()).await;
        assert_eq!(
            (&after.body, after.header("etag")),
            (&before.body, before.header("etag"))
        );
        assert_eq!(
            all_events(&app, payload, &admin, None).await.len(),
            events_before
        );
    }
}

#[tokio::test]
async fn if_match_applies_a_patch_to_the_version_read_and_refuses_a_stale_one_with_412() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create(&app, new_key(&org, "target")).await;
        let id = key.id.to_string();
        let read = get(&app, payload, &admin, &id).await;
        let first = read.header("etag").unwrap().to_owned();

        let fresh = Call::update(payload, &id, json!({"name": "one"}))
            .header("If-Match", &first)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(fresh.status, 200, "{}", fresh.body);

        // The tag read before that change is stale now; so is a weak or foreign tag.
        let weak = format!("W/{}", fresh.header("etag").unwrap());
        for tag in [first.as_str(), weak.as_str(), "\"abc\"", "\"99-00\""] {
            let stale = Call::update(payload, &id, json!({"name": "two"}))
                .header("If-Match", tag)
                .bearer(&admin)
                .send(&app)
                .await;
            assert!(stale.problem(412).contains("If-Match"), "{tag}");
        }
        let now = get(&app, payload, &admin, &id).await;
        assert_eq!(now.body["name"], "one", "a refused patch changes nothing");
        // The key's use alone does not make a tag stale.
        let used = get(&app, payload, &admin, &id).await;
        let current = used.header("etag").unwrap();
        let again = Call::update(payload, &id, json!({"name": "three"}))
            .header("If-Match", current)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(again.status, 200, "{}", again.body);
        // `*`: any version.
        let any = Call::update(payload, &id, json!({"name": "four"}))
            .header("If-Match", "*")
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(any.status, 200, "{}", any.body);
        // A stale tag on delete: 412, and the key stays.
        let stale = Call::delete(payload, &id)
            .header("If-Match", &first)
            .bearer(&admin)
            .send(&app)
            .await;
        stale.problem(412);
        assert_eq!(get(&app, payload, &admin, &id).await.status, 200);
    }
}

#[tokio::test]
async fn a_roll_answers_a_new_secret_and_last_four_under_the_same_id_and_bounds_its_grace() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, old) = caller(&app, &org, Some(&[Permission::ApiKeysView])).await;
        let id = key.id.to_string();
        let before = get(&app, payload, &admin, &id).await;

        // Out of range or of the wrong type: 422 naming the field, and nothing rolled.
        for body in [
            json!({"grace_period_seconds": 604_801}),
            json!({"grace_period_seconds": -1}),
            json!({"grace_period_seconds": 1.5}),
            json!({"grace_period_seconds": "60"}),
            json!({"grace": 60}),
        ] {
            let reply = Call::roll(payload, &id, Some(body.clone()))
                .bearer(&admin)
                .send(&app)
                .await;
            reply.problem(422);
            let field = if body.get("grace").is_some() {
                "grace"
            } else {
                "grace_period_seconds"
            };
            assert_eq!(reply.body["parameter"], field, "{body}");
        }
        let reply = Call::roll(payload, &id, None)
            .body("text/plain", "grace=60")
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(415);
        assert_eq!(get(&app, payload, &admin, &id).await.body, before.body);
        assert_eq!(status_with(&app, payload, &old).await, 200);

        // No body: a grace of 0, the old secret refused at once.
        let reply = Call::roll(payload, &id, None)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.header("etag").is_none());
        let (rolled, new) = secret_of(&reply);
        assert_eq!(rolled["id"], id);
        assert_eq!(rolled["last_four_digits"], new.last_four());
        assert_ne!(new, old);
        assert_eq!(rolled["name"], before.body["name"]);
        assert_eq!(rolled["created_date"], before.body["created_date"]);
        assert_eq!(get(&app, payload, &admin, &id).await.body, rolled);
        assert_eq!(status_with(&app, payload, &old).await, 401);
        assert_eq!(status_with(&app, payload, &new).await, 200);

        // The longest grace is taken.
        let reply = Call::roll(payload, &id, Some(json!({"grace_period_seconds": 604_800})))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let (_, newer) = secret_of(&reply);
        assert_eq!(
            status_with(&app, payload, &new).await,
            200,
            "within its grace"
        );
        assert_eq!(status_with(&app, payload, &newer).await, 200);
    }
}

#[tokio::test]
async fn a_rolled_out_secret_works_until_its_grace_ends_and_a_second_roll_ends_it_at_once() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, first) = caller(&app, &org, Some(&[Permission::ApiKeysView])).await;
        let roll = |grace: u32| {
            Call::roll(
                payload,
                key.id,
                Some(json!({"grace_period_seconds": grace})),
            )
            .bearer(&admin)
        };
        let reply = roll(3600).send(&app).await;
        let (_, second) = secret_of(&reply);
        assert_eq!(
            status_with(&app, payload, &first).await,
            200,
            "in its grace"
        );
        assert_eq!(status_with(&app, payload, &second).await, 200);

        // A second roll ends the first secret's grace at once.
        const GRACE: u32 = 2;
        let started = Instant::now();
        let reply = roll(GRACE).send(&app).await;
        // The grace starts while the roll runs: between `started` and now.
        let rolled = started.elapsed();
        let (_, third) = secret_of(&reply);
        assert_eq!(status_with(&app, payload, &first).await, 401, "{payload:?}");
        assert_eq!(status_with(&app, payload, &third).await, 200);

        // The second works while its grace lasts and is refused after. A request that
        // ended before the grace could have ended must pass; one that began after it
        // surely ended (a second later, for any rounding of stored times) must fail.
        let grace = Duration::from_secs(u64::from(GRACE));
        let mut seen_refused = false;
        while started.elapsed() < grace + Duration::from_secs(20) {
            let sent = started.elapsed();
            let status = status_with(&app, payload, &second).await;
            let answered = started.elapsed();
            if answered < grace {
                assert_eq!(status, 200, "{payload:?}: refused within the grace");
            }
            if sent > rolled + grace + Duration::from_secs(1) {
                assert_eq!(status, 401, "{payload:?}: accepted after the grace");
            }
            if status == 401 {
                seen_refused = true;
                assert!(
                    answered >= grace,
                    "refused {answered:?} after a grace of {grace:?}"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(seen_refused, "the grace never ended");
        assert_eq!(status_with(&app, payload, &third).await, 200);
    }
}

#[tokio::test]
async fn delete_answers_204_then_the_key_is_404_and_every_secret_of_it_401() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, first) = caller(&app, &org, Some(&[Permission::ApiKeysView])).await;
        let reply = Call::roll(payload, key.id, Some(json!({"grace_period_seconds": 3600})))
            .bearer(&admin)
            .send(&app)
            .await;
        let (_, second) = secret_of(&reply);
        assert_eq!(status_with(&app, payload, &first).await, 200);

        let reply = Call::delete(payload, key.id)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reply.status, 204, "{}", reply.body);
        assert!(reply.raw.is_empty());
        assert!(reply.header("content-type").is_none());

        get(&app, payload, &admin, &key.id.to_string())
            .await
            .problem(404);
        for s in [&first, &second] {
            assert_eq!(status_with(&app, payload, s).await, 401);
        }
        let listed = Call::list(payload).bearer(&admin).send(&app).await;
        assert!(!listed.ids().contains(&key.id.to_string()));
        // Deleting again, or a key that never was: 404.
        let again = Call::delete(payload, key.id)
            .bearer(&admin)
            .send(&app)
            .await;
        let missing = Call::delete(payload, apikeys::key::KeyId::generate())
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(again.problem(404), missing.problem(404));
        // So are the other writes of a deleted key.
        Call::update(payload, key.id, json!({"name": "x"}))
            .bearer(&admin)
            .send(&app)
            .await
            .problem(404);
        Call::roll(payload, key.id, None)
            .bearer(&admin)
            .send(&app)
            .await
            .problem(404);
    }
}

#[tokio::test]
async fn a_restricted_caller_cannot_grant_what_it_lacks_nor_make_a_key_unrestricted() {
    use Permission::*;
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let held = [ApiKeysView, ApiKeysCreate, ApiKeysUpdate, CallsView];
        let (_, limited) = caller(&app, &org, Some(&held)).await;
        let mut target = new_key(&org, "target");
        target.access = restricted(&[CallsView]);
        let (target, _) = create(&app, target).await;
        let mut rich = new_key(&org, "rich");
        rich.access = restricted(&[CallsView, BillingUpdate]);
        let (rich, _) = create(&app, rich).await;
        let (root, _) = create(&app, new_key(&org, "root")).await;
        let events_before = all_events(&app, payload, &admin, None).await.len();
        let state_before = unused(&Call::list(payload).bearer(&admin).send(&app).await.body);

        let refusals = [
            (
                Call::create(
                    payload,
                    json!({"name": "x", "permissions": ["calls.view", "billing.update"]}),
                ),
                "billing.update",
            ),
            (
                Call::create(payload, json!({"name": "x", "restricted": false})),
                "unrestricted",
            ),
            (
                Call::update(
                    payload,
                    target.id,
                    json!({"permissions": ["calls.view", "billing.update"]}),
                ),
                "billing.update",
            ),
            (
                Call::update(payload, target.id, json!({"restricted": false})),
                "unrestricted",
            ),
            // It holds neither `rich` (whose access it is not told) nor `root`: so it may not
            // roll, rename or disable them.
            (Call::roll(payload, rich.id, None), "does not hold every"),
            (Call::roll(payload, root.id, None), "unrestricted"),
            (
                Call::update(payload, rich.id, json!({"name": "renamed"})),
                "does not hold every",
            ),
            (
                Call::update(payload, root.id, json!({"status": "disabled"})),
                "unrestricted",
            ),
        ];
        for (call, names) in refusals {
            let reply = call.bearer(&limited).send(&app).await;
            let detail = reply.problem(403);
            assert!(detail.contains(names), "{payload:?}: {detail}");
        }
        assert_eq!(
            unused(&Call::list(payload).bearer(&admin).send(&app).await.body),
            state_before
        );
        assert_eq!(
            all_events(&app, payload, &admin, None).await.len(),
            events_before
        );

        // Within what it holds, it may.
        let ok = Call::create(payload, json!({"name": "y", "permissions": ["calls.view"]}))
            .bearer(&limited)
            .send(&app)
            .await;
        assert_eq!(ok.status, 201, "{}", ok.body);
        let ok = Call::update(
            payload,
            target.id,
            json!({"permissions": ["calls.view", "api_keys.view"]}),
        )
        .bearer(&limited)
        .send(&app)
        .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let ok = Call::roll(payload, target.id, None)
            .bearer(&limited)
            .send(&app)
            .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
}

#[tokio::test]
async fn a_caller_without_the_write_permission_is_403_naming_it() {
    use Permission::*;
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create(&app, new_key(&org, "target")).await;
        let all_but = |lacking: Permission| -> Vec<Permission> {
            Permission::ALL
                .iter()
                .copied()
                .filter(|p| *p != lacking)
                .collect()
        };
        let create_call = Call::create(payload, json!({"name": "x", "permissions": []}));
        for (call, lacking) in [
            (create_call, ApiKeysCreate),
            (
                Call::update(payload, key.id, json!({"name": "x"})),
                ApiKeysUpdate,
            ),
            (Call::roll(payload, key.id, None), ApiKeysUpdate),
            (Call::delete(payload, key.id), ApiKeysDelete),
            (Call::events(payload), ApiKeysView),
            (Call::key_events(payload, key.id), ApiKeysView),
        ] {
            let (_, secret) = caller(&app, &org, Some(&all_but(lacking))).await;
            let reply = call.bearer(&secret).send(&app).await;
            let detail = reply.problem(403);
            assert!(
                detail.contains(&lacking.to_string()),
                "{payload:?}: {detail}"
            );
        }
        // No credentials at all: 401.
        Call::create(payload, json!({"name": "x", "permissions": []}))
            .send(&app)
            .await
            .problem(401);
        let got = get(&app, payload, &admin, &key.id.to_string()).await;
        assert_eq!(got.body["name"], "target");
        assert!(by_api(&all_events(&app, payload, &admin, None).await).is_empty());
    }
}

#[tokio::test]
async fn another_organizations_key_is_404_exactly_like_a_missing_one_for_every_write() {
    let app = app().await;
    for payload in PAYLOADS {
        let (mine, theirs) = (org(), org());
        let (_, me) = caller(&app, &mine, None).await;
        let (_, them) = caller(&app, &theirs, None).await;
        let (key, their_secret) = caller(&app, &theirs, Some(&[Permission::ApiKeysView])).await;
        let id = key.id.to_string();
        let missing = apikeys::key::KeyId::generate().to_string();
        let their_key = get(&app, payload, &them, &id).await;
        let their_events = all_events(&app, payload, &them, None).await;

        let calls = |target: &str| {
            [
                Call::update(payload, target, json!({"name": "taken"})),
                Call::update(payload, target, json!({"name": "taken"})).header("If-Match", "*"),
                Call::roll(payload, target, Some(json!({"grace_period_seconds": 0}))),
                Call::roll(payload, target, None)
                    .header("Idempotency-Key", format!("roll-{target}")),
                Call::delete(payload, target),
                Call::delete(payload, target).header("If-Match", "*"),
                Call::key_events(payload, target),
            ]
        };
        for (foreign, absent) in calls(&id).into_iter().zip(calls(&missing)) {
            let foreign = foreign.bearer(&me).send(&app).await;
            let absent = absent.bearer(&me).send(&app).await;
            assert_eq!(
                foreign.status, absent.status,
                "{payload:?}: {}",
                foreign.body
            );
            assert_eq!(
                without_request_id(&foreign.body),
                without_request_id(&absent.body),
                "{payload:?}"
            );
            if foreign.status != 200 {
                foreign.problem(404);
            } else {
                assert_eq!(foreign.body["data"], json!([]));
            }
        }

        // Nothing of theirs changed; nothing was recorded on either side.
        let after = get(&app, payload, &them, &id).await;
        assert_eq!(
            (&after.body, after.header("etag")),
            (&their_key.body, their_key.header("etag"))
        );
        assert_eq!(status_with(&app, payload, &their_secret).await, 200);
        assert_eq!(all_events(&app, payload, &them, None).await, their_events);
        assert!(by_api(&all_events(&app, payload, &me, None).await).is_empty());
    }
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_same_answer_and_another_body_is_refused() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let body = json!({"name": "retried", "permissions": ["api_keys.view"]});
        let call = Call::create(payload, body)
            .header("Idempotency-Key", "create-1")
            .bearer(&admin);
        let first = call.send(&app).await;
        assert_eq!(first.status, 201, "{}", first.body);
        assert!(first.header("idempotent-replayed").is_none());
        let again = call.send(&app).await;
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body, "the same key and secret");
        assert_eq!(again.header("location"), first.header("location"));
        let (key, secret) = secret_of(&first);
        assert_eq!(status_with(&app, payload, &secret).await, 200);

        // The same key with another body: a problem, nothing created.
        let other = Call::create(payload, json!({"name": "other", "permissions": []}))
            .header("Idempotency-Key", "create-1")
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(other.problem(422).contains("Idempotency-Key"));
        assert_eq!(
            Call::list(payload)
                .bearer(&admin)
                .send(&app)
                .await
                .ids()
                .len(),
            2
        );

        // A roll too.
        let id = key["id"].as_str().unwrap();
        let roll = Call::roll(payload, id, Some(json!({"grace_period_seconds": 60})))
            .header("Idempotency-Key", "roll-1")
            .bearer(&admin);
        let first = roll.send(&app).await;
        assert_eq!(first.status, 200, "{}", first.body);
        let again = roll.send(&app).await;
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        let (_, rolled) = secret_of(&first);
        assert_eq!(status_with(&app, payload, &rolled).await, 200);
        assert_eq!(
            status_with(&app, payload, &secret).await,
            200,
            "rolled once: in its grace"
        );
        let other = Call::roll(payload, id, Some(json!({"grace_period_seconds": 61})))
            .header("Idempotency-Key", "roll-1")
            .bearer(&admin)
            .send(&app)
            .await;
        other.problem(422);
        let actions: Vec<Value> = by_api(&all_events(&app, payload, &admin, None).await)
            .iter()
            .map(|e| e["action"].clone())
            .collect();
        assert_eq!(actions, [json!("key.rolled"), json!("key.created")]);
        // A malformed key is named.
        let bad = Call::create(payload, json!({"name": "x", "permissions": []}))
            .header("Idempotency-Key", "")
            .bearer(&admin)
            .send(&app)
            .await;
        bad.problem(422);
        assert_eq!(bad.body["parameter"], "Idempotency-Key");
    }
}

#[tokio::test]
async fn concurrent_idempotent_retries_create_one_key_and_roll_once() {
    let app = Arc::new(app().await);
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let call = Call::create(payload, json!({"name": "burst", "permissions": []}))
            .header("Idempotency-Key", "burst")
            .bearer(&admin);
        let replies = concurrently(&app, &call, 8).await;
        let bodies: HashSet<String> = replies.iter().map(|r| r.body.to_string()).collect();
        assert!(
            replies.iter().all(|r| r.status == 201),
            "{:?}",
            replies.iter().map(|r| &r.body).collect::<Vec<_>>()
        );
        assert_eq!(bodies.len(), 1, "one key, one secret");
        assert_eq!(
            replies
                .iter()
                .filter(|r| r.header("idempotent-replayed").is_none())
                .count(),
            1
        );
        let listed = Call::list(payload).bearer(&admin).send(&app).await;
        assert_eq!(listed.ids().len(), 2, "the caller and one key");

        let id = replies[0].body["id"].as_str().unwrap().to_owned();
        let roll = Call::roll(payload, &id, Some(json!({"grace_period_seconds": 60})))
            .header("Idempotency-Key", "roll-burst")
            .bearer(&admin);
        let replies = concurrently(&app, &roll, 8).await;
        assert!(replies.iter().all(|r| r.status == 200));
        let bodies: HashSet<String> = replies.iter().map(|r| r.body.to_string()).collect();
        assert_eq!(bodies.len(), 1, "one new secret");
        let actions: Vec<Value> = by_api(&all_events(&app, payload, &admin, None).await)
            .iter()
            .map(|e| e["action"].clone())
            .collect();
        assert_eq!(actions, [json!("key.rolled"), json!("key.created")]);
    }
}

/// The time a request of the concurrency tests has: dozens of requests at once on DynamoDB
/// Local, on a loaded machine, can take longer than a function's own timeout, and these
/// tests are about outcomes, not speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// Sends `n` copies of `call` at once.
async fn concurrently(app: &Arc<App<DynamoStore>>, call: &Call, n: usize) -> Vec<Reply> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (app, call) = (app.clone(), call.clone());
        set.spawn(async move { call.send_with_time_left(&app, PATIENCE).await });
    }
    set.join_all().await
}

#[tokio::test]
async fn of_concurrent_patches_with_one_if_match_exactly_one_applies_and_the_others_get_412() {
    let app = Arc::new(app().await);
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (key, _) = create(&app, new_key(&org, "contended")).await;
        let etag = get(&app, payload, &admin, &key.id.to_string())
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..8 {
            let app = app.clone();
            let call = Call::update(payload, key.id, json!({"name": format!("writer {i}")}))
                .header("If-Match", &etag)
                .bearer(&admin);
            set.spawn(async move { (i, call.send_with_time_left(&app, PATIENCE).await) });
        }
        let replies = set.join_all().await;
        let winners: Vec<_> = replies.iter().filter(|(_, r)| r.status == 200).collect();
        assert_eq!(
            winners.len(),
            1,
            "{payload:?}: {:?}",
            replies.iter().map(|(_, r)| r.status).collect::<Vec<_>>()
        );
        for (_, r) in replies.iter().filter(|(_, r)| r.status != 200) {
            r.problem(412);
        }
        let name = format!("writer {}", winners[0].0);
        assert_eq!(
            get(&app, payload, &admin, &key.id.to_string()).await.body["name"],
            name
        );
        let updates = all_events(&app, payload, &admin, Some(&key.id.to_string())).await;
        assert_eq!(
            updates
                .iter()
                .filter(|e| e["action"] == "key.updated")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn total_pages_stays_exact_under_concurrent_creates_and_deletes_over_http() {
    let app = Arc::new(app().await);
    for payload in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let mut doomed = Vec::new();
        for i in 0..25 {
            doomed.push(create(&app, new_key(&org, &format!("old {i}"))).await.0.id);
        }
        // 30 creates and 25 deletes (each sent twice), all at once.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..30 {
            let app = app.clone();
            let call = Call::create(
                payload,
                json!({"name": format!("new {i}"), "permissions": []}),
            )
            .bearer(&admin);
            set.spawn(async move { call.send_with_time_left(&app, PATIENCE).await.status });
        }
        for id in &doomed {
            for _ in 0..2 {
                let app = app.clone();
                let call = Call::delete(payload, id).bearer(&admin);
                set.spawn(async move { call.send_with_time_left(&app, PATIENCE).await.status });
            }
        }
        let statuses = set.join_all().await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            30,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 204).count(),
            25,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 404).count(),
            25,
            "{statuses:?}"
        );

        let listed = Call::list(payload)
            .query("limit", 100)
            .bearer(&admin)
            .send(&app)
            .await;
        let n = listed.ids().len();
        assert_eq!(n, 1 + 30);
        let page = Call::list(payload)
            .query("page", 1)
            .query("limit", 1)
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.body["total_pages"], n, "{}", page.body);
    }
}
