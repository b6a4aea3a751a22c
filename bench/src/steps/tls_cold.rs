//! Cold starts with TLS on the path (`coldstart`): every function, its floors, the client
//! variants and the peers, behind a TLS front to DynamoDB Local; written to coldstart.md.

use std::path::PathBuf;

use apikeys::key::{KeyId, OrgId};
use apikeys::secret::Secret;
use apikeys_tests::capacity as proxy;
use apikeys_tests::github::Signer;
use tokio::time::Instant;

use crate::context::Ctx;
use crate::seed::{seed_org, seeded_secret};
use crate::{BoxError, coldstart, subjects, tls};

/// The salt of the keys the writes' cold starts change (`seed_org`).
const COLD_SALT: u8 = 3;

pub async fn measure(ctx: &Ctx, demo: &OrgId) -> Result<(), BoxError> {
    let ca = tls::RunCa::new("trusted")?;
    let front = tls::TlsFront::start(&ca, ctx.upstream).await?;
    tls::check_trust(&front, &ca, &ctx.table).await?;
    ctx.say("TLS front: the run's CA is trusted, a wrong CA and Amazon's roots alone are not");
    let (tls_env, bundle) = front_env(ctx, &front, &ca)?;
    let functions = coldstart::template_binaries(&ctx.args.template)?;
    // The API's functions: expiry-notices starts on a schedule and publish-events on the
    // table's stream, with no request.
    let functions: Vec<String> = functions
        .into_iter()
        .filter(|f| f != "expiry-notices" && f != "publish-events")
        .collect();
    let cold_plan = if ctx.plan.smoke {
        coldstart::Plan { inits: 1, warm: 3 }
    } else {
        coldstart::Plan {
            inits: 15,
            warm: 40,
        }
    };
    // Every write's start changes a key of its own: the recording, then three levels.
    let starts = 1 + 3 * cold_plan.inits;
    let cold_keys = cold_keys(ctx, demo, starts).await?;
    let github = Signer::generate("bench-github-key");
    let run_tag = uuid::Uuid::now_v7().simple().to_string();
    let a = &ctx.args;
    let setup = subjects::Setup {
        bin_dir: &a.bin_dir,
        events: &a.events,
        functions: &functions,
        python_peer: a.python_peer.as_deref(),
        node_peer: a.node_peer.as_deref(),
        nojitter: a.nojitter.as_deref(),
        bundle: &bundle,
        starts,
        cold_keys: &cold_keys,
        verify: &ctx.samples.verify_http,
        github: &github,
        run: &run_tag,
    };
    let fns = subjects::functions(&setup)?;
    let recorder = proxy::Proxy::start(ctx.upstream).await?;
    let recorded = ctx.env_with(&recorder.url(), &[]);
    let (own, floor_ops) =
        subjects::own_floors(&fns, &a.bin_dir, &recorded, &recorder, &ctx.work).await?;
    recorder.stop();
    ctx.say("recorded each function's DynamoDB calls for its own floor");
    let mut subjects = subjects::others(&setup, fns)?;
    subjects.extend(own);
    let say = |what: &str| ctx.say(what);
    let results =
        coldstart::run(&subjects, &functions, &tls_env, &ctx.work, cold_plan, &say).await?;
    front.stop();
    let mut md = results.markdown();
    md.push_str(&coldstart::floor_calls(&floor_ops));
    std::fs::write(a.out.join("coldstart.md"), &md)?;
    println!("{md}");
    Ok(())
}

/// The functions' environment through the TLS front, and the bundle of the system's roots
/// plus the run's CA: what the clients that load the system's roots (the `before`
/// variants, boto3) read instead of the system bundle.
fn front_env(
    ctx: &Ctx,
    front: &tls::TlsFront,
    ca: &tls::RunCa,
) -> Result<(Vec<(String, String)>, PathBuf), BoxError> {
    let ca_file = ctx.work.join("run-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem)?;
    let system = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .unwrap_or_default();
    let bundle = ctx.work.join("system-and-run-ca.pem");
    std::fs::write(&bundle, format!("{system}\n{}", ca.ca_pem))?;
    let env = ctx.env_with(
        &front.url(),
        &[
            ("AWS_CA_BUNDLE", &ca_file.display().to_string()),
            ("SSL_CERT_FILE", &bundle.display().to_string()),
        ],
    );
    Ok((env, bundle))
}

/// Four keys per start of the writes, each with its secret.
async fn cold_keys(
    ctx: &Ctx,
    demo: &OrgId,
    starts: usize,
) -> Result<Vec<(KeyId, Secret)>, BoxError> {
    let t = Instant::now();
    let ids = seed_org(&ctx.store, demo, 4 * starts, COLD_SALT, 2026).await?;
    let keys: Vec<(KeyId, Secret)> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, seeded_secret(i, COLD_SALT)))
        .collect();
    ctx.say(&format!(
        "seeded {} keys for the writes' cold starts in {:.1} s",
        keys.len(),
        t.elapsed().as_secs_f64()
    ));
    Ok(keys)
}
