//! A key's IP allow-list (`allowed_cidrs`) over HTTP, on both API Gateway payloads against
//! DynamoDB Local: verify's `FORBIDDEN` for a `client_ip` outside the list or absent (IPv4,
//! IPv6, a range's first and last addresses and the ones just outside), its place among the
//! codes and that it spends nothing; the API's own use checked against the gateway's source
//! address (never X-Forwarded-For); the list's 422s; the authority rule's "reach further";
//! and no read added to verify for either field.

use apikeys::allow::AllowList;
use apikeys::key::{KeyState, Permission};
use apikeys::secret::Secret;
use apikeys_tests::capacity::Proxy;
use apikeys_tests::*;
use serde_json::{Value, json};

fn listed(org: &apikeys::key::OrgId, name: &str, cidrs: &[&str]) -> apikeys::write::NewKey {
    let mut new = new_key(org, name);
    new.allowed_cidrs = Some(AllowList::parse(cidrs).unwrap());
    new
}

fn verify(p: Payload, secret: &Secret, client_ip: Option<&str>, caller: &Secret) -> Call {
    let mut body = json!({"key": secret.expose()});
    if let Some(ip) = client_ip {
        body["client_ip"] = json!(ip);
    }
    Call::verify(p, &body).bearer(caller)
}

#[tokio::test]
async fn verify_is_forbidden_outside_the_list_and_without_a_client_ip() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let (_, v4v6) = create(&app, listed(&org, "lan", &["10.0.0.0/8", "2001:db8::/32"])).await;
    let (_, open) = create(&app, new_key(&org, "open")).await;
    for p in PAYLOADS {
        for (ip, code) in [
            (Some("10.0.0.0"), "VALID"),
            (Some("10.255.255.255"), "VALID"),
            (Some("9.255.255.255"), "FORBIDDEN"),
            (Some("11.0.0.0"), "FORBIDDEN"),
            (Some("2001:db8::"), "VALID"),
            (Some("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), "VALID"),
            (Some("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), "FORBIDDEN"),
            (Some("2001:db9::"), "FORBIDDEN"),
            (Some("::ffff:10.1.2.3"), "VALID"),
            (None, "FORBIDDEN"),
        ] {
            let reply = verify(p, &v4v6, ip, &caller).send(&app).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.body["code"], code, "{p:?} {ip:?}: {}", reply.body);
            assert_eq!(reply.body["valid"], code == "VALID");
            assert_eq!(
                reply.body["key"]["allowed_cidrs"],
                json!(["10.0.0.0/8", "2001:db8::/32"])
            );
        }
        for ip in [None, Some("203.0.113.9")] {
            let reply = verify(p, &open, ip, &caller).send(&app).await;
            assert_eq!(reply.body["code"], "VALID", "no list allows any address");
        }
        for bad in [
            json!("10.0.0.300"),
            json!("10.0.0.0/8"),
            json!(42),
            json!(""),
        ] {
            let reply = Call::verify(p, &json!({"key": v4v6.expose(), "client_ip": bad}))
                .bearer(&caller)
                .send(&app)
                .await;
            let detail = reply.problem(422);
            assert_eq!(reply.body["parameter"], "client_ip", "{bad}: {detail}");
        }
    }
}

#[tokio::test]
async fn forbidden_comes_after_expired_and_before_permissions_and_spends_nothing() {
    let app = app().await;
    let org = org();
    let caller = admin(&app, &org).await;
    let cidrs = &["192.0.2.0/24"];
    let (off, off_secret) = create(&app, listed(&org, "off", cidrs)).await;
    assert!(set_state(&app, &org, off.id, KeyState::Disabled).await);
    let mut narrow = listed(&org, "narrow", cidrs);
    narrow.access = restricted(&[Permission::CallsView]);
    let (_, narrow_secret) = create(&app, narrow).await;
    let mut metered = listed(&org, "metered", cidrs);
    metered.quota = serde_json::from_value(json!({"credits": {"remaining": 5}})).unwrap();
    let (metered, metered_secret) = create(&app, metered).await;
    for p in PAYLOADS {
        let reply = verify(p, &off_secret, Some("198.51.100.1"), &caller)
            .send(&app)
            .await;
        assert_eq!(reply.body["code"], "DISABLED");
        let reply = Call::verify(
            p,
            &json!({"key": narrow_secret.expose(), "permissions": ["billing.view"],
                    "client_ip": "198.51.100.1"}),
        )
        .bearer(&caller)
        .send(&app)
        .await;
        assert_eq!(
            reply.body["code"], "FORBIDDEN",
            "before INSUFFICIENT_PERMISSIONS"
        );
        let reply = Call::verify(
            p,
            &json!({"key": narrow_secret.expose(), "permissions": ["billing.view"],
                    "client_ip": "192.0.2.1"}),
        )
        .bearer(&caller)
        .send(&app)
        .await;
        assert_eq!(reply.body["code"], "INSUFFICIENT_PERMISSIONS");
        for _ in 0..3 {
            let reply = verify(p, &metered_secret, Some("198.51.100.1"), &caller)
                .send(&app)
                .await;
            assert_eq!(reply.body["code"], "FORBIDDEN", "{}", reply.body);
        }
    }
    let got = Call::get(Payload::Http, metered.id)
        .bearer(&caller)
        .send(&app)
        .await;
    assert_eq!(
        got.body["credits"]["remaining"], 5,
        "FORBIDDEN spends nothing"
    );
    let reply = verify(Payload::Http, &metered_secret, Some("192.0.2.255"), &caller)
        .send(&app)
        .await;
    assert_eq!(reply.body["code"], "VALID");
    assert_eq!(reply.body["credits"]["remaining"], 4);
}

#[tokio::test]
async fn the_apis_own_use_is_checked_against_the_gateways_source_address() {
    let app = app().await;
    let org = org();
    let (_, caller) = create(
        &app,
        listed(&org, "office", &["203.0.113.0/24", "2001:db8::/48"]),
    )
    .await;
    let (key, _) = create(&app, new_key(&org, "target")).await;
    let missing = apikeys::key::KeyId::generate();
    for p in PAYLOADS {
        for ip in ["203.0.113.0", "203.0.113.255", "2001:db8:0:ffff::1"] {
            let reply = Call::get(p, key.id)
                .bearer(&caller)
                .from_ip(ip)
                .send(&app)
                .await;
            assert_eq!(reply.status, 200, "{p:?} {ip}: {}", reply.body);
        }
        // A forged X-Forwarded-For from inside the list takes nothing away either.
        let reply = Call::get(p, key.id)
            .header("X-Forwarded-For", "198.51.100.1")
            .bearer(&caller)
            .from_ip("203.0.113.9")
            .send(&app)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mut problems: Vec<Value> = Vec::new();
        for call in [
            Call::get(p, key.id),
            Call::get(p, missing),
            Call::list(p),
            Call::get(p, key.id).header("X-Forwarded-For", "203.0.113.7"),
            Call::verify(
                p,
                &json!({"key": caller.expose(), "client_ip": "203.0.113.7"}),
            ),
        ] {
            for ip in ["203.0.112.255", "203.0.114.0", "2001:db8:1::1"] {
                let reply = call.clone().bearer(&caller).from_ip(ip).send(&app).await;
                let detail = reply.problem(403).to_owned();
                assert!(detail.contains("allow-list"), "{detail}");
                assert!(
                    !detail.contains("203.0.113") && !detail.contains("2001:db8"),
                    "{detail}"
                );
                let mut body = reply.body.clone();
                body["request_id"] = Value::Null;
                problems.push(body);
            }
        }
        problems.dedup();
        assert_eq!(
            problems.len(),
            1,
            "one problem for every request: {problems:?}"
        );
    }
}

#[tokio::test]
async fn bad_lists_are_a_422_naming_allowed_cidrs_and_a_bare_address_is_its_own_network() {
    let app = app().await;
    let org = org();
    let admin = admin(&app, &org).await;
    let (key, _) = create(&app, new_key(&org, "target")).await;
    let many: Vec<String> = (0..51).map(|i| format!("10.0.{i}.0/24")).collect();
    for p in PAYLOADS {
        for (list, says) in [
            (
                json!(["10.0.0.1/8"]),
                "host bits set: its network is 10.0.0.0/8",
            ),
            (json!(["2001:db8::1/32"]), "its network is 2001:db8::/32"),
            (json!(many), "at most 50"),
            (json!([]), "1 to 50"),
            (json!(["10.0.0.0/8", "10.0.0.0/8"]), "listed twice"),
            (json!(["intranet"]), "not an IPv4 or IPv6 CIDR"),
            (json!([10]), "must be a CIDR string"),
            (json!("10.0.0.0/8"), "must be an array"),
        ] {
            let create = Call::create(
                p,
                json!({"name": "x", "restricted": false, "allowed_cidrs": list}),
            )
            .bearer(&admin)
            .send(&app)
            .await;
            let detail = create.problem(422).to_owned();
            assert_eq!(create.body["parameter"], "allowed_cidrs", "{list}");
            assert!(detail.contains(says), "{p:?} {list}: {detail}");
            let patch = Call::update(p, key.id, json!({ "allowed_cidrs": list }))
                .bearer(&admin)
                .send(&app)
                .await;
            patch.problem(422);
            assert_eq!(patch.body["parameter"], "allowed_cidrs", "{list}");
        }
        let bare = Call::create(
            p,
            json!({"name": "x", "restricted": false, "allowed_cidrs": ["10.0.0.1", "2001:db8::1", "10.1.0.0/16"]}),
        )
        .bearer(&admin)
        .send(&app)
        .await;
        assert_eq!(bare.status, 201, "{}", bare.body);
        assert_eq!(
            bare.body["allowed_cidrs"],
            json!(["10.0.0.1/32", "2001:db8::1/128", "10.1.0.0/16"])
        );
        let id = bare.body["id"].as_str().unwrap().to_owned();
        let cleared = Call::update(p, &id, json!({"allowed_cidrs": null}))
            .bearer(&admin)
            .send(&app)
            .await;
        assert!(cleared.body["allowed_cidrs"].is_null(), "{}", cleared.body);
        let events = Call::key_events(p, &id).bearer(&admin).send(&app).await;
        let change = events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "key.updated")
            .map(|e| e["changes"]["allowed_cidrs"].clone());
        assert_eq!(
            change,
            Some(json!({"from": ["10.0.0.1/32", "2001:db8::1/128", "10.1.0.0/16"], "to": null}))
        );
    }
}

#[tokio::test]
async fn a_caller_with_a_list_cannot_reach_further_and_narrowing_is_open() {
    let app = app().await;
    let org = org();
    let (_, caller) = create(&app, listed(&org, "office admin", &["10.0.0.0/8"])).await;
    let (other, _) = create(&app, listed(&org, "partner", &["192.0.2.0/24"])).await;
    for p in PAYLOADS {
        let send = |call: Call| {
            let app = &app;
            let caller = &caller;
            async move { call.bearer(caller).from_ip("10.1.2.3").send(app).await }
        };
        let body =
            |list: Value| json!({"name": "made", "restricted": false, "allowed_cidrs": list});
        for list in [Value::Null, json!(["11.0.0.0/8"]), json!(["10.0.0.0/7"])] {
            let reply = send(Call::create(p, body(list.clone()))).await;
            let detail = reply.problem(403).to_owned();
            assert_eq!(reply.body["parameter"], "allowed_cidrs", "{list}: {detail}");
            assert!(
                !detail.contains("10.0.0.0"),
                "the caller's list is not shown: {detail}"
            );
        }
        let made = send(Call::create(p, body(json!(["10.1.0.0/16"])))).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let id = made.body["id"].as_str().unwrap().to_owned();
        // Widening within its own list is open; past it, or removing the list, is not.
        let wider = send(Call::update(
            p,
            &id,
            json!({"allowed_cidrs": ["10.0.0.0/9", "10.128.0.0/9"]}),
        ))
        .await;
        assert_eq!(wider.status, 200, "{}", wider.body);
        for list in [Value::Null, json!(["10.0.0.0/8", "11.0.0.1"])] {
            let reply = send(Call::update(p, &id, json!({ "allowed_cidrs": list }))).await;
            reply.problem(403);
            assert_eq!(reply.body["parameter"], "allowed_cidrs", "{list}");
        }
        // Another key's list, outside the caller's: narrowing it is open, widening it back
        // is not.
        let narrowed = send(Call::update(
            p,
            other.id,
            json!({"allowed_cidrs": ["192.0.2.0/25"]}),
        ))
        .await;
        assert_eq!(narrowed.status, 200, "{}", narrowed.body);
        let back = send(Call::update(
            p,
            other.id,
            json!({"allowed_cidrs": ["192.0.2.0/24"]}),
        ))
        .await;
        back.problem(403);
        let renamed = send(Call::update(
            p,
            other.id,
            json!({"name": "partner, renamed"}),
        ))
        .await;
        assert_eq!(
            renamed.status, 200,
            "a change that widens nothing: {}",
            renamed.body
        );
    }
}

/// What one verify of a fresh key asks DynamoDB, by operation.
async fn verify_calls(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    proxy: &Proxy,
    caller: &Secret,
    secret: &Secret,
) -> Vec<String> {
    proxy.take();
    let reply = verify(Payload::Http, secret, Some("10.0.0.1"), caller)
        .send(app)
        .await;
    assert_eq!(reply.body["code"], "VALID", "{}", reply.body);
    let mut ops: Vec<String> = proxy
        .take()
        .iter()
        .filter(|c| c.op != "UpdateItem")
        .map(|c| c.op.clone())
        .collect();
    ops.sort();
    ops
}

#[tokio::test]
async fn meta_and_an_allow_list_add_no_read_to_verify() {
    let real = app().await;
    let org = org();
    let caller = admin(&real, &org).await;
    let (_, plain) = create(&real, new_key(&org, "plain")).await;
    let mut both = listed(&org, "both", &["10.0.0.0/8"]);
    both.meta = apikeys::meta::Meta::new(&json!({"tenant": "t-1", "x": "y".repeat(3000)})).unwrap();
    let (_, both) = create(&real, both).await;
    let proxy = Proxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    let plain_calls = verify_calls(&app, &proxy, &caller, &plain).await;
    let both_calls = verify_calls(&app, &proxy, &caller, &both).await;
    assert!(!plain_calls.is_empty());
    assert_eq!(
        plain_calls, both_calls,
        "the same reads, whatever the key carries"
    );
}
