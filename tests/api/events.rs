//! Every sample event in `events/` (the ones `sam local invoke -e` and `cargo lambda invoke`
//! take) runs through its function's handler against the seeded demo organization.

use std::path::PathBuf;

use apikeys_tests::*;

/// The status each sample event must produce. A file missing here fails the test, so no
/// event goes unexercised.
const EXPECTED: &[(&str, u16)] = &[
    ("get-key.rest.json", 200),
    ("get-key.http.json", 200),
    ("get-key.rest.not-found.json", 404),
    ("get-key.http.bad-id.json", 422),
    ("get-key.discue.rest.json", 200),
    ("get-key.discue.http.json", 200),
    ("list-keys.rest.json", 200),
    ("list-keys.http.json", 200),
    ("list-keys.rest.no-key.json", 401),
    ("list-keys.http.bad-limit.json", 422),
    ("list-keys.http.forbidden.json", 403),
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[tokio::test]
async fn every_sample_event_gives_its_documented_status() {
    let app = app().await;
    let seeded = apikeys_demo::seed(&app.store).await.unwrap();
    assert_eq!(seeded.len(), 5);
    assert!(
        apikeys_demo::seed(&app.store).await.unwrap().is_empty(),
        "seeding is idempotent"
    );

    let mut files: Vec<String> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), EXPECTED.len(), "{files:?}");

    for name in files {
        let &(_, status) = EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no expected status"));
        let text = std::fs::read_to_string(events_dir().join(&name)).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = if name.starts_with("get-key.") {
            apikeys::http::get_key(&app, req).await
        } else if name.starts_with("list-keys.") {
            apikeys::http::list_keys(&app, req).await
        } else {
            panic!("{name} names no function");
        };
        let reply = Reply::from(response);
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        if status == 200 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{name}"
            );
        } else {
            reply.problem(status);
        }
    }
}

#[tokio::test]
async fn the_sample_list_event_returns_the_demo_keys_oldest_first() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    let text = std::fs::read_to_string(events_dir().join("list-keys.rest.json")).unwrap();
    let reply = Reply::from(
        apikeys::http::list_keys(&app, lambda_http::request::from_str(&text).unwrap()).await,
    );
    assert_eq!(
        reply.ids(),
        [apikeys_demo::ADMIN_ID, apikeys_demo::VIEWER_ID]
    );
    assert_eq!(reply.body["has_more"], true);
}

#[tokio::test]
async fn the_sample_discue_events_return_the_viewer_key_in_the_discue_view() {
    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    for name in ["get-key.discue.rest.json", "get-key.discue.http.json"] {
        let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
        let reply = Reply::from(
            apikeys::http::get_key(&app, lambda_http::request::from_str(&text).unwrap()).await,
        );
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(
            reply.body["api_key"]["id"],
            apikeys_demo::VIEWER_ID,
            "{name}"
        );
        assert_eq!(
            reply.body["api_key"]["scopes"],
            serde_json::json!([{"resource": "api_keys", "access": "read", "targets": ["*"]}]),
            "{name}"
        );
        let href = reply.body["_links"]["self"]["href"].as_str().unwrap();
        assert!(href.ends_with(&format!("/v1/api_keys/{}", apikeys_demo::VIEWER_ID)));
    }
}
