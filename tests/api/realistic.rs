//! The API on DynamoDB as it behaves in AWS, not as DynamoDB Local does: through the fault
//! proxy's realistic mode (`support/realistic.rs`), reads that may be stale, transactions
//! cancelled for capacity or conflicts, and commits whose answer was lost.
//! - A cancelled or throttled write answers 503 with `Retry-After` within its deadline,
//!   never 500, and one that passes after a few cancellations applies once.
//! - A write that committed answers what it did (a create its 201 and a secret that works),
//!   with one `ClientRequestToken` across its retries.
//! - A new key works at once, and an ETag read just after a write is current.
//! - The organization's key count, spread over several items, stays exact through
//!   concurrent creates and deletes that conflict.

use std::time::{Duration, Instant};

use apikeys::App;
use apikeys::audit::Action;
use apikeys::deadline::DEFAULT_BUDGET;
use apikeys::key::{ApiKey, OrgId};
use apikeys::secret::Secret;
use apikeys::store::dynamo::{COUNT_SHARDS, COUNT_SK, DynamoStore, KEY_COUNT};
use apikeys::store::{AuditReader, EventRange, KeyReader};
use apikeys_tests::fault::{Fault, FaultProxy};
use apikeys_tests::realistic::Realism;
use apikeys_tests::*;
use serde_json::{Value, json};

/// The request's deadline, and slack for a loaded machine to render and return the 503.
const IN_TIME: Duration = Duration::from_millis(DEFAULT_BUDGET.as_millis() as u64 + 1500);

/// Long enough that every eventually consistent read of a test is stale.
const LAG: Duration = Duration::from_secs(60);

struct World {
    /// The application on DynamoDB Local directly, to see what was stored.
    real: App<DynamoStore>,
    /// The same table through the realistic proxy.
    app: App<DynamoStore>,
    proxy: FaultProxy,
    org: OrgId,
    admin: Secret,
    key: ApiKey,
}

async fn world(realism: Realism) -> World {
    let real = app().await;
    let org = org();
    let admin = admin(&real, &org).await;
    let (key, _) = create(&real, new_key(&org, "before")).await;
    let proxy = FaultProxy::in_front_of_dynamodb_local().await;
    let app = app_via(&real, &proxy.url()).await;
    proxy.realistic(realism);
    World {
        real,
        app,
        proxy,
        org,
        admin,
        key,
    }
}

impl World {
    async fn actions(&self) -> Vec<Action> {
        self.real
            .store
            .read_events(&self.org, None, EventRange::ALL, true, 1000)
            .await
            .expect("read the events")
            .iter()
            .map(|e| e.action)
            .collect()
    }

    async fn key_count(&self) -> u64 {
        self.real.store.key_count(&self.org).await.expect("count")
    }

    async fn create(&self, payload: Payload, name: &str) -> Reply {
        Call::create(
            payload,
            json!({"name": name, "permissions": ["api_keys.view"]}),
        )
        .bearer(&self.admin)
        .send(&self.app)
        .await
    }

    async fn rename(&self, payload: Payload, id: impl ToString, etag: &str, name: &str) -> Reply {
        Call::update(payload, id, json!({"name": name}))
            .header("If-Match", etag)
            .bearer(&self.admin)
            .send(&self.app)
            .await
    }
}

fn assert_unavailable_in_time(reply: &Reply, took: Duration) {
    assert!(
        reply.problem(503).contains("temporarily unavailable"),
        "{}",
        reply.body
    );
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert!(took < IN_TIME, "answered in {took:?}, over {IN_TIME:?}");
}

fn secret_in(reply: &Reply) -> Secret {
    let secret = reply.body["secret"].as_str().expect("a secret");
    Secret::parse(secret).expect("a well-formed secret")
}

#[tokio::test]
async fn a_write_cancelled_for_throttling_or_conflicts_answers_503_in_time_and_changes_nothing() {
    for reason in ["ThrottlingError", "TransactionConflict"] {
        let w = world(Realism {
            cancel: Some((reason, u32::MAX)),
            ..Realism::default()
        })
        .await;
        for payload in PAYLOADS {
            let started = Instant::now();
            let reply = w.create(payload, "refused").await;
            assert_unavailable_in_time(&reply, started.elapsed());
            let started = Instant::now();
            let etag = format!("\"{}-0\"", w.key.version);
            let reply = w.rename(payload, w.key.id, &etag, "renamed").await;
            assert_unavailable_in_time(&reply, started.elapsed());
        }
        assert_eq!(
            w.actions().await,
            [Action::Created, Action::Created],
            "{reason}"
        );
        assert_eq!(w.key_count().await, 2, "{reason}");
    }
}

#[tokio::test]
async fn a_write_cancelled_a_few_times_applies_once_with_one_token() {
    for reason in ["ThrottlingError", "TransactionConflict"] {
        let w = world(Realism {
            cancel: Some((reason, 2)),
            ..Realism::default()
        })
        .await;
        let reply = w.create(Payload::Http, "third time").await;
        assert_eq!(reply.status, 201, "{reason}: {}", reply.body);
        let tokens = w.proxy.transaction_tokens();
        // Two cancelled, then applied (a loaded DynamoDB Local may add a retry of its own).
        assert!(tokens.len() >= 3, "{reason}: {tokens:?}");
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
        assert_eq!(w.key_count().await, 3, "{reason}");
    }
}

#[tokio::test]
async fn a_create_whose_commit_was_not_acknowledged_answers_201_with_a_secret_that_works() {
    for payload in PAYLOADS {
        // As many lost answers as the SDK makes attempts: the write itself must find out.
        let w = world(Realism {
            lose_commits: apikeys::config::MAX_ATTEMPTS,
            ..Realism::default()
        })
        .await;
        let reply = w.create(payload, "landed").await;
        assert_eq!(reply.status, 201, "{payload:?}: {}", reply.body);
        let secret = secret_in(&reply);
        let id = reply.body["id"].as_str().expect("an id").to_owned();
        let got = Call::get(payload, &id).bearer(&secret).send(&w.real).await;
        assert_eq!(got.status, 200, "the new secret works: {}", got.body);
        let tokens = w.proxy.transaction_tokens();
        assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
        assert_eq!(w.actions().await, [Action::Created; 3]);
        assert_eq!(w.key_count().await, 3);
    }
}

#[tokio::test]
async fn a_create_whose_answer_timed_out_after_it_committed_answers_201() {
    let w = world(Realism::default()).await;
    // Every TransactWriteItems answer held past the SDK's attempt timeout: each attempt
    // commits (or finds its token used) and times out, until the operation's timeout.
    let held = apikeys::config::ATTEMPT_TIMEOUT + Duration::from_millis(500);
    w.proxy.set(Fault::DelayOnly("TransactWriteItems", held));
    let started = Instant::now();
    let reply = w.create(Payload::Http, "slow").await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(started.elapsed() < IN_TIME, "{:?}", started.elapsed());
    let secret = secret_in(&reply);
    let id = reply.body["id"].as_str().expect("an id").to_owned();
    w.proxy.set(Fault::None);
    let got = Call::get(Payload::Http, &id)
        .bearer(&secret)
        .send(&w.real)
        .await;
    assert_eq!(got.status, 200, "the new secret works: {}", got.body);
    assert_eq!(w.actions().await, [Action::Created; 3]);
}

#[tokio::test]
async fn an_update_whose_commit_was_not_acknowledged_answers_200_with_the_change() {
    for payload in PAYLOADS {
        let w = world(Realism {
            lose_commits: apikeys::config::MAX_ATTEMPTS,
            ..Realism::default()
        })
        .await;
        let etag = format!("\"{}-0\"", w.key.version);
        let reply = w.rename(payload, w.key.id, &etag, "renamed").await;
        assert_eq!(reply.status, 200, "{payload:?}: {}", reply.body);
        assert_eq!(reply.body["name"], "renamed");
        let stored = w.real.store.get_key(&w.org, w.key.id).await.unwrap();
        assert_eq!(stored.expect("the key").name.as_str(), "renamed");
        assert_eq!(
            w.actions().await,
            [Action::Created, Action::Created, Action::Updated]
        );
    }
}
#[tokio::test]
async fn a_new_key_works_at_once_though_reads_lag() {
    let w = world(Realism {
        lag: LAG,
        ..Realism::default()
    })
    .await;
    for payload in PAYLOADS {
        let reply = w.create(payload, "fresh").await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let secret = secret_in(&reply);
        let id = reply.body["id"].as_str().expect("an id").to_owned();
        // Its own secret authenticates, and the key is there for it and for the admin.
        for caller in [&secret, &w.admin] {
            let got = Call::get(payload, &id).bearer(caller).send(&w.app).await;
            assert_eq!(got.status, 200, "{payload:?}: {}", got.body);
        }
        let verified = Call::verify(payload, &json!({"key": secret.expose()}))
            .bearer(&w.admin)
            .send(&w.app)
            .await;
        assert_eq!(verified.body["code"], "VALID", "{}", verified.body);
    }
}

#[tokio::test]
async fn an_etag_read_just_after_a_write_is_current() {
    let w = world(Realism {
        lag: LAG,
        ..Realism::default()
    })
    .await;
    for (payload, name) in PAYLOADS.into_iter().zip(["first", "second"]) {
        let got = Call::get(payload, w.key.id)
            .bearer(&w.admin)
            .send(&w.app)
            .await;
        let etag = got.header("etag").expect("an ETag").to_owned();
        let renamed = w.rename(payload, w.key.id, &etag, name).await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        // Read again right away: the tag names the version just written.
        let got = Call::get(payload, w.key.id)
            .bearer(&w.admin)
            .send(&w.app)
            .await;
        assert_eq!(got.body["name"], name);
        let etag: Value = got.header("etag").expect("an ETag").into();
        let again = w
            .rename(payload, w.key.id, etag.as_str().unwrap(), "again")
            .await;
        assert_eq!(again.status, 200, "a spurious 412: {}", again.body);
    }
}

/// The organization's count items (sort key and value), read consistently on the table.
async fn count_items(app: &App<DynamoStore>, org: &OrgId) -> Vec<(String, i64)> {
    use aws_sdk_dynamodb::types::AttributeValue;
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
        .expect("query the count items");
    out.items()
        .iter()
        .map(|i| match (i.get("sk"), i.get(KEY_COUNT)) {
            (Some(AttributeValue::S(sk)), Some(AttributeValue::N(n))) => {
                (sk.clone(), n.parse().expect("a number"))
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn the_key_count_stays_exact_under_concurrent_creates_and_deletes_that_conflict() {
    // Every fourth transaction or so is cancelled for a conflict, on top of the real ones.
    let w = world(Realism {
        cancel: Some(("TransactionConflict", 20)),
        ..Realism::default()
    })
    .await;
    let org = w.org.clone();
    // What is tested is the count under conflicts, not a slow store: the writes wait for a
    // DynamoDB Local that 60 concurrent transactions slow down, instead of timing out.
    let patient = patient_app_via(&w.real, &w.proxy.url(), Duration::from_secs(30)).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, org) = (patient.store.clone(), org.clone());
        set.spawn(async move {
            let new = new_key(&org, &format!("k{i}"));
            apikeys::write::create_key(&store, new)
                .await
                .expect("create")
                .0
        });
    }
    let keys: Vec<ApiKey> = set.join_all().await;
    assert_eq!(
        w.key_count().await,
        42,
        "the admin, the first key and 40 more"
    );

    // 20 deletes (each twice at once) and 20 creates, all at the same time.
    w.proxy.realistic(Realism {
        cancel: Some(("TransactionConflict", 20)),
        ..Realism::default()
    });
    let mut set = tokio::task::JoinSet::new();
    for key in &keys[..20] {
        for _ in 0..2 {
            let (store, org, id) = (patient.store.clone(), org.clone(), key.id);
            set.spawn(async move { delete_in(&store, &org, id).await });
        }
    }
    for i in 0..20 {
        let (store, org) = (patient.store.clone(), org.clone());
        set.spawn(async move {
            let new = new_key(&org, &format!("n{i}"));
            apikeys::write::create_key(&store, new).await.is_ok()
        });
    }
    let done = set.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(done, 40, "20 deletes and 20 creates");
    let listed = w.real.store.read_run(&org, None, true, 1000).await.unwrap();
    assert_eq!(listed.len(), 42);
    assert_eq!(w.key_count().await, 42);
    let shards = count_items(&w.real, &org).await;
    assert_eq!(shards.iter().map(|(_, n)| n).sum::<i64>(), 42, "{shards:?}");
}

#[tokio::test]
async fn an_organizations_writes_spread_over_its_count_items() {
    let app = app().await;
    let org = org();
    for i in 0..32 {
        create(&app, new_key(&org, &format!("k{i}"))).await;
    }
    let items = count_items(&app, &org).await;
    // 32 creates on one item each, out of 16 at random: all on one with a chance of 16^-31.
    assert!(items.len() > 1, "one hot count item: {items:?}");
    assert!(
        items.len() <= COUNT_SHARDS as usize,
        "more items than shards: {items:?}"
    );
    assert_eq!(items.iter().map(|(_, n)| n).sum::<i64>(), 32);
    assert_eq!(app.store.key_count(&org).await.unwrap(), 32);
}
