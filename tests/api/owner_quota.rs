//! An owner's own credits and rate limits, shared by all of its keys, over HTTP against
//! DynamoDB Local, on both payloads: each verify spends from the key's and the owner's in
//! one transaction, exactly under concurrent verifiers (credits and an exact limit); a
//! refusal by either spends nothing on either; two organizations with one owner id never
//! share counters. The owner items are written as the store writes them
//! ([`apikeys::store::dynamo::owner_item`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apikeys::App;
use apikeys::key::OrgId;
use apikeys::owner::OwnerId;
use apikeys::quota::{Credits, Mode, Quota, RateLimit};
use apikeys::secret::Secret;
use apikeys::store::QuotaStore;
use apikeys::store::dynamo::DynamoStore;
use apikeys::verify::VerifyCache;
use apikeys_tests::quota::*;
use apikeys_tests::*;
use serde_json::{Value, json};

const PAYLOADS: [Payload; 2] = [Payload::Rest, Payload::Http];

type Codes = BTreeMap<String, usize>;

fn credits(remaining: u64) -> Quota {
    Quota {
        credits: Some(Credits {
            remaining,
            refill: None,
            low_at: None,
        }),
        ratelimits: Vec::new(),
    }
}

fn limit(limit: u64, duration_ms: u64) -> Quota {
    Quota {
        credits: None,
        ratelimits: vec![RateLimit {
            name: "shared".into(),
            limit,
            duration_ms,
            mode: Mode::Exact,
        }],
    }
}

/// The owner's credits left, as its item holds them.
async fn owner_left(app: &App<DynamoStore>, org: &OrgId, owner: &str) -> Option<u64> {
    let id: OwnerId = owner.parse().unwrap();
    let item = app.store.owner_spent(org, &id).await.unwrap().unwrap();
    item.owner.quota.credits.map(|c| c.remaining)
}

/// A key of `owner` (with `extra` members), created over HTTP.
async fn key_of(
    app: &App<DynamoStore>,
    p: Payload,
    admin: &Secret,
    owner: &str,
    extra: Value,
) -> (Value, Secret) {
    let mut body = extra;
    body["owner_id"] = json!(owner);
    create_json(app, p, admin, body).await
}

/// Verifies through the verify handler with this process's `cache`.
async fn verify_in(
    app: &App<DynamoStore>,
    cache: &VerifyCache,
    p: Payload,
    admin: &Secret,
    secret: &Secret,
) -> Value {
    let call = Call::verify(p, &json!({"key": secret.expose()})).bearer(admin);
    let reply = Reply::from(apikeys::http::verify_key(app, cache, call.request()).await);
    assert_eq!(reply.status, 200, "verify: {}", reply.body);
    reply.body
}

fn owner_credits(answer: &Value) -> Option<u64> {
    answer["owner"]["credits"]["remaining"].as_u64()
}

/// `n` verifications at once of two keys of the owner `cus_1` of a new organization, whose
/// own credits and limits are `owner`, split over two "processes" (each its own cache, so
/// its own copy of the owner item, for 5 s); the answers, how many had each code, and the
/// owner's credits left. No window of the owner's counts past its limit.
async fn hammer(p: Payload, owner: Quota, n: usize) -> (Vec<Value>, Codes, Option<u64>) {
    let app = Arc::new(app().await);
    let org = org();
    let admin = Arc::new(admin(&app, &org).await);
    let (_, one) = key_of(&app, p, &admin, "cus_1", json!({})).await;
    let (_, two) = key_of(&app, p, &admin, "cus_1", json!({})).await;
    seed_owner(&app, &org, "cus_1", owner).await;
    let caches = [
        Arc::new(VerifyCache::new(Duration::from_secs(5))),
        Arc::new(VerifyCache::new(Duration::from_secs(5))),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (app, admin) = (app.clone(), admin.clone());
        let cache = caches[i % 2].clone();
        let secret = if i % 3 == 0 { one.clone() } else { two.clone() };
        tasks.spawn(async move { verify_in(&app, &cache, p, &admin, &secret).await });
    }
    let answers = tasks.join_all().await;
    let mut codes = BTreeMap::new();
    for a in &answers {
        *codes
            .entry(a["code"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        assert_eq!(a["owner_id"], "cus_1", "{a}");
        assert!(a.get("credits").is_none(), "the key has no credits: {a}");
    }
    let owner = app.store.owner_spent(&org, &"cus_1".parse().unwrap()).await;
    let owner = owner.unwrap().expect("the owner item");
    for (name, w) in &owner.counters.windows {
        let rules = &owner.owner.quota.ratelimits;
        let l = rules.iter().find(|l| &l.name == name).unwrap();
        assert!(
            w.n <= l.limit,
            "{name} counted {} past its limit {}",
            w.n,
            l.limit
        );
    }
    let left = owner.owner.quota.credits.map(|c| c.remaining);
    (answers, codes, left)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_of_one_owner_spend_its_credits_exactly_under_concurrent_verifiers() {
    for p in PAYLOADS {
        let (answers, codes, left) = hammer(p, credits(20), 30).await;
        assert_eq!(
            codes,
            BTreeMap::from([("USAGE_EXCEEDED".to_owned(), 10), ("VALID".to_owned(), 20)]),
            "{p:?}: exactly the owner's 20 credits"
        );
        for a in answers.iter().filter(|a| a["code"] == "VALID") {
            assert!(owner_credits(a).is_some_and(|n| n < 20), "{a}");
        }
        assert_eq!(left, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keys_of_one_owner_share_its_exact_limit_exactly_under_concurrent_verifiers() {
    for p in PAYLOADS {
        settle_window(60_000, Duration::from_secs(20)).await;
        let (_, codes, _) = hammer(p, limit(12, 60_000), 20).await;
        assert_eq!(
            codes,
            BTreeMap::from([("RATE_LIMITED".to_owned(), 8), ("VALID".to_owned(), 12)]),
            "{p:?}: exactly the owner's 12 tokens in the window"
        );
    }
}

#[tokio::test]
async fn an_owners_exact_rate_limit_is_shared_by_its_keys() {
    for p in PAYLOADS {
        let app = app().await;
        let org = org();
        let admin = admin(&app, &org).await;
        let (_, one) = key_of(&app, p, &admin, "team-a", json!({})).await;
        let (_, two) = key_of(&app, p, &admin, "team-a", json!({})).await;
        seed_owner(&app, &org, "team-a", limit(5, 60_000)).await;
        settle_window(60_000, Duration::from_secs(10)).await;
        let mut seen = Vec::new();
        for i in 0..8 {
            let secret = if i % 2 == 0 { &one } else { &two };
            let a = verify_json(&app, p, &admin, secret, None).await;
            let left = &a["owner"]["ratelimits"][0];
            assert_eq!(
                (&left["name"], &left["limit"]),
                (&json!("shared"), &json!(5))
            );
            seen.push((
                a["code"].as_str().unwrap().to_owned(),
                left["remaining"].clone(),
            ));
        }
        let want: Vec<(String, Value)> = [4, 3, 2, 1, 0]
            .map(|n| ("VALID".to_owned(), json!(n)))
            .into_iter()
            .chain((0..3).map(|_| ("RATE_LIMITED".to_owned(), json!(0))))
            .collect();
        assert_eq!(seen, want, "{p:?}");
    }
}

#[tokio::test]
async fn a_refusal_by_the_key_or_its_owner_spends_nothing_on_either() {
    for p in PAYLOADS {
        let app = app().await;
        let org = org();
        let admin = admin(&app, &org).await;
        let rich = json!({"credits": {"remaining": 100}});
        let (rich_key, rich) = key_of(&app, p, &admin, "cus_2", rich).await;
        let poor = json!({"credits": {"remaining": 1}});
        let (_, poor) = key_of(&app, p, &admin, "cus_2", poor).await;
        seed_owner(&app, &org, "cus_2", credits(3)).await;

        let a = verify_json(&app, p, &admin, &poor, None).await;
        assert_eq!(
            (a["code"].as_str(), remaining(&a)),
            (Some("VALID"), Some(0)),
            "{a}"
        );
        assert_eq!(owner_credits(&a), Some(2), "{a}");
        // The key has none left: refused, and the owner keeps its 2.
        let a = verify_json(&app, p, &admin, &poor, None).await;
        assert_eq!(a["code"], "USAGE_EXCEEDED", "{a}");
        assert_eq!(owner_left(&app, &org, "cus_2").await, Some(2));

        for left in [1, 0] {
            let a = verify_json(&app, p, &admin, &rich, None).await;
            assert_eq!(
                (a["code"].as_str(), owner_credits(&a)),
                (Some("VALID"), Some(left))
            );
        }
        // The owner has none left: refused, and the key keeps its 98.
        let a = verify_json(&app, p, &admin, &rich, None).await;
        assert_eq!(
            (a["code"].as_str(), owner_credits(&a)),
            (Some("USAGE_EXCEEDED"), Some(0))
        );
        let now = get_json(&app, p, &admin, &id_of(&rich_key)).await;
        assert_eq!(remaining(&now), Some(98), "{now}");
    }
}

#[tokio::test]
async fn two_organizations_with_one_owner_id_never_share_counters() {
    let app = app().await;
    let (acme, globex, initech) = (org(), org(), org());
    let mut secrets = Vec::new();
    for (org, budget) in [(&acme, Some(2)), (&globex, Some(5)), (&initech, None)] {
        let admin = admin(&app, org).await;
        let (_, key) = key_of(&app, Payload::Http, &admin, "shared", json!({})).await;
        if let Some(n) = budget {
            seed_owner(&app, org, "shared", credits(n)).await;
        }
        secrets.push((admin, key));
    }
    let mut valid = Vec::new();
    for (admin, key) in &secrets {
        let mut n = 0;
        for _ in 0..7 {
            let a = verify_json(&app, Payload::Http, admin, key, None).await;
            n += usize::from(a["code"] == "VALID");
        }
        valid.push(n);
    }
    assert_eq!(
        valid,
        [2, 5, 7],
        "each organization's owner has its own budget"
    );
    // An owner without credits or limits of its own: no `owner` member.
    let (admin, key) = &secrets[2];
    let a = verify_json(&app, Payload::Http, admin, key, None).await;
    assert_eq!(a["owner_id"], "shared", "{a}");
    assert!(a.get("owner").is_none(), "{a}");
}
