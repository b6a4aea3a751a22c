//! Owners: a key may name an `owner_id`, the organization's own id for whom the key is for.
//! Create, GET, PATCH, verify and the list filter `owner_id` (read from the `by-owner`
//! index) over HTTP on both payloads, and an owner id scoped to its organization.

use apikeys::App;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use serde_json::{Value, json};

use crate::http_writes::all_events;

async fn create_owned(
    app: &App<DynamoStore>,
    payload: Payload,
    admin: &Secret,
    name: &str,
    owner: Option<&str>,
) -> Value {
    let mut body = json!({"name": name, "permissions": []});
    if let Some(o) = owner {
        body["owner_id"] = json!(o);
    }
    let reply = Call::create(payload, body).bearer(admin).send(app).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// Every id `owner_id=<owner>` lists for `admin`, walked `limit` at a time through the
/// cursors, with `extra` filters.
async fn listed(
    app: &App<DynamoStore>,
    payload: Payload,
    admin: &Secret,
    owner: &str,
    extra: &[(&str, &str)],
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut call = Call::list(payload)
            .query("owner_id", owner)
            .query("limit", 2);
        for (k, v) in extra {
            call = call.query(k, v);
        }
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let reply = call.bearer(admin).send(app).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        for k in reply.body["data"].as_array().unwrap() {
            assert_eq!(k["owner_id"], json!(owner), "a listed key shows its owner");
        }
        ids.extend(reply.ids());
        match reply.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_key_names_its_owner_on_create_get_verify_and_patch_and_null_removes_it() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let admin = admin(&app, &org).await;
        let created = create_owned(&app, payload, &admin, "k", Some("cus_42")).await;
        assert_eq!(created["owner_id"], "cus_42");
        let id = created["id"].as_str().unwrap().to_owned();
        let got = Call::get(payload, &id).bearer(&admin).send(&app).await;
        assert_eq!(got.body["owner_id"], "cus_42");

        let verified = Call::verify(payload, &json!({"key": created["secret"]}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(verified.body["code"], "VALID", "{}", verified.body);
        assert_eq!(verified.body["owner_id"], "cus_42");
        assert_eq!(verified.body["key"]["owner_id"], "cus_42");

        let moved = Call::update(payload, &id, json!({"owner_id": "cus_43"}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(moved.body["owner_id"], "cus_43");
        let removed = Call::update(payload, &id, json!({"owner_id": null}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(removed.body["owner_id"], Value::Null);
        let verified = Call::verify(payload, &json!({"key": created["secret"]}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(verified.body.get("owner_id").is_none(), "{}", verified.body);

        let events = all_events(&app, payload, &admin, Some(&id)).await;
        let owners: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == "key.updated")
            .map(|e| &e["changes"]["owner_id"])
            .collect();
        assert_eq!(
            owners,
            [
                &json!({"from": "cus_43", "to": null}),
                &json!({"from": "cus_42", "to": "cus_43"}),
            ]
        );
        let created_event = events
            .iter()
            .find(|e| e["action"] == "key.created")
            .unwrap();
        assert_eq!(
            created_event["changes"]["owner_id"],
            json!({"from": null, "to": "cus_42"})
        );
    }
}

#[tokio::test]
async fn owner_id_lists_exactly_the_owners_keys_through_its_cursors_and_with_other_filters() {
    let app = app().await;
    for payload in PAYLOADS {
        let org = org();
        let admin = admin(&app, &org).await;
        let mut mine = Vec::new();
        for i in 0..5 {
            let owner = if i % 2 == 0 { "acme" } else { "globex" };
            let k = create_owned(&app, payload, &admin, &format!("k{i}"), Some(owner)).await;
            if owner == "acme" {
                mine.push(k["id"].as_str().unwrap().to_owned());
            }
        }
        create_owned(&app, payload, &admin, "nobody's", None).await;
        let mut newest_first = mine.clone();
        newest_first.reverse();
        assert_eq!(
            listed(&app, payload, &admin, "acme", &[]).await,
            newest_first
        );
        assert_eq!(
            listed(&app, payload, &admin, "acme", &[("order", "asc")]).await,
            mine
        );
        // Combined with a filter the index does not serve: applied to the owner's keys.
        let disabled = Call::update(payload, &mine[1], json!({"status": "disabled"}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(disabled.status, 200);
        assert_eq!(
            listed(&app, payload, &admin, "acme", &[("status", "disabled")]).await,
            [mine[1].clone()]
        );
        assert!(
            listed(&app, payload, &admin, "initech", &[])
                .await
                .is_empty()
        );
        // Moving a key to another owner moves it between the owners' lists.
        let moved = Call::update(payload, &mine[0], json!({"owner_id": "initech"}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(moved.status, 200);
        assert_eq!(
            listed(&app, payload, &admin, "initech", &[]).await,
            [mine[0].clone()]
        );
        assert_eq!(
            listed(&app, payload, &admin, "acme", &[]).await,
            [mine[2].clone(), mine[1].clone()]
        );
    }
}

#[tokio::test]
async fn a_bad_owner_id_is_422_naming_it_on_create_patch_and_list() {
    let app = app().await;
    let long = "o".repeat(129);
    for payload in PAYLOADS {
        let org = org();
        let admin = admin(&app, &org).await;
        for bad in [json!(long), json!(""), json!(7), json!("a\nb")] {
            let reply = Call::create(
                payload,
                json!({"name": "k", "permissions": [], "owner_id": bad}),
            )
            .bearer(&admin)
            .send(&app)
            .await;
            reply.problem(422);
            assert_eq!(reply.body["parameter"], "owner_id", "{}", reply.body);
        }
        let k = create_owned(&app, payload, &admin, "k", None).await;
        let id = k["id"].as_str().unwrap();
        let reply = Call::update(payload, id, json!({"owner_id": long}))
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "owner_id");
        let reply = Call::list(payload)
            .query("owner_id", &long)
            .bearer(&admin)
            .send(&app)
            .await;
        reply.problem(422);
        assert_eq!(reply.body["parameter"], "owner_id");
        // Page numbers count all of the organization's keys: not an owner's.
        let reply = Call::list(payload)
            .query("owner_id", "cus_1")
            .query("page", 1)
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(reply.problem(422).contains("filters"), "{}", reply.body);
        assert_eq!(reply.body["parameter"], "page");
        // 128 characters, any of them, are one owner id.
        let longest = "é".repeat(128);
        let ok = create_owned(&app, payload, &admin, "k", Some(&longest)).await;
        assert_eq!(ok["owner_id"], json!(longest));
    }
}

#[tokio::test]
async fn two_organizations_with_the_same_owner_id_never_see_each_others_keys() {
    let app = app().await;
    let (a, b) = (org(), org());
    let (a_admin, b_admin) = (admin(&app, &a).await, admin(&app, &b).await);
    let payload = Payload::Http;
    let a_key = create_owned(&app, payload, &a_admin, "a", Some("shared")).await;
    let b_key = create_owned(&app, payload, &b_admin, "b", Some("shared")).await;
    assert_eq!(
        listed(&app, payload, &a_admin, "shared", &[]).await,
        [a_key["id"].as_str().unwrap()]
    );
    assert_eq!(
        listed(&app, Payload::Rest, &b_admin, "shared", &[]).await,
        [b_key["id"].as_str().unwrap()]
    );
}
