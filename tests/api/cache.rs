//! The caller cache against DynamoDB Local: a cached caller is served without reading its
//! credential, and once the entry is older than the TTL the credential is read again.

use std::time::Duration;

use apikeys::key::KeyState;
use apikeys_tests::*;
use aws_sdk_dynamodb::types::AttributeValue;

const TTL: Duration = Duration::from_secs(3);

async fn status<S: apikeys::store::KeyReader + apikeys::store::CredentialStore>(
    app: &apikeys::App<S>,
    call: &Call,
) -> u16 {
    apikeys::http::get_key(app, call.request())
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_cached_caller_needs_no_credential_read_and_an_expired_entry_is_read_again() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "admin")).await;
    let (client, table) = (app.store.client().clone(), app.store.table().to_owned());
    let app = app.with_caller_cache(TTL);
    let call = Call::get(Payload::Http, key.id).bearer(&secret);
    assert_eq!(status(&app, &call).await, 200);

    // Delete the credential item behind the cache's back: only a request that reads it can
    // notice.
    client
        .delete_item()
        .table_name(&table)
        .key(
            "pk",
            AttributeValue::S(format!("SECRET#{}", secret.hash().as_str())),
        )
        .key("sk", AttributeValue::S("SECRET".into()))
        .send()
        .await
        .expect("delete the credential item");
    assert_eq!(status(&app, &call).await, 200, "served from the cache");

    tokio::time::sleep(TTL).await;
    assert_eq!(
        status(&app, &call).await,
        401,
        "the expired entry was read again"
    );
}

#[tokio::test]
async fn a_key_disabled_while_its_caller_is_cached_is_refused_within_the_ttl() {
    let app = app().await;
    let org = org();
    let (key, secret) = create(&app, new_key(&org, "admin")).await;
    let app = app.with_caller_cache(TTL);
    let call = Call::get(Payload::Rest, key.id).api_key(&secret);
    assert_eq!(status(&app, &call).await, 200);
    // Writes do not go through the cache (only authentication does): a function that
    // disables a key learns of it as the others do, when the cached entry expires.
    apikeys::write::set_state(
        &app.store,
        &policy(),
        &ctx(),
        &org,
        key.id,
        KeyState::Disabled,
    )
    .await
    .expect("disable");
    assert_eq!(status(&app, &call).await, 200, "the documented window");
    tokio::time::sleep(TTL).await;
    assert_eq!(status(&app, &call).await, 401);
}
