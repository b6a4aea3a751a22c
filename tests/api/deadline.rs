//! One deadline per request, from the invocation's own: a store that answers every call,
//! but slowly, makes the deepest pages take several calls' time. The request answers the
//! 503 problem with `Retry-After` before its invocation's deadline, on both payloads,
//! instead of running into the function's timeout and the gateway's bare error.

use std::time::{Duration, Instant};

use apikeys::page::{MAX_ITEMS_READ, MAX_LIMIT, MAX_PAGE_END};
use apikeys_tests::fault::{Fault, FaultProxy};
use apikeys_tests::*;

/// The invocation's time left when the request arrives.
const TIME_LEFT: Duration = Duration::from_millis(1800);
/// What every DynamoDB call takes through the proxy. Every call succeeds: the SDK is given
/// all the time it wants, so that only the request's deadline can stop the request.
const LATENCY: Duration = Duration::from_millis(800);
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_slow_store_under_the_deepest_pages_answers_503_before_the_invocations_deadline() {
    // Two calls one after the other (authenticate, then read) outlast the request's time.
    assert!(2 * LATENCY > TIME_LEFT - apikeys::deadline::MARGIN);
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let real = app().await;
    let org = org();
    let secret = admin(&real, &org).await;
    seed_largest(&real, &org, MAX_ITEMS_READ + 10).await;
    let app = patient_app_via(&real, &proxy.url(), PATIENCE).await;

    let limit = 50;
    let deepest_page = MAX_PAGE_END / limit;
    let cases = |payload| {
        [
            (
                "the deepest numbered page",
                Call::list(payload)
                    .query("limit", limit)
                    .query("page", deepest_page),
            ),
            (
                "the deepest filtered page",
                Call::list(payload)
                    .query("limit", MAX_LIMIT)
                    .query("name", "no key has this name"),
            ),
        ]
    };
    // Healthy, both pages serve.
    for (what, call) in cases(Payload::Http) {
        let reply = call
            .bearer(&secret)
            .send_with_time_left(&app, PATIENCE)
            .await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
    }

    proxy.set(Fault::Latency(LATENCY));
    for payload in PAYLOADS {
        for (what, call) in cases(payload) {
            let started = Instant::now();
            let reply = call
                .bearer(&secret)
                .send_with_time_left(&app, TIME_LEFT)
                .await;
            let took = started.elapsed();
            assert!(
                reply.problem(503).contains("temporarily unavailable"),
                "{what}, {payload:?}: {}",
                reply.body
            );
            assert_eq!(reply.header("retry-after"), Some("1"), "{what}");
            assert!(
                took < TIME_LEFT,
                "{what}, {payload:?}: answered in {took:?}, past the invocation's {TIME_LEFT:?}"
            );
            let raw = String::from_utf8(reply.raw).unwrap();
            assert_no_leak("a 503", &raw, std::slice::from_ref(&secret), true);
        }
    }
}
