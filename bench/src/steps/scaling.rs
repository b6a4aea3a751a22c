//! Scaling: list pages at depths 1, 100 and 1,000 and get, beside their floors; then again
//! beside a noisy neighbour.

use std::time::Duration;

use apikeys::key::{KeyId, OrgId};
use apikeys_tests::capacity::Proxy;
use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;

use super::capacity::sum_units;
use super::warm::Warm;
use crate::BoxError;
use crate::context::Ctx;
use crate::plan::DEPTHS;
use crate::report::{Report, Stats};
use crate::samples::{bytes, check_ok, list_event, run};
use crate::seed::seed_org;

const NOISY_ORG: &str = "noisy-neighbour";

/// The list pages measured: per depth, the key it starts after and its event.
struct Depths {
    positions: Vec<Option<KeyId>>,
    events: Vec<(usize, Bytes)>,
}

/// `org_ids`: the demo organization's seeded keys, newest first.
pub async fn measure(
    ctx: &Ctx,
    org_ids: &[KeyId],
    warm: &mut Warm,
    proxy: &Proxy,
    report: &mut Report,
) -> Result<(), BoxError> {
    let phases = if ctx.plan.depth_calls == 0 { 0 } else { 2 };
    let limit = ctx.plan.page_limit();
    let positions: Vec<Option<KeyId>> = DEPTHS
        .iter()
        .map(|&d| (d > 1).then(|| org_ids[(d - 1) * limit - 1]))
        .collect();
    let events: Vec<(usize, Bytes)> = DEPTHS
        .iter()
        .zip(&positions)
        .map(|(&d, at)| {
            let mut params = vec![("limit", limit.to_string())];
            if let Some(at) = at {
                params.push(("after", at.to_string()));
            }
            (d, bytes(&list_event(&ctx.samples.list_http, &params)))
        })
        .collect();
    let depths = Depths { positions, events };
    if phases > 0 {
        depth_units(ctx, &depths.events, proxy, report).await?;
    }
    for phase in 0..phases {
        if phase == 1 {
            noisy_neighbour(ctx, warm, &depths.events, report).await?;
        }
        one_phase(ctx, warm, &depths, phase == 1, report).await?;
        ctx.say(&format!("scaling: phase {} of 2", phase + 1));
    }
    Ok(())
}

/// Capacity per depth, through the proxy.
async fn depth_units(
    ctx: &Ctx,
    events: &[(usize, Bytes)],
    proxy: &Proxy,
    report: &mut Report,
) -> Result<(), BoxError> {
    let limit = ctx.plan.page_limit();
    let proxied = ctx.env_with(&proxy.url(), &[]);
    let mut f = ctx.start("list-keys", &proxied, "depth").await?;
    f.init_time().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.invoke(events[0].1.clone()).await?; // caches the caller
    proxy.take();
    for (d, ev) in events {
        let a = f.invoke(ev.clone()).await?;
        check_ok("list-keys", &a)?;
        let body: Value = serde_json::from_slice(&a.body)?;
        let page: Value = serde_json::from_str(body["body"].as_str().unwrap_or("{}"))?;
        let n = page["data"].as_array().map(Vec::len).unwrap_or(0);
        if n != limit {
            return Err(format!("depth {d}: {n} keys, not {limit}").into());
        }
        report.depth_units.push((*d, sum_units(&proxy.take())));
    }
    f.stop().await;
    Ok(())
}

/// Seeds the noisy neighbour, then settles and re-warms after the write burst.
async fn noisy_neighbour(
    ctx: &Ctx,
    warm: &mut Warm,
    events: &[(usize, Bytes)],
    report: &mut Report,
) -> Result<(), BoxError> {
    let noisy: OrgId = NOISY_ORG.parse()?;
    let n = ctx.plan.noisy_keys;
    let t = Instant::now();
    seed_org(&ctx.store, &noisy, n, 2, 2025).await?;
    let secs = t.elapsed().as_secs_f64();
    report.seed_secs.push(("noisy neighbour", n, secs));
    ctx.say(&format!(
        "seeded {n} keys of a noisy neighbour in {secs:.1} s"
    ));
    run(&mut warm.get, &ctx.samples.get, warm.warmup).await?;
    for (_, ev) in events {
        run(&mut warm.list, ev, 2).await?;
    }
    Ok(())
}

/// One phase: every depth and its floor, and get, in ten rounds.
async fn one_phase(
    ctx: &Ctx,
    warm: &mut Warm,
    depths: &Depths,
    noisy: bool,
    report: &mut Report,
) -> Result<(), BoxError> {
    let plan = ctx.plan;
    let limit = plan.page_limit();
    let mut per_depth: Vec<Vec<Duration>> = vec![Vec::new(); DEPTHS.len()];
    let mut floor_depth: Vec<Vec<Duration>> = vec![Vec::new(); DEPTHS.len()];
    let mut gets = Vec::new();
    let chunks = plan.depth_calls.div_ceil(10).max(1);
    for _ in 0..10 {
        for (i, (_, ev)) in depths.events.iter().enumerate() {
            per_depth[i].extend(run(&mut warm.list, ev, chunks).await?);
            let at = depths.positions[i];
            floor_depth[i].extend(warm.floors.query_from_loop(at, limit, chunks).await?);
        }
        gets.extend(run(&mut warm.get, &ctx.samples.get, plan.scale_gets / 10).await?);
    }
    report.scaling.push((
        noisy,
        Stats::of(&gets),
        per_depth.iter().map(|v| Stats::of(v)).collect(),
    ));
    report
        .depth_floor
        .push(floor_depth.iter().map(|v| Stats::of(v)).collect());
    Ok(())
}
