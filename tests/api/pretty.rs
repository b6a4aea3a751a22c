//! `pretty=true`: indented JSON on every endpoint, errors included.

use apikeys_tests::*;

fn indented(reply: &Reply) -> bool {
    let text = std::str::from_utf8(&reply.raw).unwrap();
    text.starts_with("{\n  \"") && text.ends_with("}\n")
}

#[tokio::test]
async fn pretty_true_indents_every_endpoint_and_false_is_compact() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "k")).await;
    for payload in PAYLOADS {
        let calls = [Call::get(payload, key.id), Call::list(payload)];
        for call in calls {
            let plain = call.clone().bearer(&caller).send(&app).await;
            let pretty = call
                .clone()
                .query("pretty", "true")
                .bearer(&caller)
                .send(&app)
                .await;
            let explicit = call
                .clone()
                .query("pretty", "false")
                .bearer(&caller)
                .send(&app)
                .await;
            assert_eq!((plain.status, pretty.status), (200, 200), "{call:?}");
            assert!(indented(&pretty), "{call:?}");
            assert!(!indented(&plain) && !plain.raw.contains(&b'\n'), "{call:?}");
            assert_eq!(explicit.raw, plain.raw, "{call:?}");
            assert_eq!(pretty.body, plain.body, "same document: {call:?}");
        }
    }
}

#[tokio::test]
async fn errors_are_pretty_too_and_a_bad_value_is_422() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let unauthenticated = Call::list(Payload::Http)
        .query("pretty", "true")
        .send(&app)
        .await;
    unauthenticated.problem(401);
    assert!(indented(&unauthenticated));

    for bad in ["yes", "1", "TRUE", ""] {
        let reply = Call::list(Payload::Rest)
            .query("pretty", bad)
            .bearer(&caller)
            .send(&app)
            .await;
        assert!(
            reply.problem(422).contains("\"true\" or \"false\""),
            "{bad}"
        );
        assert_eq!(reply.body["parameter"], "pretty");
    }
}
