//! Cold starts of hello, get-key and list-keys, interleaved so that machine noise hits all
//! three alike: each one's init and first request.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::BoxError;
use crate::context::Ctx;
use crate::report::Report;
use crate::samples::check_ok;

/// The binaries started cold: the hello floor, get-key and list-keys.
pub type Bins = [(&'static str, PathBuf); 3];

pub fn bins(ctx: &Ctx) -> Result<Bins, BoxError> {
    let bins = [
        ("hello", ctx.bin("bench-hello")),
        ("get-key", ctx.bin("get-key")),
        ("list-keys", ctx.bin("list-keys")),
    ];
    for (_, b) in &bins {
        if !b.exists() {
            return Err(format!("{} is missing: build it first (make bench)", b.display()).into());
        }
    }
    Ok(bins)
}

pub async fn measure(ctx: &Ctx, bins: &Bins, report: &mut Report) -> Result<(), BoxError> {
    let direct = ctx.direct();
    for i in 0..ctx.plan.inits {
        for (name, bin) in bins {
            one(ctx, name, bin, &direct, report).await?;
        }
        ctx.say(&format!(
            "cold starts: round {} of {}",
            i + 1,
            ctx.plan.inits
        ));
    }
    Ok(())
}

/// One cold start of `name`: its init and its first request.
async fn one(
    ctx: &Ctx,
    name: &'static str,
    bin: &Path,
    direct: &[(String, String)],
    report: &mut Report,
) -> Result<(), BoxError> {
    let mut f = ctx.start_as(name, bin, direct, "init").await?;
    let init = f.init_time().await?;
    let s = &ctx.samples;
    let first = match name {
        "get-key" | "list-keys" => {
            let ev = if name == "get-key" { &s.get } else { &s.list };
            let a = f.invoke(ev.clone()).await?;
            check_ok(name, &a)?;
            a.duration
        }
        _ => {
            let a = f.invoke(Bytes::from_static(b"{}")).await?;
            if a.error {
                return Err("the hello function failed".into());
            }
            a.duration
        }
    };
    if name == "hello" {
        report.hello_rss = f.peak_rss()?;
    }
    f.stop().await;
    report.init.entry(name).or_default().push(init);
    report.first.entry(name).or_default().push(first);
    Ok(())
}
