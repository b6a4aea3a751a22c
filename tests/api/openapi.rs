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
use apikeys::dynamo::DynamoStore;
use apikeys::key::{KeyId, Permission};
use apikeys::page::{CursorKeys, DEFAULT_LIMIT, MAX_LIMIT};
use apikeys_tests::*;
use serde_json::{Value, json};

const GET_PATH: &str = "/v1/api_key/{id}";
const LIST_PATH: &str = "/v1/api_key/";
/// Where openapi.yaml documents the 405 answered to every other method of a path.
const OTHER_METHODS: &str = "x-other-methods";

static DOC: LazyLock<Value> = LazyLock::new(|| {
    serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml is YAML")
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
    let op_key = match method {
        "GET" | "HEAD" => method.to_ascii_lowercase(),
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
async fn sent(app: &App<DynamoStore>, path: &str, call: Call) -> Reply {
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

/// An application whose store points at a loopback port nobody listens on.
async fn unreachable_store() -> App<DynamoStore> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = apikeys::config::sdk_config().await;
    let dynamo = aws_sdk_dynamodb::config::Builder::from(&config)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .build();
    App {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(dynamo), "t"),
        cursors: CursorKeys::parse(CURSOR_SECRET).unwrap(),
    }
}

#[tokio::test]
async fn every_response_of_the_handlers_is_documented_and_matches_its_schema() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let mut viewer = new_key(&org, "viewer");
    viewer.access = restricted(&[Permission::ApiKeysView, Permission::CallsView]);
    viewer.expires = Some(chrono::Utc::now() + chrono::Duration::days(30));
    let (viewer_key, viewer) = create(&app, viewer).await;
    let mut outsider = new_key(&org, "no api_keys.view");
    outsider.access = restricted(&[Permission::CallsView]);
    let (_, outsider) = create(&app, outsider).await;

    let missing_table = App {
        store: DynamoStore::new(app.store.client().clone(), "no-such-table"),
        cursors: app.cursors.clone(),
    };
    let unreachable = unreachable_store().await;
    let absent = KeyId::generate();

    for p in PAYLOADS {
        for method in ["GET", "HEAD"] {
            let get = |id: &dyn ToString| Call::get(p, id.to_string()).method(method);
            let list = || Call::list(p).method(method);

            // 200: an unrestricted key (permissions null), a restricted, expiring one.
            sent(&app, GET_PATH, get(&viewer_key.id).bearer(&admin)).await;
            sent(&app, GET_PATH, get(&viewer_key.id).api_key(&viewer)).await;
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

            // 401: no key, and a key that is not valid.
            for (path, call) in [(GET_PATH, get(&absent)), (LIST_PATH, list())] {
                sent(&app, path, call.clone()).await;
                sent(&app, path, call.header("X-API-KEY", "apk_nope")).await;
            }
            // 403: a restricted key without api_keys.view.
            sent(&app, GET_PATH, get(&absent).bearer(&outsider)).await;
            sent(&app, LIST_PATH, list().bearer(&outsider)).await;
            // 404: no such key in the caller's organization.
            sent(&app, GET_PATH, get(&absent).bearer(&admin)).await;
            // 406: an Accept header without JSON.
            for (path, call) in [(GET_PATH, get(&absent)), (LIST_PATH, list())] {
                sent(
                    &app,
                    path,
                    call.header("Accept", "text/html").bearer(&admin),
                )
                .await;
            }
            // 422: a bad id, a query parameter where none is taken, a bad limit, an
            // unknown order, an unknown parameter.
            sent(&app, GET_PATH, get(&"42").bearer(&admin)).await;
            sent(&app, GET_PATH, get(&absent).query("x", 1).bearer(&admin)).await;
            for (name, value) in [("limit", "0"), ("order", "up"), ("limt", "5")] {
                let call = list().query(name, value).bearer(&admin);
                sent(&app, LIST_PATH, call).await;
            }
            // 500: the table is missing.
            sent(&missing_table, GET_PATH, get(&absent).bearer(&admin)).await;
            sent(&missing_table, LIST_PATH, list().bearer(&admin)).await;
        }
        // 503: DynamoDB is unreachable (the SDK retries first, so all at once).
        let unavailable = |path, call: Call| sent(&unreachable, path, call.bearer(&admin));
        let replies = tokio::join!(
            unavailable(GET_PATH, Call::get(p, absent)),
            unavailable(GET_PATH, Call::get(p, absent).method("HEAD")),
            unavailable(LIST_PATH, Call::list(p)),
            unavailable(LIST_PATH, Call::list(p).method("HEAD")),
        );
        assert_eq!(replies.0.status, 503);
        // 405: every other method, on both paths.
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let call = Call::get(p, absent).method(method).bearer(&admin);
            sent(&app, GET_PATH, call).await;
            sent(&app, LIST_PATH, Call::list(p).method(method)).await;
        }
    }

    // Every status documented as the service's own was provoked above.
    let seen = SEEN.with_borrow(Clone::clone);
    let mut unprovoked = vec![];
    for (path, item) in DOC["paths"].as_object().unwrap() {
        for (op_key, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
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
    assert_eq!(list, query_parameters(LIST_PATH, "head"));
    let limit = &list["limit"]["schema"];
    assert_eq!(limit["default"], json!(DEFAULT_LIMIT));
    assert_eq!(limit["maximum"], json!(MAX_LIMIT));

    for p in PAYLOADS {
        let ok = |name: &str, value: &str| Call::list(p).query(name, value).bearer(&admin);
        for (name, param) in &list {
            let schema = &param["schema"];
            // Valid values: the bounds of a number, every member of an enum, or a value
            // this test knows for the parameter.
            let values: Vec<String> = if let Some(members) = schema["enum"].as_array() {
                members
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned())
                    .collect()
            } else if schema["type"] == "integer" {
                vec![schema["minimum"].to_string(), schema["maximum"].to_string()]
            } else {
                match name.as_str() {
                    "after" | "before" => vec![other.id.to_string()],
                    "cursor" => vec![cursor.clone()],
                    _ => panic!("give this test a valid value for the new parameter {name:?}"),
                }
            };
            for value in &values {
                let reply = sent(&app, LIST_PATH, ok(name, value)).await;
                assert_eq!(reply.status, 200, "{name}={value}: {}", reply.body);
            }
            // Invalid values: just outside the bounds, outside the enum.
            let mut invalid = vec![];
            if let Some(min) = schema["minimum"].as_i64() {
                invalid.push((min - 1).to_string());
            }
            if let Some(max) = schema["maximum"].as_i64() {
                invalid.push((max + 1).to_string());
            }
            if schema["enum"].is_array() {
                invalid.push("sideways".to_owned());
            }
            for value in &invalid {
                let reply = sent(&app, LIST_PATH, ok(name, value)).await;
                reply.problem(422);
                assert_eq!(reply.body["parameter"], name.as_str(), "{name}={value}");
            }
        }
        // What is not documented is refused, on both endpoints.
        let reply = sent(&app, LIST_PATH, ok("pretty", "true")).await;
        assert_eq!(reply.body["parameter"], "pretty");
        assert!(query_parameters(GET_PATH, "get").is_empty());
        let call = Call::get(p, other.id).query("limit", 1).bearer(&admin);
        let reply = sent(&app, GET_PATH, call).await;
        assert_eq!(reply.body["parameter"], "limit");
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
fn every_documented_path_is_deployed_and_every_route_documented() {
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(include_str!("../../template.yaml")).expect("template is YAML");
    let mut routes = BTreeSet::new();
    for (name, resource) in template["Resources"].as_mapping().unwrap() {
        let events = resource["Properties"]["Events"].as_mapping();
        for event in events.into_iter().flat_map(|e| e.values()) {
            if !matches!(event["Type"].as_str(), Some("HttpApi" | "Api")) {
                continue;
            }
            let props = &event["Properties"];
            // Every method reaches the handler, which answers the others with 405.
            assert_eq!(props["Method"].as_str(), Some("ANY"), "{name:?}");
            routes.insert(props["Path"].as_str().unwrap().to_owned());
        }
    }
    // API Gateway serves a route at its path with or without a trailing slash, and a
    // route's path cannot end with one.
    let documented: BTreeSet<String> = DOC["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| p.trim_end_matches('/').to_owned())
        .collect();
    assert_eq!(
        documented, routes,
        "the paths of openapi.yaml and the routes of template.yaml differ"
    );
}
