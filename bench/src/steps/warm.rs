//! Warm latency, in rounds, each function's block followed by its floor: get-key beside
//! GetItem, list-keys beside Query, verify-key and the hello function.

use std::time::Duration;

use bytes::Bytes;

use crate::BoxError;
use crate::context::Ctx;
use crate::emulator::Function;
use crate::floors::Floors;
use crate::report::{Report, Stats};
use crate::samples::{check_valid, run};

/// What the scaling run goes on with: get-key and list-keys still warm, and their floors.
pub struct Warm {
    pub get: Function,
    pub list: Function,
    pub floors: Floors,
    /// Invocations that warm a function up, unmeasured.
    pub warmup: usize,
    /// verify-key's warm latency.
    pub verify: Stats,
}

pub async fn measure(ctx: &Ctx, report: &mut Report) -> Result<Warm, BoxError> {
    let floors = Floors {
        client: ctx.client.clone(),
        table: ctx.table.clone(),
        key_sk: format!("KEY#{}", ctx.samples.key_id),
        list_limit: 51, // the default page of 50, plus one to know has_more
    };
    report.floor_units = floors.units().await?;
    let direct = ctx.direct();
    let mut get = ctx.start("get-key", &direct, "").await?;
    let mut list = ctx.start("list-keys", &direct, "").await?;
    let mut verify = ctx.start("verify-key", &direct, "").await?;
    let mut hello = ctx
        .start_as("hello", &ctx.bin("bench-hello"), &direct, "")
        .await?;
    get.init_time().await?;
    list.init_time().await?;
    first_verify(ctx, &mut verify, report).await?;
    hello.init_time().await?;
    // Warm everything up once, unmeasured.
    let s = &ctx.samples;
    let warmup = (ctx.plan.warm / 20).max(2);
    run(&mut get, &s.get, warmup).await?;
    run(&mut list, &s.list, warmup).await?;
    run(&mut verify, &s.verify, warmup).await?;
    floors.get_loop(warmup).await?;
    floors.query_loop(warmup).await?;
    let mut fns = [get, list, verify, hello];
    let [g, l, v, h, gf, lf] = rounds(ctx, &mut fns, &floors).await?;
    let [get, list, verify, hello] = fns;
    report
        .warm
        .push(("get-key", Stats::of(&g), get.peak_rss()?));
    report
        .warm
        .push(("list-keys", Stats::of(&l), list.peak_rss()?));
    report
        .warm
        .push(("verify-key", Stats::of(&v), verify.peak_rss()?));
    verify.stop().await;
    report.hello_warm = Stats::of(&h);
    hello.stop().await;
    report.floor_get = Stats::of(&gf);
    report.floor_query = Stats::of(&lf);
    Ok(Warm {
        get,
        list,
        floors,
        warmup,
        verify: Stats::of(&v),
    })
}

/// One cold start of verify-key (get-key's and list-keys' are measured before, several
/// times each): its init and first request.
async fn first_verify(
    ctx: &Ctx,
    verify: &mut Function,
    report: &mut Report,
) -> Result<(), BoxError> {
    let init = verify.init_time().await?;
    report.init.entry("verify-key").or_default().push(init);
    let answer = verify.invoke(ctx.samples.verify.clone()).await?;
    check_valid(&answer)?;
    report
        .first
        .entry("verify-key")
        .or_default()
        .push(answer.duration);
    Ok(())
}

/// The measured rounds of get-key, list-keys, verify-key and hello: their durations, then
/// those of the GetItem and Query floors.
async fn rounds(
    ctx: &Ctx,
    [get, list, verify, hello]: &mut [Function; 4],
    floors: &Floors,
) -> Result<[Vec<Duration>; 6], BoxError> {
    let s = &ctx.samples;
    let plan = ctx.plan;
    let hello_ev = Bytes::from_static(b"{}");
    let block = (plan.warm / plan.rounds).max(1);
    let [mut g, mut l, mut v, mut h, mut gf, mut lf] = <[Vec<Duration>; 6]>::default();
    for r in 0..plan.rounds {
        for _ in 0..block {
            let a = hello.invoke(hello_ev.clone()).await?;
            h.push(a.duration);
        }
        g.extend(run(get, &s.get, block).await?);
        gf.extend(floors.get_loop(block).await?);
        l.extend(run(list, &s.list, block).await?);
        lf.extend(floors.query_loop(block).await?);
        v.extend(run(verify, &s.verify, block).await?);
        ctx.say(&format!("warm latency: round {} of {}", r + 1, plan.rounds));
    }
    Ok([g, l, v, h, gf, lf])
}
