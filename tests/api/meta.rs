//! A key's `meta` over HTTP, on both API Gateway payloads against DynamoDB Local: written by
//! create and by PATCH as a merge patch, shown by get, list (both read paths) and verify,
//! recorded in the audit trail, refused out of bounds with a 422 naming it, and never
//! written to a log line even when its members look like secrets.

use apikeys::secret::Secret;
use apikeys_tests::*;
use serde_json::{Value, json};

/// A create body with this meta.
fn with_meta(name: &str, meta: Value) -> Value {
    json!({"name": name, "restricted": false, "meta": meta})
}

#[tokio::test]
async fn meta_round_trips_through_create_patch_get_list_and_verify() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    for p in PAYLOADS {
        let meta = json!({"plan": "pro", "limits": {"a": 1, "b": 2}, "tags": ["x"], "n": null});
        let created = Call::create(p, with_meta("meta", meta.clone()))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(created.status, 201, "{p:?}: {}", created.body);
        assert_eq!(
            created.body["meta"], meta,
            "stored as given, null members too"
        );
        assert!(created.body["allowed_cidrs"].is_null());
        let id = created.body["id"].as_str().unwrap().to_owned();
        let secret = created.body["secret"].as_str().unwrap().to_owned();

        let patch = json!({"meta": {"plan": null, "limits": {"b": null, "c": 3}, "tags": ["y"]}});
        let patched = Call::update(p, &id, patch).bearer(&admin).send(&app).await;
        assert_eq!(patched.status, 200, "{p:?}: {}", patched.body);
        let merged = json!({"limits": {"a": 1, "c": 3}, "tags": ["y"], "n": null});
        assert_eq!(
            patched.body["meta"], merged,
            "merge patch: removed, merged, replaced"
        );

        let got = Call::get(p, &id).bearer(&admin).send(&app).await;
        assert_eq!(got.body["meta"], merged, "{p:?}");
        let listed = Call::list(p).bearer(&admin).send(&app).await;
        let item = listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .expect("the key is listed")
            .clone();
        assert_eq!(item["meta"], merged, "{p:?}: the list");
        let creator = created.body["creator_id"].as_str().unwrap();
        let by_creator = Call::list(p)
            .query("creator_id", creator)
            .bearer(&admin)
            .send(&app)
            .await;
        let item = by_creator.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.as_str())
            .expect("the key is listed by its creator")
            .clone();
        assert_eq!(
            item["meta"], merged,
            "{p:?}: the list from the by-creator index"
        );

        let verified = Call::verify(p, &json!({"key": secret}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(verified.body["code"], "VALID", "{}", verified.body);
        assert_eq!(verified.body["meta"], merged, "{p:?}: verify");
        assert_eq!(verified.body["key"]["meta"], merged);

        let removed = Call::update(p, &id, json!({"meta": null}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(removed.status, 200, "{}", removed.body);
        assert!(removed.body["meta"].is_null(), "{}", removed.body);
        let got = Call::get(p, &id).bearer(&admin).send(&app).await;
        assert!(got.body["meta"].is_null());
        let verified = Call::verify(p, &json!({"key": secret}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(verified.body.get("meta").is_none(), "{}", verified.body);

        let events = Call::key_events(p, &id).bearer(&admin).send(&app).await;
        let updates: Vec<&Value> = events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "key.updated")
            .collect();
        assert!(
            updates
                .iter()
                .any(|e| e["changes"]["meta"] == json!({"from": merged, "to": null})),
            "{p:?}: {}",
            events.body
        );
    }
}

#[tokio::test]
async fn removing_every_member_leaves_no_meta() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let p = Payload::Http;
    let created = Call::create(p, with_meta("m", json!({"a": 1})))
        .bearer(&admin)
        .send(&app)
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let patched = Call::update(p, &id, json!({"meta": {"a": null}}))
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert!(patched.body["meta"].is_null(), "{}", patched.body);
    let empty = Call::create(p, with_meta("e", json!({})))
        .bearer(&admin)
        .send(&app)
        .await;
    assert!(
        empty.body["meta"].is_null(),
        "{{}} is no meta: {}",
        empty.body
    );
}

#[tokio::test]
async fn meta_out_of_bounds_is_a_422_naming_it() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let big = json!({"a": "x".repeat(4096 - 7)});
    let deep = json!({"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": {}}}}}}}}});
    let (key, _) = create(&app, new_key(&org, "target")).await;
    let near = json!({"a": "x".repeat(4096 - 8)});
    for p in PAYLOADS {
        for (meta, says) in [
            (json!([1]), "must be a JSON object"),
            (json!("text"), "must be a JSON object"),
            (json!(3), "must be a JSON object"),
            (big.clone(), "at most 4096 bytes"),
            (deep.clone(), "at most 8 levels"),
        ] {
            let reply = Call::create(p, with_meta("bad", meta.clone()))
                .bearer(&admin)
                .send(&app)
                .await;
            let detail = reply.problem(422).to_owned();
            assert_eq!(reply.body["parameter"], "meta", "{meta}");
            assert!(detail.contains(says), "{p:?} {meta}: {detail}");
            let reply = Call::update(p, key.id, json!({ "meta": meta }))
                .bearer(&admin)
                .send(&app)
                .await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], "meta", "{p:?} PATCH {meta}");
        }
        // The largest meta fits; a patch that grows it past the bound is refused whole.
        let fits = Call::update(p, key.id, json!({ "meta": near }))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(fits.status, 200, "{}", fits.body);
        let grows = Call::update(p, key.id, json!({"meta": {"b": 1}}))
            .bearer(&admin)
            .send(&app)
            .await;
        let detail = grows.problem(422);
        assert!(detail.contains("at most 4096 bytes"), "{detail}");
        assert_eq!(grows.body["parameter"], "meta");
        let got = Call::get(p, key.id).bearer(&admin).send(&app).await;
        assert_eq!(got.body["meta"], near, "nothing written");
        let reset = Call::update(p, key.id, json!({"meta": null}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(reset.status, 200);
    }
}

#[tokio::test]
async fn a_secret_like_meta_member_is_stored_as_given_and_never_logged() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let hidden = Secret::generate().unwrap();
    let name = format!("apk_{}", &hidden.expose()[4..20]);
    let meta = json!({ name.clone(): hidden.expose(), "nested": {"apk_token": hidden.expose()} });
    let capture = LogCapture::default();
    let guard = tracing::subscriber::set_default(capture.subscriber("trace"));
    for p in PAYLOADS {
        let created = Call::create(p, with_meta("secretive", meta.clone()))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["meta"], meta, "stored as given");
        let id = created.body["id"].as_str().unwrap().to_owned();
        let secret = created.body["secret"].as_str().unwrap().to_owned();
        let patched = Call::update(
            p,
            &id,
            json!({"meta": {"nested": {"apk_more": hidden.expose()}}}),
        )
        .bearer(&admin)
        .send(&app)
        .await;
        assert_eq!(patched.status, 200, "{}", patched.body);
        let got = Call::get(p, &id).bearer(&admin).send(&app).await;
        assert_eq!(got.body["meta"][&name], hidden.expose());
        Call::list(p).bearer(&admin).send(&app).await;
        let verified = Call::verify(p, &json!({"key": secret}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(verified.body["meta"][&name], hidden.expose());
        Call::key_events(p, &id).bearer(&admin).send(&app).await;
        // A refused meta that holds the secret: the 422 redacts it, the log holds none.
        let refused = Call::create(p, with_meta("x", json!([hidden.expose()])))
            .bearer(&admin)
            .send(&app)
            .await;
        refused.problem(422);
    }
    drop(guard);
    let text = capture.text();
    assert!(text.contains("served"), "the requests are logged");
    assert_no_leak("the log", &text, std::slice::from_ref(&hidden), false);
    assert!(!text.contains(&name), "a member's name in the log");
}

/// Puts `n` keys of `org` with the largest `meta` straight into the table (as
/// `seed_largest` does), one millisecond apart; their ids in order.
async fn seed_with_largest_meta(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    org: &apikeys::key::OrgId,
    n: usize,
) -> Vec<apikeys::key::KeyId> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let mut ids = Vec::with_capacity(n);
    let mut writes = Vec::with_capacity(n);
    for i in 0..n {
        let secret = Secret::generate().unwrap();
        let mut new = new_key(org, &format!("meta {i:05}"));
        new.id = Some(apikeys::key::KeyId::new_at(
            start + chrono::Duration::milliseconds(i as i64),
        ));
        // 4096 bytes as compact JSON: the largest meta.
        let meta = json!({"i": format!("{i:05}"), "pad": "m".repeat(4096 - 22)});
        new.meta = apikeys::meta::Meta::new(&meta).unwrap();
        assert_eq!(new.meta.as_ref().unwrap().to_json().len(), 4096);
        let key = new.into_record(&secret, start).unwrap();
        ids.push(key.id);
        let item = apikeys::store::dynamo::key_item(&key, &secret.hash()).unwrap();
        let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
        writes.push(WriteRequest::builder().put_request(put).build());
    }
    let table = app.store.table();
    for batch in writes.chunks(25) {
        let mut left = batch.to_vec();
        for _ in 0..20 {
            if left.is_empty() {
                break;
            }
            let out = app
                .store
                .client()
                .batch_write_item()
                .request_items(table, left)
                .send()
                .await
                .expect("BatchWriteItem");
            left = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
        assert!(left.is_empty(), "BatchWriteItem left items unprocessed");
    }
    ids
}

/// 1,000 keys of 5 KB do not fit in one 1 MB Query response: the page follows DynamoDB's
/// LastEvaluatedKey and is still whole, in order, with every key's meta.
#[tokio::test]
async fn a_full_page_of_keys_with_the_largest_meta_is_whole_and_in_order() {
    let app = app().await;
    let org = org();
    let ids = seed_with_largest_meta(&app, &org, 1000).await;
    let (_, admin) = create(&app, new_key(&org, "zz admin")).await;
    let page = Call::list(Payload::Http)
        .query("limit", 1000)
        .query("order", "asc")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let data = page.body["data"].as_array().unwrap();
    let got: Vec<String> = data
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(got, want);
    assert_eq!(page.body["has_more"], true, "the admin key is the 1,001st");
    for (i, k) in data.iter().enumerate() {
        assert_eq!(k["meta"]["i"], format!("{i:05}"));
    }
}
