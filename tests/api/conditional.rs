//! Conditional GET: every 200 has an ETag, `If-None-Match` gives 304, and successes may be
//! cached privately for a few seconds while errors are never cached.

use apikeys::key::KeyState;
use apikeys_tests::*;

#[tokio::test]
async fn every_200_has_an_etag_and_if_none_match_gives_304() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    // The first use stamps the caller's last_used_date, which the list shows: after it, the
    // documents stay the same for a minute.
    Call::list(Payload::Rest).bearer(&caller).send(&app).await;
    for payload in PAYLOADS {
        for call in [
            Call::get(payload, key.id),
            Call::discue(payload, key.id),
            Call::list(payload),
        ] {
            let first = call.clone().bearer(&caller).send(&app).await;
            assert_eq!(first.status, 200, "{call:?}");
            let tag = first.header("etag").expect("an ETag").to_owned();
            // A digest of 32 hex digits, in quotes; a key's tag names its version first.
            let inner = tag.trim_matches('"');
            let digest = inner.rsplit('-').next().unwrap();
            assert!(
                tag.starts_with('"') && tag.ends_with('"') && digest.len() == 32,
                "{tag}"
            );
            assert_eq!(
                inner.contains('-'),
                !matches!(call.function().0, Function::ListKeys)
            );
            assert_eq!(first.header("cache-control"), Some("private, max-age=5"));
            assert!(first.header("vary").unwrap().contains("X-API-KEY"));

            for matching in [
                tag.clone(),
                format!("W/{tag}"),
                format!("\"nope\", {tag}"),
                "*".into(),
            ] {
                let again = call
                    .clone()
                    .bearer(&caller)
                    .header("If-None-Match", &matching)
                    .send(&app)
                    .await;
                assert_eq!(again.status, 304, "{call:?} {matching}");
                assert!(again.raw.is_empty());
                assert_eq!(again.header("etag"), Some(tag.as_str()));
                assert_eq!(again.header("cache-control"), Some("private, max-age=5"));
            }
            let head = call
                .clone()
                .method("HEAD")
                .bearer(&caller)
                .header("If-None-Match", &tag)
                .send(&app)
                .await;
            assert_eq!(head.status, 304);

            let stale = call
                .clone()
                .bearer(&caller)
                .header("If-None-Match", "\"0123\"")
                .send(&app)
                .await;
            assert_eq!(stale.status, 200);
            assert_eq!(stale.raw, first.raw);
        }
    }
}

#[tokio::test]
async fn the_etag_changes_when_the_key_changes() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    let before = Call::get(Payload::Http, key.id)
        .bearer(&caller)
        .send(&app)
        .await;
    let tag = before.header("etag").unwrap().to_owned();
    // The state change stamps updated_date to the millisecond; wait so it shows in seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    let after = Call::get(Payload::Http, key.id)
        .bearer(&caller)
        .header("If-None-Match", &tag)
        .send(&app)
        .await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body["status"], "disabled");
    assert_ne!(after.header("etag"), Some(tag.as_str()));
}

#[tokio::test]
async fn errors_are_never_cached_and_never_304() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let missing = apikeys::key::KeyId::generate();
    for (reply, status) in [
        (
            Call::get(Payload::Rest, missing)
                .bearer(&caller)
                .header("If-None-Match", "*")
                .send(&app)
                .await,
            404,
        ),
        (
            Call::list(Payload::Rest)
                .header("If-None-Match", "*")
                .send(&app)
                .await,
            401,
        ),
    ] {
        reply.problem(status);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.header("etag"), None);
    }
}
