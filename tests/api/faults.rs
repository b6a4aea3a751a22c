//! Faults in DynamoDB, through a proxy on loopback: the store stopped (connections
//! refused), slowed past the SDK's attempt timeout, or throttling every request. Each gives
//! a complete 503 problem with `Retry-After` within the configured deadline, with nothing
//! internal in it; once the store is back, the same application serves again.

use std::time::{Duration, Instant};

use apikeys::App;
use apikeys::config::OPERATION_TIMEOUT;
use apikeys::key::ApiKey;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::fault::{Fault, FaultProxy};
use apikeys_tests::*;

/// These requests (a get, a page of 5) make two operations one after the other
/// (authenticate, read), each bounded by `OPERATION_TIMEOUT`; the rest is scheduling slack on
/// a busy machine. Requests of more operations are held by their deadline (`deadline.rs`).
const DEADLINE: Duration = Duration::from_millis(2 * OPERATION_TIMEOUT.as_millis() as u64 + 1500);

struct Setup {
    app: App<DynamoStore>,
    secret: Secret,
    key: ApiKey,
}

async fn setup(proxy: &FaultProxy) -> Setup {
    let real = app().await;
    let org = org();
    let secret = admin(&real, &org).await;
    let (key, _) = create(&real, new_key(&org, "behind a proxy")).await;
    Setup {
        app: app_via(&real, &proxy.url()).await,
        secret,
        key,
    }
}

/// Both endpoints in both payloads: each must be a 503 problem with Retry-After, in time.
/// Returns the request ids of the 503s.
async fn assert_unavailable(s: &Setup) -> Vec<String> {
    let mut request_ids = Vec::new();
    for payload in PAYLOADS {
        for call in [
            Call::get(payload, s.key.id).bearer(&s.secret),
            Call::list(payload).query("limit", 5).api_key(&s.secret),
        ] {
            let started = Instant::now();
            let reply = call.send(&s.app).await;
            let took = started.elapsed();
            assert!(
                reply.problem(503).contains("temporarily unavailable"),
                "{}",
                reply.body
            );
            assert_eq!(reply.header("retry-after"), Some("1"));
            assert_eq!(reply.header("cache-control"), Some("no-store"));
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
            assert!(took < DEADLINE, "answered in {took:?}, over {DEADLINE:?}");
            let raw = String::from_utf8(reply.raw).expect("UTF-8");
            assert_no_leak("a 503", &raw, std::slice::from_ref(&s.secret), true);
            request_ids.push(reply.body["request_id"].as_str().unwrap().to_owned());
        }
    }
    request_ids
}

async fn assert_serving(s: &Setup) {
    for payload in PAYLOADS {
        let reply = Call::get(payload, s.key.id)
            .bearer(&s.secret)
            .send(&s.app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["id"], s.key.id.to_string());
        let reply = Call::list(payload).api_key(&s.secret).send(&s.app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.ids().len(), 2);
    }
}

/// Runs `fault` between two healthy periods, capturing every log line; checks the log.
async fn outage(inject: impl AsyncFnOnce(&FaultProxy), heal: impl AsyncFnOnce(&FaultProxy)) {
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let s = setup(&proxy).await;
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber("debug"));
    assert_serving(&s).await;
    inject(&proxy).await;
    let unavailable = assert_unavailable(&s).await;
    heal(&proxy).await;
    // The same application, with the same client: no restart.
    assert_serving(&s).await;
    drop(_guard);
    let text = capture.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| {
            assert_no_leak("a log line", line, std::slice::from_ref(&s.secret), false);
            serde_json::from_str(line).expect("JSON log lines")
        })
        .collect();
    // Each 503 has its line: an error naming the store as the cause, for the operator (the
    // client was told only "temporarily unavailable").
    for id in &unavailable {
        let line = lines
            .iter()
            .find(|l| l["span"]["request_id"] == id.as_str() && l["fields"]["status"].is_number())
            .unwrap_or_else(|| panic!("no outcome line for the 503 {id}:\n{text}"));
        assert_eq!(line["level"], "ERROR", "{line}");
        assert_eq!(line["fields"]["status"], 503, "{line}");
        assert_eq!(line["fields"]["message"], "failed", "{line}");
        let error = line["fields"]["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("the key store is unavailable: "),
            "the cause is logged: {line}"
        );
    }
}

#[tokio::test]
async fn a_stopped_store_is_503_and_the_service_recovers_when_it_is_back() {
    outage(async |p| p.stop(), async |p| p.resume().await).await;
}

#[tokio::test]
async fn a_store_slower_than_the_attempt_timeout_is_503_within_the_deadline() {
    let slow = apikeys::config::ATTEMPT_TIMEOUT + Duration::from_millis(500);
    outage(
        async |p| p.set(Fault::Delay(slow)),
        async |p| p.set(Fault::None),
    )
    .await;
}

#[tokio::test]
async fn a_throttling_store_is_503_and_the_service_recovers() {
    outage(
        async |p| p.set(Fault::Throttle),
        async |p| p.set(Fault::None),
    )
    .await;
}

#[tokio::test]
async fn a_store_slower_than_usual_but_within_the_timeouts_still_serves() {
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let s = setup(&proxy).await;
    proxy.set(Fault::Delay(Duration::from_millis(100)));
    assert_serving(&s).await;
}

#[tokio::test]
async fn a_read_throttled_after_authentication_is_503_and_the_service_recovers() {
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let s = setup(&proxy).await;
    // Authentication (GetItem) passes; the page read (Query) is throttled.
    proxy.set(Fault::ThrottleOnly("Query"));
    for payload in PAYLOADS {
        let started = Instant::now();
        let reply = Call::list(payload).bearer(&s.secret).send(&s.app).await;
        assert!(reply.problem(503).contains("temporarily unavailable"));
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert!(started.elapsed() < DEADLINE);
        let raw = String::from_utf8(reply.raw).unwrap();
        assert_no_leak("a 503", &raw, std::slice::from_ref(&s.secret), true);
        // The get endpoint, which makes no Query, still serves.
        let reply = Call::get(payload, s.key.id)
            .bearer(&s.secret)
            .send(&s.app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    proxy.set(Fault::None);
    assert_serving(&s).await;
}
