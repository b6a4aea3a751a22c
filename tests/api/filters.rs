//! List filters: status, creator_id, restricted, permission and name (case-insensitive
//! prefix), combined with each other, with both orders and with every kind of position.

use apikeys::App;
use apikeys::key::{KeyId, KeyState, Permission};
use apikeys::page::MAX_ITEMS_READ;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use chrono::{TimeZone, Utc};

/// A fixture key: name, permissions (None: unrestricted), disabled, expired, other creator.
type Spec<'a> = (&'a str, Option<&'a [Permission]>, bool, bool, bool);
/// Filters, and the names of the keys they select in creation order.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

const OTHER_CREATOR: &str = "11111111-2222-4333-8444-555555555555";

/// A mixed organization; returns the admin secret and every key's (name, id) in creation
/// order (the admin key first).
async fn mixed(app: &App<DynamoStore>) -> (Secret, Vec<(String, String)>) {
    let org = org();
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let mut admin_key = new_key(&org, "Admin");
    admin_key.id = Some(KeyId::new_at(start));
    let (admin, secret) = create(app, admin_key).await;
    let mut all = vec![("Admin".to_owned(), admin.id.to_string())];
    let specs: &[Spec] = &[
        ("CI deploy", None, false, false, false),
        (
            "ci Viewer",
            Some(&[Permission::ApiKeysView]),
            false,
            false,
            true,
        ),
        (
            "Calls bot",
            Some(&[Permission::CallsView, Permission::CallsCreate]),
            false,
            false,
            false,
        ),
        ("ci old", Some(&[Permission::CallsView]), false, true, false),
        ("Old admin", None, true, false, true),
        (
            "ci disabled",
            Some(&[Permission::ApiKeysView]),
            true,
            false,
            false,
        ),
        (
            "Billing",
            Some(&[Permission::BillingView]),
            false,
            false,
            true,
        ),
        ("CI nightly", None, false, true, false),
    ];
    for (i, (name, perms, disabled, expired, other)) in specs.iter().enumerate() {
        let mut new = new_key(&org, name);
        new.id = Some(KeyId::new_at(
            start + chrono::Duration::seconds(i as i64 + 1),
        ));
        if let Some(perms) = perms {
            new.access = restricted(perms);
        }
        if *expired {
            new.expires = Some(Utc::now() - chrono::Duration::seconds(1));
        }
        if *other {
            new.creator_id = OTHER_CREATOR.parse().unwrap();
        }
        let (key, _) = create(app, new).await;
        if *disabled {
            assert!(set_state(app, &org, key.id, KeyState::Disabled).await);
        }
        all.push((name.to_string(), key.id.to_string()));
    }
    (secret, all)
}

fn names(all: &[(String, String)], ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| all.iter().find(|(_, i)| i == id).unwrap().0.clone())
        .collect()
}

/// Every key a filtered listing yields, walking by `next_cursor` with a small limit.
async fn walk(
    app: &App<DynamoStore>,
    secret: &Secret,
    filters: &[(&str, &str)],
    order: &str,
    payload: Payload,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut call = Call::list(payload).query("limit", 2).query("order", order);
        for (k, v) in filters {
            call = call.query(k, v);
        }
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let reply = call.bearer(secret).send(app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["read_budget_exhausted"], false);
        assert!(reply.ids().len() <= 2);
        ids.extend(reply.ids());
        if reply.body["has_more"] == false {
            assert!(reply.body["next_cursor"].is_null());
            return ids;
        }
        assert_eq!(reply.ids().len(), 2, "a page before more results is full");
        cursor = Some(reply.body["next_cursor"].as_str().unwrap().to_owned());
    }
    panic!("the walk did not end");
}

#[tokio::test]
async fn each_filter_and_their_combinations_select_exactly_the_matching_keys() {
    let app = app().await;
    let (secret, all) = mixed(&app).await;
    let cases: &[Case] = &[
        (
            &[("name", "ci")],
            &[
                "CI deploy",
                "ci Viewer",
                "ci old",
                "ci disabled",
                "CI nightly",
            ],
        ),
        (&[("name", "CI D")], &["CI deploy", "ci disabled"]),
        (
            &[("status", "active")],
            &["Admin", "CI deploy", "ci Viewer", "Calls bot", "Billing"],
        ),
        (&[("status", "disabled")], &["Old admin", "ci disabled"]),
        (&[("status", "expired")], &["ci old", "CI nightly"]),
        (
            &[("creator_id", OTHER_CREATOR)],
            &["ci Viewer", "Old admin", "Billing"],
        ),
        (
            &[("restricted", "false")],
            &["Admin", "CI deploy", "Old admin", "CI nightly"],
        ),
        (
            &[("restricted", "true"), ("permission", "calls.view")],
            &["Calls bot", "ci old"],
        ),
        (
            &[("permission", "api_keys.view")],
            &[
                "Admin",
                "CI deploy",
                "ci Viewer",
                "Old admin",
                "ci disabled",
                "CI nightly",
            ],
        ),
        (
            &[
                ("permission", "api_keys.view"),
                ("status", "active"),
                ("name", "ci"),
            ],
            &["CI deploy", "ci Viewer"],
        ),
        (&[("name", "zz")], &[]),
    ];
    for (filters, want) in cases {
        for payload in PAYLOADS {
            let asc = walk(&app, &secret, filters, "asc", payload).await;
            assert_eq!(names(&all, &asc), *want, "{filters:?} asc");
            let desc = walk(&app, &secret, filters, "desc", payload).await;
            let mut reversed: Vec<&str> = want.to_vec();
            reversed.reverse();
            assert_eq!(names(&all, &desc), reversed, "{filters:?} desc");
        }
    }
}

#[tokio::test]
async fn filters_combine_with_after_and_before_positions() {
    let app = app().await;
    let (secret, all) = mixed(&app).await;
    // After "ci Viewer" (index 2) in ascending order, the active keys are Calls bot, Billing.
    let reply = Call::list(Payload::Rest)
        .query("order", "asc")
        .query("after", &all[2].1)
        .query("status", "active")
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(names(&all, &reply.ids()), ["Calls bot", "Billing"]);
    assert_eq!(reply.body["has_more"], false);

    // The page just before "Billing" (index 7), oldest first, of names starting "ci": two
    // keys, and more before them.
    let reply = Call::list(Payload::Http)
        .query("order", "asc")
        .query("before", &all[7].1)
        .query("name", "ci")
        .query("limit", 2)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(names(&all, &reply.ids()), ["ci old", "ci disabled"]);
    assert_eq!(reply.body["has_more"], true);
    let next = Call::list(Payload::Http)
        .query("cursor", reply.body["next_cursor"].as_str().unwrap())
        .query("name", "ci")
        .query("limit", 2)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(names(&all, &next.ids()), ["CI deploy", "ci Viewer"]);
    assert_eq!(next.body["has_more"], false);
}

#[tokio::test]
async fn a_cursor_only_continues_under_the_filters_it_was_made_with() {
    let app = app().await;
    let (secret, _) = mixed(&app).await;
    let first = Call::list(Payload::Rest)
        .query("limit", 1)
        .query("name", "ci")
        .bearer(&secret)
        .send(&app)
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let plain = Call::list(Payload::Rest)
        .query("limit", 1)
        .bearer(&secret)
        .send(&app)
        .await;
    let plain_cursor = plain.body["next_cursor"].as_str().unwrap().to_owned();

    let same = Call::list(Payload::Rest)
        .query("cursor", &cursor)
        .query("name", "CI")
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(
        same.status, 200,
        "the same filters, spelled in another case"
    );

    for (c, filters) in [
        (&cursor, vec![]),
        (&cursor, vec![("name", "c")]),
        (&cursor, vec![("name", "ci"), ("status", "active")]),
        (&plain_cursor, vec![("status", "active")]),
    ] {
        let mut call = Call::list(Payload::Http).query("cursor", c);
        for (k, v) in &filters {
            call = call.query(k, v);
        }
        let reply = call.bearer(&secret).send(&app).await;
        assert!(reply.problem(422).contains("other filters"), "{filters:?}");
        assert_eq!(reply.body["parameter"], "cursor");
    }
}

#[tokio::test]
async fn bad_filters_and_page_with_filters_are_422() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    for (name, value) in [
        ("status", "enabled"),
        ("creator_id", "me"),
        ("restricted", "1"),
        ("permission", "calls.read"),
        ("name", ""),
    ] {
        let reply = Call::list(Payload::Rest)
            .query(name, value)
            .bearer(&secret)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], name);
    }
    let reply = Call::list(Payload::Http)
        .query("page", 1)
        .query("status", "active")
        .bearer(&secret)
        .send(&app)
        .await;
    assert!(
        reply
            .problem(422)
            .contains("cannot be combined with filters")
    );
    // An unfiltered list does not carry the budget field.
    let plain = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    assert!(plain.body.get("read_budget_exhausted").is_none());
}

#[tokio::test]
async fn a_sparse_filter_stops_at_the_read_budget_and_its_cursor_continues() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await; // created now: after every fixture key
    let start = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    let n = MAX_ITEMS_READ + 50;
    create_many(&app, &org, n, start).await;
    // "key 01040" .. "key 01049" lie beyond the budget in ascending order.
    assert!(MAX_ITEMS_READ < 1040 && 1049 < n);
    let first = Call::list(Payload::Http)
        .query("order", "asc")
        .query("name", "key 0104")
        .query("limit", 5)
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(first.status, 200);
    assert!(first.ids().is_empty(), "{:?}", first.ids());
    assert_eq!(first.body["read_budget_exhausted"], true);
    assert_eq!(first.body["has_more"], true);
    let mut cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let mut found = Vec::new();
    loop {
        let reply = Call::list(Payload::Http)
            .query("name", "key 0104")
            .query("limit", 5)
            .query("cursor", &cursor)
            .bearer(&secret)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["read_budget_exhausted"], false);
        found.extend(reply.ids());
        if reply.body["has_more"] == false {
            break;
        }
        cursor = reply.body["next_cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(found.len(), 10);
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(found, sorted, "ascending");
}

/// `creator_id` reads the by-creator index: its cost follows that creator's keys, not the
/// organization's. Run with `--nocapture` to see the figures.
#[tokio::test]
async fn the_creator_filter_reads_only_that_creators_keys_from_the_index() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let start = Utc.with_ymd_and_hms(2024, 4, 1, 0, 0, 0).unwrap();
    create_many(&app, &org, 400, start).await;
    let mut theirs = Vec::new();
    for i in 0..3 {
        let mut new = new_key(&org, &format!("theirs {i}"));
        new.creator_id = OTHER_CREATOR.parse().unwrap();
        theirs.push(create(&app, new).await.0.id.to_string());
    }
    let metered = App {
        store: app.store.clone().metered(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: apikeys::page::CursorKeys::parse(CURSOR_SECRET).unwrap(),
        usage: patient_recorder(),
    };
    let cost = |filter: (&'static str, &'static str)| {
        let metered = &metered;
        let secret = &secret;
        async move {
            metered.store.read_units();
            let reply = Call::list(Payload::Http)
                .query("order", "asc")
                .query(filter.0, filter.1)
                .bearer(secret)
                .send(metered)
                .await;
            (reply, metered.store.read_units())
        }
    };
    let (by_creator, creator_units) = cost(("creator_id", OTHER_CREATOR)).await;
    assert_eq!(by_creator.ids(), theirs);
    let (by_name, name_units) = cost(("name", "theirs")).await;
    assert_eq!(by_name.ids(), theirs);
    eprintln!(
        "read units, 404 keys, 3 by one creator: creator_id = {creator_units}, name = {name_units}"
    );
    // The caller's GetItem (0.5), one Query of the index (0.5), and the page's keys' last
    // uses from the table, which the index does not carry (one BatchGetItem, 0.5 a key).
    assert!(creator_units <= 2.5, "{creator_units}");
    assert!(
        name_units > 5.0 * creator_units,
        "{name_units} vs {creator_units}"
    );
}
