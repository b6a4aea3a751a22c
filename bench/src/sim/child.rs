//! One verifier process of the quota simulation (`sim`): this binary, started again as
//! `apikeys-bench --verifier`, verifies one key from many tasks at once, in process, through
//! verify-key's own handler (`apikeys::http::verify_key`) and an application built as
//! verify-key's `main` builds it. So each child holds its own caches and leases, as one warm
//! instance does.
//!
//! The spec comes in `BENCH_VERIFIER` (JSON). The child verifies the caller's own key once
//! (which caches the caller), says `ready`, waits for a line on stdin, then runs its tasks
//! until the spec's time or count is spent, and says one JSON line with every attempt.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;
use tokio::time::Instant;

use crate::BoxError;

/// The argument that makes this binary a verifier.
pub const FLAG: &str = "--verifier";
/// The variable that carries the spec.
pub const SPEC: &str = "BENCH_VERIFIER";
/// What begins the lines a verifier says to the harness: the service prints its log lines
/// and metrics on stdout too.
pub const SAYS: &str = "bench-verifier: ";

/// What a verifier does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    /// verify-key's sample event, its body verifying the key under test (with its `cost`).
    pub event: Value,
    /// The same event verifying the caller's own key: the warm-up.
    pub warm_up: Value,
    pub tasks: usize,
    /// Attempts per task at most.
    pub max_attempts: usize,
    /// How long the tasks run, from the go line.
    pub run_ms: u64,
    /// The mean pause of a task between two attempts (each pause is drawn from half to one
    /// and a half times it).
    pub pace_ms: u64,
}

/// One verification as a client saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    /// The answer's `code`, or `HTTP <status>` for an answer other than a 200.
    pub code: String,
    pub micros: u64,
    /// The first rate limit's `reset`: the end of the window it counted in.
    pub reset: Option<i64>,
}

/// What a verifier prints when it is done.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Output {
    pub attempts: Vec<Attempt>,
    /// When the earliest task stopped (epoch milliseconds): every task was asking until then.
    pub demand_until_ms: i64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// In a verifier: runs it and returns its outcome. `None` when this process is not one.
pub fn run_if_asked() -> Option<Result<(), BoxError>> {
    if std::env::args().nth(1).as_deref() != Some(FLAG) {
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    Some(match rt {
        Ok(rt) => rt.block_on(verifier()),
        Err(e) => Err(e.into()),
    })
}

async fn verifier() -> Result<(), BoxError> {
    let spec: Spec = serde_json::from_str(&std::env::var(SPEC)?)?;
    let ttl = apikeys::config::caller_cache_ttl()?;
    let app = apikeys::App::from_env().await?.with_caller_cache(ttl);
    let cache = apikeys::verify::VerifyCache::matching(&app.callers);
    let shared = Arc::new((app, cache));
    let warm = once(&shared, &spec.warm_up).await?;
    if warm.code != "VALID" {
        return Err(format!("the warm-up verify answered {}", warm.code).into());
    }
    println!("{SAYS}ready");
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await?;
    let deadline = Instant::now() + Duration::from_millis(spec.run_ms);
    let mut set = tokio::task::JoinSet::new();
    for task in 0..spec.tasks {
        let (shared, spec) = (shared.clone(), spec.clone());
        set.spawn(async move { attempts(&shared, &spec, task, deadline).await });
    }
    let mut out = Output {
        attempts: Vec::new(),
        demand_until_ms: i64::MAX,
    };
    for r in set.join_all().await {
        let (attempts, stopped) = r?;
        out.attempts.extend(attempts);
        out.demand_until_ms = out.demand_until_ms.min(stopped);
    }
    println!("{SAYS}{}", serde_json::to_string(&out)?);
    Ok(())
}

type Shared<S> = Arc<(apikeys::App<S>, apikeys::verify::VerifyCache)>;

/// One task's attempts until the deadline or its count, and when it stopped.
async fn attempts<S>(
    shared: &Shared<S>,
    spec: &Spec,
    task: usize,
    deadline: Instant,
) -> Result<(Vec<Attempt>, i64), BoxError>
where
    S: apikeys::store::CredentialStore + apikeys::store::KeyReader + apikeys::store::QuotaStore,
{
    let mut out = Vec::new();
    // A small xorshift, seeded per process and task: the pauses of the tasks drift apart.
    let mut x = (u64::from(std::process::id()) << 16 | task as u64) | 1;
    while out.len() < spec.max_attempts && Instant::now() < deadline {
        out.push(once(shared, &spec.event).await?);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pause = spec.pace_ms / 2 + x % (spec.pace_ms + 1);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    Ok((out, now_ms()))
}

/// One verification, timed from the request built to the answer's body read.
async fn once<S>(shared: &Shared<S>, event: &Value) -> Result<Attempt, BoxError>
where
    S: apikeys::store::CredentialStore + apikeys::store::KeyReader + apikeys::store::QuotaStore,
{
    let (app, cache) = (&shared.0, &shared.1);
    let req = lambda_http::request::from_str(&event.to_string())?;
    let t = Instant::now();
    let res = apikeys::http::verify_key(app, cache, req).await;
    let micros = u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX);
    if res.status() != 200 {
        return Ok(Attempt {
            code: format!("HTTP {}", res.status().as_u16()),
            micros,
            reset: None,
        });
    }
    let body: Value = serde_json::from_slice(res.body().as_ref())?;
    Ok(Attempt {
        code: body["code"].as_str().unwrap_or("?").to_owned(),
        micros,
        reset: body["ratelimits"][0]["reset"].as_i64(),
    })
}
