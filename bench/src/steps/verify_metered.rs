//! Verify's metered cases (`verify`), each beside its floor, in alternating rounds:
//!
//! - **spending a credit** and **a limit and credits**: a warm verify-key (its caller cached)
//!   verifies `plan.warm` distinct seeded keys once each, so that each verification reads its
//!   credential and spends; the floor replays the DynamoDB calls one such verification made
//!   (recorded through the proxy) for as many other keys, seeded alike. Beside the second, the
//!   floor a transaction design would have: the same credential read, then one
//!   TransactWriteItems of a credits item and a counter item (`tx_floor`);
//! - **leased**: one key verified again and again, its lease held and both caches warm,
//!   beside the runtime API's round trip (hello), as the warm case; and, for comparison, the
//!   same instance verifying an unmetered key in the same rounds;
//! - **an owner's credits**: as spending a credit, each key with credits and an owner (of
//!   its own id) with credits of its own, so that each verification reads the owner item
//!   and spends from both in one TransactWriteItems; the floor replays its recorded calls;
//!   and **warm**, one such key verified again and again, both caches warm, so that a
//!   verification is that transaction alone, beside the same transaction sent directly.

use std::time::Duration;

use apikeys::key::{KeyId, OrgId};
use apikeys::quota::{Credits, Mode, Quota, RateLimit};
use apikeys::secret::Secret;
use apikeys_tests::capacity::Proxy;
use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;

use crate::context::Ctx;
use crate::emulator::Function;
use crate::report::Stats;
use crate::samples::{bytes, check_valid, verify_event};
use crate::seed::{seed_owned, seeded_secret};
use crate::verify::{ColdFloor, Metered, Paired};
use crate::{BoxError, replay};

/// Salts of the metered keys (`seed_metered`): none of the other steps' salts.
const CREDIT_SALT: u8 = 7;
const LIMIT_SALT: u8 = 8;
const LEASED_SALT: u8 = 9;
const OWNER_SALT: u8 = 10;
const OWNER_WARM_SALT: u8 = 11;
/// More credits and a higher limit than any run spends, so that every verify is VALID.
const PLENTY: u64 = 1_000_000_000_000;

fn credits() -> Option<Credits> {
    Some(Credits {
        remaining: PLENTY,
        refill: None,
        low_at: None,
    })
}

fn per_minute(limit: u64, mode: Mode) -> Vec<RateLimit> {
    vec![RateLimit {
        name: "per_minute".into(),
        limit,
        duration_ms: 60_000,
        mode,
    }]
}

/// Seeded keys of one case: the function verifies the first half, its floor the second.
struct Keys {
    salt: u8,
    ids: Vec<KeyId>,
}

impl Keys {
    async fn seed(ctx: &Ctx, n: usize, salt: u8, quota: Quota) -> Result<Keys, BoxError> {
        Keys::seed_owned(ctx, n, salt, quota, None).await
    }

    /// With `owner`, each key the owner of its own id, which has these credits and limits.
    async fn seed_owned(
        ctx: &Ctx,
        n: usize,
        salt: u8,
        quota: Quota,
        owner: Option<Quota>,
    ) -> Result<Keys, BoxError> {
        let demo: OrgId = apikeys_demo::ORG.parse()?;
        let spec = (n, salt, 2027);
        let ids = seed_owned(&ctx.store, &demo, spec, &quota, owner.as_ref()).await?;
        Ok(Keys { salt, ids })
    }

    fn secret(&self, i: usize) -> Secret {
        seeded_secret(i, self.salt)
    }

    /// The credential hash and id of the i-th key, as the floor reads them.
    fn hash_and_id(&self, i: usize) -> (String, String) {
        (
            self.secret(i).hash().as_str().to_owned(),
            self.ids[i].to_string(),
        )
    }
}

/// verify-key's sample event verifying `secret` at a cost of 1.
fn spend_event(ctx: &Ctx, secret: &Secret) -> Result<Bytes, BoxError> {
    let mut e = verify_event(&ctx.samples.verify_http, secret.expose());
    let mut body: Value = serde_json::from_str(e["body"].as_str().unwrap_or("{}"))?;
    body["cost"] = 1.into();
    e["body"] = body.to_string().into();
    Ok(bytes(&e))
}

/// The three metered cases.
pub async fn measure(ctx: &Ctx, proxy: &Proxy) -> Result<Metered, BoxError> {
    let count = ctx.plan.warm;
    let t = Instant::now();
    let credit = Keys::seed(ctx, 2 * count + 1, CREDIT_SALT, quota(credits(), vec![])).await?;
    let limited = quota(credits(), per_minute(1_000_000_000, Mode::Exact));
    // The transaction floor's keys after the floor's: the last-use stamps they replay
    // need keys of their own.
    let limit = Keys::seed(ctx, 3 * count + 1, LIMIT_SALT, limited).await?;
    let leased = Keys::seed(
        ctx,
        1,
        LEASED_SALT,
        quota(None, per_minute(1_000_000, Mode::Leased)),
    )
    .await?;
    let owner_rules = Some(quota(credits(), vec![]));
    let owned = quota(credits(), vec![]);
    let owned =
        Keys::seed_owned(ctx, 2 * count + 1, OWNER_SALT, owned, owner_rules.clone()).await?;
    let warm_owned = quota(credits(), vec![]);
    let warm_owned = Keys::seed_owned(ctx, 1, OWNER_WARM_SALT, warm_owned, owner_rules).await?;
    ctx.say(&format!(
        "verify: seeded the metered keys in {:.1} s",
        t.elapsed().as_secs_f64()
    ));
    let mut recorder = Recorder::start(ctx, proxy).await?;
    // The last key of each case, which neither the function nor its floors verify.
    let credit_floor = recorder.floor(ctx, &credit, 2 * count).await?;
    let limit_floor = recorder.floor(ctx, &limit, 3 * count).await?;
    let leased_calls = recorder.calls_per_verify(ctx, &leased).await?;
    let owner_floor = recorder.floor(ctx, &owned, 2 * count).await?;
    let owner_tx = recorder.transaction(ctx, &warm_owned).await?;
    recorder.f.stop().await;
    let mut f = ctx.start("verify-key", &ctx.direct(), "metered").await?;
    f.init_time().await?;
    let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).ok_or("the demo admin")?;
    f.invoke(bytes(&verify_event(
        &ctx.samples.verify_http,
        admin.expose(),
    )))
    .await?;
    let credit_case = paired(ctx, &mut f, &credit, &credit_floor, None).await?;
    ctx.say("verify: spending a credit measured");
    let (limit_case, tx) = {
        let mut tx = Vec::new();
        let case = paired(ctx, &mut f, &limit, &limit_floor, Some(&mut tx)).await?;
        (case, Stats::of(&tx))
    };
    ctx.say("verify: a limit and credits measured");
    let [leased_stats, hello, unmetered] = leased_rounds(ctx, &mut f, &leased).await?;
    let owner_case = paired(ctx, &mut f, &owned, &owner_floor, None).await?;
    let owner_warm = owner_rounds(ctx, &mut f, &warm_owned, &owner_tx).await?;
    ctx.say("verify: an owner's credits measured");
    f.stop().await;
    Ok(Metered {
        credit: credit_case,
        limit: limit_case,
        tx,
        leased: leased_stats,
        leased_floor: hello,
        unmetered,
        leased_calls,
        owner: owner_case,
        owner_warm,
    })
}

fn quota(credits: Option<Credits>, ratelimits: Vec<RateLimit>) -> Quota {
    Quota {
        credits,
        ratelimits,
    }
}

/// A verify-key through the recording proxy, its caller cached.
struct Recorder<'a> {
    f: Function,
    proxy: &'a Proxy,
}

impl<'a> Recorder<'a> {
    async fn start(ctx: &Ctx, proxy: &'a Proxy) -> Result<Recorder<'a>, BoxError> {
        let env = ctx.env_with(&proxy.url(), &[]);
        let mut f = ctx.start("verify-key", &env, "metered-record").await?;
        f.init_time().await?;
        let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).ok_or("the demo admin")?;
        let warm = verify_event(&ctx.samples.verify_http, admin.expose());
        check_valid(&f.invoke(bytes(&warm)).await?)?;
        // The warm-up read of init and the caller's last-use stamp land first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(Recorder { f, proxy })
    }

    /// The calls of one verification of key `i`, as a floor for the other keys.
    async fn floor(&mut self, ctx: &Ctx, keys: &Keys, i: usize) -> Result<ColdFloor, BoxError> {
        self.proxy.take();
        check_valid(&self.f.invoke(spend_event(ctx, &keys.secret(i))?).await?)?;
        let calls = self.proxy.take();
        Ok(ColdFloor::recorded(calls, keys.hash_and_id(i)))
    }

    /// DynamoDB calls per verification of the leased key, its lease held: after a warm-up,
    /// as many verifications as a round has.
    async fn calls_per_verify(&mut self, ctx: &Ctx, keys: &Keys) -> Result<f64, BoxError> {
        let ev = spend_event(ctx, &keys.secret(0))?;
        for _ in 0..3 {
            check_valid(&self.f.invoke(ev.clone()).await?)?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.proxy.take();
        let n = (ctx.plan.warm / ctx.plan.rounds).max(1);
        for _ in 0..n {
            check_valid(&self.f.invoke(ev.clone()).await?)?;
        }
        Ok(self.proxy.take().len() as f64 / n as f64)
    }

    /// The one call of a warm verification of key 0 (its lookup and owner cached, its
    /// last use stamped): its TransactWriteItems.
    async fn transaction(&mut self, ctx: &Ctx, keys: &Keys) -> Result<Value, BoxError> {
        let ev = spend_event(ctx, &keys.secret(0))?;
        for _ in 0..3 {
            check_valid(&self.f.invoke(ev.clone()).await?)?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.proxy.take();
        check_valid(&self.f.invoke(ev).await?)?;
        let calls = self.proxy.take();
        match calls.as_slice() {
            [only] if only.op == "TransactWriteItems" => Ok(only.request.clone()),
            other => {
                let ops: Vec<&str> = other.iter().map(|c| c.op.as_str()).collect();
                Err(format!("a warm owner verification made {ops:?}").into())
            }
        }
    }
}

/// The recorded transaction again, as a new verify's: a fresh `:op` (the spend's id, which
/// each item's condition wants new) and `ClientRequestToken`.
fn again(tx: &Value) -> Result<Value, BoxError> {
    let op = tx["TransactItems"][0]["Update"]["ExpressionAttributeValues"][":op"]["S"]
        .as_str()
        .ok_or("the spend's :op")?;
    let fresh = uuid::Uuid::now_v7().to_string();
    let mut out: Value = serde_json::from_str(&tx.to_string().replace(op, &fresh))?;
    out["ClientRequestToken"] = Value::from(uuid::Uuid::now_v7().to_string());
    Ok(out)
}

/// Key 0 of `keys` verified again and again, both caches warm, in rounds with its
/// transaction sent directly.
async fn owner_rounds(
    ctx: &Ctx,
    f: &mut Function,
    keys: &Keys,
    tx: &Value,
) -> Result<Paired, BoxError> {
    let ev = spend_event(ctx, &keys.secret(0))?;
    for _ in 0..(ctx.plan.warm / 20).max(2) {
        check_valid(&f.invoke(ev.clone()).await?)?;
    }
    let block = (ctx.plan.warm / ctx.plan.rounds).max(1);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..ctx.plan.rounds {
        for _ in 0..block {
            let a = f.invoke(ev.clone()).await?;
            check_valid(&a)?;
            ours.push(a.duration);
        }
        for _ in 0..block {
            let call = replay::Recorded {
                op: "TransactWriteItems".into(),
                request: again(tx)?,
                group: 0,
            };
            let t = Instant::now();
            replay::replay(&ctx.client, std::slice::from_ref(&call), None).await?;
            floor.push(t.elapsed());
        }
    }
    Ok(Paired {
        ours: Stats::of(&ours),
        floor: Stats::of(&floor),
        ops: "TransactWriteItems".into(),
    })
}

/// The function verifies keys 0..count, the floor count..2·count, block after block; with
/// `tx`, the transaction floor follows each block, on keys 2·count..3·count.
async fn paired(
    ctx: &Ctx,
    f: &mut Function,
    keys: &Keys,
    floor: &ColdFloor,
    mut tx: Option<&mut Vec<Duration>>,
) -> Result<Paired, BoxError> {
    let count = ctx.plan.warm;
    let block = (count / ctx.plan.rounds).max(1);
    let (mut ours, mut floors) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for r in 0..count.div_ceil(block) {
        let range = r * block..((r + 1) * block).min(count);
        for i in range.clone() {
            let a = f.invoke(spend_event(ctx, &keys.secret(i))?).await?;
            check_valid(&a)?;
            ours.push(a.duration);
        }
        let others: Vec<(String, String)> =
            range.clone().map(|i| keys.hash_and_id(count + i)).collect();
        floors.extend(floor.run(&ctx.client, &others).await?);
        if let Some(tx) = tx.as_deref_mut() {
            let third: Vec<(String, String)> =
                range.map(|i| keys.hash_and_id(2 * count + i)).collect();
            tx.extend(tx_floor(ctx, floor, &third).await?);
        }
    }
    Ok(Paired {
        ours: Stats::of(&ours),
        floor: Stats::of(&floors),
        ops: floor.ops(),
    })
}

/// The same verification in a design with a credits item and a counter item beside the key:
/// the recorded calls but the spend (the credential's read, the last-use stamps), then, in
/// place of the spend's UpdateItems, one TransactWriteItems that spends from a credits item
/// and counts in a counter item, each of its own (`FLOOR#TX#<id>`), both conditional, both
/// new as the floor's keys' counters are.
async fn tx_floor(
    ctx: &Ctx,
    floor: &ColdFloor,
    keys: &[(String, String)],
) -> Result<Vec<Duration>, BoxError> {
    let spends = |c: &replay::Recorded| {
        c.request["UpdateExpression"]
            .as_str()
            .is_some_and(|e| e.contains("last_spend"))
    };
    let rest = ColdFloor {
        calls: floor.calls.iter().filter(|c| !spends(c)).cloned().collect(),
        recorded_for: floor.recorded_for.clone(),
        refused: 0,
    };
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let t = Instant::now();
        rest.run(&ctx.client, std::slice::from_ref(k)).await?;
        transaction(ctx, &k.1).await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

async fn transaction(ctx: &Ctx, id: &str) -> Result<(), BoxError> {
    use aws_sdk_dynamodb::types::{AttributeValue as A, TransactWriteItem, Update};
    let pk = A::S(format!("FLOOR#TX#{id}"));
    let window = crate::sim::child::now_ms() / 60_000 * 60_000;
    let credits = Update::builder()
        .table_name(&ctx.table)
        .key("pk", pk.clone())
        .key("sk", A::S("CREDITS".into()))
        .update_expression("SET #c = if_not_exists(#c, :plenty) - :cost")
        .condition_expression("attribute_not_exists(#c) OR #c >= :cost")
        .expression_attribute_names("#c", "remaining")
        .expression_attribute_values(":plenty", A::N(PLENTY.to_string()))
        .expression_attribute_values(":cost", A::N("1".into()))
        .build()?;
    let counter = Update::builder()
        .table_name(&ctx.table)
        .key("pk", pk)
        .key("sk", A::S("RL#per_minute".into()))
        .update_expression("SET #w = :w, #n = if_not_exists(#n, :zero) + :cost")
        .condition_expression("attribute_not_exists(#w) OR #w < :w OR (#w = :w AND #n < :limit)")
        .expression_attribute_names("#w", "w")
        .expression_attribute_names("#n", "n")
        .expression_attribute_values(":w", A::N(window.to_string()))
        .expression_attribute_values(":zero", A::N("0".into()))
        .expression_attribute_values(":cost", A::N("1".into()))
        .expression_attribute_values(":limit", A::N("1000000000".into()))
        .build()?;
    ctx.client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(credits).build())
        .transact_items(TransactWriteItem::builder().update(counter).build())
        .send()
        .await?;
    Ok(())
}

/// The leased key verified again and again, its lease held, in rounds with hello and with
/// the same instance verifying an unmetered key (the demo admin's).
async fn leased_rounds(ctx: &Ctx, f: &mut Function, keys: &Keys) -> Result<[Stats; 3], BoxError> {
    let ev = spend_event(ctx, &keys.secret(0))?;
    let plain = ctx.samples.verify.clone();
    let mut hello = ctx
        .start_as("hello", &ctx.bin("bench-hello"), &ctx.direct(), "metered")
        .await?;
    hello.init_time().await?;
    let hello_ev = Bytes::from_static(b"{}");
    let warmup = (ctx.plan.warm / 20).max(2);
    for _ in 0..warmup {
        check_valid(&f.invoke(ev.clone()).await?)?;
        check_valid(&f.invoke(plain.clone()).await?)?;
        hello.invoke(hello_ev.clone()).await?;
    }
    let block = (ctx.plan.warm / ctx.plan.rounds).max(1);
    let (mut ours, mut floor, mut unmetered) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.plan.rounds {
        for (e, out) in [(&ev, &mut ours), (&plain, &mut unmetered)] {
            for _ in 0..block {
                let a = f.invoke(e.clone()).await?;
                check_valid(&a)?;
                out.push(a.duration);
            }
        }
        for _ in 0..block {
            floor.push(hello.invoke(hello_ev.clone()).await?.duration);
        }
    }
    hello.stop().await;
    Ok([ours, floor, unmetered].map(|d| Stats::of(&d)))
}
