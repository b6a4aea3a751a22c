//! `GET /v1/api_key/`: parameters, page shape, and walks over every key.

use std::collections::HashSet;

use apikeys::key::ApiKey;
use apikeys_tests::*;
use chrono::{TimeZone, Utc};

fn ids(keys: &[ApiKey]) -> Vec<String> {
    keys.iter().map(|k| k.id.to_string()).collect()
}

/// An organization whose admin key is older than the `n` keys created after it.
async fn org_with(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    n: usize,
) -> (apikeys::secret::Secret, Vec<ApiKey>) {
    let org = org();
    let mut new = new_key(&org, "admin");
    new.id = Some(apikeys::key::KeyId::new_at(
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
    ));
    let (admin_key, secret) = create(app, new).await;
    let mut all = vec![admin_key];
    all.extend(
        create_many(
            app,
            &org,
            n,
            Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        )
        .await,
    );
    (secret, all)
}

#[tokio::test]
async fn defaults_are_50_keys_newest_first() {
    let app = app().await;
    let (caller, all) = org_with(&app, 59).await;
    for payload in PAYLOADS {
        let reply = Call::list(payload).bearer(&caller).send(&app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut newest: Vec<String> = ids(&all);
        newest.reverse();
        newest.truncate(50);
        assert_eq!(reply.ids(), newest);
        assert_eq!(reply.body["has_more"], true);
        assert_eq!(reply.body["first_id"], newest[0].as_str());
        assert_eq!(reply.body["last_id"], newest[49].as_str());
        assert!(reply.body["next_cursor"].is_string());
        let object = reply.body.as_object().unwrap();
        let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["data", "first_id", "has_more", "last_id", "next_cursor"]
        );
    }
}

#[tokio::test]
async fn limit_and_order_are_honoured_and_the_path_may_omit_its_slash() {
    let app = app().await;
    let (caller, all) = org_with(&app, 9).await;
    for path in ["/v1/api_key/", "/v1/api_key"] {
        let reply = Call::list(Payload::Rest)
            .path(path)
            .query("limit", 3)
            .query("order", "asc")
            .bearer(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.ids(), ids(&all[..3]), "{path}");
        let reply = Call::list(Payload::Http)
            .path(path)
            .query("limit", 1)
            .query("order", "desc")
            .bearer(&caller)
            .send(&app)
            .await;
        assert_eq!(reply.ids(), ids(&all[9..]), "{path}");
    }
}

#[tokio::test]
async fn has_more_is_exact_and_the_last_page_has_no_cursor() {
    let app = app().await;
    let (caller, all) = org_with(&app, 5).await; // 6 keys
    let reply = Call::list(Payload::Http)
        .query("limit", 6)
        .bearer(&caller)
        .send(&app)
        .await;
    assert_eq!(reply.ids().len(), 6);
    assert_eq!(reply.body["has_more"], false, "no empty page may follow");
    assert!(reply.body["next_cursor"].is_null());

    let reply = Call::list(Payload::Http)
        .query("limit", 5)
        .bearer(&caller)
        .send(&app)
        .await;
    assert_eq!(reply.body["has_more"], true);

    let oldest = &all[0].id;
    let reply = Call::list(Payload::Rest)
        .query("after", oldest)
        .bearer(&caller)
        .send(&app)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.ids(), Vec::<String>::new());
    assert_eq!(reply.body["has_more"], false);
    assert!(reply.body["first_id"].is_null() && reply.body["last_id"].is_null());
    assert!(reply.body["next_cursor"].is_null());
}

#[tokio::test]
async fn after_and_before_are_strict_and_survive_the_deletion_of_their_key() {
    let app = app().await;
    let (caller, all) = org_with(&app, 9).await; // 10 keys, all[0] oldest
    let asc = ids(&all);
    let pivot = all[4].id;
    let cases = [
        ("asc", "after", vec![&asc[5], &asc[6]]),
        ("asc", "before", vec![&asc[2], &asc[3]]), // the page just before, still ascending
        ("desc", "after", vec![&asc[3], &asc[2]]), // after, newest first: older keys
        ("desc", "before", vec![&asc[6], &asc[5]]), // before, newest first: newer keys
    ];
    for deleted in [false, true] {
        if deleted {
            assert!(delete(&app, &all[4].org, pivot).await);
        }
        for (order, param, want) in &cases {
            let reply = Call::list(Payload::Rest)
                .query("order", order)
                .query(param, pivot)
                .query("limit", 2)
                .bearer(&caller)
                .send(&app)
                .await;
            assert_eq!(
                reply.ids().iter().collect::<Vec<_>>(),
                *want,
                "{order} {param}, deleted: {deleted}"
            );
        }
    }
}

/// Walks every page of a listing, following `step` from each reply, and returns the ids
/// in the order the pages arrived (each page's own order kept).
async fn walk(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    first: Call,
    step: impl Fn(&Reply) -> Call,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut reply = first.send(app).await;
    let mut pages = 0;
    loop {
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = reply.ids();
        assert!(
            !page.is_empty() || seen.is_empty(),
            "has_more was true in front of an empty page"
        );
        pages += 1;
        assert!(pages < 10_000, "the walk does not end");
        seen.push(page);
        if reply.body["has_more"] != true {
            assert!(reply.body["next_cursor"].is_null());
            break;
        }
        reply = step(&reply).send(app).await;
    }
    seen.into_iter().flatten().collect()
}

fn page_of(order: &str, limit: usize, secret: &apikeys::secret::Secret, payload: Payload) -> Call {
    Call::list(payload)
        .query("order", order)
        .query("limit", limit)
        .bearer(secret)
}

#[tokio::test]
async fn every_walk_over_2500_keys_sees_each_key_exactly_once_in_order() {
    let app = app().await;
    let (caller, all) = org_with(&app, 2_500).await;
    let asc = ids(&all);
    let desc: Vec<String> = asc.iter().rev().cloned().collect();
    assert_eq!(asc.iter().collect::<HashSet<_>>().len(), 2_501);

    for (order, expected) in [("asc", &asc), ("desc", &desc)] {
        for (limit, payload) in [(97, Payload::Rest), (1000, Payload::Http)] {
            let s = caller.clone();
            // Forward by next_cursor; the order comes back from the cursor itself.
            let by_cursor = walk(&app, page_of(order, limit, &s, payload), |r| {
                Call::list(payload)
                    .query("limit", limit)
                    .query("cursor", r.body["next_cursor"].as_str().unwrap())
                    .bearer(&s)
            })
            .await;
            assert_eq!(&by_cursor, expected, "{order} by cursor, limit {limit}");

            // Forward by after=last_id.
            let by_after = walk(&app, page_of(order, limit, &s, payload), |r| {
                page_of(order, limit, &s, payload)
                    .query("after", r.body["last_id"].as_str().unwrap())
            })
            .await;
            assert_eq!(&by_after, expected, "{order} by after, limit {limit}");

            // Backwards by before=first_id, from past the far end: pages arrive in reverse,
            // each in the requested order.
            let end = expected.last().unwrap();
            let start = page_of(order, limit, &s, payload).query("before", end);
            let mut pages: Vec<Vec<String>> = Vec::new();
            let mut reply = start.send(&app).await;
            pages.push(reply.ids());
            while reply.body["has_more"] == true {
                reply = page_of(order, limit, &s, payload)
                    .query("before", reply.body["first_id"].as_str().unwrap())
                    .send(&app)
                    .await;
                assert!(!reply.ids().is_empty());
                pages.push(reply.ids());
            }
            let by_before: Vec<String> = pages.into_iter().rev().flatten().collect();
            assert_eq!(
                by_before,
                expected[..expected.len() - 1],
                "{order} by before, limit {limit}"
            );
        }
    }
}

#[tokio::test]
async fn a_backward_cursor_keeps_walking_backward() {
    let app = app().await;
    let (caller, all) = org_with(&app, 20).await;
    let asc = ids(&all);
    let s = caller.clone();
    let first = page_of("asc", 4, &s, Payload::Rest).query("before", &asc[17]);
    let r1 = first.send(&app).await;
    assert_eq!(r1.ids(), asc[13..17]);
    let r2 = Call::list(Payload::Rest)
        .query("limit", 4)
        .query("cursor", r1.body["next_cursor"].as_str().unwrap())
        .bearer(&s)
        .send(&app)
        .await;
    assert_eq!(r2.ids(), asc[9..13]);
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter() {
    let app = app().await;
    let (caller, all) = org_with(&app, 3).await;
    let id = all[1].id.to_string();
    let good = Call::list(Payload::Http)
        .query("limit", 1)
        .bearer(&caller)
        .send(&app)
        .await;
    let cursor = good.body["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases: Vec<(Call, &str, &str)> = vec![
        (
            Call::list(Payload::Http).query("fields", "name"),
            "fields",
            "not a known parameter: this endpoint takes limit, order, after, before, cursor",
        ),
        (
            Call::list(Payload::Rest).query("limt", 5),
            "limt",
            "not a known parameter",
        ),
        (
            Call::list(Payload::Http).query("limit", 0),
            "limit",
            "from 1 to 1000",
        ),
        (
            Call::list(Payload::Rest).query("limit", 1001),
            "limit",
            "from 1 to 1000",
        ),
        (
            Call::list(Payload::Rest).query("limit", "-1"),
            "limit",
            "from 1 to 1000",
        ),
        (
            Call::list(Payload::Http)
                .query("limit", "5")
                .query("limit", "6"),
            "limit",
            "more than once",
        ),
        (
            Call::list(Payload::Rest).query("order", "newest"),
            "order",
            "\"asc\" or \"desc\"",
        ),
        (
            Call::list(Payload::Http).query("after", "nope"),
            "after",
            "UUID",
        ),
        (
            Call::list(Payload::Rest).query("before", "nope"),
            "before",
            "UUID",
        ),
        (
            Call::list(Payload::Http)
                .query("after", &id)
                .query("before", &id),
            "before",
            "\"after\"",
        ),
        (
            Call::list(Payload::Rest).query("cursor", "garbage"),
            "cursor",
            "not a cursor",
        ),
        (
            Call::list(Payload::Rest).query("cursor", &tampered),
            "cursor",
            "not a cursor",
        ),
        (
            Call::list(Payload::Http).query("cursor", &cursor[..cursor.len() - 2]),
            "cursor",
            "not a cursor",
        ),
        (
            Call::list(Payload::Http)
                .query("cursor", &cursor)
                .query("after", &id),
            "cursor",
            "\"after\"",
        ),
        (
            Call::list(Payload::Http)
                .query("cursor", &cursor)
                .query("order", "asc"),
            "cursor",
            "other order",
        ),
    ];
    for (call, param, reason) in cases {
        let reply = call.bearer(&caller).send(&app).await;
        let detail = reply.problem(422).to_owned();
        assert_eq!(reply.body["parameter"], param, "{detail}");
        assert!(detail.contains(reason), "{param}: {detail}");
    }
}
