//! Each write reads the key once: a PATCH, a roll and a conditional delete, through the
//! handlers on DynamoDB Local, make exactly one read of the key item (a strongly consistent
//! GetItem) before their transaction. Counted with the recording proxy, which sees every
//! DynamoDB request the handlers make.

use apikeys_tests::capacity::{Call as DynamoCall, Proxy};
use apikeys_tests::*;
use serde_json::json;

/// The GetItems of `id`'s key item among `calls`.
fn key_reads(calls: &[DynamoCall], id: impl std::fmt::Display) -> usize {
    let sk = format!("KEY#{id}");
    calls
        .iter()
        .filter(|c| c.op == "GetItem")
        .filter(|c| c.request["Key"]["sk"]["S"].as_str() == Some(sk.as_str()))
        .count()
}

/// The transactions among `calls`.
fn transactions(calls: &[DynamoCall]) -> usize {
    calls
        .iter()
        .filter(|c| c.op == "TransactWriteItems")
        .count()
}

#[tokio::test]
async fn a_patch_a_roll_and_a_conditional_delete_each_read_the_key_once() {
    let real = app().await;
    let org = org();
    let admin = admin(&real, &org).await;
    let (key, _) = create(&real, new_key(&org, "read once")).await;
    let proxy = Proxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    let p = Payload::Http;
    let tag = |reply: &Reply| reply.header("etag").expect("an ETag").to_owned();

    let got = Call::get(p, key.id).bearer(&admin).send(&app).await;
    assert_eq!(got.status, 200, "{}", got.body);
    proxy.take();
    let patch = Call::update(p, key.id, json!({"name": "renamed"}))
        .header("If-Match", tag(&got))
        .bearer(&admin);
    let patched = patch.send(&app).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let calls = proxy.take();
    assert_eq!(
        (key_reads(&calls, key.id), transactions(&calls)),
        (1, 1),
        "PATCH: {calls:#?}"
    );

    let roll = Call::roll(p, key.id, Some(json!({"grace_period_seconds": 60})));
    let rolled = roll
        .header("If-Match", tag(&patched))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let calls = proxy.take();
    assert_eq!(
        (key_reads(&calls, key.id), transactions(&calls)),
        (1, 1),
        "roll: {calls:#?}"
    );

    // A roll's answer carries the secret and no ETag: the key's tag comes from a GET.
    let fresh = Call::get(p, key.id).bearer(&admin).send(&app).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    proxy.take();
    let delete = Call::delete(p, key.id)
        .header("If-Match", tag(&fresh))
        .bearer(&admin);
    let deleted = delete.send(&app).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let calls = proxy.take();
    assert_eq!(
        (key_reads(&calls, key.id), transactions(&calls)),
        (1, 1),
        "DELETE: {calls:#?}"
    );
    proxy.stop();
}
