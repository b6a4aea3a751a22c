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

/// What to start, and the event of its first invocation.
pub struct Subject {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub event: Bytes,
    /// Measured at every memory size, with warm invocations (get-key and its peer).
    pub sized: bool,
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
    rss: u64,
}

pub struct Plan {
    pub inits: usize,
    pub warm: usize,
}

/// The service's own answer (any status below 500), or an error naming the subject. Not only
/// a 2xx: a write's sample event is not repeatable (after the first cold start, delete-key's
/// key is gone and it answers 404, having authenticated and read as before).
fn check(name: &str, a: &crate::emulator::Answer) -> Result<(), BoxError> {
    let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    let ok = !a.error
        && v["statusCode"]
            .as_u64()
            .is_some_and(|s| (200..500).contains(&s));
    if !ok {
        return Err(format!("{name} answered: {}", String::from_utf8_lossy(&a.body)).into());
    }
    Ok(())
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
    let a = p.invoke(s.event.clone()).await?;
    check(&s.name, &a)?;
    let first = init + a.duration;
    let mut durations = Vec::with_capacity(warm);
    for _ in 0..warm {
        let a = p.invoke(s.event.clone()).await?;
        check(&s.name, &a)?;
        durations.push(a.duration);
    }
    let rss = p.peak_rss()?;
    f.init.push(init);
    f.first.push(first);
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
    let mut quotas = Vec::new();
    let mut quota_note = None;
    for mb in std::iter::once(0).chain(MEMORY_SIZES) {
        match Quota::new(mb) {
            Ok(q) => quotas.push(q),
            Err(e) => {
                quotas.clear();
                quota_note = Some(format!(
                    "no CPU quota measured: {e}; init counts from the spawn, without a launcher"
                ));
                say(&format!("cold start: {e}; full CPU only"));
                break;
            }
        }
    }
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
                let warm = if sized && i == 0 { plan.warm } else { 0 };
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
        for i in 0..plan.inits {
            for s in subjects.iter().filter(|s| s.sized) {
                let f = figures
                    .entry((Level::Share(q.memory_mb), s.name.clone()))
                    .or_default();
                let warm = if i == 0 { plan.warm } else { 0 };
                once(s, (Some(q), false), env, work, warm, f).await?;
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
             the same start to its first answer. The first-response floor of a level is the \
             faster of *floor* and *floor, connected in init* there. {} warm \
             invocations per sized subject and level.\n\n\
             Levels: *full CPU*, the whole machine; *a memory size's share*, that share of a vCPU \
             from the process's first instruction (what provisioned concurrency gets: its init \
             runs at the share too); *on demand*, Lambda's ordinary cold start, whose init runs \
             on a full vCPU whatever the memory size, then the share from the first event on.\n",
            self.plan.inits, self.plan.warm
        );
        if let Some(n) = &self.quota_note {
            let _ = writeln!(md, "**{n}**\n");
        }
        // Targets, per function and level.
        let _ = writeln!(
            md,
            "## Targets\n\n| function | level | first response | floor | ratio (≤ 1.2×) | init | hello | ratio (≤ 2×) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for level in self.levels() {
            let (Some(hello), Some((fl, fl_name))) = (self.get(level, "hello"), self.floor(level))
            else {
                continue;
            };
            let h = median(&hello.init);
            for f in &self.functions {
                let Some(x) = self.get(level, f) else {
                    continue;
                };
                let (i, first) = (median(&x.init), median(&x.first));
                let r1 = ms(first) / ms(fl);
                let r2 = ms(i) / ms(h);
                let _ = writeln!(
                    md,
                    "| {f} | {} | {:.2} ms | {:.2} ms ({fl_name}) | {r1:.2}× {} | {:.2} ms | {:.2} ms | {r2:.2}× {} |",
                    Self::level_name(level),
                    ms(first),
                    ms(fl),
                    if r1 <= 1.2 { "met" } else { "**not met**" },
                    ms(i),
                    ms(h),
                    if r2 <= 2.0 { "met" } else { "**not met**" },
                );
            }
        }
        // Every subject, per level.
        for level in self.levels() {
            let _ = writeln!(
                md,
                "\n## {}\n\n| subject | init p50 | init min | first response p50 | init / hello | first response / floor | warm p50 | warm p99 | peak RSS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
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
                let (wp50, wp99) = if x.warm.is_empty() {
                    (String::new(), String::new())
                } else {
                    let s = Stats::of(&x.warm);
                    (format!("{:.3} ms", s.p50), format!("{:.3} ms", s.p99))
                };
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
        // Memory sizes and cost, per sized subject.
        let _ = writeln!(
            md,
            "\n## Memory size and cost (arm64: ${PRICE_GB_SECOND} per GB-s, $0.20 per million requests)\n\n\
             Cost per million warm requests: the warm p50 rounded up to the billed millisecond, \
             times the memory, plus the request charge. A cold start adds its init (billed) to \
             the request that meets it.\n\n\
             | subject | memory | init p50 | first response p50 | warm p50 | warm p99 | $ per million warm requests | $ per cold start ×10⁶ |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |"
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
                let billed = s.p50.ceil() / 1000.0;
                let cost = 1e6 * (billed * gb * PRICE_GB_SECOND + PRICE_REQUEST);
                let cold = 1e6 * (ms(median(&x.first)).ceil() / 1000.0) * gb * PRICE_GB_SECOND;
                let _ = writeln!(
                    md,
                    "| {name} | {mb} MB | {:.1} ms | {:.1} ms | {:.3} ms | {:.3} ms | ${cost:.4} | ${cold:.2} |",
                    ms(median(&x.init)),
                    ms(median(&x.first)),
                    s.p50,
                    s.p99,
                );
            }
        }
        let _ = writeln!(md, "\nThis part of the run took {:.0} s.", self.secs);
        md
    }
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
