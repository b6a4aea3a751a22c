//! The authority rule (SECURITY.md, "The authority rule") over HTTP, on both API Gateway
//! payloads against DynamoDB Local: a weak key cannot wake, lengthen or outgrow a stronger
//! one; a short-lived key cannot make itself or anything else permanent; a leaked secret
//! never works again; a roll commits only what it authorized; every report of one of our
//! secrets leaves a trace; and an idempotent roll replays before any precondition.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use apikeys::App;
use apikeys::key::{Access, ApiKey, KeyId, KeyState, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{CredentialStore, KeyWriter, StoredKey};
use apikeys::telemetry::MetricSink;
use apikeys::usage::Recorder;
use apikeys_tests::github::github;
use apikeys_tests::hooked::{Hooked, WriteHook};
use apikeys_tests::*;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::http_writes::{all_events, caller};

/// A key in `org` with `access`, expiring at `expires`, made by the operator.
async fn key(
    app: &App<DynamoStore>,
    org: &OrgId,
    access: Access,
    expires: Option<DateTime<Utc>>,
) -> (ApiKey, Secret) {
    let mut new = new_key(org, "target");
    new.access = access;
    new.expires = expires;
    create(app, new).await
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The problem's `parameter`, after checking its status.
fn refused(reply: &Reply, status: u16) -> (String, Option<String>) {
    let detail = reply.problem(status).to_owned();
    (detail, reply.body["parameter"].as_str().map(str::to_owned))
}

/// Whether `secret` authenticates now (a read of the key list with it).
async fn works(app: &App<DynamoStore>, p: Payload, secret: &Secret) -> bool {
    let reply = Call::list(p).bearer(secret).send(app).await;
    match reply.status {
        200 => true,
        401 | 403 => false,
        s => panic!("{s}: {}", reply.body),
    }
}

#[tokio::test]
async fn a_weak_key_cannot_enable_or_revive_a_stronger_one() {
    use Permission::*;
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (_, weak) = caller(&app, &org, Some(&[ApiKeysUpdate])).await;
        // An unrestricted key the admin disabled, and one that has expired.
        let (off, off_secret) = key(&app, &org, Access::Unrestricted, None).await;
        assert!(set_state(&app, &org, off.id, KeyState::Disabled).await);
        let past = Utc::now() - Duration::minutes(1);
        let (old, old_secret) = key(&app, &org, Access::Unrestricted, Some(past)).await;
        let events_before = all_events(&app, p, &admin, None).await.len();

        let wake = Call::update(p, off.id, json!({"status": "active"}));
        let (detail, _) = refused(&wake.bearer(&weak).send(&app).await, 403);
        assert!(detail.contains("unrestricted"), "{detail}");
        let revive = Call::update(p, old.id, json!({"expires_date": null}));
        refused(&revive.bearer(&weak).send(&app).await, 403);
        // Nor may it disable, rename or delete what it does not hold.
        let (live, _) = key(&app, &org, restricted(&[CallsView, BillingUpdate]), None).await;
        let rename = Call::update(p, live.id, json!({"name": "mine now"}));
        let (detail, _) = refused(&rename.bearer(&weak).send(&app).await, 403);
        assert!(detail.contains("does not hold every"), "{detail}");
        assert!(
            !detail.contains("billing"),
            "the key's access is not told: {detail}"
        );

        assert!(!works(&app, p, &off_secret).await);
        assert!(!works(&app, p, &old_secret).await);
        assert_eq!(
            all_events(&app, p, &admin, None).await.len(),
            events_before + 1,
            "nothing but the fixture's create"
        );
        // The admin holds them, and may.
        let wake = Call::update(p, off.id, json!({"status": "active"}));
        assert_eq!(wake.bearer(&admin).send(&app).await.status, 200);
        assert!(works(&app, p, &off_secret).await);
    }
}

#[tokio::test]
async fn a_short_lived_key_cannot_make_itself_or_any_key_outlive_it() {
    use Permission::*;
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let end = to_millis(Utc::now() + Duration::hours(1));
        // A restricted and an unrestricted key, each expiring in an hour.
        let held = restricted(&[ApiKeysCreate, ApiKeysUpdate, CallsView]);
        for access in [held, Access::Unrestricted] {
            let (me, secret) = key(&app, &org, access, Some(end)).await;
            let forever = Call::update(p, me.id, json!({"expires_date": null}));
            let (detail, parameter) = refused(&forever.bearer(&secret).send(&app).await, 403);
            assert!(
                detail.contains(&end.format("%Y-%m-%dT%H:%M:%S").to_string()),
                "{detail}"
            );
            assert_eq!(parameter.as_deref(), Some("expires_date"));
            let later = Call::update(
                p,
                me.id,
                json!({"expires_date": at(end + Duration::days(1))}),
            );
            refused(&later.bearer(&secret).send(&app).await, 403);
            // It mints no key that never expires, or expires after it.
            for expires in [Value::Null, json!(at(end + Duration::seconds(1)))] {
                let body = json!({"name": "child", "permissions": ["calls.view"], "expires_date": expires});
                let reply = Call::create(p, body).bearer(&secret).send(&app).await;
                let (_, parameter) = refused(&reply, 403);
                assert_eq!(parameter.as_deref(), Some("expires_date"));
            }
            // Within its own life, it may.
            let body =
                json!({"name": "child", "permissions": ["calls.view"], "expires_date": at(end)});
            let child = Call::create(p, body).bearer(&secret).send(&app).await;
            assert_eq!(child.status, 201, "{}", child.body);
            let sooner = Call::update(
                p,
                me.id,
                json!({"expires_date": at(end - Duration::minutes(1))}),
            );
            assert_eq!(sooner.bearer(&secret).send(&app).await.status, 200);
            // It may not roll or enable a permanent key, though it may disable it.
            let (permanent, _) = key(&app, &org, restricted(&[CallsView]), None).await;
            let roll = Call::roll(p, permanent.id, None)
                .bearer(&secret)
                .send(&app)
                .await;
            refused(&roll, 403);
            // Nor widen it: a key that outlives it would hold more once it is gone.
            let widen = if access_is_unrestricted(&secret, &app).await {
                json!({"restricted": false})
            } else {
                json!({"permissions": ["calls.view", "api_keys.create"]})
            };
            let widen = Call::update(p, permanent.id, widen)
                .bearer(&secret)
                .send(&app)
                .await;
            let (_, parameter) = refused(&widen, 403);
            assert_eq!(parameter.as_deref(), Some("permissions"));
            let off = Call::update(p, permanent.id, json!({"status": "disabled"}));
            assert_eq!(off.bearer(&secret).send(&app).await.status, 200);
            let on = Call::update(p, permanent.id, json!({"status": "active"}));
            let (_, parameter) = refused(&on.bearer(&secret).send(&app).await, 403);
            assert_eq!(parameter.as_deref(), Some("status"));
        }
        // A permanent admin may do all of it.
        let body = json!({"name": "forever", "restricted": false});
        assert_eq!(
            Call::create(p, body).bearer(&admin).send(&app).await.status,
            201
        );
    }
}

/// Whether `secret`'s key is unrestricted.
async fn access_is_unrestricted(secret: &Secret, app: &App<DynamoStore>) -> bool {
    let credential = app.store.find_credential(&secret.hash()).await.unwrap();
    credential.expect("a credential").access == Access::Unrestricted
}

/// The stored time of `t`: to the millisecond.
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

fn report(p: Payload, tokens: &[&Secret]) -> Call {
    let entries: Vec<Value> = tokens
        .iter()
        .map(|s| json!({"token": s.expose(), "type": "apikeys_api_key", "url": "https://github.com/o/r", "source": "content"}))
        .collect();
    Call::report(p, Value::from(entries).to_string()).signed(github())
}

fn labels(reply: &Reply) -> Vec<&str> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect()
}

async fn leak_events(app: &App<DynamoStore>, p: Payload, admin: &Secret, id: KeyId) -> usize {
    let reply = Call::key_events(p, id).bearer(admin).send(app).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "key.leaked")
        .count()
}

#[tokio::test]
async fn a_leaked_secret_never_works_again() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (k, leaked) = key(&app, &org, Access::Unrestricted, None).await;
        assert_eq!(
            labels(&report(p, &[&leaked]).send(&app).await),
            ["true_positive"]
        );
        assert!(!works(&app, p, &leaked).await);

        // Not even an unrestricted admin may enable it: roll first.
        let enable = Call::update(p, k.id, json!({"status": "active"}));
        let (detail, parameter) = refused(&enable.bearer(&admin).send(&app).await, 409);
        assert!(detail.contains("roll"), "{detail}");
        assert_eq!(parameter.as_deref(), Some("status"));
        assert!(!works(&app, p, &leaked).await);

        // A roll drops the leaked secret at once, whatever grace it asks for.
        let body = json!({"grace_period_seconds": 604_800});
        let rolled = Call::roll(p, k.id, Some(body))
            .bearer(&admin)
            .send(&app)
            .await;
        assert_eq!(rolled.status, 200, "{}", rolled.body);
        let fresh = Secret::parse(rolled.body["secret"].as_str().unwrap()).unwrap();
        let enable = Call::update(p, k.id, json!({"status": "active"}));
        assert_eq!(enable.bearer(&admin).send(&app).await.status, 200);
        assert!(works(&app, p, &fresh).await);
        assert!(
            !works(&app, p, &leaked).await,
            "the leaked secret had no grace"
        );
        // Reported again, it is nobody's now.
        assert_eq!(
            labels(&report(p, &[&leaked]).send(&app).await),
            ["false_positive"]
        );
    }
}

#[tokio::test]
async fn every_report_of_a_secret_of_ours_leaves_a_trace_whatever_its_keys_status() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        // Disabled by its owner, and expired: neither works, but either could be revived.
        let (off, off_secret) = key(&app, &org, Access::Unrestricted, None).await;
        assert!(set_state(&app, &org, off.id, KeyState::Disabled).await);
        let past = Utc::now() - Duration::minutes(1);
        let (old, old_secret) = key(&app, &org, Access::Unrestricted, Some(past)).await;
        let reply = report(p, &[&off_secret, &old_secret]).send(&app).await;
        assert_eq!(labels(&reply), ["true_positive", "true_positive"]);
        for id in [off.id, old.id] {
            assert_eq!(leak_events(&app, p, &admin, id).await, 1);
            let got = Call::get(p, id).bearer(&admin).send(&app).await;
            assert_eq!(got.body["disabled_reason"], "leaked", "{}", got.body);
        }
        // Reviving either is refused while the secret is its own.
        let enable = Call::update(p, off.id, json!({"status": "active"}));
        refused(&enable.bearer(&admin).send(&app).await, 409);
        let revive = Call::update(p, old.id, json!({"expires_date": null, "status": "active"}));
        refused(&revive.bearer(&admin).send(&app).await, 409);

        // A second secret of a key already revoked: rolled with grace, the first secret
        // reported, then the second.
        let (k, first) = key(&app, &org, Access::Unrestricted, None).await;
        let body = json!({"grace_period_seconds": 3600});
        let rolled = Call::roll(p, k.id, Some(body))
            .bearer(&admin)
            .send(&app)
            .await;
        let second = Secret::parse(rolled.body["secret"].as_str().unwrap()).unwrap();
        assert_eq!(
            labels(&report(p, &[&first]).send(&app).await),
            ["true_positive"]
        );
        assert_eq!(
            labels(&report(p, &[&second]).send(&app).await),
            ["true_positive"]
        );
        assert_eq!(
            leak_events(&app, p, &admin, k.id).await,
            2,
            "one per secret"
        );
        // A replay records nothing twice.
        assert_eq!(
            labels(&report(p, &[&first, &second]).send(&app).await),
            ["true_positive"; 2]
        );
        assert_eq!(leak_events(&app, p, &admin, k.id).await, 2);
        // One roll drops both, and only then may it be enabled.
        refused(
            &Call::update(p, k.id, json!({"status": "active"}))
                .bearer(&admin)
                .send(&app)
                .await,
            409,
        );
        let rolled = Call::roll(p, k.id, None).bearer(&admin).send(&app).await;
        assert_eq!(rolled.status, 200, "{}", rolled.body);
        let on = Call::update(p, k.id, json!({"status": "active"}));
        assert_eq!(on.bearer(&admin).send(&app).await.status, 200);
        assert!(!works(&app, p, &first).await && !works(&app, p, &second).await);
    }
}

#[tokio::test]
async fn an_idempotent_roll_replays_before_its_if_match_is_looked_at() {
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let (k, _) = key(&app, &org, Access::Unrestricted, None).await;
        let etag = Call::get(p, k.id)
            .bearer(&admin)
            .send(&app)
            .await
            .header("etag")
            .unwrap()
            .to_owned();
        let roll = || {
            Call::roll(p, k.id, Some(json!({"grace_period_seconds": 60})))
                .header("If-Match", &etag)
                .header("Idempotency-Key", format!("roll-{}", k.id))
                .bearer(&admin)
        };
        let first = roll().send(&app).await;
        assert_eq!(first.status, 200, "{}", first.body);
        // The key is at a later version now; the retry still gets the first answer.
        let retry = roll().send(&app).await;
        assert_eq!(retry.status, 200, "{}", retry.body);
        assert_eq!(retry.body["secret"], first.body["secret"]);
        // The secret goes again only to a caller that still holds the key: a restricted
        // caller's replay after the key was widened past it is refused.
        let (_, limited) = caller(
            &app,
            &org,
            Some(&[Permission::ApiKeysUpdate, Permission::CallsView]),
        )
        .await;
        let (narrow, _) = key(&app, &org, restricted(&[Permission::CallsView]), None).await;
        let limited_roll = || {
            Call::roll(p, narrow.id, Some(json!({"grace_period_seconds": 60})))
                .header("Idempotency-Key", format!("roll-{}", narrow.id))
                .bearer(&limited)
        };
        assert_eq!(limited_roll().send(&app).await.status, 200);
        let wider = apikeys::write::KeyChange {
            permissions: Some(Some(vec![Permission::CallsView, Permission::BillingView])),
            ..Default::default()
        };
        apikeys::write::update_key(&app.store, &policy(), &ctx(), &org, narrow.id, &wider, None)
            .await
            .unwrap();
        let replay = limited_roll().send(&app).await;
        refused(&replay, 403);
        assert!(replay.body.get("secret").is_none());
        // A key rolling itself idempotently without grace could not authenticate its retry.
        let (_, me) = caller(&app, &org, None).await;
        let self_id = my_id(&app, &me).await;
        let reply = Call::roll(p, self_id, Some(json!({"grace_period_seconds": 0})))
            .header("Idempotency-Key", "self-roll")
            .bearer(&me)
            .send(&app)
            .await;
        let (_, parameter) = refused(&reply, 422);
        assert_eq!(parameter.as_deref(), Some("grace_period_seconds"));
        assert!(works(&app, p, &me).await);
        // Nor by its previous secret, which any roll ends at once, whatever the grace.
        let rolled = Call::roll(p, self_id, Some(json!({"grace_period_seconds": 3600})))
            .bearer(&me)
            .send(&app)
            .await;
        assert_eq!(rolled.status, 200, "{}", rolled.body);
        let reply = Call::roll(p, self_id, Some(json!({"grace_period_seconds": 3600})))
            .header("Idempotency-Key", "self-roll-by-previous")
            .bearer(&me)
            .send(&app)
            .await;
        refused(&reply, 422);
        assert!(works(&app, p, &me).await, "the previous secret still works");
    }
}

/// The id of the key `secret` belongs to.
async fn my_id(app: &App<DynamoStore>, secret: &Secret) -> KeyId {
    app.store
        .find_credential(&secret.hash())
        .await
        .unwrap()
        .expect("a credential")
        .key_id
}

/// A store hook that, at the first transaction the store is asked to commit, makes the key
/// it changes unrestricted first, as an admin's write landing between the roll's read and
/// its commit.
struct Widening {
    widened: AtomicBool,
    keys: Mutex<Vec<KeyId>>,
}

impl WriteHook for Widening {
    async fn before_replace(&self, store: &DynamoStore, before: &StoredKey) {
        if !self.widened.swap(true, Ordering::SeqCst) {
            let key = &before.key;
            let wider = apikeys::write::KeyChange {
                restricted: Some(false),
                ..Default::default()
            };
            apikeys::write::update_key(store, &policy(), &ctx(), &key.org, key.id, &wider, None)
                .await
                .expect("the admin's write lands");
            self.keys.lock().unwrap().push(key.id);
        }
    }
}

#[tokio::test]
async fn a_roll_commits_only_the_key_it_authorized() {
    use Permission::*;
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, limited) = caller(&app, &org, Some(&[ApiKeysUpdate, CallsView])).await;
        let (k, _) = key(&app, &org, restricted(&[CallsView]), None).await;
        let widening = App {
            store: Hooked::with(
                app.store.clone(),
                Widening {
                    widened: AtomicBool::new(false),
                    keys: Mutex::new(Vec::new()),
                },
            ),
            callers: apikeys::cache::CallerCache::off(),
            cursors: app.cursors.clone(),
            usage: Recorder::new(apikeys::usage::WAIT, MetricSink::memory()),
        };
        let req = Call::roll(p, k.id, None).bearer(&limited).request();
        let reply = Reply::from(apikeys::http::roll_key(&widening, &policy(), req).await);
        assert_eq!(
            widening.store.hook.keys.lock().unwrap().as_slice(),
            [k.id],
            "the race ran"
        );
        // The key it read was within it; the key it would have rolled is not.
        let (detail, _) = refused(&reply, 403);
        assert!(detail.contains("unrestricted"), "{detail}");
        assert!(reply.body.get("secret").is_none());
        let now = app.store.key_for_write(&org, k.id).await.unwrap().unwrap();
        assert_eq!(now.key.last_four, k.last_four, "no new secret");
        assert_eq!(now.key.access, Access::Unrestricted);
    }
}

/// A limit as the key object shows it.
fn rate(name: &str, limit: u64, duration_ms: u64) -> Value {
    json!({"name": name, "limit": limit, "duration_ms": duration_ms, "mode": "exact"})
}

/// A restricted key that may create, update and view keys, with these credits and limits.
async fn metered(
    app: &App<DynamoStore>,
    p: Payload,
    admin: &Secret,
    credits: Value,
    ratelimits: Value,
) -> (Value, Secret) {
    let body = json!({
        "name": "metered caller",
        "permissions": ["api_keys.create", "api_keys.update", "api_keys.view", "calls.view"],
        "credits": credits,
        "ratelimits": ratelimits,
    });
    apikeys_tests::quota::create_json(app, p, admin, body).await
}

#[tokio::test]
async fn a_metered_key_cannot_lift_its_own_limits_or_add_to_its_own_credits() {
    use apikeys_tests::quota::{get_json, id_of, remaining};
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let daily = json!({"interval": "daily", "amount": 50});
        let credits = json!({"remaining": 100, "refill": daily});
        let (me, secret) = metered(&app, p, &admin, credits, json!([rate("rps", 10, 1000)])).await;
        let id = id_of(&me);
        let patch = |body: Value| Call::update(p, &id, body).bearer(&secret);
        let refusals = [
            (json!({"ratelimits": null}), "ratelimits"),
            (json!({"ratelimits": [rate("rps", 11, 1000)]}), "ratelimits"),
            (json!({"ratelimits": [rate("rps", 10, 2000)]}), "ratelimits"),
            (
                json!({"ratelimits": [rate("other", 10, 1000)]}),
                "ratelimits",
            ),
            (json!({"credits": null}), "credits"),
            (json!({"credits": {"remaining": 101}}), "credits"),
            (
                json!({"credits": {"refill": {"interval": "daily", "amount": 51}}}),
                "credits",
            ),
        ];
        for (body, field) in refusals {
            let (detail, parameter) = refused(&patch(body.clone()).send(&app).await, 403);
            assert_eq!(parameter.as_deref(), Some(field), "{body}: {detail}");
        }
        let add = Call::adjust(p, &id, &json!({"increment": 1})).bearer(&secret);
        let (_, parameter) = refused(&add.send(&app).await, 403);
        assert_eq!(parameter.as_deref(), Some("credits"));
        // Unchanged, but for the use of it as the caller.
        let mut now = get_json(&app, p, &admin, &id).await;
        now["last_used_date"] = me["last_used_date"].clone();
        assert_eq!(now, me, "unchanged");

        // Taking and tightening stay open to it.
        let take = Call::adjust(p, &id, &json!({"decrement": 10})).bearer(&secret);
        let taken = take.send(&app).await;
        assert_eq!(taken.status, 200, "{}", taken.body);
        assert_eq!(remaining(&taken.body), Some(90));
        // A monthly refill of what came daily is less.
        let monthly = json!({"interval": "monthly", "amount": 50});
        for body in [
            json!({"credits": {"remaining": 80}}),
            json!({"credits": {"refill": monthly}}),
            json!({"ratelimits": [rate("rps", 5, 1000)]}),
            json!({"ratelimits": [rate("rps", 5, 1000), rate("daily", 1000, 86_400_000)]}),
        ] {
            let reply = patch(body.clone()).send(&app).await;
            assert_eq!(reply.status, 200, "{body}: {}", reply.body);
        }
        // Now at 5 per second, 80 credits and 50 a month, it cannot go back to 10, above its
        // 80 credits, or to 50 a day.
        let back = json!({"ratelimits": [rate("rps", 10, 1000), rate("daily", 1000, 86_400_000)]});
        let (_, parameter) = refused(&patch(back).send(&app).await, 403);
        assert_eq!(parameter.as_deref(), Some("ratelimits"));
        let (_, parameter) = refused(
            &patch(json!({"credits": {"remaining": 81}}))
                .send(&app)
                .await,
            403,
        );
        assert_eq!(parameter.as_deref(), Some("credits"));
        let daily = json!({"credits": {"refill": daily}});
        let (_, parameter) = refused(&patch(daily).send(&app).await, 403);
        assert_eq!(parameter.as_deref(), Some("credits"));
        // The admin, unmetered, may.
        let lift = Call::update(p, &id, json!({"ratelimits": null, "credits": null}));
        let lifted = lift.bearer(&admin).send(&app).await;
        assert_eq!(lifted.status, 200, "{}", lifted.body);
        assert!(lifted.body.get("credits").is_none() && lifted.body.get("ratelimits").is_none());
    }
}

#[tokio::test]
async fn a_metered_key_mints_and_grows_no_key_beyond_itself() {
    use Permission::*;
    use apikeys_tests::quota::{create_json, id_of, remaining};
    let app = app().await;
    for p in PAYLOADS {
        let org = org();
        let (_, admin) = caller(&app, &org, None).await;
        let rps = rate("rps", 10, 1000);
        let (_, secret) = metered(
            &app,
            p,
            &admin,
            json!({"remaining": 100}),
            json!([rps.clone()]),
        )
        .await;
        let child = |credits: Value, ratelimits: Value| {
            let body = json!({"name": "child", "permissions": ["calls.view"],
                              "credits": credits, "ratelimits": ratelimits});
            Call::create(p, body).bearer(&secret)
        };
        let fifty = json!({"remaining": 50});
        let refusals = [
            (Value::Null, json!([rate("rps", 5, 1000)]), "credits"),
            (json!({"remaining": 101}), json!([rps.clone()]), "credits"),
            (
                json!({"remaining": 50, "refill": {"interval": "daily", "amount": 1}}),
                json!([rps.clone()]),
                "credits",
            ),
            (fifty.clone(), Value::Null, "ratelimits"),
            (fifty.clone(), json!([rate("rps", 11, 1000)]), "ratelimits"),
            (fifty.clone(), json!([rate("rps", 10, 2000)]), "ratelimits"),
            (
                fifty.clone(),
                json!([rate("other", 10, 1000)]),
                "ratelimits",
            ),
        ];
        for (credits, limits, field) in refusals {
            let reply = child(credits.clone(), limits.clone()).send(&app).await;
            let (detail, parameter) = refused(&reply, 403);
            assert_eq!(
                parameter.as_deref(),
                Some(field),
                "{credits} {limits}: {detail}"
            );
        }
        // Within it: the same or less, and more limits.
        let made = child(fifty.clone(), json!([rps.clone()])).send(&app).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let more = json!([rate("rps", 10, 1000), rate("other", 1, 1000)]);
        let made = child(json!({"remaining": 100}), more).send(&app).await;
        assert_eq!(made.status, 201, "{}", made.body);

        // A key the admin made: the metered caller grows it no further than itself.
        let body = json!({"permissions": ["calls.view"], "credits": fifty, "ratelimits": [rps]});
        let (target, _) = create_json(&app, p, &admin, body).await;
        let id = id_of(&target);
        let grow = Call::adjust(p, &id, &json!({"increment": 51})).bearer(&secret);
        let (_, parameter) = refused(&grow.send(&app).await, 403);
        assert_eq!(parameter.as_deref(), Some("credits"));
        for body in [json!({"credits": null}), json!({"ratelimits": null})] {
            let reply = Call::update(p, &id, body.clone())
                .bearer(&secret)
                .send(&app)
                .await;
            let (_, parameter) = refused(&reply, 403);
            assert_eq!(
                parameter.as_deref(),
                body.as_object().unwrap().keys().next().map(|k| k.as_str())
            );
        }
        let grow = Call::adjust(p, &id, &json!({"increment": 50})).bearer(&secret);
        let grown = grow.send(&app).await;
        assert_eq!(grown.status, 200, "as many as its own: {}", grown.body);
        assert_eq!(remaining(&grown.body), Some(100));
        let take = Call::adjust(p, &id, &json!({"decrement": 100})).bearer(&secret);
        assert_eq!(take.send(&app).await.status, 200);

        // An unmetered restricted key is not bound by this rule.
        let (_, free) = caller(&app, &org, Some(&[ApiKeysCreate, ApiKeysUpdate, CallsView])).await;
        let lift = Call::update(p, &id, json!({"ratelimits": null, "credits": null}));
        let lifted = lift.bearer(&free).send(&app).await;
        assert_eq!(lifted.status, 200, "{}", lifted.body);
    }
}
