//! Cold start with TLS on the path, at full CPU and under the CPU quotas of Lambda memory
//! sizes (`quota`: from the first instruction, and on demand, where init has a full vCPU),
//! beside the floors and the Python peer, all in one run:
//!
//! - **hello**: the smallest `lambda_runtime` function (the init floor);
//! - **floor**: an SDK client and one GetItem over TLS (`bin/floor.rs`; the first-response
//!   floor: the least any function that reads DynamoDB must do), and the same connected in
//!   init; a level's first-response floor is the faster of the two;
//! - **every function of template.yaml** (its `Binary`), with its `events/<binary>.http.json`;
//! - **the client variants** (`bench/variant`), each one change from the client as it was;
//! - **the Python peer** (`bench/peers/python`: boto3 and awslambdaric), when given.
//!
//! Every process reaches DynamoDB Local through the TLS front (`tls`). Cold starts are
//! interleaved, so that the machine's noise falls on all alike; medians are reported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::BoxError;
use crate::emulator::{Function, Spawn};
use crate::quota::{MB_PER_VCPU, Quota};

use crate::report::Stats;

/// The first-response floor that connects in init (`bin/floor.rs`), beside `floor`.
pub const FLOOR_CONNECTED: &str = "floor, connected in init";
/// The first-response floors; the faster of the two at a level is that level's floor.
const FLOORS: [&str; 2] = ["floor", FLOOR_CONNECTED];

/// The memory size whose share is one whole vCPU: an on-demand init's CPU.
const ONE_VCPU_MB: u32 = MB_PER_VCPU as u32;

/// Memory sizes measured (MB); `None` is the whole machine.
pub const MEMORY_SIZES: [u32; 4] = [128, 256, 512, 1024];
/// Lambda's price for arm64 (us-east-1, first tier): per GB-second and per request.
pub const PRICE_GB_SECOND: f64 = 0.000_013_333_4;
pub const PRICE_REQUEST: f64 = 0.20 / 1_000_000.0;

/// What to start, the events of its invocations, and the answer that counts as success.
pub struct Subject {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// One event, sent to every start; or one per start, each doing its real work once (a
    /// write's sample is not repeatable: after the first start, delete-key's key is gone).
    pub events: Vec<Bytes>,
    /// The status of success; any other answer fails the run.
    pub expect: u16,
    /// Text the body of a success must hold (verify's `VALID`, a revocation's verdict).
    pub expect_body: Option<&'static str>,
    /// Measured at every memory size, with warm invocations (get-key and its peers).
    pub sized: bool,
    /// The events handed out so far.
    pub used: AtomicUsize,
}

impl Subject {
    pub fn new(name: &str, program: PathBuf, event: Bytes) -> Subject {
        Subject {
            name: name.to_owned(),
            program,
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            events: vec![event],
            expect: 200,
            expect_body: None,
            sized: false,
            used: AtomicUsize::new(0),
        }
    }

    /// The next start's event: the only one, or the next fresh one.
    pub fn next_event(&self) -> Result<Bytes, BoxError> {
        let n = self.used.fetch_add(1, Ordering::Relaxed);
        match &self.events[..] {
            [one] => Ok(one.clone()),
            all => all
                .get(n)
                .cloned()
                .ok_or_else(|| format!("{}: no fresh event left for start {n}", self.name).into()),
        }
    }

    /// Fails unless the answer is this subject's success.
    pub fn check(&self, a: &crate::emulator::Answer) -> Result<(), BoxError> {
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        let body_ok = self
            .expect_body
            .is_none_or(|t| v["body"].as_str().is_some_and(|b| b.contains(t)));
        if a.error || v["statusCode"] != self.expect || !body_ok {
            return Err(format!(
                "{} answered, not {}{}: {}",
                self.name,
                self.expect,
                self.expect_body
                    .map(|t| format!(" with {t}"))
                    .unwrap_or_default(),
                String::from_utf8_lossy(&a.body)
            )
            .into());
        }
        Ok(())
    }
}

/// The functions of template.yaml: the `Binary` of each `rust-cargolambda` build.
pub fn template_binaries(template: &Path) -> Result<Vec<String>, BoxError> {
    let text =
        std::fs::read_to_string(template).map_err(|e| format!("{}: {e}", template.display()))?;
    let bins: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Binary:"))
        .map(|b| b.trim().to_owned())
        .collect();
    if bins.is_empty() {
        return Err(format!("no function Binary in {}", template.display()).into());
    }
    Ok(bins)
}

#[derive(Default)]
struct Figures {
    init: Vec<Duration>,
    first: Vec<Duration>,
    warm: Vec<Duration>,
    /// Each process's warm median: the spread between processes.
    warm_medians: Vec<Duration>,
    rss: u64,
}

pub struct Plan {
    pub inits: usize,
    /// Warm invocations of each start of a sized subject at a memory size's share.
    pub warm: usize,
}

async fn once(
    s: &Subject,
    (quota, on_demand): (Option<&Quota>, bool),
    env: &[(String, String)],
    work: &Path,
    warm: usize,
    f: &mut Figures,
) -> Result<(), BoxError> {
    let mut all = env.to_vec();
    all.extend(s.env.iter().cloned());
    let how = Spawn {
        program: &s.program,
        args: &s.args,
        cwd: s.cwd.as_deref(),
        quota,
    };
    if let Some(q) = quota {
        // Written before every start: it also refills the cgroup's runtime, so no process
        // starts in a period the one before it used up. On demand, init has one vCPU.
        q.limit(if on_demand { ONE_VCPU_MB } else { q.memory_mb })?;
    }
    let stderr = work.join(format!("{}.coldstart.stderr", s.name));
    let mut p = Function::spawn(&s.name, &how, &all, &stderr).await?;
    let measured = measure(s, &mut p, quota.filter(|_| on_demand), warm, f).await;
    // Stopped (and waited for) before anything else, so that no process outlives its cgroup.
    p.stop().await;
    measured
}

/// One cold start of a started process; `on_demand` is its cgroup when its share applies
/// only once init is over.
async fn measure(
    s: &Subject,
    p: &mut Function,
    on_demand: Option<&Quota>,
    warm: usize,
    f: &mut Figures,
) -> Result<(), BoxError> {
    let init = p.init_time().await?;
    if let Some(q) = on_demand {
        // Init is over and the process waits in `next`: the share applies from the event on.
        q.limit(q.memory_mb)?;
    }
    let a = p.invoke(s.next_event()?).await?;
    s.check(&a)?;
    let first = init + a.duration;
    let mut durations = Vec::with_capacity(warm);
    for _ in 0..warm {
        let a = p.invoke(s.events[0].clone()).await?;
        s.check(&a)?;
        durations.push(a.duration);
    }
    let rss = p.peak_rss()?;
    f.init.push(init);
    f.first.push(first);
    if !durations.is_empty() {
        f.warm_medians.push(median(&durations));
    }
    f.warm.extend(durations);
    f.rss = f.rss.max(rss);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// The CPU a subject had during its init and during its invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The whole machine throughout.
    Full,
    /// A memory size's share of a vCPU from the first instruction: what provisioned
    /// concurrency gets (its init runs at the share too), and the cautious reading.
    Share(u32),
    /// Lambda's on-demand cold start at a memory size: init on one vCPU, then the share (its
    /// cgroup's limit changes at its first `next`, before it gets an event).
    OnDemand(u32),
}

type Key = (Level, String);

pub struct Results {
    figures: BTreeMap<Key, Figures>,
    subjects: Vec<(String, bool)>,
    functions: Vec<String>,
    plan: Plan,
    quota_note: Option<String>,
    pub secs: f64,
}

/// The CPU quotas of full CPU and of every memory size; none, and why, if the cgroups
/// cannot be made.
fn quotas(say: &dyn Fn(&str)) -> (Vec<Quota>, Option<String>) {
    let mut quotas = Vec::new();
    for mb in std::iter::once(0).chain(MEMORY_SIZES) {
        match Quota::new(mb) {
            Ok(q) => quotas.push(q),
            Err(e) => {
                say(&format!("cold start: {e}; full CPU only"));
                let note = format!(
                    "no CPU quota measured: {e}; init counts from the spawn, without a launcher"
                );
                return (Vec::new(), Some(note));
            }
        }
    }
    (quotas, None)
}

/// Runs every subject `plan.inits` times at full CPU and at the 128 MB share (interleaved),
/// then the sized subjects at every memory size.
pub async fn run(
    subjects: &[Subject],
    functions: &[String],
    env: &[(String, String)],
    work: &Path,
    plan: Plan,
    say: &dyn Fn(&str),
) -> Result<Results, BoxError> {
    let started = std::time::Instant::now();
    let mut figures: BTreeMap<Key, Figures> = BTreeMap::new();
    let (quotas, quota_note) = quotas(say);
    // Full CPU, the 128 MB share, and 128 MB on demand (if the cgroups could be made),
    // interleaved.
    let on_demand = match &quotas[..] {
        [_, small, ..] => match Quota::on_demand(small.memory_mb) {
            Ok(q) => Some(q),
            Err(e) => {
                say(&format!("cold start: {e}; no on-demand level"));
                None
            }
        },
        _ => None,
    };
    type Cpu<'q> = (Option<&'q Quota>, bool);
    let mut levels: Vec<(Level, Cpu<'_>)> = match &quotas[..] {
        [full, small, ..] => vec![
            (Level::Full, (Some(full), false)),
            (Level::Share(small.memory_mb), (Some(small), false)),
        ],
        _ => vec![(Level::Full, (None, false))],
    };
    if let Some(od) = &on_demand {
        levels.push((Level::OnDemand(od.memory_mb), (Some(od), true)));
    }
    for i in 0..plan.inits {
        for (level, cpu) in &levels {
            for s in subjects {
                let f = figures.entry((*level, s.name.clone())).or_default();
                // Warm invocations at a memory size's share are the same on demand.
                let sized = s.sized && !matches!(level, Level::OnDemand(_));
                let warm = if sized { plan.warm } else { 0 };
                once(s, *cpu, env, work, warm, f).await?;
            }
        }
        say(&format!(
            "cold start with TLS: round {} of {}",
            i + 1,
            plan.inits
        ));
    }
    // The other memory sizes: the sized subjects only.
    for q in quotas.iter().skip(2) {
        for _ in 0..plan.inits {
            for s in subjects.iter().filter(|s| s.sized) {
                let f = figures
                    .entry((Level::Share(q.memory_mb), s.name.clone()))
                    .or_default();
                once(s, (Some(q), false), env, work, plan.warm, f).await?;
            }
        }
        say(&format!("cold start with TLS: {} MB", q.memory_mb));
    }
    Ok(Results {
        figures,
        subjects: subjects.iter().map(|s| (s.name.clone(), s.sized)).collect(),
        functions: functions.to_vec(),
        plan,
        quota_note,
        secs: started.elapsed().as_secs_f64(),
    })
}

impl Results {
    fn get(&self, level: Level, name: &str) -> Option<&Figures> {
        self.figures
            .get(&(level, name.to_owned()))
            .filter(|f| !f.init.is_empty())
    }

    /// A level's first-response floor: the faster of the two floors, and its name.
    fn floor(&self, level: Level) -> Option<(Duration, &'static str)> {
        FLOORS
            .iter()
            .filter_map(|name| Some((median(&self.get(level, name)?.first), *name)))
            .min()
    }

    fn levels(&self) -> Vec<Level> {
        let mut l: Vec<Level> = self.figures.keys().map(|(l, _)| *l).collect();
        l.dedup();
        l
    }

    fn level_name(level: Level) -> String {
        let pct = |mb: u32| f64::from(mb) / MB_PER_VCPU * 100.0;
        match level {
            Level::Full => "full CPU".into(),
            Level::Share(mb) => format!("{mb} MB share ({:.1}% of a vCPU)", pct(mb)),
            Level::OnDemand(mb) => format!(
                "{mb} MB on demand (init on a full vCPU, then {:.1}% of one)",
                pct(mb)
            ),
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Cold start with TLS\n\nEvery process reaches DynamoDB Local through a TLS front with a \
             certificate made for the run. {} cold starts per subject and level, interleaved; \
             medians. Init: from the function's exec to its first `next`; first response: from \
             the same start to its first answer. Each start of a write does its real work once \
             (a fresh key, a fresh `Idempotency-Key`), and only its success status counts. \
             {} warm invocations after each start of a sized subject, at full CPU and at each \
             memory size's share.\n\n\
             Levels: *full CPU*, the whole machine; *a memory size's share*, that share of a vCPU \
             from the process's first instruction (what provisioned concurrency gets: its init \
             runs at the share too); *on demand*, Lambda's ordinary cold start, whose init runs \
             on a full vCPU whatever the memory size, then the share from the first event on.\n",
            self.plan.inits, self.plan.warm
        );
        if let Some(n) = &self.quota_note {
            let _ = writeln!(md, "**{n}**\n");
        }
        self.own_floors(&mut md);
        self.peers(&mut md);
        for level in self.levels() {
            self.level_table(&mut md, level);
        }
        self.memory_sizes(&mut md);
        let _ = writeln!(md, "\nThis part of the run took {:.0} s.", self.secs);
        md
    }

    /// Each function against its own floor (its DynamoDB calls, replayed), beside the
    /// one-GetItem floor, and its init against hello's.
    fn own_floors(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## First response against each function's own floor\n\n\
             *Own floor*: `bench-floor` replaying the DynamoDB calls the function made for one \
             request (recorded through the harness's proxy), connected in init as the function \
             is. *One-GetItem floor*: the faster of `bench-floor` making one GetItem and the same \
             connected in init, the floor of any function.\n\n\
             | function | level | first response | own floor | ratio (≤ 1.2×) | one-GetItem floor | ratio | init | hello | ratio (≤ 2×) |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for level in self.levels() {
            let (Some(hello), Some((fl, fl_name))) = (self.get(level, "hello"), self.floor(level))
            else {
                continue;
            };
            let h = median(&hello.init);
            for f in &self.functions {
                let (Some(x), Some(own)) = (self.get(level, f), self.get(level, &floor_of(f)))
                else {
                    continue;
                };
                let (i, first, own) = (median(&x.init), median(&x.first), median(&own.first));
                let r0 = ms(first) / ms(own);
                let r1 = ms(first) / ms(fl);
                let r2 = ms(i) / ms(h);
                let _ = writeln!(
                    md,
                    "| {f} | {} | {:.2} ms | {:.2} ms | {r0:.2}× {} | {:.2} ms ({fl_name}) | {r1:.2}× | {:.2} ms | {:.2} ms | {r2:.2}× {} |",
                    Self::level_name(level),
                    ms(first),
                    ms(own),
                    verdict(r0 <= 1.2),
                    ms(fl),
                    ms(i),
                    ms(h),
                    verdict(r2 <= 2.0),
                );
            }
        }
    }

    /// get-key beside its peers, at every level both were measured.
    fn peers(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## get-key and its peers\n\n\
             The peers do get-key's work the usual way (`bench/peers/`), call for call: a GetItem \
             in init, two on a first request and one when warm (each caches its caller as \
             get-key does), and the caller's last-use stamps at most once a minute.\n\n\
             | subject | level | init p50 | first response p50 | first response / get-key's | warm p50 | warm p99 | peak RSS |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for level in self.levels() {
            let Some(get) = self.get(level, "get-key") else {
                continue;
            };
            let base = median(&get.first);
            for name in std::iter::once("get-key").chain(PEERS) {
                let Some(x) = self.get(level, name) else {
                    continue;
                };
                let (wp50, wp99) = warm_columns(&x.warm);
                let _ = writeln!(
                    md,
                    "| {name} | {} | {:.2} ms | {:.2} ms | {:.1}× | {wp50} | {wp99} | {:.1} MB |",
                    Self::level_name(level),
                    ms(median(&x.init)),
                    ms(median(&x.first)),
                    ms(median(&x.first)) / ms(base),
                    x.rss as f64 / 1e6,
                );
            }
        }
    }

    fn level_table(&self, md: &mut String, level: Level) {
        let _ = writeln!(
            md,
            "\n## {}\n\n| subject | init p50 | init min | first response p50 | init / hello | first response / one-GetItem floor | warm p50 | warm p99 | peak RSS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            Self::level_name(level)
        );
        let h = self.get(level, "hello").map(|f| median(&f.init));
        let fl = self.floor(level).map(|(fl, _)| fl);
        for (name, _) in &self.subjects {
            let Some(x) = self.get(level, name) else {
                continue;
            };
            let i = median(&x.init);
            let first = median(&x.first);
            let min = x.init.iter().min().copied().unwrap_or_default();
            let (wp50, wp99) = warm_columns(&x.warm);
            let _ = writeln!(
                md,
                "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {wp50} | {wp99} | {:.1} MB |",
                ms(i),
                ms(min),
                ms(first),
                h.map(|h| format!("{:.2}×", ms(i) / ms(h)))
                    .unwrap_or_default(),
                fl.map(|fl| format!("{:.2}×", ms(first) / ms(fl)))
                    .unwrap_or_default(),
                x.rss as f64 / 1e6,
            );
        }
    }

    /// Memory sizes and their cost, from the mean billed duration.
    fn memory_sizes(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## Memory size and cost (arm64: ${PRICE_GB_SECOND} per GB-s, $0.20 per million requests)\n\n\
             Cost per million warm requests: the mean billed duration (each invocation rounded \
             up to the millisecond, as Lambda bills), times the memory, plus the request charge. \
             A cold start adds its first response to the request that meets it. The spread is \
             the lowest and highest warm median of the {} processes of a size.\n\n\
             | subject | memory | init p50 | first response p50 | warm mean | warm p50 (spread) | warm p99 | $ per million warm requests | $ per million cold starts |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            self.plan.inits
        );
        for (name, sized) in &self.subjects {
            if !sized {
                continue;
            }
            for mb in MEMORY_SIZES {
                let Some(x) = self.get(Level::Share(mb), name) else {
                    continue;
                };
                if x.warm.is_empty() {
                    continue;
                }
                let s = Stats::of(&x.warm);
                let gb = f64::from(mb) / 1024.0;
                let cost = 1e6 * (s.billed / 1000.0 * gb * PRICE_GB_SECOND + PRICE_REQUEST);
                let cold = 1e6 * (ms(median(&x.first)).ceil() / 1000.0) * gb * PRICE_GB_SECOND;
                let lo = x.warm_medians.iter().min().copied().unwrap_or_default();
                let hi = x.warm_medians.iter().max().copied().unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| {name} | {mb} MB | {:.1} ms | {:.1} ms | {:.3} ms | {:.3} ms ({:.3}–{:.3}) | {:.3} ms | ${cost:.4} | ${cold:.2} |",
                    ms(median(&x.init)),
                    ms(median(&x.first)),
                    s.mean,
                    s.p50,
                    ms(lo),
                    ms(hi),
                    s.p99,
                );
            }
        }
        for (name, sized) in &self.subjects {
            if let (true, Some(mb)) = (*sized, self.cheapest(name)) {
                let _ = writeln!(
                    md,
                    "\nCheapest per million warm requests for {name}: {mb} MB."
                );
            }
        }
    }

    /// The memory size whose warm requests cost least, per sized subject.
    pub fn cheapest(&self, name: &str) -> Option<u32> {
        MEMORY_SIZES
            .iter()
            .filter_map(|&mb| {
                let x = self.get(Level::Share(mb), name)?;
                let s = Stats::of(&x.warm);
                let gb = f64::from(mb) / 1024.0;
                Some((s.billed * gb, mb))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, mb)| mb)
    }
}

/// The subject that replays `function`'s DynamoDB calls.
pub fn floor_of(function: &str) -> String {
    format!("floor of {function}")
}

/// The section naming the calls each function's own floor replays.
pub fn floor_calls(ops: &[(String, Vec<String>)]) -> String {
    let mut md = String::from(
        "\n## What each function's own floor replays\n\n\
         The DynamoDB calls the function made for its first request, in order, as the harness's \
         proxy recorded them (its init's warm-up read aside).\n\n\
         | function | calls |\n| --- | --- |\n",
    );
    for (f, calls) in ops {
        let _ = writeln!(md, "| {f} | {} |", calls.join(", "));
    }
    md
}

/// The peers of get-key, by subject name.
pub const PEERS: [&str; 2] = ["python peer", "node peer"];

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn warm_columns(warm: &[Duration]) -> (String, String) {
    if warm.is_empty() {
        return (String::new(), String::new());
    }
    let s = Stats::of(warm);
    (format!("{:.3} ms", s.p50), format!("{:.3} ms", s.p99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_binary_of_the_template_is_found() {
        let dir = std::env::temp_dir().join(format!("coldstart-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("template.yaml");
        std::fs::write(
            &t,
            "Resources:\n  A:\n    Metadata:\n      BuildProperties:\n        Binary: get-key\n  B:\n    Metadata:\n      BuildProperties:\n        Binary: create-key\n",
        )
        .unwrap();
        assert_eq!(template_binaries(&t).unwrap(), ["get-key", "create-key"]);
        std::fs::write(&t, "Resources: {}\n").unwrap();
        assert!(template_binaries(&t).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
