//! Page numbers: `page` with `current_page` and `total_pages`, from a per-organization key
//! count kept in the same transaction as every create and delete.

use apikeys::App;
use apikeys::key::OrgId;
use apikeys::page::CursorKeys;
use apikeys::store::KeyReader;
use apikeys::store::dynamo::{COUNT_SK, DynamoStore, KEY_COUNT};
use apikeys_tests::*;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};

async fn list_page(
    app: &App<DynamoStore>,
    payload: Payload,
    secret: &apikeys::secret::Secret,
    limit: usize,
    page: usize,
    order: &str,
) -> Reply {
    Call::list(payload)
        .query("limit", limit)
        .query("page", page)
        .query("order", order)
        .bearer(secret)
        .send(app)
        .await
}

/// The stored count, the sum of the organization's count items, read strongly
/// consistently; `None` if it has none.
async fn stored_count(app: &App<DynamoStore>, org: &OrgId) -> Option<i64> {
    let out = app
        .store
        .client()
        .query()
        .table_name(app.store.table())
        .key_condition_expression("pk = :pk AND begins_with(sk, :count)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("ORG#{org}")))
        .expression_attribute_values(":count", AttributeValue::S(COUNT_SK.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let items = out.items();
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(|i| match i.get(KEY_COUNT) {
                Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap(),
                other => panic!("{other:?}"),
            })
            .sum()
    })
}

#[tokio::test]
async fn numbered_pages_cover_every_key_once_and_past_the_end_is_empty() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    create_many(&app, &org, 7, start).await;
    let all_desc = Call::list(Payload::Rest)
        .bearer(&secret)
        .send(&app)
        .await
        .ids();
    assert_eq!(all_desc.len(), 8);

    for payload in PAYLOADS {
        for (order, all) in [
            ("desc", all_desc.clone()),
            ("asc", all_desc.iter().rev().cloned().collect()),
        ] {
            let mut seen = Vec::new();
            for page in 1..=3 {
                let reply = list_page(&app, payload, &secret, 3, page, order).await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert_eq!(reply.body["current_page"], page);
                assert_eq!(reply.body["total_pages"], 3);
                assert_eq!(reply.body["has_more"], page < 3, "page {page}");
                assert_eq!(reply.body["next_cursor"].is_string(), page < 3);
                seen.extend(reply.ids());
            }
            assert_eq!(seen, all, "{payload:?} {order}");

            let past = list_page(&app, payload, &secret, 3, 4, order).await;
            assert_eq!(past.status, 200);
            assert!(past.ids().is_empty());
            assert_eq!(past.body["has_more"], false);
            assert!(past.body["first_id"].is_null() && past.body["next_cursor"].is_null());
            assert_eq!(
                (
                    past.body["current_page"].clone(),
                    past.body["total_pages"].clone()
                ),
                (4.into(), 3.into())
            );
        }
    }
    // Without `page`, the numbers are absent.
    let plain = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    assert!(plain.body.get("current_page").is_none() && plain.body.get("total_pages").is_none());
    // A numbered page's cursor continues where it ended.
    let first = list_page(&app, Payload::Http, &secret, 3, 1, "desc").await;
    let next = Call::list(Payload::Http)
        .query("limit", 3)
        .query("cursor", first.body["next_cursor"].as_str().unwrap())
        .bearer(&secret)
        .send(&app)
        .await;
    assert_eq!(next.ids(), all_desc[3..6]);
}

#[tokio::test]
async fn page_excludes_positions_and_is_bounded() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let some = Call::list(Payload::Rest)
        .query("limit", 1)
        .bearer(&secret)
        .send(&app)
        .await;
    let id = some.ids()[0].clone();
    let cursor = "abc";
    for payload in PAYLOADS {
        for (name, value) in [
            ("after", id.as_str()),
            ("before", id.as_str()),
            ("cursor", cursor),
        ] {
            let reply = Call::list(payload)
                .query("page", 1)
                .query(name, value)
                .bearer(&secret)
                .send(&app)
                .await;
            assert!(
                reply
                    .problem(422)
                    .contains(&format!("cannot be combined with \"{name}\""))
            );
            assert_eq!(reply.body["parameter"], "page");
        }
        for bad in ["0", "-1", "1.5", "21"] {
            let reply = Call::list(payload)
                .query("page", bad)
                .bearer(&secret)
                .send(&app)
                .await;
            assert!(reply.problem(422).contains("from 1 to 20 "), "{bad}");
        }
    }
    // Only the admin key: one page.
    let empty = list_page(&app, Payload::Http, &secret, 10, 1, "desc").await;
    assert_eq!(empty.body["total_pages"], 1, "the admin key itself");
}

#[tokio::test]
async fn the_key_count_is_exact_under_concurrent_creates_and_deletes() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let start = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    let keys = create_many(&app, &org, 60, start).await;
    assert_eq!(stored_count(&app, &org).await, Some(61));

    // Delete 20 keys, each twice at the same time: every key is counted out once.
    let mut set = tokio::task::JoinSet::new();
    for key in &keys[..20] {
        for _ in 0..2 {
            let store = app.store.clone();
            let (org, id) = (org.clone(), key.id);
            set.spawn(async move { delete_in(&store, &org, id).await });
        }
    }
    let deleted = set.join_all().await.into_iter().filter(|d| *d).count();
    assert_eq!(deleted, 20);
    assert_eq!(stored_count(&app, &org).await, Some(41));
    assert_eq!(app.store.key_count(&org).await.unwrap(), 41);
    let key_items = scan(&app)
        .await
        .iter()
        .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(s)) if s.starts_with("KEY#")))
        .count();
    assert_eq!(key_items, 41);

    let reply = list_page(&app, Payload::Rest, &secret, 10, 1, "desc").await;
    assert_eq!(reply.body["total_pages"], 5);
    // Another organization's count is its own.
    let other = self::org();
    assert_eq!(app.store.key_count(&other).await.unwrap(), 0);
}

/// Page N costs what reading its N * limit keys costs: DynamoDB cannot skip. Measured with
/// ReturnConsumedCapacity=TOTAL; run with `--nocapture` to see the figures.
#[tokio::test]
async fn page_n_costs_reading_n_pages_of_keys() {
    let app = app().await;
    let org = org();
    let secret = admin(&app, &org).await;
    let start = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
    create_many(&app, &org, 599, start).await;
    let metered = App {
        store: app.store.clone().metered(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: CursorKeys::parse(CURSOR_SECRET).unwrap(),
        usage: patient_recorder(),
    };
    let mut units = Vec::new();
    for page in 1..=6 {
        metered.store.read_units();
        let reply = list_page(&metered, Payload::Http, &secret, 100, page, "asc").await;
        assert_eq!(reply.ids().len(), 100);
        units.push(metered.store.read_units());
    }
    let cursor_page = {
        metered.store.read_units();
        Call::list(Payload::Http)
            .query("limit", 100)
            .bearer(&secret)
            .send(&metered)
            .await;
        metered.store.read_units()
    };
    eprintln!(
        "read units per request, limit=100, 600 keys: page 1..6 = {units:?}; cursor page = {cursor_page}"
    );
    assert!(
        units.iter().all(|u| *u > 0.0),
        "DynamoDB reports consumed capacity: {units:?}"
    );
    assert!(units.windows(2).all(|w| w[1] > w[0]), "{units:?}");
    assert!(
        units[5] > 4.0 * (units[0] - 1.0),
        "page 6 reads six pages: {units:?}"
    );
}
