//! A secret sent in the wrong place (as a key id, a parameter's value or its name) is
//! refused without being echoed in the problem or written to the log.

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
