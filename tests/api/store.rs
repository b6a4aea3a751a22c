//! The domain's writes on DynamoDB, as the fixtures and the CLI make them: create, disable,
//! enable, delete.

use apikeys::key::{KeyId, KeyState};
use apikeys::secret::Secret;
use apikeys::store::{CredentialStore, KeyReader};
use apikeys_tests::*;
use aws_sdk_dynamodb::types::AttributeValue;

#[tokio::test]
async fn a_created_key_is_stored_with_its_secrets_hash_only() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "k")).await;
    assert_eq!(Secret::parse(secret.expose()), Ok(secret.clone()));
    assert_eq!(key.last_four, secret.expose()[secret.expose().len() - 4..]);
    assert_eq!(key.id.created_at(), Some(key.created));

    // Nothing in the table holds the secret itself.
    let items = scan(&app).await;
    let dump = format!("{items:?}");
    assert!(!dump.contains(secret.expose()));
    assert!(dump.contains(secret.hash().as_str()));
    assert_eq!(
        items.len(),
        4,
        "the key item, its credential, the organization's key count and the event"
    );

    let found = app
        .store
        .find_credential(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.org, found.key_id), (org.clone(), key.id));
    assert_eq!(app.store.get_key(&org, key.id).await.unwrap(), Some(key));
}

#[tokio::test]
async fn disabling_reaches_the_credential_and_deleting_removes_both_items() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "k")).await;
    assert!(set_state(&app, &org, key.id, KeyState::Disabled).await);
    let found = app
        .store
        .find_credential(&secret.hash())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.state, KeyState::Disabled);
    assert!(delete(&app, &org, key.id).await);
    assert!(
        app.store
            .find_credential(&secret.hash())
            .await
            .unwrap()
            .is_none()
    );
    assert!(app.store.get_key(&org, key.id).await.unwrap().is_none());
    // Only the organization's key count (one or two shards: +1 and -1), summing to zero,
    // and the three events are left.
    let left = scan(&app).await;
    let events = left
        .iter()
        .filter(|i| matches!(i.get("sk"), Some(AttributeValue::S(s)) if s.starts_with("EVENT#")))
        .count();
    assert_eq!(events, 3, "{left:?}");
    assert!(
        left.iter().all(|i| matches!(i.get("sk"),
            Some(AttributeValue::S(s)) if s.starts_with("EVENT#") || s.starts_with("COUNT#"))),
        "{left:?}"
    );
    assert_eq!(app.store.key_count(&org).await.unwrap(), 0);
}

#[tokio::test]
async fn writes_to_a_missing_key_or_another_organizations_key_report_false() {
    let app = app().await;
    let (a, b) = (org(), org());
    let (key, _) = create(&app, new_key(&a, "k")).await;
    assert!(!set_state(&app, &b, key.id, KeyState::Disabled).await);
    assert!(!delete(&app, &b, key.id).await);
    assert!(!delete(&app, &a, KeyId::generate()).await);
    assert_eq!(
        app.store.get_key(&a, key.id).await.unwrap().unwrap().state,
        KeyState::Active
    );
}

#[tokio::test]
async fn a_full_page_of_the_largest_keys_fits_in_one_query_response() {
    use aws_sdk_dynamodb::types::AttributeValue;

    let app = app().await;
    // The longest organization id (64 characters) lengthens every key item's partition key,
    // its creator index key and its organization attribute.
    let org = longest_org();
    assert_eq!(org.as_str().len(), 64);
    // 1,001 keys (a page of 1,000 plus the one that tells has_more), each as large as a key
    // can be: the longest name and every permission.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..1001 {
        let store = app.store.clone();
        let new = largest_key(&org, i);
        set.spawn(async move { apikeys::write::create_key(&store, new).await.unwrap() });
        if set.len() >= 32 {
            set.join_next().await;
        }
    }
    set.join_all().await;

    let out = app
        .store
        .client()
        .query()
        .table_name(app.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("ORG#{org}")))
        .limit(1001)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.count(),
        1001,
        "DynamoDB's 1 MB limit cut the page short"
    );
}
