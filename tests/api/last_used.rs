//! Last-used tracking: each successful authentication stamps the caller's key (and its
//! credential) with the time, at most once a minute, without ever failing the request.

use apikeys::dynamo::{DynamoStore, LAST_USED};
use apikeys::key::{ApiKey, KeyState, Permission};
use apikeys::secret::Secret;
use apikeys_tests::*;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

type Item = std::collections::HashMap<String, AttributeValue>;

fn key_address(key: &ApiKey) -> Item {
    Item::from([
        ("pk".into(), AttributeValue::S(format!("ORG#{}", key.org))),
        ("sk".into(), AttributeValue::S(format!("KEY#{}", key.id))),
    ])
}

fn credential_address(secret: &Secret) -> Item {
    Item::from([
        (
            "pk".into(),
            AttributeValue::S(format!("SECRET#{}", secret.hash().as_str())),
        ),
        ("sk".into(), AttributeValue::S("SECRET".into())),
    ])
}

/// The stored last-use time of an item, in epoch ms, read strongly consistently.
async fn stamp(app: &apikeys::App<DynamoStore>, address: Item) -> Option<i64> {
    let out = app
        .store
        .client()
        .get_item()
        .table_name(app.store.table())
        .set_key(Some(address))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    match out.item.unwrap().get(LAST_USED) {
        Some(AttributeValue::N(n)) => Some(n.parse().unwrap()),
        None => None,
        other => panic!("{other:?}"),
    }
}

async fn set_stamp(app: &apikeys::App<DynamoStore>, address: Item, ms: i64) {
    app.store
        .client()
        .update_item()
        .table_name(app.store.table())
        .set_key(Some(address))
        .update_expression("SET #u = :u")
        .expression_attribute_names("#u", LAST_USED)
        .expression_attribute_values(":u", AttributeValue::N(ms.to_string()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_successful_request_stamps_the_callers_key_once_a_minute() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let mut new = new_key(&org, "viewer");
    new.access = restricted(&[Permission::ApiKeysView]);
    let (viewer, secret) = create(&app, new).await;
    assert_eq!(stamp(&app, key_address(&viewer)).await, None);

    let before = Utc::now().timestamp_millis();
    let reply = Call::list(Payload::Http).bearer(&secret).send(&app).await;
    assert_eq!(reply.status, 200);
    let after = Utc::now().timestamp_millis();
    let first = stamp(&app, key_address(&viewer)).await.expect("stamped");
    assert!(
        (before..=after).contains(&first),
        "{before} {first} {after}"
    );
    assert_eq!(stamp(&app, credential_address(&secret)).await, Some(first));

    // The API shows it, in both views.
    let diga = Call::get(Payload::Rest, viewer.id)
        .bearer(&admin)
        .send(&app)
        .await;
    assert!(diga.body["last_used_date"].is_string(), "{}", diga.body);
    let discue = Call::discue(Payload::Rest, viewer.id)
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(discue.body["api_key"]["last_used_at"], first);

    // Used again within the minute: nothing is written.
    for payload in PAYLOADS {
        let reply = Call::get(payload, viewer.id)
            .api_key(&secret)
            .send(&app)
            .await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(stamp(&app, key_address(&viewer)).await, Some(first));
    assert_eq!(stamp(&app, credential_address(&secret)).await, Some(first));

    // A minute later, the next use is recorded.
    let old = first - 61_000;
    set_stamp(&app, key_address(&viewer), old).await;
    set_stamp(&app, credential_address(&secret), old).await;
    let before = Utc::now().timestamp_millis();
    let reply = Call::list(Payload::Rest).api_key(&secret).send(&app).await;
    assert_eq!(reply.status, 200);
    let second = stamp(&app, key_address(&viewer)).await.unwrap();
    assert!(second >= before, "{second} {before}");
    assert_eq!(stamp(&app, credential_address(&secret)).await, Some(second));
}

#[tokio::test]
async fn a_refused_authentication_records_nothing_and_a_403_still_counts_as_a_use() {
    let app = app().await;
    let org = org();
    let (disabled, off) = create(&app, new_key(&org, "off")).await;
    assert!(set_state(&app, &org, disabled.id, KeyState::Disabled).await);
    Call::list(Payload::Http)
        .bearer(&off)
        .send(&app)
        .await
        .problem(401);
    assert_eq!(stamp(&app, key_address(&disabled)).await, None);

    let mut new = new_key(&org, "calls");
    new.access = restricted(&[Permission::CallsView]);
    let (calls, secret) = create(&app, new).await;
    Call::list(Payload::Http)
        .bearer(&secret)
        .send(&app)
        .await
        .problem(403);
    assert!(stamp(&app, key_address(&calls)).await.is_some());
}

#[tokio::test]
async fn recording_a_use_never_recreates_a_deleted_key() {
    use apikeys::store::CredentialStore;
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "gone")).await;
    assert!(delete(&app, &org, key.id).await);
    let now = Utc::now();
    let wrote = app
        .store
        .record_use(
            &org,
            key.id,
            &secret.hash(),
            now,
            now - chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert!(!wrote);
    // The audit events of the key stay, by design.
    let left: Vec<_> = scan(&app)
        .await
        .into_iter()
        .filter(|item| !item.contains_key("action"))
        .collect();
    assert_eq!(left.len(), 1, "only the key count: {left:?}");
}
