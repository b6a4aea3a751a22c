//! A secret sent in the wrong place (as a key id, a parameter's value or its name) is
//! refused without being echoed in the problem or written to the log; a token that is no
//! secret this service could have issued is refused without a read of the store.

use apikeys::key::KeyId;
use apikeys::secret::Secret;
use apikeys_tests::capacity::Proxy;
use apikeys_tests::*;

#[tokio::test]
async fn a_secret_in_a_parameter_is_neither_echoed_nor_logged() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let s = secret.expose().to_owned();
    let capture = LogCapture::default();
    let _guard = tracing::subscriber::set_default(capture.subscriber("debug"));
    for payload in PAYLOADS {
        let calls = [
            (Call::get(payload, &s).bearer(&secret), "id"),
            (
                Call::list(payload).query("limit", &s).bearer(&secret),
                "limit",
            ),
            (
                Call::list(payload).query("order", &s).bearer(&secret),
                "order",
            ),
            (
                Call::list(payload).query("after", &s).bearer(&secret),
                "after",
            ),
            (
                Call::list(payload).query("cursor", &s).bearer(&secret),
                "cursor",
            ),
            (
                Call::list(payload).query(&s, 1).bearer(&secret),
                "apk_[redacted]",
            ),
            (
                Call::get(payload, uuid::Uuid::nil())
                    .query("key", &s)
                    .bearer(&secret),
                "key",
            ),
        ];
        for (call, param) in calls {
            let reply = call.send(&app).await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], param, "{}", reply.body);
            let raw = String::from_utf8(reply.raw.clone()).unwrap();
            assert_no_leak("a 422", &raw, std::slice::from_ref(&secret), true);
        }
    }
    drop(_guard);
    let text = capture.text();
    assert!(text.contains("refused"), "the refusals are logged");
    assert_no_leak("the log", &text, std::slice::from_ref(&secret), false);
}

/// A token of the wrong shape or checksum gets the 401 of an unknown key, and the store,
/// metered by the recording proxy, sees no call for it: garbage costs no read. A well-formed
/// secret that is no key costs its one lookup, which the meter does see.
#[tokio::test]
async fn a_malformed_token_is_refused_without_a_lookup() {
    let real = app().await;
    let proxy = Proxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    let unknown = Secret::generate().unwrap();
    let s = unknown.expose();
    let mut tampered = s.as_bytes().to_vec();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = "the API key is not valid: it is unknown, disabled or expired";
    // Both endpoints of the read functions, in both headers and both payloads.
    let calls = |token: &str| -> Vec<Call> {
        PAYLOADS
            .into_iter()
            .flat_map(|p| {
                [
                    Call::list(p).header("Authorization", format!("Bearer {token}")),
                    Call::get(p, KeyId::generate()).header("X-API-KEY", token),
                ]
            })
            .collect()
    };
    for token in [
        "apk_not-a-real-key",
        "sk_live_abc",
        &s[..s.len() - 1],
        &tampered,
    ] {
        for call in calls(token) {
            let reply = call.send(&app).await;
            assert_eq!(reply.problem(401), refused, "{token}");
            let seen = proxy.take();
            assert!(seen.is_empty(), "{token}: the store was read: {seen:?}");
        }
    }
    for call in calls(s) {
        let reply = call.send(&app).await;
        assert_eq!(reply.problem(401), refused);
        let ops: Vec<String> = proxy.take().into_iter().map(|c| c.op).collect();
        assert_eq!(
            ops,
            ["GetItem", "GetItem"],
            "one lookup of the well-formed secret, and as it misses, one consistent lookup"
        );
    }
    proxy.stop();
}
