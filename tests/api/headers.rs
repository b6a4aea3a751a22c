//! Response headers on every kind of answer: `X-Content-Type-Options: nosniff` always; a
//! `Cache-Control` that keeps keys out of shared caches on a 200 (`no-store`, or `private`
//! with a lifetime), and `no-store` on every error, so no cache ever replays an error.

use apikeys::key::Permission;
use apikeys_tests::*;

#[track_caller]
fn check(reply: &Reply, what: &str) {
    assert_eq!(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    let cache = reply
        .header("cache-control")
        .unwrap_or_else(|| panic!("{what}: no Cache-Control"));
    if (200..300).contains(&reply.status) || reply.status == 304 {
        let directives: Vec<&str> = cache.split(',').map(str::trim).collect();
        let sane = directives == ["no-store"]
            || (directives.contains(&"private")
                && !directives.contains(&"public")
                && directives.iter().any(|d| {
                    d.strip_prefix("max-age=")
                        .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n <= 3600))
                }));
        assert!(
            sane,
            "{what}: a {} with Cache-Control {cache:?}",
            reply.status
        );
    } else {
        assert_eq!(
            cache, "no-store",
            "{what}: a {} must not be cached",
            reply.status
        );
    }
    let content_type = reply.header("content-type").unwrap_or_default();
    if reply.status >= 400 {
        assert_eq!(content_type, "application/problem+json", "{what}");
    } else if reply.status == 200 {
        assert_eq!(content_type, "application/json", "{what}");
    }
}

#[tokio::test]
async fn every_kind_of_response_has_nosniff_and_a_fitting_cache_control() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    let mut no_view = new_key(&org, "no view");
    no_view.access = restricted(&[Permission::CallsView]);
    let (_, no_view) = create(&app, no_view).await;
    let stranger = apikeys::secret::Secret::generate().unwrap();
    for payload in PAYLOADS {
        let cases: Vec<(Call, u16, &str)> = vec![
            (Call::get(payload, key.id).bearer(&secret), 200, "get"),
            (Call::list(payload).bearer(&secret), 200, "list"),
            (
                Call::get(payload, key.id).method("HEAD").bearer(&secret),
                200,
                "head",
            ),
            (Call::list(payload), 401, "no key"),
            (Call::list(payload).bearer(&stranger), 401, "unknown key"),
            (Call::list(payload).bearer(&no_view), 403, "no permission"),
            (
                Call::get(payload, apikeys::key::KeyId::generate()).bearer(&secret),
                404,
                "missing",
            ),
            (
                Call::list(payload).method("PUT").bearer(&secret),
                405,
                "put",
            ),
            (
                Call::list(payload)
                    .header("Accept", "text/html")
                    .bearer(&secret),
                406,
                "html",
            ),
            (
                Call::list(payload).query("limit", 0).bearer(&secret),
                422,
                "bad limit",
            ),
            (
                Call::list(payload).query("cursor", "x").bearer(&secret),
                422,
                "bad cursor",
            ),
        ];
        for (call, status, what) in cases {
            let reply = call.send(&app).await;
            assert_eq!(reply.status, status, "{what}: {}", reply.body);
            check(&reply, what);
        }
    }
}

#[tokio::test]
async fn a_503_is_not_cached_either() {
    // A store nobody listens on: the proxy, stopped.
    let proxy = fault::FaultProxy::in_front_of_dynamodb_local().await;
    let real = app().await;
    let org = org();
    let secret = admin(&real, &org).await;
    let app = app_via(&real, &proxy.url()).await;
    proxy.stop();
    let reply = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    assert_eq!(reply.status, 503);
    check(&reply, "503");
}
