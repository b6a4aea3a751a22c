//! Verify's cold case (`verify`): verify-key with both caches off verifies `plan.warm`
//! distinct seeded secrets, in rounds, each followed by its floor replaying the calls of one
//! such verification for as many other keys.

use apikeys::key::KeyId;
use apikeys::secret::Secret;
use apikeys_tests::capacity::Proxy;
use bytes::Bytes;

use crate::context::Ctx;
use crate::report::Stats;
use crate::samples::{bytes, check_valid, verify_event};
use crate::seed::seeded_secret;
use crate::{BoxError, verify};

/// Both caches off.
const OFF: [(&str, &str); 1] = [("CALLER_CACHE_TTL_SECS", "0")];

/// The demo organization's seeded keys (`seed_org`, salt 1), newest first.
struct Seeded<'a> {
    ctx: &'a Ctx,
    org_ids: &'a [KeyId],
}

impl Seeded<'_> {
    /// The i-th seeded key: its secret, and its id as the table holds it.
    fn key(&self, i: usize) -> (Secret, KeyId) {
        (
            seeded_secret(i, 1),
            self.org_ids[self.org_ids.len() - 1 - i],
        )
    }

    fn event(&self, secret: &Secret) -> Bytes {
        bytes(&verify_event(
            &self.ctx.samples.verify_http,
            secret.expose(),
        ))
    }

    /// The credential hash and id of the i-th key, as the floor reads them.
    fn hash_and_id(&self, i: usize) -> (String, String) {
        let (secret, id) = self.key(i);
        (secret.hash().as_str().to_owned(), id.to_string())
    }
}

/// Returns the function's and its floor's durations, and the floor's calls.
pub async fn measure(
    ctx: &Ctx,
    org_ids: &[KeyId],
    proxy: &Proxy,
) -> Result<verify::Figures, BoxError> {
    let seeded = Seeded { ctx, org_ids };
    let count = ctx.plan.warm;
    if 2 * count + 1 > org_ids.len() {
        return Err("too few seeded keys for verify's cold case".into());
    }
    let floor = record_floor(&seeded, 2 * count, proxy).await?;
    // The function verifies keys 0..count, its floor count..2·count.
    let off = ctx.env_with(&ctx.endpoint, &OFF);
    let mut f = ctx.start("verify-key", &off, "cold").await?;
    f.init_time().await?;
    let block = (count / ctx.plan.rounds).max(1);
    let (mut ours, mut floors) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for r in 0..count.div_ceil(block) {
        for i in r * block..((r + 1) * block).min(count) {
            let a = f.invoke(seeded.event(&seeded.key(i).0)).await?;
            check_valid(&a)?;
            ours.push(a.duration);
        }
        let others: Vec<(String, String)> = (count + r * block
            ..count + ((r + 1) * block).min(count))
            .map(|i| seeded.hash_and_id(i))
            .collect();
        floors.extend(floor.run(&ctx.client, &others).await?);
    }
    f.stop().await;
    Ok(verify::Figures {
        cold: Stats::of(&ours),
        cold_floor: Stats::of(&floors),
        cold_ops: floor.ops(),
        warm: Stats::default(),
        warm_floor: Stats::default(),
        metered: verify::Metered::default(),
    })
}

/// The floor's calls: one verification of key `i`, recorded through the proxy.
async fn record_floor(
    seeded: &Seeded<'_>,
    i: usize,
    proxy: &Proxy,
) -> Result<verify::ColdFloor, BoxError> {
    let ctx = seeded.ctx;
    let with_proxy = ctx.env_with(&proxy.url(), &OFF);
    let mut f = ctx.start("verify-key", &with_proxy, "record").await?;
    f.init_time().await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    proxy.take();
    let (secret, _) = seeded.key(i);
    check_valid(&f.invoke(seeded.event(&secret)).await?)?;
    let calls = proxy.take();
    f.stop().await;
    Ok(verify::ColdFloor::recorded(calls, seeded.hash_and_id(i)))
}
