//! Query-parameter parsing: any set of parameters, known or not, repeated or not, parsed
//! directly and sent to the list endpoint in both API Gateway payloads by an authorized
//! caller. The answer is a page or a 422 naming a parameter; never anything else.
#![no_main]

use apikeys::page::{ListRequest, MAX_LIMIT, RawListParams};
use apikeys_fuzz::{Viewer, check, lambda_http_accepts, send, world};
use apikeys_tests::{Call, Payload};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// A parameter of the list endpoint (by its index in `RawListParams::PARAMETERS`), or any
/// other name.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

/// Every parameter the list endpoint takes.
const KNOWN: &[&str] = RawListParams::PARAMETERS;

#[derive(Arbitrary, Debug)]
enum Value {
    Raw(String),
    Number(i64),
    Order(bool),
    DemoId(u8),
    ForeignId(u8),
    DemoCursor(u8),
    ForeignCursor(u8),
    /// The owner id of the other organization's keys.
    ForeignOwner,
}

#[derive(Arbitrary, Debug)]
struct Input {
    params: Vec<(Name, Value)>,
    http_api: bool,
}

fn name(n: &Name) -> &str {
    match n {
        Name::Known(i) => KNOWN[*i as usize % KNOWN.len()],
        Name::Other(s) => s,
    }
}

fn value(v: &Value) -> String {
    let w = world();
    let pick = |list: &[String], i: u8| list[i as usize % list.len()].clone();
    match v {
        Value::Raw(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Order(asc) => if *asc { "asc" } else { "desc" }.into(),
        Value::DemoId(i) => w.demo_keys[*i as usize % w.demo_keys.len()].id.to_string(),
        Value::ForeignId(i) => w.other_keys[*i as usize % w.other_keys.len()]
            .id
            .to_string(),
        Value::DemoCursor(i) => pick(&w.demo_cursors, *i),
        Value::ForeignOwner => apikeys_fuzz::SHARED_OWNER.to_owned(),
        Value::ForeignCursor(i) => pick(&w.other_cursors, *i),
    }
}

fuzz_target!(|input: Input| {
    let w = world();
    let pairs: Vec<(String, String)> = input
        .params
        .iter()
        .take(16)
        .map(|(n, v)| (name(n).to_owned(), value(v)))
        .collect();

    // The parser alone, on the first value of each known name.
    let first = |n: &str| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let raw = RawListParams {
        limit: first("limit"),
        order: first("order"),
        after: first("after"),
        before: first("before"),
        cursor: first("cursor"),
        page: first("page"),
        pretty: first("pretty"),
        status: first("status"),
        creator_id: first("creator_id"),
        restricted: first("restricted"),
        permission: first("permission"),
        name: first("name"),
        owner_id: first("owner_id"),
    };
    match ListRequest::parse(raw, &w.demo, &w.app.cursors) {
        Ok(r) => {
            assert!((1..=MAX_LIMIT).contains(&r.limit));
            if let Some(c) = raw.cursor {
                assert!(
                    w.demo_cursors.iter().any(|d| d == c),
                    "a foreign cursor opened"
                );
            }
        }
        Err(e) => assert!(KNOWN.contains(&e.param.as_str()), "{e}"),
    }

    // The whole request, as API Gateway delivers it.
    let payload = if input.http_api {
        Payload::Http
    } else {
        Payload::Rest
    };
    let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).expect("the demo admin");
    let mut call = Call::list(payload).bearer(&admin);
    for (k, v) in &pairs {
        call = call.query(k, v);
    }
    let event = call.event().to_string();
    if !lambda_http_accepts(&event) {
        return;
    }
    let Ok(req) = lambda_http::request::from_str(&event) else {
        return;
    };
    let reply = send(req, false);
    assert!(matches!(reply.status, 200 | 422), "status {}", reply.status);
    check(&reply, false, Viewer::Demo);
    if reply.status == 422 {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert!(
            body["parameter"].is_string(),
            "a 422 names its parameter: {body}"
        );
    }
});
