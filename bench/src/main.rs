//! The benchmark driver. Run it under `tools/dynamodb-local.sh run` (see `make bench`):
//!
//! 1. seeds the demo organization, plus `org_keys` more of its keys, into a new table;
//! 2. starts the hello-world floor, get-key and list-keys several times, each under its own
//!    runtime API (`emulator`), for init times;
//! 3. measures capacity per request through a recording proxy (`proxy`);
//! 4. measures warm latency of both functions in rounds, each round followed by the bare SDK
//!    floor (GetItem, Query with the same parameters) in the same process;
//! 5. measures list pages at depths 1, 100 and 1,000, and get, then seeds a noisy neighbour
//!    and measures them again;
//! 6. writes `results.md` and `list-depth.svg` into the output directory.
//!
//! `--smoke` runs the same steps with tiny counts (CI), and asserts nothing about timings.

mod coldstart;
mod context;
mod emulator;
mod floors;
mod launch;
mod plan;
mod quota;
mod replay;
mod report;
mod samples;
mod seed;
mod sim;
mod steps;
mod subjects;
mod tls;
mod verify;

use apikeys::key::{KeyId, OrgId};
use apikeys_tests::capacity::Proxy;
use tokio::time::Instant;

use context::Ctx;
pub use plan::{DEPTHS, Plan};
use report::Report;
pub use samples::{bytes, event};
use seed::seed_org;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    // A function process under a CPU quota is started through this binary (`launch`), before
    // any runtime is built.
    if let Some(e) = launch::launch_if_asked() {
        eprintln!("bench: {e}");
        std::process::exit(127);
    }
    // A verifier of the quota simulation is this binary too (`sim::child`).
    if let Some(outcome) = sim::child::run_if_asked() {
        if let Err(e) = outcome {
            eprintln!("bench verifier: {e}");
            std::process::exit(1);
        }
        return;
    }
    drive();
}

#[tokio::main]
async fn drive() {
    if let Err(e) = bench().await {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("bench: {text}");
        std::process::exit(1);
    }
}

async fn bench() -> Result<(), BoxError> {
    let started = Instant::now();
    // 1. The table, the demo organization, and its many keys.
    let ctx = Ctx::new(plan::args()?, started).await?;
    if let Some(scale) = ctx.args.quota {
        sim::simulate(&ctx, scale).await?;
        ctx.say(&format!(
            "wrote {}",
            ctx.args.out.join("quota.md").display()
        ));
        return Ok(());
    }
    let plan = ctx.plan;
    let demo: OrgId = apikeys_demo::ORG.parse()?;
    let t = Instant::now();
    // The verify cases alone need only the cold case's keys.
    let org_keys = match ctx.args.verify_only {
        true => 2 * plan.warm + 1,
        false => plan.org_keys,
    };
    let mut org_ids = seed_org(&ctx.store, &demo, org_keys, 1, 2025).await?;
    let seed_org_secs = t.elapsed().as_secs_f64();
    ctx.say(&format!(
        "seeded {org_keys} keys into the demo organization in {seed_org_secs:.1} s"
    ));
    org_ids.reverse(); // newest first: the list endpoint's default order
    if ctx.args.verify_only {
        return verify_only(&ctx, &org_ids).await;
    }

    // 1b. Cold start with TLS on the path (`coldstart`), written to coldstart.md.
    steps::tls_cold::measure(&ctx, &demo).await?;
    if ctx.args.coldstart_only {
        ctx.clean();
        ctx.say(&format!(
            "wrote {}",
            ctx.args.out.join("coldstart.md").display()
        ));
        return Ok(());
    }
    let bins = steps::inits::bins(&ctx)?;
    let mut report = Report::new(plan);
    report
        .seed_secs
        .push(("demo organization", plan.org_keys, seed_org_secs));
    // 2. Cold starts, interleaved so that machine noise hits all three alike.
    steps::inits::measure(&ctx, &bins, &mut report).await?;
    // 3. Capacity, through the recording proxy.
    let proxy = Proxy::start(ctx.upstream).await?;
    steps::capacity::measure(&ctx, &proxy, &mut report).await?;
    ctx.say("capacity measured");
    // 4. Warm latency, in rounds, each function block followed by its floor.
    let mut warm = steps::warm::measure(&ctx, &mut report).await?;
    // 5. Scaling: page depths, then again beside a noisy neighbour.
    steps::scaling::measure(&ctx, &org_ids, &mut warm, &proxy, &mut report).await?;
    warm.get.stop().await;
    warm.list.stop().await;
    // 5b. Verify's cold and metered cases, each beside its floor.
    write_verify(&ctx, &org_ids, &proxy, (warm.verify, report.hello_warm)).await?;
    proxy.stop();
    // 6. Sizes and the report.
    write_report(&ctx, &bins, report)
}

/// `--verify-only`: the warm run (for verify's warm case and its floor), then verify's other
/// cases; writes verify.md alone.
async fn verify_only(ctx: &Ctx, org_ids: &[KeyId]) -> Result<(), BoxError> {
    let mut report = Report::new(ctx.plan);
    let warm = steps::warm::measure(ctx, &mut report).await?;
    warm.get.stop().await;
    warm.list.stop().await;
    let proxy = Proxy::start(ctx.upstream).await?;
    write_verify(ctx, org_ids, &proxy, (warm.verify, report.hello_warm)).await?;
    proxy.stop();
    ctx.clean();
    ctx.say(&format!(
        "wrote {}",
        ctx.args.out.join("verify.md").display()
    ));
    Ok(())
}

/// Verify's cold case (distinct secrets, both caches off) and its metered cases, each beside
/// its floor, with the warm case measured before (`warm`, hello); writes verify.md.
async fn write_verify(
    ctx: &Ctx,
    org_ids: &[KeyId],
    proxy: &Proxy,
    (warm, hello): (report::Stats, report::Stats),
) -> Result<(), BoxError> {
    let figures = steps::verify_cold::measure(ctx, org_ids, proxy).await?;
    ctx.say("verify: the cold case measured");
    let metered = steps::verify_metered::measure(ctx, proxy).await?;
    let verify_md = verify::markdown(&verify::Figures {
        warm,
        warm_floor: hello,
        metered,
        ..figures
    });
    std::fs::write(ctx.args.out.join("verify.md"), &verify_md)?;
    Ok(())
}

/// Puts the binaries' and zips' sizes into the report, and writes it with its plot.
fn write_report(ctx: &Ctx, bins: &steps::inits::Bins, mut report: Report) -> Result<(), BoxError> {
    for (name, bin) in &bins[1..] {
        report.binary.push((name, std::fs::metadata(bin)?.len()));
    }
    if let Some(zips) = &ctx.args.zips {
        for arch in ["x86_64", "arm64"] {
            for (name, _) in &bins[1..] {
                let p = zips.join(arch).join(format!("{name}.zip"));
                let size = std::fs::metadata(&p).ok().map(|m| m.len());
                report.zips.push((arch, name, size));
            }
        }
    }
    report.total_secs = ctx.elapsed_secs();
    let out = &ctx.args.out;
    let md = report.markdown();
    std::fs::write(out.join("results.md"), &md)?;
    report::plot(&report, &out.join("list-depth.svg"))?;
    println!("{md}");
    ctx.clean();
    ctx.say(&format!("wrote {}", out.display()));
    Ok(())
}
