//! Verify, measured as services use it, each case beside a floor measured in the same run:
//!
//! 1. **cold**: many distinct secrets, with the caller cache and the verification cache off
//!    (`CALLER_CACHE_TTL_SECS=0`), so every verification reads what it needs; its floor
//!    replays the DynamoDB calls one such verification made (`replay`: recorded through the
//!    proxy), each time for another key, with a bare SDK client;
//! 2. **warm**: one secret verified again and again, both caches warm; its floor is the
//!    runtime API's own round trip (the hello function's warm invocation);
//! 3. **spending a credit**, 4. **a limit and credits**, 5. **leased** (a verify of a
//!    key with a leased limit, its lease held) and 6. **an owner's credits** (a key and its
//!    owner spent from in one transaction): see `steps::verify_metered`.

use std::fmt::Write as _;
use std::time::Duration;

use apikeys_tests::capacity;
use aws_sdk_dynamodb::Client;
use serde_json::Value;
use tokio::time::Instant;

use crate::BoxError;
use crate::replay::{self, Recorded};
use crate::report::Stats;

/// The ratio goals of the cases.
pub const COLD_GOAL: f64 = 1.2;
pub const WARM_GOAL: f64 = 1.5;
pub const METERED_GOAL: f64 = 1.2;

/// A floor of verifications of distinct keys: the calls recorded for one verification of the
/// key whose credential hash and id are `recorded_for`, sent again for each of `keys` in
/// turn. `refused` of its UpdateItems failed their condition when recorded (the function
/// retried); each replay must see as many refused, the same work.
pub struct ColdFloor {
    pub calls: Vec<Recorded>,
    pub recorded_for: (String, String),
    pub refused: usize,
}

impl ColdFloor {
    /// The floor of the calls the proxy recorded for one verification of `recorded_for`. A
    /// write for which DynamoDB reported no capacity failed its condition.
    pub fn recorded(calls: Vec<capacity::Call>, recorded_for: (String, String)) -> ColdFloor {
        let refused = calls
            .iter()
            .filter(|c| c.op == "UpdateItem" && c.units == 0.0)
            .count();
        ColdFloor {
            calls: replay::grouped(
                calls
                    .into_iter()
                    .map(|x| (x.op, x.request, x.started, x.ended))
                    .collect(),
            ),
            recorded_for,
            refused,
        }
    }

    /// The calls for another key: its hash and id put in place of the recorded key's, and
    /// a transaction's `ClientRequestToken` by a fresh one (DynamoDB refuses a token sent
    /// again with other items).
    fn for_key(&self, (hash, id): &(String, String)) -> Result<Vec<Recorded>, BoxError> {
        let text = replay::to_json(&self.calls)
            .to_string()
            .replace(&self.recorded_for.0, hash)
            .replace(&self.recorded_for.1, id);
        let mut calls = replay::from_json(&serde_json::from_str::<Value>(&text)?)?;
        for c in calls.iter_mut().filter(|c| c.op == "TransactWriteItems") {
            if c.request.get("ClientRequestToken").is_some() {
                let token = uuid::Uuid::now_v7().to_string();
                c.request["ClientRequestToken"] = Value::from(token);
            }
        }
        Ok(calls)
    }

    /// One replay per key, timed.
    pub async fn run(
        &self,
        client: &Client,
        keys: &[(String, String)],
    ) -> Result<Vec<Duration>, BoxError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let calls = self.for_key(k)?;
            let t = Instant::now();
            let refused = replay::replay_counting(client, &calls, None).await?;
            out.push(t.elapsed());
            if refused != self.refused {
                return Err(format!(
                    "a floor's replay saw {refused} UpdateItems refused, its recording {}",
                    self.refused
                )
                .into());
            }
        }
        Ok(out)
    }

    pub fn ops(&self) -> String {
        let ops = replay::ops(&self.calls).join(", ");
        match self.refused {
            0 => ops,
            n => format!("{ops}; {n} UpdateItem refused by its condition, as recorded"),
        }
    }
}

/// A case beside its floor, and the operations the floor replays.
#[derive(Default)]
pub struct Paired {
    pub ours: Stats,
    pub floor: Stats,
    pub ops: String,
}

/// The metered cases (`steps::verify_metered`).
#[derive(Default)]
pub struct Metered {
    pub credit: Paired,
    pub limit: Paired,
    /// The credential read and one TransactWriteItems of a credits and a counter item.
    pub tx: Stats,
    pub leased: Stats,
    /// The runtime API's round trip (hello), in rounds with the leased case.
    pub leased_floor: Stats,
    /// The same instance verifying an unmetered key, in the same rounds.
    pub unmetered: Stats,
    /// DynamoDB calls per leased verification, its lease held (through the proxy).
    pub leased_calls: f64,
    /// Keys with credits whose owners have credits of their own.
    pub owner: Paired,
    /// One such key, both caches warm, beside its transaction sent directly.
    pub owner_warm: Paired,
}

/// What the run measured.
pub struct Figures {
    pub cold: Stats,
    pub cold_floor: Stats,
    pub cold_ops: String,
    pub warm: Stats,
    pub warm_floor: Stats,
    pub metered: Metered,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        String::new()
    }
}

fn verdict(r: f64, goal: f64) -> &'static str {
    if r <= goal { "met" } else { "**not met**" }
}

/// `verify.md`: the cases.
pub fn markdown(f: &Figures) -> String {
    let mut md = String::from(
        "# Verify\n\n\
         Each case beside its floor, measured in the same run, in alternating rounds \
         (`bench/src/verify.rs`).\n\n\
         | case | verify-key p50 | verify-key p99 | floor | floor p50 | floor p99 | ratio p50 | ratio p99 | goal (p50) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (case, x, floor, fl, goal) in rows(f) {
        let r50 = x.p50 / fl.p50;
        let verdict = match goal {
            Some(goal) => format!("≤ {goal}×, {}", verdict(r50, goal)),
            None => "for comparison".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {case} | {:.3} ms | {:.3} ms | {floor} | {:.3} ms | {:.3} ms | {} | {} | {verdict} |",
            x.p50,
            x.p99,
            fl.p50,
            fl.p99,
            ratio(x.p50, fl.p50),
            ratio(x.p99, fl.p99),
        );
    }
    md
}

type Row<'a> = (String, &'a Stats, String, &'a Stats, Option<f64>);

/// The table's rows: case, its figures, its floor, the floor's figures, the goal.
fn rows(f: &Figures) -> Vec<Row<'_>> {
    let m = &f.metered;
    let mut rows = vec![
        (
            format!("1. cold: {} distinct secrets, both caches off", f.cold.n),
            &f.cold,
            format!("the same DynamoDB calls, bare SDK ({})", f.cold_ops),
            &f.cold_floor,
            Some(COLD_GOAL),
        ),
        (
            format!("2. warm: one secret {} times, both caches warm", f.warm.n),
            &f.warm,
            "the runtime API's round trip (hello)".to_owned(),
            &f.warm_floor,
            Some(WARM_GOAL),
        ),
        (
            format!(
                "3. spending a credit: {} distinct keys with credits, cost 1, caller cached",
                m.credit.ours.n
            ),
            &m.credit.ours,
            format!("the same DynamoDB calls, bare SDK ({})", m.credit.ops),
            &m.credit.floor,
            Some(METERED_GOAL),
        ),
        (
            format!(
                "4. an exact limit and credits: {} distinct keys, cost 1, caller cached",
                m.limit.ours.n
            ),
            &m.limit.ours,
            format!("the same DynamoDB calls, bare SDK ({})", m.limit.ops),
            &m.limit.floor,
            Some(METERED_GOAL),
        ),
        (
            "4b. the same verifications".to_owned(),
            &m.limit.ours,
            "the same calls, the spend's UpdateItems replaced by one TransactWriteItems of a \
             credits item and a counter item (a transaction design)"
                .to_owned(),
            &m.tx,
            None,
        ),
        (
            format!(
                "5. leased limit: one key {} times, lease held, both caches warm ({:.3} DynamoDB calls per verify)",
                m.leased.n, m.leased_calls
            ),
            &m.leased,
            "the runtime API's round trip (hello)".to_owned(),
            &m.leased_floor,
            Some(METERED_GOAL),
        ),
        (
            "5b. the same leased verifications".to_owned(),
            &m.leased,
            "the same instance verifying an unmetered key (the demo admin's), same rounds"
                .to_owned(),
            &m.unmetered,
            None,
        ),
    ];
    rows.extend(owner_rows(m));
    rows
}

/// The rows of a key whose owner has credits of its own.
fn owner_rows(m: &Metered) -> [Row<'_>; 2] {
    [
        (
            format!(
                "6. an owner's credits: {} distinct keys with credits, each with an owner with credits of its own, cost 1, caller cached",
                m.owner.ours.n
            ),
            &m.owner.ours,
            format!("the same DynamoDB calls, bare SDK ({})", m.owner.ops),
            &m.owner.floor,
            Some(METERED_GOAL),
        ),
        (
            format!(
                "6b. an owner's credits, warm: one such key {} times, both caches warm",
                m.owner_warm.ours.n
            ),
            &m.owner_warm.ours,
            "the same TransactWriteItems, bare SDK (a fresh spend id and token each time)"
                .to_owned(),
            &m.owner_warm.floor,
            Some(METERED_GOAL),
        ),
    ]
}
