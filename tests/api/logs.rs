//! Logs: one JSON object a line, with the request id, and never a secret or its hash.

use std::io::Write;
use std::sync::{Arc, Mutex};

use apikeys_tests::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn log_lines_are_json_with_the_request_id_and_no_secret() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    let stranger = apikeys::secret::Secret::generate().unwrap();

    let capture = Capture::default();
    let subscriber =
        apikeys::telemetry::subscriber(apikeys::telemetry::filter("trace"), capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let calls = [
        (Call::get(Payload::Rest, key.id).bearer(&secret), 200),
        (
            Call::list(Payload::Http).api_key(&secret).query("limit", 1),
            200,
        ),
        (Call::list(Payload::Http).bearer(&stranger), 401),
        (Call::get(Payload::Rest, "nope").bearer(&secret), 422),
    ];
    let mut request_ids = Vec::new();
    for (call, status) in &calls {
        let event = call.event();
        request_ids.push(
            event["requestContext"]["requestId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = if event["pathParameters"].is_null() {
            apikeys::http::list_keys(&app, req).await
        } else {
            apikeys::http::get_key(&app, req).await
        };
        assert_eq!(response.status(), *status, "{call:?}");
    }
    drop(_guard);

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Every line, the SDK's own included, names the request it belongs to.
    for line in &lines {
        let id = line["spans"][0]["request_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no request id: {line}"));
        assert!(request_ids.iter().any(|r| r == id), "{line}");
    }
    // Each request's outcome line gives the status the client got.
    for (id, (_, status)) in request_ids.iter().zip(&calls) {
        let outcome = lines
            .iter()
            .find(|l| l["span"]["request_id"] == id.as_str() && l["fields"]["status"].is_number())
            .unwrap_or_else(|| panic!("no outcome line for request {id}:\n{text}"));
        assert_eq!(outcome["fields"]["status"], *status, "{outcome}");
    }
    let ok = lines.iter().find(|l| l["fields"]["status"] == 200).unwrap();
    assert_eq!(ok["span"]["org"], org.as_str());
    for needle in [
        secret.expose(),
        stranger.expose(),
        secret.hash().as_str(),
        stranger.hash().as_str(),
    ] {
        assert!(!text.contains(needle), "a secret or hash reached the log");
    }
}

/// A disabled or expired key gets the 401 of an unknown one; the log line, found by the
/// request id, tells the operator which key it was and why.
#[tokio::test]
async fn a_refused_real_key_is_named_in_the_log_with_the_reason() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, key.id, apikeys::key::KeyState::Disabled).await);

    let capture = Capture::default();
    let subscriber =
        apikeys::telemetry::subscriber(apikeys::telemetry::filter("info"), capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let reply = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    drop(_guard);
    // The client learns only what an unknown key would get (tests/api/auth.rs).
    assert_eq!(
        reply.problem(401),
        "the API key is not valid: it is unknown, disabled or expired"
    );

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["fields"]["status"] == 401)
        .unwrap_or_else(|| panic!("no 401 line:\n{text}"));
    assert_eq!(line["span"]["org"], org.as_str(), "{line}");
    assert_eq!(line["span"]["caller"], key.id.to_string(), "{line}");
    assert!(
        line["fields"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("disabled")),
        "{line}"
    );
}
