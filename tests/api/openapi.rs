//! The contract: openapi.yaml against the handlers' real responses (REST v1 and HTTP API v2
//! payloads, DynamoDB Local), and against the routes template.yaml deploys.
//!
//! Every response a scenario below provokes must be documented for its path, method and
//! status, carry the documented headers, and have a body that validates against the
//! documented schema for its content type; and every status documented as the service's own
//! (not API Gateway's) must be provoked by some scenario.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use apikeys::App;
use apikeys::key::{KeyId, Permission};
use apikeys::page::{DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE_END};
use apikeys::store::KeyReader;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use serde_json::{Value, json};

const GET_PATH: &str = "/v1/api_key/{id}";
const DISCUE_PATH: &str = "/v1/api_keys/{api_key_id}";
const LIST_PATH: &str = "/v1/api_key/";
/// Where openapi.yaml documents the 405 answered to every other method of a path.
const OTHER_METHODS: &str = "x-other-methods";
const ROLL_PATH: &str = "/v1/api_key/{id}/roll";
const CREDITS_PATH: &str = "/v1/api_key/{id}/credits";
const KEY_EVENTS_PATH: &str = "/v1/api_key/{id}/events";
const EVENTS_PATH: &str = "/v1/api_key_events/";
const VERIFY_PATH: &str = "/v1/api_key/verify";
const SCANNING_PATH: &str = "/v1/secret_scanning/github";
const OWNER_PATH: &str = "/v1/owner/{owner_id}";

static DOC: LazyLock<Value> = LazyLock::new(|| {
    let text =
        std::fs::read_to_string(crate::repo_root().join("openapi.yaml")).expect("openapi.yaml");
    serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML")
});

/// Follows local `$ref`s (`#/...`) until a value that is not a reference.
fn resolve(mut value: &Value) -> &Value {
    while let Some(target) = value.get("$ref").and_then(Value::as_str) {
        let pointer = target.strip_prefix('#').expect("only local references");
        value = DOC
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.yaml: {target} does not exist"));
    }
    value
}

/// A JSON Schema validator for `schema`, whose `#/components/...` references resolve
/// against openapi.yaml. OpenAPI 3.1 schemas are JSON Schema 2020-12; formats (uuid,
/// date-time) are asserted.
fn validator(schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": DOC["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("openapi.yaml: a schema does not compile: {e}"))
}

#[track_caller]
fn assert_valid(schema: &Value, instance: &Value, what: &str) {
    let errors: Vec<String> = validator(schema)
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\nin {instance}");
}

thread_local! {
    /// The (path, operation, status) triples this test has checked (each test runs on a
    /// thread of its own, its runtime on that thread).
    static SEEN: RefCell<BTreeSet<(String, String, String)>> = RefCell::default();
}

/// Checks one reply against the contract for `path` (as written in openapi.yaml) and the
/// request's method.
#[track_caller]
fn check(path: &str, method: &str, reply: &Reply) {
    let item = &DOC["paths"][path];
    assert!(item.is_object(), "openapi.yaml has no path {path}");
    let op_key = match method.to_ascii_lowercase() {
        op if item[&op].is_object() => op,
        _ => OTHER_METHODS.to_owned(),
    };
    let status = reply.status.to_string();
    let what = format!("{method} {path} -> {status}");
    let documented = &item[&op_key]["responses"][&status];
    assert!(
        documented.is_object(),
        "{what}: openapi.yaml does not document this response: {}",
        reply.body
    );
    let response = resolve(documented);
    assert!(
        response.get("x-answered-by").is_none(),
        "{what}: documented as API Gateway's, but the handler answered it"
    );

    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        let header = resolve(header);
        match reply.header(name) {
            Some(value) => assert_valid(
                &header["schema"],
                &json!(value),
                &format!("{what}: header {name}"),
            ),
            None => assert!(
                header["required"] != true,
                "{what}: the required header {name} is missing"
            ),
        }
    }

    if method == "HEAD" {
        assert!(reply.raw.is_empty(), "{what}: a HEAD response has a body");
    } else if response.get("content").is_none() {
        assert!(
            reply.raw.is_empty(),
            "{what}: documented without a body, but has one: {}",
            reply.body
        );
    } else {
        let content_type = reply.header("content-type").expect("a content type");
        let media = &response["content"][content_type];
        assert!(
            media.is_object(),
            "{what}: openapi.yaml does not document {content_type} here"
        );
        assert_valid(&media["schema"], &reply.body, &format!("{what}: body"));
    }
    SEEN.with_borrow_mut(|seen| seen.insert((path.to_owned(), op_key, status)));
}

/// Sends `call` and checks the reply; returns it for further assertions.
async fn sent<S: Store>(app: &App<S>, path: &str, call: Call) -> Reply {
    let event = call.event();
    let method = event["requestContext"]["httpMethod"]
        .as_str()
        .or(event["requestContext"]["http"]["method"].as_str())
        .expect("a method")
        .to_owned();
    // On the heap: the handlers' futures are large in debug builds, and this test awaits
    // dozens of them in one function.
    let reply = Box::pin(call.send(app)).await;
    check(path, &method, &reply);
    reply
}

#[tokio::test]
async fn every_response_of_the_handlers_is_documented_and_matches_its_schema() {
    let app = app().await;
    let org = org();
    let (admin_key, admin) = create(&app, new_key(&org, "admin")).await;
    let mut viewer = new_key(&org, "viewer");
    viewer.access = restricted(&[Permission::ApiKeysView, Permission::CallsView]);
    viewer.expires = Some(chrono::Utc::now() + chrono::Duration::days(30));
    let (viewer_key, viewer) = create(&app, viewer).await;
    let mut outsider = new_key(&org, "no api_keys.view");
    outsider.access = restricted(&[Permission::CallsView]);
    let (_, outsider) = create(&app, outsider).await;

    let missing_table = App {
        store: DynamoStore::new(app.store.client().clone(), "no-such-table"),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let unreachable = unreachable_store().await;
    let absent = KeyId::generate();

    for p in PAYLOADS {
        for method in ["GET", "HEAD"] {
            let get = |id: &dyn ToString| Call::get(p, id.to_string()).method(method);
            let discue = |id: &dyn ToString| Call::discue(p, id.to_string()).method(method);
            let list = || Call::list(p).method(method);
            let one = |path: &str, id: &dyn ToString| match path {
                GET_PATH => get(id),
                _ => discue(id),
            };

            // 200: an unrestricted key (permissions null, every scope), a restricted,
            // expiring one, on both views.
            for path in [GET_PATH, DISCUE_PATH] {
                sent(&app, path, one(path, &viewer_key.id).bearer(&admin)).await;
                sent(&app, path, one(path, &viewer_key.id).api_key(&viewer)).await;
                sent(&app, path, one(path, &admin_key.id).bearer(&admin)).await;
            }
            // 200: the last use the calls above recorded, on both views.
            if method == "GET" {
                let diga = sent(&app, GET_PATH, get(&viewer_key.id).bearer(&admin)).await;
                assert!(diga.body["last_used_date"].is_string(), "{}", diga.body);
                let reply = sent(&app, DISCUE_PATH, discue(&admin_key.id).bearer(&admin)).await;
                let key = &reply.body["api_key"];
                assert!(key["last_used_at"].is_i64(), "{}", reply.body);
                assert_eq!(key["scopes"].as_array().map(Vec::len), Some(20));
            }
            // 200: a full page, a page with a cursor, and an empty page (null ids).
            let page = sent(&app, LIST_PATH, list().query("limit", 1).bearer(&admin)).await;
            if method == "GET" {
                assert_eq!(page.body["has_more"], true);
                let cursor = page.body["next_cursor"].as_str().unwrap();
                sent(
                    &app,
                    LIST_PATH,
                    list().query("cursor", cursor).bearer(&admin),
                )
                .await;
                let empty = list()
                    .query("order", "asc")
                    .query("before", uuid::Uuid::nil());
                let empty = sent(&app, LIST_PATH, empty.api_key(&viewer)).await;
                assert_eq!(empty.body["first_id"], Value::Null, "{}", empty.body);
            }
            // 200: numbered pages, the first and one past the end.
            let numbered = list().query("page", 1).query("limit", 2).bearer(&admin);
            let numbered = sent(&app, LIST_PATH, numbered).await;
            let past_end = list().query("page", 100).query("limit", 10).bearer(&admin);
            let past_end = sent(&app, LIST_PATH, past_end).await;
            if method == "GET" {
                assert_eq!(numbered.body["current_page"], 1, "{}", numbered.body);
                assert_eq!(numbered.body["total_pages"], 2, "{}", numbered.body);
                assert_eq!(past_end.body["data"], json!([]), "{}", past_end.body);
                assert_eq!(past_end.body["has_more"], false);
                assert_eq!(past_end.body["current_page"], 100);
            }
            // 200: each filter, alone and all together, and a filtered page's cursor.
            let filters = [
                ("status", "active".to_owned()),
                ("creator_id", viewer_key.creator_id.to_string()),
                ("restricted", "true".to_owned()),
                ("permission", "calls.view".to_owned()),
                ("name", "VIEW".to_owned()),
            ];
            for (name, value) in &filters {
                let call = list().query(name, value).bearer(&admin);
                let reply = sent(&app, LIST_PATH, call).await;
                if method == "GET" {
                    assert_eq!(reply.body["read_budget_exhausted"], false, "{name}");
                    assert!(reply.ids().contains(&viewer_key.id.to_string()), "{name}");
                }
            }
            let all = filters
                .iter()
                .fold(list(), |call, (name, value)| call.query(name, value));
            sent(&app, LIST_PATH, all.bearer(&admin)).await;
            let restricted = || list().query("restricted", true).query("limit", 1);
            let first = sent(&app, LIST_PATH, restricted().bearer(&admin)).await;
            let filtered_cursor = first.body["next_cursor"].as_str().map(str::to_owned);
            if let Some(cursor) = &filtered_cursor {
                let next = restricted().query("cursor", cursor).bearer(&admin);
                sent(&app, LIST_PATH, next).await;
            }

            // 200 with `pretty`, then 304 for its tag (also weak, and `*`), on every route.
            for (path, call) in [
                (GET_PATH, get(&viewer_key.id)),
                (DISCUE_PATH, discue(&viewer_key.id)),
                (LIST_PATH, list()),
            ] {
                let call = call.query("pretty", true).bearer(&admin);
                let reply = sent(&app, path, call.clone()).await;
                if method == "GET" {
                    assert!(reply.raw.ends_with(b"}\n"), "{path}: not pretty");
                }
                let tag = reply.header("etag").expect("an ETag").to_owned();
                if method == "HEAD" {
                    // HEAD answers the tag of the body GET sends.
                    let get = sent(&app, path, call.clone().method("GET")).await;
                    assert_eq!(get.header("etag"), Some(tag.as_str()), "{path}");
                }
                for matching in [tag.clone(), format!("W/{tag}"), "*".to_owned()] {
                    let again = call.clone().header("If-None-Match", matching);
                    let again = sent(&app, path, again).await;
                    assert_eq!(again.status, 304, "{path}: {}", again.body);
                    assert_eq!(again.header("etag"), Some(tag.as_str()));
                }
                // A tag of another body: the 200 again.
                let stale = call.header("If-None-Match", "\"0\"");
                assert_eq!(sent(&app, path, stale).await.status, 200);
            }

            // 401: no key, and a key that is not valid.
            for (path, call) in [
                (GET_PATH, get(&absent)),
                (DISCUE_PATH, discue(&absent)),
                (LIST_PATH, list()),
            ] {
                sent(&app, path, call.clone()).await;
                sent(&app, path, call.header("X-API-KEY", "apk_nope")).await;
            }
            // 403: a restricted key without api_keys.view.
            sent(&app, GET_PATH, get(&absent).bearer(&outsider)).await;
            sent(&app, DISCUE_PATH, discue(&absent).bearer(&outsider)).await;
            sent(&app, LIST_PATH, list().bearer(&outsider)).await;
            // 404: no such key in the caller's organization.
            sent(&app, GET_PATH, get(&absent).bearer(&admin)).await;
            sent(&app, DISCUE_PATH, discue(&absent).bearer(&admin)).await;
            // 406: an Accept header without JSON.
            for (path, call) in [
                (GET_PATH, get(&absent)),
                (DISCUE_PATH, discue(&absent)),
                (LIST_PATH, list()),
            ] {
                sent(
                    &app,
                    path,
                    call.header("Accept", "text/html").bearer(&admin),
                )
                .await;
            }
            // 422: a bad id, an unknown query parameter, a bad `pretty` (also in the
            // pretty form of errors).
            for (path, parameter) in [(GET_PATH, "id"), (DISCUE_PATH, "api_key_id")] {
                let reply = sent(&app, path, one(path, &"42").bearer(&admin)).await;
                if method == "GET" {
                    assert_eq!(reply.body["parameter"], parameter);
                }
                let call = one(path, &absent).query("x", 1).bearer(&admin);
                sent(&app, path, call).await;
                let call = one(path, &absent).query("pretty", "yes").bearer(&admin);
                sent(&app, path, call).await;
                let call = one(path, &"42").query("pretty", true).bearer(&admin);
                let reply = sent(&app, path, call).await;
                if method == "GET" {
                    assert!(reply.raw.ends_with(b"}\n"), "{path}: not pretty");
                }
            }
            // 422 on list: a bad value of each parameter, an unknown or repeated one,
            // `page` with a position or a filter, a cursor under other filters.
            let mut refused = vec![
                (list().query("limit", 0), "limit"),
                (list().query("order", "up"), "order"),
                (list().query("limt", 5), "limt"),
                (list().query("limit", 5).query("limit", 6), "limit"),
                (list().query("page", 0), "page"),
                (list().query("page", 21), "page"),
                (list().query("page", 1).query("after", absent), "page"),
                (list().query("page", 1).query("status", "active"), "page"),
                (list().query("pretty", "yes"), "pretty"),
                (list().query("status", "on"), "status"),
                (list().query("creator_id", "x"), "creator_id"),
                (list().query("restricted", "yes"), "restricted"),
                (list().query("permission", "calls.read"), "permission"),
                (list().query("name", "n".repeat(257)), "name"),
            ];
            let cursor = page.body["next_cursor"].as_str();
            if let Some(cursor) = cursor {
                refused.push((list().query("page", 2).query("cursor", cursor), "page"));
                let other = list().query("cursor", cursor).query("status", "active");
                refused.push((other, "cursor"));
            }
            if let Some(cursor) = &filtered_cursor {
                let other = list().query("cursor", cursor).query("restricted", false);
                refused.push((other, "cursor"));
            }
            for (call, parameter) in refused {
                let reply = sent(&app, LIST_PATH, call.bearer(&admin)).await;
                if method == "GET" {
                    assert_eq!(reply.body["parameter"], parameter, "{}", reply.body);
                }
            }
            // 500: the table is missing.
            sent(&missing_table, GET_PATH, get(&absent).bearer(&admin)).await;
            sent(&missing_table, DISCUE_PATH, discue(&absent).bearer(&admin)).await;
            sent(&missing_table, LIST_PATH, list().bearer(&admin)).await;
        }
        // 503: DynamoDB is unreachable (the SDK retries first, so all at once).
        let unavailable = |path, call: Call| sent(&unreachable, path, call.bearer(&admin));
        let replies = tokio::join!(
            unavailable(GET_PATH, Call::get(p, absent)),
            unavailable(GET_PATH, Call::get(p, absent).method("HEAD")),
            unavailable(DISCUE_PATH, Call::discue(p, absent)),
            unavailable(DISCUE_PATH, Call::discue(p, absent).method("HEAD")),
            unavailable(LIST_PATH, Call::list(p)),
            unavailable(LIST_PATH, Call::list(p).method("HEAD")),
        );
        assert_eq!(replies.0.status, 503);
        assert_eq!(replies.2.status, 503);
        // 405: every method no function of the path serves.
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let call = Call::discue(p, absent).method(method).bearer(&admin);
            sent(&app, DISCUE_PATH, call).await;
        }
        for method in ["POST", "PUT", "OPTIONS"] {
            let call = Call::get(p, absent).method(method).bearer(&admin);
            sent(&app, GET_PATH, call).await;
        }
        for method in ["PUT", "PATCH", "DELETE", "OPTIONS"] {
            sent(&app, LIST_PATH, Call::list(p).method(method)).await;
        }
    }

    assert_provoked(|path, op| READS.contains(&(path, op)));
}

/// The read operations, and the 405s of their paths.
const READS: &[(&str, &str)] = &[
    (GET_PATH, "get"),
    (GET_PATH, "head"),
    (GET_PATH, OTHER_METHODS),
    (DISCUE_PATH, "get"),
    (DISCUE_PATH, "head"),
    (DISCUE_PATH, OTHER_METHODS),
    (LIST_PATH, "get"),
    (LIST_PATH, "head"),
    (LIST_PATH, OTHER_METHODS),
];

/// Every status documented as the service's own, for the operations `covered` selects, was
/// provoked by this test (on this thread).
#[track_caller]
fn assert_provoked(covered: impl Fn(&str, &str) -> bool) {
    let seen = SEEN.with_borrow(Clone::clone);
    let mut unprovoked = vec![];
    for (path, item) in DOC["paths"].as_object().unwrap() {
        for (op_key, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            if !covered(path, op_key) {
                continue;
            }
            for (status, response) in responses {
                let by_gateway = resolve(response).get("x-answered-by").is_some();
                let key = (path.clone(), op_key.clone(), status.clone());
                if !by_gateway && !seen.contains(&key) {
                    unprovoked.push(key);
                }
            }
        }
    }
    assert!(
        unprovoked.is_empty(),
        "documented but never provoked by this test: {unprovoked:?}"
    );
}

#[tokio::test]
async fn every_response_of_the_write_and_event_handlers_is_documented_and_matches_its_schema() {
    use Permission::*;
    let app = app().await;
    let org = org();
    let (_, admin) = create(&app, new_key(&org, "admin")).await;
    let mut viewer = new_key(&org, "viewer");
    viewer.access = restricted(&[ApiKeysView, CallsView]);
    let (_, viewer) = create(&app, viewer).await;
    let mut outsider = new_key(&org, "no api_keys.view");
    outsider.access = restricted(&[CallsView]);
    let (_, outsider) = create(&app, outsider).await;
    let missing_table = App {
        store: DynamoStore::new(app.store.client().clone(), "no-such-table"),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let unreachable = unreachable_store().await;
    let rival = App {
        store: apikeys_tests::rival::Rival::new(app.store.clone()),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let absent = KeyId::generate();
    let too_large = format!("{{\"name\": \"{}\"}}", "x".repeat(17_000));

    for p in PAYLOADS {
        let create_body = || json!({"name": "contract", "permissions": ["calls.view"]});
        let create_call = || Call::create(p, create_body());
        // 201: a restricted key, an unrestricted one, and an idempotent create and its
        // replay.
        let created = sent(&app, LIST_PATH, create_call().bearer(&admin)).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let unrestricted = Call::create(p, json!({"name": "u", "restricted": false}));
        sent(&app, LIST_PATH, unrestricted.bearer(&admin)).await;
        // A key with metadata and an IP allow-list, and a merge patch of both.
        let fenced = json!({"name": "fenced", "permissions": [], "meta": {"tenant": "t", "n": [1]},
                            "allowed_cidrs": ["192.0.2.0/24", "2001:db8::1"]});
        let fenced = sent(&app, LIST_PATH, Call::create(p, fenced).bearer(&admin)).await;
        assert_eq!(fenced.status, 201, "{}", fenced.body);
        let fenced_id = fenced.body["id"].as_str().unwrap().to_owned();
        let merge =
            json!({"meta": {"n": null, "plan": {"seats": 3}}, "allowed_cidrs": ["192.0.2.0/25"]});
        let merged = Call::update(p, &fenced_id, merge).bearer(&admin);
        assert_eq!(sent(&app, GET_PATH, merged).await.status, 200);
        // Refused: meta out of bounds (422), a caller's allow-list reached past (403).
        let deep = json!({"meta": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}});
        let deep = Call::update(p, &fenced_id, deep).bearer(&admin);
        assert_eq!(sent(&app, GET_PATH, deep).await.status, 422);
        let idem = format!("contract-{p:?}");
        let idempotent = || {
            create_call()
                .header("Idempotency-Key", &idem)
                .bearer(&admin)
        };
        let first = sent(&app, LIST_PATH, idempotent()).await;
        let again = sent(&app, LIST_PATH, idempotent()).await;
        assert_eq!(first.body["secret"], again.body["secret"]);
        // Refused creates: 400, 401, 403, 406, 413, 415, 422 (a field, the
        // Idempotency-Key reused for another body).
        for call in [
            create_call().body("application/json", "{\"name\": "),
            create_call(),
            create_call().header("Accept", "text/html"),
            create_call().body("application/json", too_large.clone()),
            create_call().body("text/plain", "name=x"),
            Call::create(p, json!({"name": "x", "id": absent})),
            Call::create(p, json!({"name": "x"})).header("Idempotency-Key", &idem),
        ] {
            let call = if call.event().to_string().contains("Authorization") {
                call
            } else {
                call.bearer(&admin)
            };
            sent(&app, LIST_PATH, call).await;
        }
        sent(&app, LIST_PATH, Call::create(p, create_body())).await;
        sent(&app, LIST_PATH, create_call().bearer(&viewer)).await;

        // 200: GET's tag names the version a PATCH may require; then 412 for a stale tag.
        let tag = Call::get(p, &id).bearer(&admin).send(&app).await;
        let tag = tag.header("etag").unwrap().to_owned();
        let patch = |v: Value| Call::update(p, &id, v);
        let renamed = patch(json!({"name": "renamed"})).header("If-Match", &tag);
        let renamed = sent(&app, GET_PATH, renamed.bearer(&admin)).await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        let stale = patch(json!({"name": "again"})).header("If-Match", &tag);
        assert_eq!(sent(&app, GET_PATH, stale.bearer(&admin)).await.status, 412);
        let disabled = patch(json!({"status": "disabled", "expires_date": null}));
        sent(&app, GET_PATH, disabled.bearer(&admin)).await;
        let json_patch = Call::get(p, &id)
            .method("PATCH")
            .json(&json!({"status": "active"}));
        sent(&app, GET_PATH, json_patch.bearer(&admin)).await;
        // Refused patches: 400, 401, 403 (the permission; an escalation), 404, 406, 413,
        // 415, 422 (a read-only field, a bad id).
        for call in [
            patch(json!({})).body("application/merge-patch+json", "{,}"),
            patch(json!({})).header("Accept", "text/html"),
            patch(json!({})).body("application/merge-patch+json", too_large.clone()),
            patch(json!({})).body("text/plain", "{}"),
            patch(json!({"last_four_digits": "abcd"})),
            Call::update(p, absent, json!({"name": "x"})),
            Call::update(p, "42", json!({"name": "x"})),
        ] {
            sent(&app, GET_PATH, call.bearer(&admin)).await;
        }
        sent(&app, GET_PATH, patch(json!({"name": "x"}))).await;
        sent(&app, GET_PATH, patch(json!({"name": "x"})).bearer(&viewer)).await;

        // 200: a roll without a body, with a grace period, idempotent; 412 for a stale tag.
        let roll = |body: Option<Value>| Call::roll(p, &id, body);
        sent(&app, ROLL_PATH, roll(None).bearer(&admin)).await;
        let graced = roll(Some(json!({"grace_period_seconds": 60})));
        let graced = sent(&app, ROLL_PATH, graced.bearer(&admin)).await;
        assert_eq!(graced.status, 200, "{}", graced.body);
        let idem_roll = || roll(None).header("Idempotency-Key", &idem).bearer(&admin);
        sent(&app, ROLL_PATH, idem_roll()).await;
        let stale = roll(None).header("If-Match", &tag);
        assert_eq!(
            sent(&app, ROLL_PATH, stale.bearer(&admin)).await.status,
            412
        );
        // Refused rolls: 400, 401, 403 (the permission; a key holding more), 404, 406,
        // 413, 415, 422.
        let mut holder = new_key(&org, "updater");
        holder.access = restricted(&[ApiKeysUpdate]);
        let (_, updater) = create(&app, holder).await;
        for call in [
            roll(None).body("application/json", "[1,"),
            roll(None).header("Accept", "text/html"),
            roll(None).body("application/json", too_large.clone()),
            roll(None).body("text/plain", "{}"),
            roll(Some(json!({"grace_period_seconds": 604_801}))),
            Call::roll(p, absent, None),
        ] {
            sent(&app, ROLL_PATH, call.bearer(&admin)).await;
        }
        sent(&app, ROLL_PATH, roll(None)).await;
        sent(&app, ROLL_PATH, roll(None).bearer(&viewer)).await;
        sent(&app, ROLL_PATH, roll(None).bearer(&updater)).await;

        // Events: 200 (the organization's, one key's, filtered, a next page), 304, and the
        // refusals 401, 403, 406, 422.
        for method in ["GET", "HEAD"] {
            for (path, call) in [
                (EVENTS_PATH, Call::events(p)),
                (KEY_EVENTS_PATH, Call::key_events(p, &id)),
            ] {
                let call = call.method(method);
                let page = sent(&app, path, call.clone().query("limit", 1).bearer(&admin)).await;
                if method == "GET" {
                    assert_eq!(page.body["has_more"], true, "{}", page.body);
                    let cursor = page.body["next_cursor"].as_str().unwrap();
                    let next = call.clone().query("cursor", cursor).bearer(&admin);
                    sent(&app, path, next).await;
                }
                let filtered = call
                    .clone()
                    .query("action", "key.rolled")
                    .query("since", "2020-01-01T00:00:00Z")
                    .query("order", "asc");
                sent(&app, path, filtered.bearer(&admin)).await;
                let tag = page.header("etag").unwrap().to_owned();
                let cached = call.clone().query("limit", 1).header("If-None-Match", tag);
                assert_eq!(sent(&app, path, cached.bearer(&admin)).await.status, 304);
                sent(&app, path, call.clone()).await;
                sent(&app, path, call.clone().bearer(&outsider)).await;
                let html = call.clone().header("Accept", "text/html").bearer(&admin);
                sent(&app, path, html).await;
                sent(&app, path, call.clone().query("limit", 0).bearer(&admin)).await;
                sent(&app, path, call.clone().query("x", 1).bearer(&admin)).await;
            }
            let bad_id = Call::key_events(p, "42").method(method).bearer(&admin);
            sent(&app, KEY_EVENTS_PATH, bad_id).await;
        }

        // 204, then 404; 412 for a stale tag; 401, 403, 406, 422.
        let (doomed, _) = create(&app, new_key(&org, "doomed")).await;
        let stale = Call::delete(p, doomed.id).header("If-Match", "\"999-00\"");
        assert_eq!(sent(&app, GET_PATH, stale.bearer(&admin)).await.status, 412);
        let deleted = sent(&app, GET_PATH, Call::delete(p, doomed.id).bearer(&admin)).await;
        assert_eq!(deleted.status, 204);
        sent(&app, GET_PATH, Call::delete(p, doomed.id).bearer(&admin)).await;
        sent(&app, GET_PATH, Call::delete(p, absent)).await;
        sent(&app, GET_PATH, Call::delete(p, absent).bearer(&viewer)).await;
        let html = Call::delete(p, absent).header("Accept", "text/html");
        sent(&app, GET_PATH, html.bearer(&admin)).await;
        sent(&app, GET_PATH, Call::delete(p, "42").bearer(&admin)).await;

        // Credits: 200 (an increment, a decrement; then its events and a PATCH of them), 409
        // (too large a decrement; a key without credits), and the refusals 400, 401, 403,
        // 404, 406, 413, 415, 422 (an amount of 0, both members, a bad id).
        let adjust = |id: &str, v: Value| Call::adjust(p, id, &v);
        let metered = json!({"name": "metered", "permissions": [],
            "credits": {"remaining": 5, "refill": {"interval": "monthly", "amount": 9}, "low_at": 2},
            "ratelimits": [{"name": "s", "limit": 10, "duration_ms": 1000, "mode": "leased"}]});
        let metered = sent(&app, LIST_PATH, Call::create(p, metered).bearer(&admin)).await;
        assert_eq!(metered.status, 201, "{}", metered.body);
        let mid = metered.body["id"].as_str().unwrap().to_owned();
        for (body, expected) in [
            (json!({"increment": 3}), 200),
            (json!({"decrement": 2}), 200),
            (json!({"decrement": 100}), 409),
        ] {
            let reply = sent(&app, CREDITS_PATH, adjust(&mid, body).bearer(&admin)).await;
            assert_eq!(reply.status, expected, "{}", reply.body);
        }
        let unlimited = adjust(&id, json!({"increment": 1})).bearer(&admin);
        assert_eq!(sent(&app, CREDITS_PATH, unlimited).await.status, 409);
        for call in [
            adjust(&mid, json!({})).body("application/json", "{"),
            adjust(&mid, json!({"increment": 1})).header("Accept", "text/html"),
            adjust(&mid, json!({})).body("application/json", too_large.clone()),
            adjust(&mid, json!({})).body("text/plain", "{}"),
            adjust(&mid, json!({"increment": 0})),
            adjust(&mid, json!({"increment": 1, "decrement": 1})),
            adjust(&absent.to_string(), json!({"increment": 1})),
            adjust("42", json!({"increment": 1})),
        ] {
            sent(&app, CREDITS_PATH, call.bearer(&admin)).await;
        }
        sent(&app, CREDITS_PATH, adjust(&mid, json!({"increment": 1}))).await;
        let viewer_adjusts = adjust(&mid, json!({"increment": 1})).bearer(&viewer);
        sent(&app, CREDITS_PATH, viewer_adjusts).await;
        sent(
            &app,
            KEY_EVENTS_PATH,
            Call::key_events(p, &mid).bearer(&admin),
        )
        .await;
        let patched = json!({"credits": {"remaining": 4, "refill": null}, "ratelimits": []});
        let patched = sent(
            &app,
            GET_PATH,
            Call::update(p, &mid, patched).bearer(&admin),
        )
        .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        let last = Call::key_events(p, &mid).query("limit", 1).bearer(&admin);
        sent(&app, KEY_EVENTS_PATH, last).await;

        // 409: another writer changes the key between each read of it and the write, and the
        // request names no If-Match (a PATCH loses at once; a roll or a delete after its
        // retries). Nothing of the request is written: the key keeps the rival's name, its
        // secret and its existence.
        let (contested, _) = create(&app, new_key(&org, "contested")).await;
        for (path, call) in [
            (
                GET_PATH,
                Call::update(p, contested.id, json!({"name": "mine"})),
            ),
            (ROLL_PATH, Call::roll(p, contested.id, None)),
            (GET_PATH, Call::delete(p, contested.id)),
        ] {
            let reply = sent(&rival, path, call.bearer(&admin)).await;
            assert_eq!(reply.status, 409, "{path}: {}", reply.body);
            let now = app.store.get_key(&org, contested.id).await.unwrap();
            let now = now.expect("the key is still there");
            assert_eq!(Some(now.name), rival.store.last_name());
            assert_eq!(now.last_four, contested.last_four);
        }

        // 500: the table is missing; 503: DynamoDB is unreachable.
        for (store, expected) in [(&missing_table, 500), (&unreachable, 503)] {
            for (path, call) in [
                (LIST_PATH, create_call()),
                (GET_PATH, Call::update(p, absent, json!({"name": "x"}))),
                (GET_PATH, Call::delete(p, absent)),
                (ROLL_PATH, Call::roll(p, absent, None)),
                (
                    CREDITS_PATH,
                    Call::adjust(p, absent, &json!({"increment": 1})),
                ),
                (EVENTS_PATH, Call::events(p)),
                (EVENTS_PATH, Call::events(p).method("HEAD")),
                (KEY_EVENTS_PATH, Call::key_events(p, absent)),
                (KEY_EVENTS_PATH, Call::key_events(p, absent).method("HEAD")),
            ] {
                let reply = sent(store, path, call.bearer(&admin)).await;
                assert_eq!(reply.status, expected, "{path}: {}", reply.body);
            }
        }

        // 405: every method no function of the path serves.
        for method in ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let call = Call::roll(p, absent, None).method(method).bearer(&admin);
            sent(&app, ROLL_PATH, call).await;
            let call = Call::adjust(p, absent, &json!({})).method(method);
            sent(&app, CREDITS_PATH, call.bearer(&admin)).await;
        }
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let call = Call::key_events(p, absent).method(method).bearer(&admin);
            sent(&app, KEY_EVENTS_PATH, call).await;
            let call = Call::events(p).method(method).bearer(&admin);
            sent(&app, EVENTS_PATH, call).await;
        }
    }
    assert_provoked(|path, op| {
        !READS.contains(&(path, op)) && ![VERIFY_PATH, SCANNING_PATH, OWNER_PATH].contains(&path)
    });
}

#[tokio::test]
async fn every_response_of_the_owner_endpoint_is_documented_and_matches_its_schema() {
    use Permission::*;
    let app = app().await;
    let org = org();
    let (_, admin) = create(&app, new_key(&org, "admin")).await;
    let mut writer = new_key(&org, "restricted writer");
    writer.access = restricted(&[ApiKeysView, ApiKeysUpdate]);
    let (_, writer) = create(&app, writer).await;
    let mut outsider = new_key(&org, "no api_keys.view");
    outsider.access = restricted(&[CallsView]);
    let (_, outsider) = create(&app, outsider).await;
    let missing_table = App {
        store: DynamoStore::new(app.store.client().clone(), "no-such-table"),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let unreachable = unreachable_store().await;
    let rival = App {
        store: apikeys_tests::rival::Rival::new(app.store.clone()),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let body = json!({"credits": {"remaining": 100, "refill": {"interval": "monthly", "amount": 100}},
                      "ratelimits": [{"name": "requests", "limit": 10, "duration_ms": 1000}]});
    for p in PAYLOADS {
        let id = format!("cus_{p:?}");
        let put = |b: &Value| Call::put_owner(p, &id, b);
        // 201, then 200 twice (nothing changes), then a tag for the conditions below.
        for status in [201, 200, 200] {
            let reply = sent(&app, OWNER_PATH, put(&body).bearer(&admin)).await;
            assert_eq!(reply.status, status, "{}", reply.body);
        }
        let got = sent(&app, OWNER_PATH, Call::owner(p, &id).bearer(&admin)).await;
        let tag = got.headers["etag"].to_str().unwrap().to_owned();
        for method in ["GET", "HEAD"] {
            let get = |owner: &str| Call::owner(p, owner).method(method);
            for call in [
                get(&id).bearer(&admin),
                get(&id).header("If-None-Match", &tag).bearer(&admin),
                get(&id),
                get(&id).bearer(&outsider),
                get("cus_none").bearer(&admin),
                get(&id).header("Accept", "text/html").bearer(&admin),
                get(&"x".repeat(129)).bearer(&admin),
            ] {
                sent(&app, OWNER_PATH, call).await;
            }
            for store in [&missing_table, &unreachable] {
                sent(store, OWNER_PATH, get(&id).bearer(&admin)).await;
            }
        }
        // Refused PUTs: 400, 401, 403, 406, 409 (another writer each time), 412, 413,
        // 415, 422; 500 and 503 from the store.
        let too_large = format!(
            "{{\"credits\": {{\"remaining\": 1}}, \"x\": \"{}\"}}",
            "x".repeat(17_000)
        );
        for call in [
            put(&body).body("application/json", "{\"credits\": ").bearer(&admin),
            put(&body),
            put(&body).bearer(&writer),
            put(&body).header("Accept", "text/html").bearer(&admin),
            put(&body).header("If-Match", "\"99-0000000000000000\"").bearer(&admin),
            put(&body).body("application/json", too_large).bearer(&admin),
            put(&body).body("text/plain", "credits=1").bearer(&admin),
            put(&json!({"ratelimits": [{"name": "r", "limit": 1, "duration_ms": 1000, "mode": "leased"}]}))
                .bearer(&admin),
        ] {
            sent(&app, OWNER_PATH, call).await;
        }
        let contested = sent(&rival, OWNER_PATH, put(&json!({})).bearer(&admin)).await;
        assert_eq!(contested.status, 409, "{}", contested.body);
        for store in [&missing_table, &unreachable] {
            sent(store, OWNER_PATH, put(&body).bearer(&admin)).await;
        }
        // 405: every method the function does not serve.
        for method in ["POST", "PATCH", "DELETE", "OPTIONS"] {
            let call = Call::owner(p, &id).method(method).bearer(&admin);
            sent(&app, OWNER_PATH, call).await;
        }
    }
    assert_provoked(|path, _| path == OWNER_PATH);
}

#[tokio::test]
async fn every_response_of_verify_and_secret_scanning_is_documented_and_matches_its_schema() {
    use Permission::*;
    let app = app().await;
    let org = org();
    let (_, admin) = create(&app, new_key(&org, "admin")).await;
    let mut outsider = new_key(&org, "no api_keys.view");
    outsider.access = restricted(&[CallsView]);
    let (_, outsider) = create(&app, outsider).await;
    let (off, off_secret) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, off.id, apikeys::key::KeyState::Disabled).await);
    let missing_table = App {
        store: DynamoStore::new(app.store.client().clone(), "no-such-table"),
        callers: apikeys::cache::CallerCache::off(),
        cursors: app.cursors.clone(),
        usage: patient_recorder(),
    };
    let unreachable = unreachable_store().await;
    let too_large = format!("{{\"key\": \"{}\"}}", "x".repeat(17_000));
    // A key with an IP allow-list, and a caller whose own list leaves out the tests' address.
    let cidrs = || Some(apikeys::allow::AllowList::parse(&["192.0.2.0/24"]).unwrap());
    let mut fenced = new_key(&org, "fenced");
    fenced.allowed_cidrs = cidrs();
    fenced.meta = apikeys::meta::Meta::new(&json!({"tenant": "t-1"})).unwrap();
    let (_, fenced) = create(&app, fenced).await;
    let mut walled = new_key(&org, "walled caller");
    walled.allowed_cidrs = cidrs();
    let (_, walled) = create(&app, walled).await;
    let github = github::github();
    let forger = github::Signer::generate(&github.key_id);

    for p in PAYLOADS {
        // Verify: 200 for VALID, NOT_FOUND, DISABLED and INSUFFICIENT_PERMISSIONS.
        let verify = |body: Value| Call::verify(p, &body);
        for body in [
            json!({"key": outsider.expose()}),
            json!({"key": "not a secret"}),
            json!({"key": off_secret.expose()}),
            json!({"key": outsider.expose(), "permissions": ["api_keys.view"]}),
            json!({"key": fenced.expose(), "client_ip": "192.0.2.7"}),
            json!({"key": fenced.expose(), "client_ip": "2001:db8::7"}),
            json!({"key": fenced.expose()}),
        ] {
            let reply = sent(&app, VERIFY_PATH, verify(body).bearer(&admin)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        // Refused: 400, 401, 403, 406, 413, 415, 422.
        let any = || verify(json!({"key": "k"}));
        for call in [
            any().body("application/json", "{\"key\": "),
            any().header("Accept", "text/html"),
            any().body("application/json", too_large.clone()),
            any().body("text/plain", "{}"),
            verify(json!({"key": 42})),
            verify(json!({"key": "k", "client_ip": "192.0.2.0/24"})),
        ] {
            sent(&app, VERIFY_PATH, call.bearer(&admin)).await;
        }
        sent(&app, VERIFY_PATH, any().bearer(&walled)).await;
        sent(&app, VERIFY_PATH, any()).await;
        sent(&app, VERIFY_PATH, any().bearer(&outsider)).await;
        // Metered: VALID with what is left, at each cost; RATE_LIMITED; USAGE_EXCEEDED.
        let metered = json!({"name": "m", "permissions": [],
            "credits": {"remaining": 3, "refill": {"interval": "daily", "amount": 3}},
            "ratelimits": [{"name": "s", "limit": 2, "duration_ms": 60000},
                           {"name": "l", "limit": 50, "duration_ms": 60000, "mode": "leased"}]});
        let metered = Call::create(p, metered).bearer(&admin).send(&app).await;
        let secret = metered.body["secret"].as_str().unwrap().to_owned();
        for (cost, code) in [
            (json!(1), "VALID"),
            (json!(0), "VALID"),
            (json!(null), "VALID"),
            (json!(1), "RATE_LIMITED"),
        ] {
            let body = json!({"key": secret, "cost": cost});
            let reply = sent(&app, VERIFY_PATH, verify(body).bearer(&admin)).await;
            assert_eq!(reply.body["code"], code, "{}", reply.body);
        }
        let spent = json!({"name": "spent", "permissions": [], "credits": {"remaining": 0}});
        let spent = Call::create(p, spent).bearer(&admin).send(&app).await;
        let body = json!({"key": spent.body["secret"]});
        let reply = sent(&app, VERIFY_PATH, verify(body).bearer(&admin)).await;
        assert_eq!(reply.body["code"], "USAGE_EXCEEDED", "{}", reply.body);
        // A key whose owner has credits and a limit of its own: `owner` in the answer.
        let owned = json!({"name": "owned", "permissions": [], "owner_id": "cus_openapi"});
        let owned = Call::create(p, owned).bearer(&admin).send(&app).await;
        let mut owner = apikeys::quota::Quota {
            credits: Some(apikeys::quota::Credits {
                remaining: 1,
                refill: None,
                low_at: None,
            }),
            ratelimits: Vec::new(),
        };
        owner.ratelimits.push(apikeys::quota::RateLimit {
            name: "owner".into(),
            limit: 10,
            duration_ms: 60_000,
            mode: apikeys::quota::Mode::Exact,
        });
        apikeys_tests::quota::seed_owner(&app, &org, "cus_openapi", owner).await;
        for code in ["VALID", "USAGE_EXCEEDED"] {
            let body = json!({"key": owned.body["secret"]});
            let reply = sent(&app, VERIFY_PATH, verify(body).bearer(&admin)).await;
            assert_eq!(reply.body["code"], code, "{}", reply.body);
            assert!(
                reply.body["owner"]["ratelimits"].is_array(),
                "{}",
                reply.body
            );
        }
        let costly = verify(json!({"key": secret, "cost": 10_001})).bearer(&admin);
        assert_eq!(sent(&app, VERIFY_PATH, costly).await.status, 422);

        // GitHub's report: 200 with a live key (revoked) and a stranger's token.
        let (_, leaked) = create(&app, new_key(&org, "leaked")).await;
        let body = json!([
            {"token": leaked.expose(), "type": "apikeys_api_key", "url": "https://github.com/o/r", "source": "content"},
            {"token": "ghp_not_ours", "type": "apikeys_api_key", "url": "", "source": "commit"},
        ])
        .to_string();
        let report = |body: &str| Call::report(p, body);
        let reply = sent(&app, SCANNING_PATH, report(&body).signed(github)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body[0]["label"], "true_positive", "{}", reply.body);
        // Refused: 401 (no signature, a forged one), 406, 400, 413 (bytes, entries), 415,
        // 422.
        sent(&app, SCANNING_PATH, report(&body)).await;
        sent(&app, SCANNING_PATH, report(&body).signed(&forger)).await;
        let html = report(&body).header("Accept", "text/html").signed(github);
        sent(&app, SCANNING_PATH, html).await;
        let huge = format!(
            "[\"{}\"]",
            "x".repeat(apikeys::leak::report::MAX_REPORT_BYTES)
        );
        let many = serde_json::to_string(&vec![json!({"token": "t", "type": "x"}); 1001]).unwrap();
        for bad in ["[1,", huge.as_str(), many.as_str(), "{}"] {
            sent(&app, SCANNING_PATH, report(bad).signed(github)).await;
        }
        let text = report("[]").body("text/plain", "[]").signed(github);
        sent(&app, SCANNING_PATH, text).await;

        // 500: the table is missing; 503: DynamoDB is unreachable.
        for (store, expected) in [(&missing_table, 500), (&unreachable, 503)] {
            let reply = sent(store, VERIFY_PATH, any().bearer(&admin)).await;
            assert_eq!(reply.status, expected, "{}", reply.body);
            let reply = sent(store, SCANNING_PATH, report(&body).signed(github)).await;
            assert_eq!(reply.status, expected, "{}", reply.body);
        }

        // 405: every other method.
        for method in ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            sent(&app, VERIFY_PATH, any().method(method).bearer(&admin)).await;
            sent(&app, SCANNING_PATH, report("[]").method(method)).await;
        }
    }
    assert_provoked(|path, _| path == VERIFY_PATH || path == SCANNING_PATH);
}

/// The query parameters documented for an operation, by name.
fn query_parameters(path: &str, op: &str) -> BTreeMap<String, Value> {
    let item = &DOC["paths"][path];
    let all = [&item["parameters"], &item[op]["parameters"]];
    all.into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(resolve)
        .filter(|p| p["in"] == "query")
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p.clone()))
        .collect()
}

#[tokio::test]
async fn the_documented_query_parameters_and_bounds_are_the_handlers() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let (other, _) = create(&app, new_key(&org, "second")).await;
    let cursor = Call::list(Payload::Http)
        .query("limit", 1)
        .bearer(&admin)
        .send(&app)
        .await
        .body["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let list = query_parameters(LIST_PATH, "get");
    let limit = &list["limit"]["schema"];
    assert_eq!(limit["default"], json!(DEFAULT_LIMIT));
    assert_eq!(limit["maximum"], json!(MAX_LIMIT));
    // `page` is bounded by the keys it reads: `page * limit` at most x-max-page-end.
    let max_end = &list["page"]["x-max-page-end"];
    assert_eq!(max_end, &json!(MAX_PAGE_END));
    let max_end = max_end.as_u64().unwrap();
    assert_eq!(list["page"]["schema"]["maximum"], json!(max_end));

    for p in PAYLOADS {
        for path in [LIST_PATH, GET_PATH, DISCUE_PATH] {
            let params = query_parameters(path, "get");
            assert_eq!(params, query_parameters(path, "head"), "{path}");
            let call = || match path {
                LIST_PATH => Call::list(p),
                GET_PATH => Call::get(p, other.id),
                _ => Call::discue(p, other.id),
            };
            for (name, param) in &params {
                let schema = resolve(&param["schema"]);
                // `page` reaches its documented maximum only at limit 1.
                let ok = |value: &str| {
                    let call = call().query(name, value).bearer(&admin);
                    match name.as_str() {
                        "page" => call.query("limit", 1),
                        _ => call,
                    }
                };
                // Valid values: the bounds of a number or a length, every member of an
                // enum, both booleans, or a value this test knows for the parameter.
                let values: Vec<String> = if let Some(members) = schema["enum"].as_array() {
                    members
                        .iter()
                        .map(|m| m.as_str().unwrap().to_owned())
                        .collect()
                } else if schema["type"] == "integer" {
                    vec![schema["minimum"].to_string(), schema["maximum"].to_string()]
                } else if schema["type"] == "boolean" {
                    vec!["true".to_owned(), "false".to_owned()]
                } else if let Some(max) = schema["maxLength"].as_u64() {
                    let min = schema["minLength"].as_u64().unwrap_or(0);
                    vec!["s".repeat(min as usize), "s".repeat(max as usize)]
                } else {
                    match name.as_str() {
                        "after" | "before" => vec![other.id.to_string()],
                        "cursor" => vec![cursor.clone()],
                        "creator_id" => {
                            let id = other.creator_id;
                            vec![
                                id.to_string(),
                                id.simple().to_string(),
                                id.urn().to_string(),
                            ]
                        }
                        _ => panic!("give this test a valid value for the new parameter {name:?}"),
                    }
                };
                for value in &values {
                    let reply = sent(&app, path, ok(value)).await;
                    assert_eq!(reply.status, 200, "{path} {name}={value}: {}", reply.body);
                }
                // Invalid values: just outside the bounds, outside the enum, neither
                // boolean, not a UUID.
                let mut invalid = vec![];
                if let Some(min) = schema["minimum"].as_i64() {
                    invalid.push((min - 1).to_string());
                }
                if let Some(max) = schema["maximum"].as_i64() {
                    invalid.push((max + 1).to_string());
                }
                if let Some(min) = schema["minLength"].as_u64().filter(|&m| m > 0) {
                    invalid.push("s".repeat(min as usize - 1));
                }
                if let Some(max) = schema["maxLength"].as_u64() {
                    invalid.push("s".repeat(max as usize + 1));
                }
                if schema["enum"].is_array() {
                    invalid.push("sideways".to_owned());
                }
                if schema["type"] == "boolean" {
                    invalid.extend(["yes".to_owned(), "TRUE".to_owned(), "1".to_owned()]);
                }
                if name == "creator_id" {
                    invalid.push("not-a-uuid".to_owned());
                }
                for value in &invalid {
                    let reply = sent(&app, path, ok(value)).await;
                    reply.problem(422);
                    assert_eq!(
                        reply.body["parameter"],
                        name.as_str(),
                        "{path} {name}={value}"
                    );
                }
            }
            // What is not documented is refused.
            let reply = sent(&app, path, call().query("fields", "id").bearer(&admin)).await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], "fields", "{path}");
        }
        // The one query parameter of the routes of one key.
        let names = |path| {
            query_parameters(path, "get")
                .into_keys()
                .collect::<Vec<_>>()
        };
        assert_eq!(names(GET_PATH), ["pretty"]);
        assert_eq!(names(DISCUE_PATH), ["pretty"]);
        let call = Call::get(p, other.id).query("limit", 1).bearer(&admin);
        let reply = sent(&app, GET_PATH, call).await;
        assert_eq!(reply.body["parameter"], "limit");

        // `page` at the default and the largest limit: the last page x-max-page-end allows,
        // and the one after it.
        for limit in [DEFAULT_LIMIT as u64, MAX_LIMIT as u64] {
            let last = max_end / limit;
            let page = |n: u64| {
                let call = Call::list(p).query("page", n).bearer(&admin);
                match limit {
                    50 => call,
                    _ => call.query("limit", limit),
                }
            };
            let reply = sent(&app, LIST_PATH, page(last)).await;
            assert_eq!(reply.status, 200, "limit {limit}: {}", reply.body);
            let reply = sent(&app, LIST_PATH, page(last + 1)).await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], "page", "limit {limit}");
        }
    }
}

#[test]
fn the_documented_permissions_are_the_services_in_order() {
    let documented: Vec<&str> = DOC["components"]["schemas"]["Permission"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(documented, known);
}

#[test]
fn the_documented_scope_resources_are_the_permissions_in_order() {
    let documented: Vec<&str> =
        DOC["components"]["schemas"]["Scope"]["properties"]["resource"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
    let mut known: Vec<&str> = vec![];
    for p in Permission::ALL {
        if !known.contains(&p.resource()) {
            known.push(p.resource());
        }
    }
    assert_eq!(documented, known);
}

#[test]
fn every_documented_path_is_deployed_and_every_route_documented() {
    let text =
        std::fs::read_to_string(crate::repo_root().join("template.yaml")).expect("template.yaml");
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("template is YAML");
    let mut routes = BTreeSet::new();
    let mut method_routes = BTreeSet::new();
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let events = resource["Properties"]["Events"].as_mapping();
        for event in events.into_iter().flat_map(|e| e.values()) {
            if !matches!(event["Type"].as_str(), Some("HttpApi" | "Api")) {
                continue;
            }
            let props = &event["Properties"];
            let path = props["Path"].as_str().unwrap().to_owned();
            match props["Method"].as_str() {
                // A path's catch-all: every method no other route of the path takes reaches
                // its function, which answers 405 to those it does not serve.
                Some("ANY") => {}
                Some(method) => {
                    method_routes.insert((path.clone(), method.to_ascii_lowercase()));
                }
                None => panic!("{name:?}: a route without a method"),
            }
            routes.insert(path);
        }
    }
    // API Gateway serves a route at its path with or without a trailing slash, and a
    // route's path cannot end with one.
    let paths = DOC["paths"].as_object().unwrap();
    let documented: BTreeSet<String> = paths
        .keys()
        .map(|p| p.trim_end_matches('/').to_owned())
        .collect();
    assert_eq!(
        documented, routes,
        "the paths of openapi.yaml and the routes of template.yaml differ"
    );
    // A method route is a documented operation of its path.
    for (path, method) in &method_routes {
        let item = paths
            .iter()
            .find(|(p, _)| p.trim_end_matches('/') == path)
            .map(|(_, item)| item)
            .unwrap();
        assert!(
            item[method].is_object(),
            "template.yaml routes {method} {path}, which openapi.yaml does not document"
        );
    }
}

#[test]
fn every_field_a_403_names_is_in_its_documented_list() {
    use apikeys::authority::{Grant, Refusal};
    use apikeys::quota::Looser;
    let at = chrono::Utc::now();
    // Every refusal of the authority rule: a 403's `parameter` comes only from these.
    let mut refusals = vec![
        Refusal::NotHeld,
        Refusal::NotHeldUnrestricted,
        Refusal::Grant(Permission::CallsView),
        Refusal::Unrestricted,
        Refusal::Looser(Looser::Credits(1)),
        Refusal::Looser(Looser::Limit("r".into())),
        Refusal::Reach,
        Refusal::OtherOwner,
        Refusal::Escape,
        Refusal::OwnerNotHeld,
        Refusal::OwnOwner,
    ];
    for grant in [
        Grant::Create,
        Grant::Extend,
        Grant::Enable,
        Grant::Roll,
        Grant::Widen,
        Grant::Reach,
    ] {
        refusals.push(Refusal::Outlives {
            grant,
            caller_expires: at,
        });
    }
    let named: BTreeSet<String> = refusals
        .iter()
        .filter_map(|r| r.parameter())
        .map(str::to_owned)
        .collect();
    let documented: BTreeSet<String> =
        DOC["components"]["schemas"]["Problem403"]["allOf"][1]["properties"]["parameter"]["enum"]
            .as_array()
            .expect("Problem403 lists its parameters")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    assert_eq!(named, documented);
}

/// The fields of a write body's schema, by name.
fn body_fields(schema: &str) -> BTreeSet<String> {
    DOC["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("openapi.yaml: {schema} has no properties"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn the_documented_write_bodies_are_the_services() {
    use apikeys::http::body::{MAX_GRACE_SECS, create, owner, patch, roll};
    assert_eq!(body_fields("CreateKeyRequest"), set(create::FIELDS));
    assert_eq!(body_fields("OwnerPut"), set(owner::FIELDS));
    assert_eq!(body_fields("KeyPatch"), set(patch::FIELDS));
    assert_eq!(body_fields("RollRequest"), set(roll::FIELDS));
    let schemas = &DOC["components"]["schemas"];
    let grace = &schemas["RollRequest"]["properties"]["grace_period_seconds"];
    assert_eq!(grace["maximum"], json!(MAX_GRACE_SECS));
    assert_eq!(grace["default"], json!(0));
    assert_eq!(
        schemas["KeyName"]["maxLength"],
        json!(apikeys::store::MAX_NAME_BYTES)
    );
    // Every field of the key object is either writable or refused as read-only, by name.
    for (fields, read_only) in [
        (create::FIELDS, create::READ_ONLY),
        (patch::FIELDS, patch::READ_ONLY),
    ] {
        let known: BTreeSet<String> = set(fields).union(&set(read_only)).cloned().collect();
        let key = body_fields("ApiKeyFields");
        assert!(key.is_subset(&known), "{:?}", key.difference(&known));
    }
}

#[test]
fn the_write_body_schemas_and_the_parsers_agree() {
    use apikeys::http::body::read::Fields;
    use apikeys::http::body::{CreateKey, KeyPatch, RollKey, owner};
    use chrono::TimeZone;
    // Dates in the bodies below are after this, so that "in the future" holds.
    let now = chrono::Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    let fields = |v: &Value| Fields(v.as_object().unwrap().clone().into_iter().collect());
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": []}),
            true,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "restricted": false}),
            true,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "restricted": false, "permissions": null}),
            true,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": ["calls.view"],
            "expires_date": "2030-01-01T00:00:00Z", "restricted": true,
            "creator_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}),
            true,
        ),
        ("CreateKeyRequest", json!({"name": "k"}), false),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": null}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "restricted": false, "permissions": []}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "", "permissions": []}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "  ", "permissions": []}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "a\u{7}b", "permissions": []}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": ["calls.view", "calls.view"]}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": ["calls.read"]}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "id": "x"}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "creator_id": "me"}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "meta": {"a": [1, {"b": null}]},
                   "allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]}),
            true,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "meta": null, "allowed_cidrs": null}),
            true,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "meta": ["a"]}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "allowed_cidrs": []}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [], "allowed_cidrs": "10.0.0.0/8"}),
            false,
        ),
        (
            "KeyPatch",
            json!({"meta": {"a": null}, "allowed_cidrs": ["10.0.0.0/8"]}),
            true,
        ),
        (
            "KeyPatch",
            json!({"meta": null, "allowed_cidrs": null}),
            true,
        ),
        ("KeyPatch", json!({"meta": 1}), false),
        (
            "KeyPatch",
            json!({"allowed_cidrs": ["10.0.0.0/8", "10.0.0.0/8"]}),
            false,
        ),
        ("KeyPatch", json!({}), true),
        (
            "KeyPatch",
            json!({"name": "n", "status": "disabled", "expires_date": null}),
            true,
        ),
        (
            "KeyPatch",
            json!({"restricted": false, "permissions": null}),
            true,
        ),
        (
            "KeyPatch",
            json!({"restricted": true, "permissions": ["calls.view"]}),
            true,
        ),
        (
            "KeyPatch",
            json!({"restricted": false, "permissions": ["calls.view"]}),
            false,
        ),
        ("KeyPatch", json!({"status": "expired"}), false),
        ("KeyPatch", json!({"name": null}), false),
        (
            "KeyPatch",
            json!({"created_date": "2025-01-01T00:00:00Z"}),
            false,
        ),
        ("RollRequest", json!({}), true),
        ("RollRequest", json!({"grace_period_seconds": 604800}), true),
        (
            "RollRequest",
            json!({"grace_period_seconds": 604801}),
            false,
        ),
        ("RollRequest", json!({"grace_period_seconds": -1}), false),
        ("RollRequest", json!({"grace_period_seconds": "60"}), false),
        ("OwnerPut", json!({}), true),
        (
            "OwnerPut",
            json!({"credits": null, "ratelimits": null}),
            true,
        ),
        ("OwnerPut", json!({"ratelimits": []}), true),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 0},
                   "ratelimits": [{"name": "r", "limit": 1, "duration_ms": 1000, "mode": "exact"}]}),
            true,
        ),
        (
            "OwnerPut",
            json!({"ratelimits": [{"name": "r", "limit": 1, "duration_ms": 1000, "mode": "leased"}]}),
            false,
        ),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 5, "low_at": 1}}),
            false,
        ),
        ("OwnerPut", json!({"credits": {"remaining": -1}}), false),
        ("OwnerPut", json!({"credits": {}}), false),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 1, "refill": {"interval": "monthly", "amount": 5, "day": 31}}}),
            true,
        ),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 1, "refill": {"interval": "monthly", "amount": 5, "day": null}}}),
            false,
        ),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 1, "refill": {"interval": "daily", "amount": 5, "day": 1}}}),
            false,
        ),
        (
            "CreateKeyRequest",
            json!({"name": "k", "permissions": [],
                   "credits": {"remaining": 1, "refill": {"interval": "daily", "amount": 5, "day": null}}}),
            false,
        ),
        ("OwnerPut", json!({"owner_id": "cus_1"}), false),
        (
            "OwnerPut",
            json!({"updated_date": "2025-01-01T00:00:00Z"}),
            false,
        ),
        (
            "OwnerPut",
            json!({"credits": {"remaining": 1}, "plan": "pro"}),
            false,
        ),
    ];
    // The examples the document gives are accepted too.
    let examples = ["CreateKeyRequest", "KeyPatch", "OwnerPut"]
        .into_iter()
        .flat_map(|name| {
            DOC["components"]["schemas"][name]["examples"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |e| (name, e.clone(), true))
        });
    for (name, body, valid) in cases.into_iter().chain(examples) {
        let by_schema = validator(&schema(name)).is_valid(&body);
        assert_eq!(by_schema, valid, "{name}: the schema on {body}");
        let f = fields(&body);
        let by_parser = match name {
            "CreateKeyRequest" => CreateKey::from_fields(&f, now).is_ok(),
            "KeyPatch" => {
                // Applied to a restricted key, so that the access rules are exercised too.
                let key = restricted_key();
                KeyPatch::from_fields(&f, now).is_ok_and(|p| p.apply(&key).is_ok())
            }
            "OwnerPut" => {
                // Parsed as the handler parses it, then held to an owner's own rules.
                let mut headers = lambda_http::http::HeaderMap::new();
                headers.insert("content-type", "application/json".parse().unwrap());
                owner::parse(&headers, body.to_string().as_bytes())
                    .is_ok_and(|q| apikeys::write::check_owner_quota(&q).is_ok())
            }
            _ => RollKey::from_fields(&f).is_ok(),
        };
        assert_eq!(by_parser, valid, "{name}: the parser on {body}");
    }
}

fn restricted_key() -> apikeys::key::ApiKey {
    let created = chrono::Utc::now();
    apikeys::key::ApiKey {
        id: KeyId::new_at(created),
        org: org(),
        name: "k".into(),
        created,
        updated: created,
        last_used: None,
        expires: None,
        creator_id: uuid::Uuid::nil(),
        access: restricted(&[Permission::CallsView]),
        state: apikeys::key::KeyState::Active,
        last_four: "abcd".into(),
        version: 0,
        disabled_reason: None,
        quota: Default::default(),
        owner_id: None,
        meta: None,
        allowed_cidrs: None,
    }
}
