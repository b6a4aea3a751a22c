//! The error statuses that are not about keys: method, content negotiation, and the store.

use apikeys::App;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    for payload in PAYLOADS {
        // Each path's Allow names every method of the path, whichever function answers.
        for method in ["PUT", "PATCH", "DELETE", "OPTIONS"] {
            let reply = Call::list(payload)
                .method(method)
                .bearer(&secret)
                .send(&app)
                .await;
            assert!(reply.problem(405).contains("GET, HEAD, POST"));
            assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));
        }
        for method in ["POST", "PUT", "OPTIONS"] {
            let reply = Call::get(payload, uuid::Uuid::nil())
                .method(method)
                .send(&app)
                .await;
            reply.problem(405);
            assert_eq!(reply.header("allow"), Some("GET, HEAD, PATCH, DELETE"));
            let reply = Call::discue(payload, uuid::Uuid::nil())
                .method(method)
                .send(&app)
                .await;
            assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{}", reply.body);
        }
        for method in ["GET", "PUT", "DELETE"] {
            let reply = Call::roll(payload, uuid::Uuid::nil(), None)
                .method(method)
                .send(&app)
                .await;
            reply.problem(405);
            assert_eq!(reply.header("allow"), Some("POST"));
        }
    }
}

#[tokio::test]
async fn an_accept_header_without_json_is_406() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    for accept in ["text/html", "application/xml", "application/json;q=0"] {
        let reply = Call::list(Payload::Rest)
            .header("Accept", accept)
            .bearer(&secret)
            .send(&app)
            .await;
        assert!(reply.problem(406).contains("application/json"), "{accept}");
    }
    for accept in [
        "application/json",
        "*/*",
        "text/html, application/*;q=0.2",
        "",
    ] {
        let reply = Call::list(Payload::Http)
            .header("Accept", accept)
            .bearer(&secret)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{accept}");
    }
}

#[tokio::test]
async fn every_response_says_nosniff_and_only_successes_are_cached() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let ok = Call::list(Payload::Rest).bearer(&secret).send(&app).await;
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(ok.header("cache-control"), Some("private, max-age=5"));
    let refused = Call::list(Payload::Rest).send(&app).await;
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(refused.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after() {
    let app = unreachable_store().await;
    let secret = apikeys::secret::Secret::generate().unwrap();
    let started = std::time::Instant::now();
    for payload in PAYLOADS {
        let reply = Call::list(payload).bearer(&secret).send(&app).await;
        assert!(reply.problem(503).contains("temporarily unavailable"));
        assert_eq!(reply.header("retry-after"), Some("1"));
    }
    assert!(started.elapsed() < apikeys::config::OPERATION_TIMEOUT * 4);
}

#[tokio::test]
async fn a_missing_table_is_500_without_internals() {
    let real = app().await;
    let org = org();
    let secret = admin(&real, &org).await;
    let store = DynamoStore::new(real.store.client().clone(), "no-such-table");
    let app = App {
        store,
        callers: apikeys::cache::CallerCache::off(),
        cursors: real.cursors.clone(),
        usage: patient_recorder(),
    };
    let reply = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    let detail = reply.problem(500);
    assert!(detail.contains("request_id"));
    let raw = String::from_utf8(reply.raw).unwrap();
    for leak in [
        "no-such-table",
        "Exception",
        "ResourceNotFound",
        "dynamodb",
        "127.0.0.1",
    ] {
        assert!(!raw.contains(leak), "{leak} in {raw}");
    }
}
