//! Verify, measured as services use it, each case beside a floor measured in the same run:
//!
//! 1. **cold**: many distinct secrets, with the caller cache and the verification cache off
//!    (`CALLER_CACHE_TTL_SECS=0`), so every verification reads what it needs; its floor
//!    replays the DynamoDB calls one such verification made (`replay`: recorded through the
//!    proxy), each time for another key, with a bare SDK client;
//! 2. **warm**: one secret verified again and again, both caches warm; its floor is the
//!    runtime API's own round trip (the hello function's warm invocation);
//! 3. **spending a credit**: not measured, as verify spends no credits yet.

use std::fmt::Write as _;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use serde_json::Value;
use tokio::time::Instant;

use crate::BoxError;
use crate::replay::{self, Recorded};
use crate::report::Stats;

/// The ratio goals of the cases.
pub const COLD_GOAL: f64 = 1.2;
pub const WARM_GOAL: f64 = 1.5;

/// The cold case's floor: the calls recorded for one verification of the key whose credential
/// hash and id are `recorded_for`, sent again for each of `keys` in turn.
pub struct ColdFloor {
    pub calls: Vec<Recorded>,
    pub recorded_for: (String, String),
}

impl ColdFloor {
    /// The calls for another key: its hash and id put in place of the recorded key's.
    fn for_key(&self, (hash, id): &(String, String)) -> Result<Vec<Recorded>, BoxError> {
        let text = replay::to_json(&self.calls)
            .to_string()
            .replace(&self.recorded_for.0, hash)
            .replace(&self.recorded_for.1, id);
        replay::from_json(&serde_json::from_str::<Value>(&text)?)
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
            replay::replay(client, &calls, None).await?;
            out.push(t.elapsed());
        }
        Ok(out)
    }

    pub fn ops(&self) -> String {
        replay::ops(&self.calls).join(", ")
    }
}

/// What the run measured.
pub struct Figures {
    pub cold: Stats,
    pub cold_floor: Stats,
    pub cold_ops: String,
    pub warm: Stats,
    pub warm_floor: Stats,
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

/// `verify.md`: the three cases.
pub fn markdown(f: &Figures) -> String {
    let mut md = String::from(
        "# Verify\n\n\
         Three cases, each beside its floor, measured in the same run, in alternating rounds \
         (`bench/src/verify.rs`).\n\n\
         | case | verify-key p50 | verify-key p99 | floor | floor p50 | floor p99 | ratio p50 | ratio p99 | goal (p50) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    let rows = [
        (
            format!("1. cold: {} distinct secrets, both caches off", f.cold.n),
            &f.cold,
            format!("the same DynamoDB calls, bare SDK ({})", f.cold_ops),
            &f.cold_floor,
            COLD_GOAL,
        ),
        (
            format!("2. warm: one secret {} times, both caches warm", f.warm.n),
            &f.warm,
            "the runtime API's round trip (hello)".to_owned(),
            &f.warm_floor,
            WARM_GOAL,
        ),
    ];
    for (case, x, floor, fl, goal) in rows {
        let r50 = x.p50 / fl.p50;
        let _ = writeln!(
            md,
            "| {case} | {:.3} ms | {:.3} ms | {floor} | {:.3} ms | {:.3} ms | {} | {} | ≤ {goal}×, {} |",
            x.p50,
            x.p99,
            fl.p50,
            fl.p99,
            ratio(x.p50, fl.p50),
            ratio(x.p99, fl.p99),
            verdict(r50, goal),
        );
    }
    md.push_str(
        "| 3. spending a credit | | | | | | | | not measured: verify spends no credits yet |\n",
    );
    md
}
