//! Capacity per request, through the recording proxy: during init, at the first request
//! and at a later one (the caller cached), and with the caller cache off.

use std::time::Duration;

use apikeys_tests::capacity::{Call, Proxy};

use crate::BoxError;
use crate::context::Ctx;
use crate::report::Report;
use crate::samples::check_ok;

pub fn sum_units(calls: &[Call]) -> f64 {
    calls.iter().map(|c| c.units).sum()
}

fn describe(calls: &[Call]) -> String {
    if calls.is_empty() {
        return "no call".into();
    }
    calls
        .iter()
        .map(|c| format!("{} {}", c.op, c.units))
        .collect::<Vec<_>>()
        .join(" + ")
}

pub async fn measure(ctx: &Ctx, proxy: &Proxy, report: &mut Report) -> Result<(), BoxError> {
    let proxied = ctx.env_with(&proxy.url(), &[]);
    let s = &ctx.samples;
    for (name, ev) in [("get-key", &s.get), ("list-keys", &s.list)] {
        let mut f = ctx.start(name, &proxied, "cap").await?;
        f.init_time().await?;
        // The warm-up read happens during init; give it time to land.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let init_calls = proxy.take();
        let mut per_request = Vec::new();
        for _ in 0..3 {
            let a = f.invoke(ev.clone()).await?;
            check_ok(name, &a)?;
            per_request.push(proxy.take());
        }
        f.stop().await;
        report.capacity.push((
            name,
            describe(&init_calls),
            sum_units(&init_calls),
            describe(&per_request[0]),
            sum_units(&per_request[0]),
            describe(&per_request[2]),
            sum_units(&per_request[2]),
        ));
    }
    uncached(ctx, proxy, report).await
}

/// The same event with the cache off: the cost of every request of an uncached caller.
async fn uncached(ctx: &Ctx, proxy: &Proxy, report: &mut Report) -> Result<(), BoxError> {
    let off = ctx.env_with(&proxy.url(), &[("CALLER_CACHE_TTL_SECS", "0")]);
    let mut f = ctx.start("get-key", &off, "nocache").await?;
    f.init_time().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.take();
    let get = &ctx.samples.get;
    let a = f.invoke(get.clone()).await?;
    check_ok("get-key", &a)?;
    f.invoke(get.clone()).await?;
    let calls = proxy.take();
    report.uncached_get = (describe(&calls), sum_units(&calls) / 2.0);
    f.stop().await;
    Ok(())
}
