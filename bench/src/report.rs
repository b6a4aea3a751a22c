//! Percentiles, the results table (markdown) and the plot of list latency against page depth.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;

use crate::{BoxError, DEPTHS, Plan};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub min: f64,
    /// The mean duration.
    pub mean: f64,
    /// The mean of the durations each rounded up to the millisecond: what Lambda bills.
    pub billed: f64,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
        Stats {
            n: ms.len(),
            p50: at(0.50),
            p99: at(0.99),
            min: ms[0],
            mean: ms.iter().sum::<f64>() / ms.len() as f64,
            billed: ms.iter().map(|m| m.ceil()).sum::<f64>() / ms.len() as f64,
        }
    }
}

type CapacityRow = (&'static str, String, f64, String, f64, String, f64);

#[derive(Default)]
pub struct Report {
    pub plan: Option<Plan>,
    pub seed_secs: Vec<(&'static str, usize, f64)>,
    pub init: BTreeMap<&'static str, Vec<Duration>>,
    pub first: BTreeMap<&'static str, Vec<Duration>>,
    pub hello_rss: u64,
    pub capacity: Vec<CapacityRow>,
    pub uncached_get: (String, f64),
    pub floor_units: (f64, f64, usize),
    pub warm: Vec<(&'static str, Stats, u64)>,
    pub floor_get: Stats,
    pub floor_query: Stats,
    pub depth_units: Vec<(usize, f64)>,
    /// The bare Query at each depth, per phase.
    pub depth_floor: Vec<Vec<Stats>>,
    /// The hello function's warm invocations: the runtime API's own round trip.
    pub hello_warm: Stats,
    /// (beside the noisy neighbour, get, list per depth)
    pub scaling: Vec<(bool, Stats, Vec<Stats>)>,
    pub binary: Vec<(&'static str, u64)>,
    pub zips: Vec<(&'static str, &'static str, Option<u64>)>,
    pub total_secs: f64,
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1_000_000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

impl Report {
    pub fn new(plan: Plan) -> Report {
        Report {
            plan: Some(plan),
            ..Report::default()
        }
    }

    fn init_stats(&self, name: &str) -> Stats {
        Stats::of(self.init.get(name).map(Vec::as_slice).unwrap_or(&[]))
    }

    fn warm_of(&self, name: &str) -> (Stats, u64) {
        self.warm
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, s, r)| (*s, *r))
            .unwrap_or_default()
    }

    pub fn markdown(&self) -> String {
        let Some(plan) = self.plan else {
            return String::new();
        };
        let mut s = String::new();
        if plan.smoke {
            let _ = writeln!(
                s,
                "(A smoke run: the counts are too small for these figures to mean anything.)\n"
            );
        }
        let _ = writeln!(s, "## Targets\n");
        self.target_ratios(&mut s);
        self.target_limits(&mut s, &plan);
        self.per_function(&mut s);
        self.zip_table(&mut s);
        self.capacity_table(&mut s);
        self.scaling_table(&mut s, &plan);
        self.run_lines(&mut s, &plan);
        s
    }

    /// The targets set against a floor: init, warm latency, list depth.
    fn target_ratios(&self, s: &mut String) {
        let hello = self.init_stats("hello");
        let (get, _) = self.warm_of("get-key");
        let (list, _) = self.warm_of("list-keys");
        let _ = writeln!(s, "| measure | value | floor | ratio | target | |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for name in ["get-key", "list-keys"] {
            let init = self.init_stats(name);
            let r = init.p50 / hello.p50;
            let _ = writeln!(
                s,
                "| init, {name} (median of {}) | {:.2} ms | {:.2} ms | {r:.2}× | ≤ 1.5× | {} |",
                init.n,
                init.p50,
                hello.p50,
                verdict(r <= 1.5)
            );
        }
        for (what, f, floor, fname) in [
            (
                "warm get p50, caller cached",
                get.p50,
                self.floor_get.p50,
                "GetItem",
            ),
            (
                "warm get p99, caller cached",
                get.p99,
                self.floor_get.p99,
                "GetItem",
            ),
            (
                "list page p50 (50 keys)",
                list.p50,
                self.floor_query.p50,
                "Query",
            ),
            (
                "list page p99 (50 keys)",
                list.p99,
                self.floor_query.p99,
                "Query",
            ),
        ] {
            let r = f / floor;
            let _ = writeln!(
                s,
                "| {what} | {f:.3} ms | {floor:.3} ms ({fname}) | {r:.2}× | ≤ 1.2× | {} |",
                verdict(r <= 1.2)
            );
        }
        if let Some((_, _, depths)) = self.scaling.iter().find(|(noisy, _, _)| !noisy) {
            let (d1, d1000) = (depths[0], depths[2]);
            let r = d1000.p50 / d1.p50;
            let _ = writeln!(
                s,
                "| list p50, depth 1,000 against depth 1 | {:.3} ms | {:.3} ms (depth 1) | {r:.2}× | ≤ 1.2× | {} |",
                d1000.p50,
                d1.p50,
                verdict(r <= 1.2)
            );
            if let Some(f) = self.depth_floor.first() {
                let _ = writeln!(
                    s,
                    "| the same for the bare Query | {:.3} ms | {:.3} ms (depth 1) | {:.2}× | | |",
                    f[2].p50,
                    f[0].p50,
                    f[2].p50 / f[0].p50
                );
            }
        }
    }

    /// The targets set as limits: memory, zip size, capacity.
    fn target_limits(&self, s: &mut String, plan: &Plan) {
        let (_, get_rss) = self.warm_of("get-key");
        let (_, list_rss) = self.warm_of("list-keys");
        for (name, rss) in [("get-key", get_rss), ("list-keys", list_rss)] {
            let _ = writeln!(
                s,
                "| peak RSS, {name}, after {} invocations | {} | {} (hello) | | ≤ 40 MB | {} |",
                plan.warm + plan.warm / 20,
                mb(rss),
                mb(self.hello_rss),
                verdict(rss <= 40_000_000)
            );
        }
        for (arch, name, size) in &self.zips {
            if *arch == "arm64" {
                match size {
                    Some(z) => {
                        let _ = writeln!(
                            s,
                            "| {arch} zip, {name} | {} | | | ≤ 3 MB | {} |",
                            mb(*z),
                            verdict(*z <= 3_000_000)
                        );
                    }
                    None => {
                        let _ = writeln!(s, "| {arch} zip, {name} | not built | | | ≤ 3 MB | |");
                    }
                }
            }
        }
        if let Some(c) = self.capacity.iter().find(|c| c.0 == "get-key") {
            let _ = writeln!(
                s,
                "| get cost, caller cached | {} RCU | {} RCU (GetItem) | | 0.5 | {} |",
                c.6,
                self.floor_units.0,
                verdict(c.6 <= 0.5)
            );
            let _ = writeln!(
                s,
                "| get cost, caller not cached | {} RCU | | | 1.0 | {} |",
                self.uncached_get.1,
                verdict(self.uncached_get.1 <= 1.0)
            );
        }
    }

    /// Each function's init, first request, warm latency, memory and binary.
    fn per_function(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Per function\n");
        let _ = writeln!(
            s,
            "| | init p50 | init min | first request p50 | warm p50 | warm p99 | warm n | peak RSS | binary |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for name in ["hello", "get-key", "list-keys", "verify-key"] {
            let init = self.init_stats(name);
            let first = Stats::of(self.first.get(name).map(Vec::as_slice).unwrap_or(&[]));
            let (w, rss) = match name {
                "hello" => (self.hello_warm, self.hello_rss),
                n => self.warm_of(n),
            };
            let bin = self
                .binary
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| mb(*b))
                .unwrap_or_default();
            let warm = |v: f64| {
                if w.n == 0 {
                    String::new()
                } else {
                    format!("{v:.3} ms")
                }
            };
            let _ = writeln!(
                s,
                "| {name} | {:.2} ms | {:.2} ms | {:.3} ms | {} | {} | {} | {} | {bin} |",
                init.p50,
                init.min,
                first.p50,
                warm(w.p50),
                warm(w.p99),
                w.n,
                mb(rss),
            );
        }
        for (what, st) in [
            ("GetItem floor", self.floor_get),
            ("Query floor (Limit 51)", self.floor_query),
        ] {
            let _ = writeln!(
                s,
                "| {what} | | | | {:.3} ms | {:.3} ms | {} | | |",
                st.p50, st.p99, st.n
            );
        }
    }

    /// The zips' sizes, when they were built.
    fn zip_table(&self, s: &mut String) {
        if !self.zips.is_empty() {
            let _ = writeln!(s, "\n| zip | get-key | list-keys |\n| --- | --- | --- |");
            for arch in ["x86_64", "arm64"] {
                let cell = |name: &str| {
                    self.zips
                        .iter()
                        .find(|(a, n, _)| *a == arch && *n == name)
                        .and_then(|(_, _, z)| z.map(mb))
                        .unwrap_or_else(|| "not built".into())
                };
                let _ = writeln!(
                    s,
                    "| {arch} | {} | {} |",
                    cell("get-key"),
                    cell("list-keys")
                );
            }
        }
    }

    /// Capacity per request, through the recording proxy.
    fn capacity_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\n## Capacity per request (ConsumedCapacity, through a recording proxy)\n"
        );
        let _ = writeln!(
            s,
            "| function | during init | first request | a later request (caller cached) |"
        );
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        for (name, init, init_u, first, first_u, later, later_u) in &self.capacity {
            let _ = writeln!(
                s,
                "| {name} | {init} = {init_u} RCU | {first} = {first_u} RCU | {later} = {later_u} RCU |"
            );
        }
        let _ = writeln!(
            s,
            "| get-key, `CALLER_CACHE_TTL_SECS=0` | | every request: {} RCU | |",
            self.uncached_get.1
        );
        let _ = writeln!(
            s,
            "| floors | | GetItem {} RCU; Query of {} items {} RCU | |",
            self.floor_units.0, self.floor_units.2, self.floor_units.1
        );
    }

    /// List latency against page depth, alone and beside the noisy neighbour.
    fn scaling_table(&self, s: &mut String, plan: &Plan) {
        let _ = writeln!(
            s,
            "\n## Scaling: an organization of {} keys, pages of {}\n",
            plan.org_keys,
            plan.page_limit()
        );
        let _ = writeln!(
            s,
            "| | get p50 | get p99 | {} |",
            DEPTHS
                .iter()
                .map(|d| format!("list depth {d} p50 / p99"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
        for (i, (noisy, get, depths)) in self.scaling.iter().enumerate() {
            let label = if *noisy {
                format!("beside a neighbour of {} keys", plan.noisy_keys)
            } else {
                "alone".to_owned()
            };
            if let Some(f) = self.depth_floor.get(i) {
                let _ = writeln!(
                    s,
                    "| bare Query (Limit {}), {label} | | | {} |",
                    plan.page_limit() + 1,
                    f.iter()
                        .map(|d| format!("{:.3} / {:.3} ms", d.p50, d.p99))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            let _ = writeln!(
                s,
                "| {label} | {:.3} ms | {:.3} ms | {} |",
                get.p50,
                get.p99,
                depths
                    .iter()
                    .map(|d| format!("{:.3} / {:.3} ms", d.p50, d.p99))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        let units: Vec<String> = self
            .depth_units
            .iter()
            .map(|(_, u)| format!("{u} RCU"))
            .collect();
        let _ = writeln!(s, "| capacity per page | | | {} |", units.join(" | "));
        if let [(_, a_get, a), (_, b_get, b)] = self.scaling.as_slice() {
            let ratios: Vec<String> = a
                .iter()
                .zip(b)
                .map(|(a, b)| format!("{:.2}×", b.p50 / a.p50))
                .collect();
            let _ = writeln!(
                s,
                "| neighbour / alone, p50 | {:.2}× | | {} |",
                b_get.p50 / a_get.p50,
                ratios.join(" | ")
            );
        }
    }

    /// What the run seeded and how long it took.
    fn run_lines(&self, s: &mut String, plan: &Plan) {
        let _ = writeln!(s, "\n## Run\n");
        for (what, n, secs) in &self.seed_secs {
            let _ = writeln!(s, "- seeded {n} keys ({what}) in {secs:.1} s");
        }
        let _ = writeln!(
            s,
            "- {} warm invocations per function in {} rounds, {} cold starts per binary; whole run {:.0} s",
            plan.warm, plan.rounds, plan.inits, self.total_secs
        );
    }
}

/// List latency (p50 and p99) against page depth, alone and beside the noisy neighbour.
pub fn plot(report: &Report, path: &Path) -> Result<(), BoxError> {
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = report
        .scaling
        .iter()
        .flat_map(|(_, _, d)| d.iter().map(|s| s.p99))
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("list-keys: latency against page depth", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((1u32..1000u32).log_scale(), 0f64..max)?;
    chart
        .configure_mesh()
        .x_desc("page depth")
        .y_desc("latency (ms)")
        .draw()?;
    let colors = [BLUE, RED];
    for (i, (noisy, _, depths)) in report.scaling.iter().enumerate() {
        let color = colors[i % 2];
        let label = if *noisy {
            "beside the neighbour"
        } else {
            "alone"
        };
        for (q, pick, width) in [("p50", 0usize, 2u32), ("p99", 1, 1)] {
            let pts: Vec<(u32, f64)> = DEPTHS
                .iter()
                .zip(depths)
                .map(|(d, s)| (*d as u32, if pick == 0 { s.p50 } else { s.p99 }))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))?
                .label(format!("{label}, {q}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width))
                });
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
