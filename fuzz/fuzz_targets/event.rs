//! Any API Gateway event, through either handler, to a response: raw JSON events (seeded
//! from `events/`), and events built from fuzzed parts in both payload formats with the
//! callers of two organizations. Every response passes `check`.
#![no_main]

use apikeys_fuzz::{Viewer, check, lambda_http_accepts, send, world};
use apikeys_tests::{Call, Payload};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Head,
    Post,
    Options,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Id {
    Raw(String),
    Demo(u8),
    Foreign(u8),
}

#[derive(Arbitrary, Debug)]
enum Auth {
    None,
    /// A demo key (admin, viewer, calls-only, disabled, expired) as Bearer.
    DemoBearer(u8),
    /// A demo key as X-API-KEY.
    DemoHeader(u8),
    /// The other organization's admin.
    Foreign,
    /// Both headers, with a demo key and the other organization's.
    Both(u8),
    /// Any Authorization header value.
    RawAuthorization(String),
    /// Any X-API-KEY header value.
    RawApiKey(String),
}

#[derive(Arbitrary, Debug)]
struct Built {
    http_api: bool,
    get: bool,
    method: Method,
    id: Id,
    path: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    auth: Auth,
}

/// Parses the event and sends it to each handler; every response must pass `check`.
fn run(event: &str, viewer: Viewer) {
    if !lambda_http_accepts(event) {
        return;
    }
    for get in [true, false] {
        let Ok(req) = lambda_http::request::from_str(event) else {
            return;
        };
        let head = req.method() == lambda_http::http::Method::HEAD;
        check(&send(req, get), head, viewer);
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    if data.first() == Some(&b'{') {
        // A raw event: whatever parses as one must be answered properly.
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        run(text, Viewer::Either);
        return;
    }
    let Ok(built) = Built::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let payload = if built.http_api {
        Payload::Http
    } else {
        Payload::Rest
    };
    let id = match &built.id {
        Id::Raw(s) => s.clone(),
        Id::Demo(i) => w.demo_keys[*i as usize % w.demo_keys.len()].id.to_string(),
        Id::Foreign(i) => w.other_keys[*i as usize % w.other_keys.len()]
            .id
            .to_string(),
    };
    let mut call = if built.get {
        Call::get(payload, id)
    } else {
        Call::list(payload)
    };
    call = call.method(match &built.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Options => "OPTIONS",
        Method::Other(s) => s,
    });
    if let Some(p) = &built.path {
        call = call.path(p);
    }
    for (k, v) in built.query.iter().take(8) {
        call = call.query(k, v);
    }
    for (k, v) in built.headers.iter().take(8) {
        call = call.header(k, v);
    }
    let demo = |i: u8| &w.secrets[i as usize % 5];
    let viewer = match &built.auth {
        Auth::None | Auth::RawAuthorization(_) | Auth::RawApiKey(_) => Viewer::Either,
        Auth::DemoBearer(_) | Auth::DemoHeader(_) => Viewer::Demo,
        Auth::Foreign => Viewer::Other,
        Auth::Both(_) => Viewer::Either,
    };
    call = match &built.auth {
        Auth::None => call,
        Auth::DemoBearer(i) => call.bearer(demo(*i)),
        Auth::DemoHeader(i) => call.api_key(demo(*i)),
        Auth::Foreign => call.bearer(&w.other_secret),
        Auth::Both(i) => call.bearer(demo(*i)).api_key(&w.other_secret),
        Auth::RawAuthorization(s) => call.header("Authorization", s),
        Auth::RawApiKey(s) => call.header("X-API-KEY", s),
    };
    // Fuzzed headers may carry credentials too: then the viewer is unknown.
    let viewer = if built.headers.is_empty() {
        viewer
    } else {
        Viewer::Either
    };
    run(&call.event().to_string(), viewer);
});
