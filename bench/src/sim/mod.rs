//! The quota simulation (`make bench-quota`): many verifier processes (`child`), each with
//! many tasks, verify one key at once against DynamoDB Local, through the recording proxy
//! (`apikeys_tests::capacity`), for each way a key may be metered: credits alone, one exact
//! rate limit, one leased rate limit. `tally` counts what they were let through against what
//! the key allowed; the proxy counts the DynamoDB calls. Writes `quota.md`.
//!
//! Every run is bounded: in time (the tasks' run, and a limit on every wait for a process)
//! and in count (attempts per task). Latencies are taken in the verifiers, around the
//! handler, through the proxy; they are not comparable with verify.md's, which are not.

pub mod child;
mod tally;

use std::process::Stdio;
use std::time::Duration;

use apikeys_tests::capacity::Proxy;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::BoxError;
use crate::context::Ctx;
use crate::samples::{bytes, event, verify_event};
use child::{Output, Spec};
use tally::{Allowance, Tally, tally};

/// The size of the run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub processes: usize,
    pub tasks: usize,
    pub credits: u64,
    pub limit: u64,
    pub duration_ms: u64,
    /// How long the tasks run: with credits, and with a limit (a few whole windows).
    pub credits_run_ms: u64,
    pub limit_run_ms: u64,
    pub pace_ms: u64,
}

impl Scale {
    pub fn full() -> Scale {
        Scale {
            processes: 4,
            tasks: 16,
            credits: 200,
            limit: 100,
            duration_ms: 10_000,
            credits_run_ms: 5_000,
            limit_run_ms: 32_000,
            pace_ms: 150,
        }
    }

    /// For iterating: three processes, windows of a second.
    pub fn quick() -> Scale {
        Scale {
            processes: 3,
            tasks: 8,
            limit: 50,
            duration_ms: 1_000,
            credits_run_ms: 2_000,
            limit_run_ms: 4_500,
            pace_ms: 40,
            ..Scale::full()
        }
    }
}

/// One way of metering the key.
struct Mode {
    name: &'static str,
    /// The members of the create body that meter the key.
    meter: Value,
    allowance: Allowance,
    run_ms: u64,
    /// The stated bound of under-admission per window.
    bound: u64,
}

fn modes(s: &Scale) -> Vec<Mode> {
    let limit = |mode: &str| json!([{"name": "sim", "limit": s.limit, "duration_ms": s.duration_ms, "mode": mode}]);
    let allowance = Allowance::Limit {
        limit: s.limit,
        duration_ms: s.duration_ms,
    };
    vec![
        Mode {
            name: "credits only",
            meter: json!({"credits": {"remaining": s.credits}}),
            allowance: Allowance::Credits(s.credits),
            run_ms: s.credits_run_ms,
            bound: 0,
        },
        Mode {
            name: "exact limit",
            meter: json!({"ratelimits": limit("exact")}),
            allowance,
            run_ms: s.limit_run_ms,
            bound: 0,
        },
        Mode {
            name: "leased limit",
            meter: json!({"ratelimits": limit("leased")}),
            allowance,
            run_ms: s.limit_run_ms,
            // (processes holding a lease) x the lease, ceil(limit / 10).
            bound: s.processes as u64 * s.limit.div_ceil(10),
        },
    ]
}

/// Runs every mode and writes `quota.md`.
pub async fn simulate(ctx: &Ctx, scale: Scale) -> Result<(), BoxError> {
    let proxy = Proxy::start(ctx.upstream).await?;
    let mut create = ctx.start("create-key", &ctx.direct(), "sim").await?;
    create.init_time().await?;
    // A first round, not counted, with plenty of credits: DynamoDB Local's JVM warms up on
    // the same writes, so that the first mode does not pay for it.
    let warm_up = Mode {
        name: "warm-up",
        meter: json!({"credits": {"remaining": 1_000_000_000u64}}),
        allowance: Allowance::Credits(1_000_000_000),
        run_ms: scale.credits_run_ms,
        bound: 0,
    };
    let secret = create_key(ctx, &mut create, &warm_up).await?;
    run_mode(ctx, &proxy, &scale, &warm_up, &secret).await?;
    let mut rows = Vec::new();
    for mode in modes(&scale) {
        let secret = create_key(ctx, &mut create, &mode).await?;
        let (outputs, go_ms, calls) = run_mode(ctx, &proxy, &scale, &mode, &secret).await?;
        let t = tally(&outputs, mode.allowance, go_ms);
        ctx.say(&format!(
            "quota simulation, {}: {} attempts, {} admitted, over-admission {}",
            mode.name, t.attempts, t.valid, t.over
        ));
        rows.push((mode, t, calls));
    }
    create.stop().await;
    proxy.stop();
    let md = markdown(ctx, &scale, &rows);
    std::fs::write(ctx.args.out.join("quota.md"), &md)?;
    println!("{md}");
    ctx.clean();
    Ok(())
}

/// A key of the demo organization metered as `mode` says, made by create-key; its secret.
async fn create_key(
    ctx: &Ctx,
    create: &mut crate::emulator::Function,
    mode: &Mode,
) -> Result<String, BoxError> {
    let mut e = event(&ctx.args.events, "create-key.http.json")?;
    if let Some(h) = e["headers"].as_object_mut() {
        h.remove("content-length");
    }
    let mut body = json!({"name": format!("quota simulation: {}", mode.name), "restricted": false});
    if let (Some(b), Some(m)) = (body.as_object_mut(), mode.meter.as_object()) {
        b.extend(m.clone());
    }
    e["body"] = body.to_string().into();
    let a = create.invoke(bytes(&e)).await?;
    let v: Value = serde_json::from_slice(&a.body)?;
    if a.error || v["statusCode"] != 201 {
        return Err(format!("create-key answered {v}").into());
    }
    let answer: Value = serde_json::from_str(v["body"].as_str().unwrap_or("{}"))?;
    Ok(answer["secret"]
        .as_str()
        .ok_or("create-key's answer has no secret")?
        .to_owned())
}

/// DynamoDB calls by operation, as the proxy saw them during the tasks' run.
type Calls = std::collections::BTreeMap<String, usize>;

/// Starts the verifiers, lets them go at once, and collects what they saw; with when they
/// went (epoch ms) and the DynamoDB calls they made meanwhile.
async fn run_mode(
    ctx: &Ctx,
    proxy: &Proxy,
    scale: &Scale,
    mode: &Mode,
    secret: &str,
) -> Result<(Vec<Output>, i64, Calls), BoxError> {
    let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).ok_or("the demo admin")?;
    let mut ev = verify_event(&ctx.samples.verify_http, secret);
    let mut body: Value = serde_json::from_str(ev["body"].as_str().unwrap_or("{}"))?;
    body["cost"] = 1.into();
    ev["body"] = body.to_string().into();
    let spec = Spec {
        event: ev,
        warm_up: verify_event(&ctx.samples.verify_http, admin.expose()),
        tasks: scale.tasks,
        max_attempts: usize::try_from(4 * mode.run_ms / scale.pace_ms.max(1))?,
        run_ms: mode.run_ms,
        pace_ms: scale.pace_ms,
    };
    let mut env = ctx.env_with(&proxy.url(), &[]);
    env.push((child::SPEC.into(), serde_json::to_string(&spec)?));
    let mut children = Vec::new();
    for n in 0..scale.processes {
        children.push(Verifier::start(ctx, &env, &format!("{}-{n}", mode.name)).await?);
    }
    for c in &mut children {
        c.ready().await?;
    }
    proxy.take();
    let go_ms = child::now_ms();
    for c in &mut children {
        c.go().await?;
    }
    let limit = Duration::from_millis(mode.run_ms) + Duration::from_secs(60);
    let mut outputs = Vec::new();
    for c in children {
        outputs.push(c.output(limit).await?);
    }
    let mut calls = Calls::new();
    for c in proxy.take() {
        *calls.entry(c.op).or_default() += 1;
    }
    Ok((outputs, go_ms, calls))
}

/// A verifier process.
struct Verifier {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl Verifier {
    async fn start(ctx: &Ctx, env: &[(String, String)], name: &str) -> Result<Self, BoxError> {
        let stderr = ctx
            .work
            .join(format!("verifier.{name}.stderr").replace(' ', "-"));
        // Not `current_exe()`: a rebuild during the run would leave that path deleted.
        let mut child = Command::new("/proc/self/exe")
            .arg(child::FLAG)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Verifier {
            child,
            lines: BufReader::new(stdout).lines(),
            name: name.to_owned(),
        })
    }

    /// The next line the verifier says to the harness (`child::SAYS`).
    async fn line(&mut self, limit: Duration) -> Result<String, BoxError> {
        let said = async {
            while let Some(line) = self.lines.next_line().await? {
                if let Some(said) = line.strip_prefix(child::SAYS) {
                    return Ok(said.to_owned());
                }
            }
            Err::<_, BoxError>(format!("verifier {} exited (see its stderr)", self.name).into())
        };
        tokio::time::timeout(limit, said)
            .await
            .map_err(|_| format!("verifier {} said nothing within {limit:?}", self.name))?
    }

    async fn ready(&mut self) -> Result<(), BoxError> {
        match self.line(Duration::from_secs(60)).await?.as_str() {
            "ready" => Ok(()),
            other => Err(format!("verifier {}: {other}", self.name).into()),
        }
    }

    async fn go(&mut self) -> Result<(), BoxError> {
        let stdin = self.child.stdin.as_mut().ok_or("no stdin")?;
        stdin.write_all(b"go\n").await?;
        Ok(stdin.flush().await?)
    }

    async fn output(mut self, limit: Duration) -> Result<Output, BoxError> {
        let out = serde_json::from_str(&self.line(limit).await?)?;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.start_kill();
        Ok(out)
    }
}

/// `quota.md`.
fn markdown(ctx: &Ctx, s: &Scale, rows: &[(Mode, Tally, Calls)]) -> String {
    let mut md = format!(
        "# Quota simulation\n\n\
         {} verifier processes of {} tasks each verify one key at once (`bench/src/sim/`), \
         each task pausing {} ms on average between verifications, through the recording \
         proxy to DynamoDB Local, after a round not counted that warms DynamoDB Local up. Limits: {} per {} ms; credits: {}. Over-admission counts \
         `VALID` answers beyond the limit in any window, or beyond the credits; \
         under-admission, the worst shortfall of a window during which every task was asking \
         throughout (or the credits left once verifies were refused for want of them).\n\n\
         | mode | attempts | admitted | refused | other answers | windows judged | admitted per judged window | over-admission | under-admission | stated bound | DynamoDB writes per verify | per admitted verify | DynamoDB calls | p50 | p99 |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        s.processes, s.tasks, s.pace_ms, s.limit, s.duration_ms, s.credits
    );
    for (mode, t, calls) in rows {
        md.push_str(&row(mode, t, calls));
    }
    md.push_str(&format!(
        "\nWritten by `{}`; whole run {:.0} s.\n",
        command_line(),
        ctx.elapsed_secs()
    ));
    md
}

fn row(mode: &Mode, t: &Tally, calls: &Calls) -> String {
    const WRITES: [&str; 5] = [
        "UpdateItem",
        "PutItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchWriteItem",
    ];
    let writes: usize = WRITES.iter().filter_map(|w| calls.get(*w)).sum();
    let per = |n: usize, of: usize| n as f64 / of.max(1) as f64;
    let refused = format!(
        "{} RATE_LIMITED, {} USAGE_EXCEEDED",
        t.rate_limited, t.usage_exceeded
    );
    let other: Vec<String> = t.other.iter().map(|(c, n)| format!("{n} {c}")).collect();
    let judged = match mode.allowance {
        Allowance::Credits(_) => "(credits)".to_owned(),
        Allowance::Limit { .. } => t.judged_windows.to_string(),
    };
    let range = t
        .admitted_range
        .map(|(a, b)| format!("{a} to {b}"))
        .unwrap_or_default();
    let verdict = |ok: bool| if ok { "" } else { " **exceeds**" };
    let under = match t.under {
        Some(u) => format!("{u}{}", verdict(u <= mode.bound)),
        None => "not judged".to_owned(),
    };
    let all: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
    format!(
        "| {} | {} | {} | {refused} | {} | {judged} | {range} | {}{} | {under} | {} | {:.2} | {:.2} | {} | {:.2} ms | {:.2} ms |\n",
        mode.name,
        t.attempts,
        t.valid,
        other.join(", "),
        t.over,
        verdict(t.over == 0),
        mode.bound,
        per(writes, t.attempts),
        per(writes, t.valid),
        all.join(", "),
        t.latency.p50,
        t.latency.p99,
    )
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("apikeys-bench {}", args.join(" "))
}
