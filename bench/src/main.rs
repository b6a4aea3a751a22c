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
mod emulator;
mod launch;
mod quota;
mod replay;
mod report;
mod subjects;
mod tls;
mod verify;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apikeys::key::{Access, KeyId, OrgId};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::NewKey;
use apikeys_tests::capacity as proxy;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnConsumedCapacity, WriteRequest};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde_json::Value;
use tokio::time::Instant;

use emulator::Function;
use report::{Report, Stats};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How much of everything to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub smoke: bool,
    /// Warm invocations per function (and calls per floor).
    pub warm: usize,
    /// The warm runs are split into this many rounds, alternating function and floor.
    pub rounds: usize,
    /// Cold starts per binary.
    pub inits: usize,
    /// Keys seeded into the demo organization.
    pub org_keys: usize,
    /// Keys of the noisy neighbour.
    pub noisy_keys: usize,
    /// Invocations per page depth, per phase.
    pub depth_calls: usize,
    /// Get invocations per phase of the scaling run.
    pub scale_gets: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            smoke: false,
            warm: 10_000,
            rounds: 10,
            inits: 9,
            org_keys: 100_000,
            noisy_keys: 200_000,
            depth_calls: 400,
            scale_gets: 2_000,
        }
    }

    fn smoke() -> Plan {
        Plan {
            smoke: true,
            warm: 20,
            rounds: 2,
            inits: 1,
            org_keys: 1_000,
            noisy_keys: 2_000,
            depth_calls: 3,
            scale_gets: 10,
        }
    }

    /// For comparing builds: the warm run and cold starts only, no scaling.
    fn compare() -> Plan {
        Plan {
            warm: 3_000,
            rounds: 6,
            inits: 7,
            noisy_keys: 0,
            depth_calls: 0,
            scale_gets: 0,
            ..Plan::full()
        }
    }

    /// The page size of the scaling run: depth 1,000 is the organization's last page.
    pub fn page_limit(&self) -> usize {
        (self.org_keys / 1_000).max(1)
    }
}

pub const DEPTHS: [usize; 3] = [1, 100, 1_000];
const CURSOR_SECRET: &str = "benchmark-cursor-secret-0123456789abcdef";
const NOISY_ORG: &str = "noisy-neighbour";
/// The salt of the keys the writes' cold starts change (`seed_org`).
const COLD_SALT: u8 = 3;
/// Writers at once while seeding, each sending BatchWriteItem requests of 25 items.
const SEED_CONCURRENCY: usize = 16;

struct Args {
    plan: Plan,
    bin_dir: PathBuf,
    events: PathBuf,
    out: PathBuf,
    zips: Option<PathBuf>,
    template: PathBuf,
    /// The Python peer's interpreter (a venv with its requirements).
    python_peer: Option<PathBuf>,
    /// The Node.js peer's directory (its entry file and node_modules).
    node_peer: Option<PathBuf>,
    /// bench-variant built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`.
    nojitter: Option<PathBuf>,
    coldstart_only: bool,
}

fn args() -> Result<Args, BoxError> {
    let mut plan = Plan::full();
    let exe = std::env::current_exe()?;
    let mut bin_dir = exe.parent().ok_or("no binary directory")?.to_path_buf();
    let mut events = PathBuf::from("events");
    let mut out = PathBuf::from("bench/results");
    let mut zips = None;
    let mut template = PathBuf::from("template.yaml");
    let mut python_peer = None;
    let mut node_peer = None;
    let mut nojitter = None;
    let mut coldstart_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--smoke" => plan = Plan::smoke(),
            "--compare" => plan = Plan::compare(),
            "--bin-dir" => bin_dir = value()?.into(),
            "--events" => events = value()?.into(),
            "--out" => out = value()?.into(),
            "--zips" => zips = Some(value()?.into()),
            "--template" => template = value()?.into(),
            "--python-peer" => python_peer = Some(value()?.into()),
            "--node-peer" => node_peer = Some(value()?.into()),
            "--nojitter-bin" => nojitter = Some(value()?.into()),
            "--coldstart-only" => coldstart_only = true,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    Ok(Args {
        plan,
        bin_dir,
        events,
        out,
        zips,
        template,
        python_peer,
        node_peer,
        nojitter,
        coldstart_only,
    })
}

pub fn event(dir: &Path, name: &str) -> Result<Value, BoxError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The HTTP API v2 list event with these query parameters.
fn list_event(base: &Value, params: &[(&str, String)]) -> Value {
    let mut e = base.clone();
    let raw: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    e["rawQueryString"] = Value::from(raw.join("&"));
    let map: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
        .collect();
    e["queryStringParameters"] = Value::Object(map);
    e
}

/// Fails unless the function answered 200.
fn check_ok(f: &str, a: &emulator::Answer) -> Result<(), BoxError> {
    let v: Value = serde_json::from_slice(&a.body)?;
    if a.error || v["statusCode"] != 200 {
        return Err(format!(
            "{f} answered {}: {}",
            v["statusCode"],
            String::from_utf8_lossy(&a.body)
        )
        .into());
    }
    Ok(())
}

/// Invokes `n` times and returns the durations.
async fn run(f: &mut Function, ev: &Bytes, n: usize) -> Result<Vec<Duration>, BoxError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let a = f.invoke(ev.clone()).await?;
        check_ok(&f.name, &a)?;
        out.push(a.duration);
    }
    Ok(out)
}

/// The secret `seed_org` gives its `i`-th key of `salt`.
fn seeded_secret(i: usize, salt: u8) -> Secret {
    let mut bytes = [salt; 24];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Secret::from_random(bytes)
}

/// Seeds `n` keys into `org` with BatchWriteItem, made a millisecond apart from `year`'s
/// first day; returns their ids in ascending order (the `i`-th has `seeded_secret(i, salt)`).
async fn seed_org(
    store: &DynamoStore,
    org: &OrgId,
    n: usize,
    salt: u8,
    year: i32,
) -> Result<Vec<KeyId>, BoxError> {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .ok_or("date")?;
    let mut items = Vec::with_capacity(2 * n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let secret = seeded_secret(i, salt);
        let id = KeyId::new_at(start + chrono::Duration::milliseconds(i as i64));
        let key = NewKey {
            org: org.clone(),
            name: format!("benchmark key {i:06}"),
            creator_id: uuid::Uuid::from_u128(0x5b1f6a52_7e3c_4d1a_9f0e_2c8b7a6d5e40),
            access: Access::Unrestricted,
            expires: None,
            id: Some(id),
        }
        .into_record(&secret, start)?;
        items.push(apikeys::store::dynamo::key_item(&key, &secret.hash())?);
        items.push(apikeys::store::dynamo::credential_item(
            &key,
            &secret.hash(),
        )?);
        ids.push(id);
    }
    let batches: Vec<Vec<_>> = items.chunks(25).map(|c| c.to_vec()).collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SEED_CONCURRENCY {
        let queue = queue.clone();
        let client = store.client().clone();
        let table = store.table().to_owned();
        set.spawn(async move {
            loop {
                let batch = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(batch) = batch else {
                    return Ok::<(), BoxError>(());
                };
                let mut writes: Vec<WriteRequest> = batch
                    .into_iter()
                    .map(|item| {
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map(|p| WriteRequest::builder().put_request(p).build())
                    })
                    .collect::<Result<_, _>>()?;
                for attempt in 0.. {
                    if writes.is_empty() {
                        break;
                    }
                    if attempt > 20 {
                        return Err("BatchWriteItem kept leaving items unprocessed".into());
                    }
                    let out = client
                        .batch_write_item()
                        .request_items(&table, writes)
                        .send()
                        .await?;
                    writes = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&table))
                        .unwrap_or_default();
                }
            }
        });
    }
    for r in set.join_all().await {
        r?;
    }
    ids.sort();
    Ok(ids)
}

/// The bare floors: the same reads the functions make, straight from the SDK.
struct Floors {
    client: aws_sdk_dynamodb::Client,
    table: String,
    key_sk: String,
    list_limit: i32,
}

impl Floors {
    fn get(&self) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
            )
            .key("sk", AttributeValue::S(self.key_sk.clone()))
    }

    fn query(&self) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
            )
            .expression_attribute_values(":prefix", AttributeValue::S("KEY#".into()))
            .scan_index_forward(false)
            .limit(self.list_limit)
    }

    /// The Query a list page at a position makes: `limit` + 1 items after `from`, newest
    /// first.
    async fn query_from_loop(
        &self,
        from: Option<KeyId>,
        limit: usize,
        n: usize,
    ) -> Result<Vec<Duration>, BoxError> {
        let start = from.map(|id| {
            std::collections::HashMap::from([
                (
                    "pk".to_owned(),
                    AttributeValue::S(format!("ORG#{}", apikeys_demo::ORG)),
                ),
                ("sk".to_owned(), AttributeValue::S(format!("KEY#{id}"))),
            ])
        });
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = self
                .query()
                .limit(i32::try_from(limit + 1)?)
                .set_exclusive_start_key(start.clone())
                .send()
                .await?;
            out.push(t.elapsed());
            if r.items.unwrap_or_default().len() != limit + 1 {
                return Err("the floor's Query read a short page".into());
            }
        }
        Ok(out)
    }

    async fn get_loop(&self, n: usize) -> Result<Vec<Duration>, BoxError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = self.get().send().await?;
            out.push(t.elapsed());
            if r.item.is_none() {
                return Err("the floor's GetItem found no item".into());
            }
        }
        Ok(out)
    }

    async fn query_loop(&self, n: usize) -> Result<Vec<Duration>, BoxError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = self.query().send().await?;
            out.push(t.elapsed());
            if r.items.unwrap_or_default().is_empty() {
                return Err("the floor's Query found no item".into());
            }
        }
        Ok(out)
    }
}

fn sum_units(calls: &[proxy::Call]) -> f64 {
    calls.iter().map(|c| c.units).sum()
}

fn describe(calls: &[proxy::Call]) -> String {
    if calls.is_empty() {
        return "no call".into();
    }
    calls
        .iter()
        .map(|c| format!("{} {}", c.op, c.units))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Checks the TLS front through the functions' own HTTP client (`apikeys::client`): the
/// run's CA reaches DynamoDB Local; another CA, and Amazon's roots alone, fail the handshake.
async fn check_trust(front: &tls::TlsFront, ca: &tls::RunCa, table: &str) -> Result<(), BoxError> {
    use aws_smithy_http_client::tls::TrustStore;
    let wrong = tls::RunCa::new("wrong")?;
    let amazon = || TrustStore::empty().with_pem_certificate(apikeys::client::AMAZON_ROOTS);
    let get = |store: TrustStore| {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            // DynamoDB Local keeps the tables of each access key and region apart: the
            // functions' ones.
            .region(aws_sdk_dynamodb::config::Region::new(
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .endpoint_url(front.url())
            .http_client(apikeys::client::https_client(store))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let table = table.to_owned();
        async move {
            client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("TLS".into()))
                .key("sk", AttributeValue::S("TLS".into()))
                .send()
                .await
        }
    };
    get(amazon().with_pem_certificate(ca.ca_pem.clone()))
        .await
        .map_err(|e| format!("the TLS front is not reachable with the run's CA: {e:?}"))?;
    if get(amazon().with_pem_certificate(wrong.ca_pem.clone()))
        .await
        .is_ok()
    {
        return Err("a client trusting another CA reached the TLS front".into());
    }
    if get(amazon()).await.is_ok() {
        return Err("a client trusting only Amazon's roots reached the TLS front".into());
    }
    Ok(())
}

fn main() {
    // A function process under a CPU quota is started through this binary (`launch`), before
    // any runtime is built.
    if let Some(e) = launch::launch_if_asked() {
        eprintln!("bench: {e}");
        std::process::exit(127);
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
    let Args {
        plan,
        bin_dir,
        events,
        out,
        zips,
        template,
        python_peer,
        node_peer,
        nojitter,
        coldstart_only,
    } = args()?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").map_err(
        |_| "run under tools/dynamodb-local.sh run (AWS_ENDPOINT_URL_DYNAMODB is not set)",
    )?;
    let upstream: SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|_| {
            format!("AWS_ENDPOINT_URL_DYNAMODB={endpoint} is not http://127.0.0.1:PORT")
        })?;
    std::fs::create_dir_all(&out)?;
    // The functions' stderr and an empty HOME (so no local AWS profile is read), outside the
    // output directory.
    let work = std::env::temp_dir().join(format!("apikeys-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let say = |what: &str| eprintln!("bench: [{:6.1} s] {what}", started.elapsed().as_secs_f64());

    let get_http = event(&events, "get-key.http.json")?;
    let list_http = event(&events, "list-keys.http.json")?;
    let get_ev = bytes(&get_http);
    let list_ev = bytes(&list_http);
    // verify-key's sample event, verifying the demo admin's secret for a permission it
    // holds: the VALID path, the one that records a use. Not the viewer's: the cold starts
    // above ran roll-key's sample, which rolls the viewer's key.
    let mut verify_http = event(&events, "verify-key.http.json")?;
    let admin = apikeys_demo::secret_of(apikeys_demo::ADMIN_ID).ok_or("the demo admin")?;
    verify_http["body"] = Value::String(
        serde_json::json!({"key": admin.expose(), "permissions": ["api_keys.view"]}).to_string(),
    );
    let verify_ev = bytes(&verify_http);
    let key_id = get_http["pathParameters"]["id"]
        .as_str()
        .ok_or("get-key.http.json has no pathParameters.id")?
        .to_owned();

    // 1. The table, the demo organization, and its many keys.
    // The floors use the functions' own SDK configuration; setting up and seeding use a
    // patient one, as DynamoDB Local answers its first calls slowly on a busy machine.
    let sdk = apikeys::config::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let setup_client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build(),
    );
    // A DynamoDB Local that has just started (its JVM cold, the machine busy) may fail the
    // very first calls: start over on a new table, three times at most.
    let mut attempt = 0;
    let (table, store) = loop {
        attempt += 1;
        let table = format!("apikeys-bench-{}", uuid::Uuid::now_v7().simple());
        let store = DynamoStore::new(setup_client.clone(), table.clone());
        let ready = async {
            store.create_table().await?;
            apikeys_demo::seed(&store).await?;
            Ok::<(), BoxError>(())
        };
        match ready.await {
            Ok(()) => break (table, store),
            Err(e) if attempt < 3 => {
                say(&format!("setting up the table failed ({e}); again"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let demo: OrgId = apikeys_demo::ORG.parse()?;
    let t = Instant::now();
    let mut org_ids = seed_org(&store, &demo, plan.org_keys, 1, 2025).await?;
    let seed_org_secs = t.elapsed().as_secs_f64();
    say(&format!(
        "seeded {} keys into the demo organization in {seed_org_secs:.1} s",
        plan.org_keys
    ));
    org_ids.reverse(); // newest first: the list endpoint's default order

    let home = work.join("home");
    std::fs::create_dir_all(&home)?;
    let functions_env = local_functions_env()?;
    let env_with = |endpoint: &str, extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_owned()),
            (
                "AWS_REGION",
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ),
            // Lambda sets both; boto3 reads only this one.
            (
                "AWS_DEFAULT_REGION",
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("TABLE_NAME", table.clone()),
            ("CURSOR_SECRET", CURSOR_SECRET.into()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
            ("HOME", home.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env.extend(functions_env.iter().cloned());
        env
    };
    let direct = env_with(&endpoint, &[]);

    // 1b. Cold start with TLS on the path (`coldstart`), written to coldstart.md.
    {
        let ca = tls::RunCa::new("trusted")?;
        let front = tls::TlsFront::start(&ca, upstream).await?;
        check_trust(&front, &ca, &table).await?;
        say("TLS front: the run's CA is trusted, a wrong CA and Amazon's roots alone are not");
        let ca_file = work.join("run-ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem)?;
        // The system's roots plus the run's CA: what the clients that load the system's
        // roots (the `before` variants, boto3) read instead of the system bundle.
        let system = [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
        let bundle = work.join("system-and-run-ca.pem");
        std::fs::write(&bundle, format!("{system}\n{}", ca.ca_pem))?;
        let tls_env = env_with(
            &front.url(),
            &[
                ("AWS_CA_BUNDLE", &ca_file.display().to_string()),
                ("SSL_CERT_FILE", &bundle.display().to_string()),
            ],
        );
        let functions = coldstart::template_binaries(&template)?;
        let cold_plan = if plan.smoke {
            coldstart::Plan { inits: 1, warm: 3 }
        } else {
            coldstart::Plan {
                inits: 15,
                warm: 40,
            }
        };
        // Every write's start changes a key of its own: the recording, then three levels.
        let starts = 1 + 3 * cold_plan.inits;
        let t = Instant::now();
        let cold_ids = seed_org(&store, &demo, 4 * starts, COLD_SALT, 2026).await?;
        let cold_keys: Vec<(KeyId, Secret)> = cold_ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, seeded_secret(i, COLD_SALT)))
            .collect();
        say(&format!(
            "seeded {} keys for the writes' cold starts in {:.1} s",
            cold_keys.len(),
            t.elapsed().as_secs_f64()
        ));
        let github = apikeys_tests::github::Signer::generate("bench-github-key");
        let run_tag = uuid::Uuid::now_v7().simple().to_string();
        let setup = subjects::Setup {
            bin_dir: &bin_dir,
            events: &events,
            functions: &functions,
            python_peer: python_peer.as_deref(),
            node_peer: node_peer.as_deref(),
            nojitter: nojitter.as_deref(),
            bundle: &bundle,
            starts,
            cold_keys: &cold_keys,
            verify: &verify_http,
            github: &github,
            run: &run_tag,
        };
        let fns = subjects::functions(&setup)?;
        let recorder = proxy::Proxy::start(upstream).await?;
        let (own, floor_ops) = subjects::own_floors(
            &fns,
            &bin_dir,
            &env_with(&format!("http://{}", recorder.addr), &[]),
            &recorder,
            &work,
        )
        .await?;
        recorder.stop();
        say("recorded each function's DynamoDB calls for its own floor");
        let mut subjects = subjects::others(&setup, fns)?;
        subjects.extend(own);
        let results =
            coldstart::run(&subjects, &functions, &tls_env, &work, cold_plan, &say).await?;
        front.stop();
        let mut md = results.markdown();
        md.push_str(&coldstart::floor_calls(&floor_ops));
        std::fs::write(out.join("coldstart.md"), &md)?;
        println!("{md}");
        if coldstart_only {
            let _ = std::fs::remove_dir_all(&work);
            say(&format!("wrote {}", out.join("coldstart.md").display()));
            return Ok(());
        }
    }
    let bins = [
        ("hello", bin_dir.join("bench-hello")),
        ("get-key", bin_dir.join("get-key")),
        ("list-keys", bin_dir.join("list-keys")),
    ];
    for (_, b) in &bins {
        if !b.exists() {
            return Err(format!("{} is missing: build it first (make bench)", b.display()).into());
        }
    }
    let mut report = Report::new(plan);
    report
        .seed_secs
        .push(("demo organization", plan.org_keys, seed_org_secs));

    // 2. Cold starts, interleaved so that machine noise hits all three alike.
    for i in 0..plan.inits {
        for (name, bin) in &bins {
            let mut f = Function::start(
                name,
                bin,
                &direct,
                &work.join(format!("{name}.init.stderr")),
            )
            .await?;
            let init = f.init_time().await?;
            let ev = match *name {
                "get-key" => Some(&get_ev),
                "list-keys" => Some(&list_ev),
                _ => None,
            };
            let first = match ev {
                Some(ev) => {
                    let a = f.invoke(ev.clone()).await?;
                    check_ok(name, &a)?;
                    Some(a.duration)
                }
                None => {
                    let a = f.invoke(Bytes::from_static(b"{}")).await?;
                    if a.error {
                        return Err("the hello function failed".into());
                    }
                    Some(a.duration)
                }
            };
            if *name == "hello" {
                report.hello_rss = f.peak_rss()?;
            }
            f.stop().await;
            report.init.entry(name).or_default().push(init);
            if let Some(first) = first {
                report.first.entry(name).or_default().push(first);
            }
        }
        say(&format!("cold starts: round {} of {}", i + 1, plan.inits));
    }

    // 3. Capacity, through the recording proxy.
    let proxy = proxy::Proxy::start(upstream).await?;
    let proxied = env_with(&format!("http://{}", proxy.addr), &[]);
    for (name, ev) in [("get-key", &get_ev), ("list-keys", &list_ev)] {
        let bin = bin_dir.join(name);
        let mut f = Function::start(
            name,
            &bin,
            &proxied,
            &work.join(format!("{name}.cap.stderr")),
        )
        .await?;
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
    // The same event with the cache off: the cost of every request of an uncached caller.
    {
        let off = env_with(
            &format!("http://{}", proxy.addr),
            &[("CALLER_CACHE_TTL_SECS", "0")],
        );
        let mut f = Function::start(
            "get-key",
            &bin_dir.join("get-key"),
            &off,
            &work.join("get-key.nocache.stderr"),
        )
        .await?;
        f.init_time().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.take();
        let a = f.invoke(get_ev.clone()).await?;
        check_ok("get-key", &a)?;
        f.invoke(get_ev.clone()).await?;
        let calls = proxy.take();
        report.uncached_get = (describe(&calls), sum_units(&calls) / 2.0);
        f.stop().await;
    }
    say("capacity measured");

    // 4. Warm latency, in rounds, each function block followed by its floor.
    let list_limit = 51; // the default page of 50, plus one to know has_more
    let floors = Floors {
        client: client.clone(),
        table: table.clone(),
        key_sk: format!("KEY#{key_id}"),
        list_limit,
    };
    let gi = floors
        .get()
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await?;
    let q = floors
        .query()
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await?;
    report.floor_units = (
        gi.consumed_capacity
            .and_then(|c| c.capacity_units)
            .unwrap_or(0.0),
        q.consumed_capacity
            .and_then(|c| c.capacity_units)
            .unwrap_or(0.0),
        q.count as usize,
    );

    let mut get = Function::start(
        "get-key",
        &bin_dir.join("get-key"),
        &direct,
        &work.join("get-key.stderr"),
    )
    .await?;
    let mut list = Function::start(
        "list-keys",
        &bin_dir.join("list-keys"),
        &direct,
        &work.join("list-keys.stderr"),
    )
    .await?;
    let mut verify = Function::start(
        "verify-key",
        &bin_dir.join("verify-key"),
        &direct,
        &work.join("verify-key.stderr"),
    )
    .await?;
    let mut hello =
        Function::start("hello", &bins[0].1, &direct, &work.join("hello.stderr")).await?;
    get.init_time().await?;
    list.init_time().await?;
    // One cold start of verify-key (get-key's and list-keys' are measured above, several
    // times each): its init and first request.
    let verify_init = verify.init_time().await?;
    report
        .init
        .entry("verify-key")
        .or_default()
        .push(verify_init);
    let answer = verify.invoke(verify_ev.clone()).await?;
    check_ok("verify-key", &answer)?;
    report
        .first
        .entry("verify-key")
        .or_default()
        .push(answer.duration);
    let answer: Value = serde_json::from_slice(&answer.body)?;
    if !answer["body"]
        .as_str()
        .is_some_and(|b| b.contains("\"VALID\""))
    {
        return Err(format!("verify-key did not answer VALID: {answer}").into());
    }
    hello.init_time().await?;
    let hello_ev = Bytes::from_static(b"{}");
    // Warm everything up once, unmeasured.
    let warmup = (plan.warm / 20).max(2);
    run(&mut get, &get_ev, warmup).await?;
    run(&mut list, &list_ev, warmup).await?;
    run(&mut verify, &verify_ev, warmup).await?;
    floors.get_loop(warmup).await?;
    floors.query_loop(warmup).await?;
    let block = (plan.warm / plan.rounds).max(1);
    let (mut g, mut gf, mut l, mut lf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut v = Vec::new();
    let mut h = Vec::new();
    for r in 0..plan.rounds {
        for _ in 0..block {
            let a = hello.invoke(hello_ev.clone()).await?;
            h.push(a.duration);
        }
        g.extend(run(&mut get, &get_ev, block).await?);
        gf.extend(floors.get_loop(block).await?);
        l.extend(run(&mut list, &list_ev, block).await?);
        lf.extend(floors.query_loop(block).await?);
        v.extend(run(&mut verify, &verify_ev, block).await?);
        say(&format!("warm latency: round {} of {}", r + 1, plan.rounds));
    }
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

    // 5. Scaling: page depths, then again beside a noisy neighbour.
    let phases = if plan.depth_calls == 0 { 0 } else { 2 };
    let limit = plan.page_limit();
    let positions: Vec<Option<KeyId>> = DEPTHS
        .iter()
        .map(|&d| (d > 1).then(|| org_ids[(d - 1) * limit - 1]))
        .collect();
    let depth_events: Vec<(usize, Bytes)> = DEPTHS
        .iter()
        .zip(&positions)
        .map(|(&d, at)| {
            let mut params = vec![("limit", limit.to_string())];
            if let Some(at) = at {
                params.push(("after", at.to_string()));
            }
            (d, bytes(&list_event(&list_http, &params)))
        })
        .collect();
    // Capacity per depth, through the proxy.
    if phases > 0 {
        let mut f = Function::start(
            "list-keys",
            &bin_dir.join("list-keys"),
            &proxied,
            &work.join("list-keys.depth.stderr"),
        )
        .await?;
        f.init_time().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        f.invoke(depth_events[0].1.clone()).await?; // caches the caller
        proxy.take();
        for (d, ev) in &depth_events {
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
    }
    for phase in 0..phases {
        if phase == 1 {
            let noisy: OrgId = NOISY_ORG.parse()?;
            let t = Instant::now();
            seed_org(&store, &noisy, plan.noisy_keys, 2, 2025).await?;
            let secs = t.elapsed().as_secs_f64();
            report
                .seed_secs
                .push(("noisy neighbour", plan.noisy_keys, secs));
            say(&format!(
                "seeded {} keys of a noisy neighbour in {secs:.1} s",
                plan.noisy_keys
            ));
            // Settle, and re-warm after the write burst.
            run(&mut get, &get_ev, warmup).await?;
            for (_, ev) in &depth_events {
                run(&mut list, ev, 2).await?;
            }
        }
        let mut per_depth: Vec<Vec<Duration>> = vec![Vec::new(); DEPTHS.len()];
        let mut floor_depth: Vec<Vec<Duration>> = vec![Vec::new(); DEPTHS.len()];
        let mut gets = Vec::new();
        let chunks = plan.depth_calls.div_ceil(10).max(1);
        for _ in 0..10 {
            for (i, (_, ev)) in depth_events.iter().enumerate() {
                per_depth[i].extend(run(&mut list, ev, chunks).await?);
                floor_depth[i].extend(floors.query_from_loop(positions[i], limit, chunks).await?);
            }
            gets.extend(run(&mut get, &get_ev, plan.scale_gets / 10).await?);
        }
        report.scaling.push((
            phase == 1,
            Stats::of(&gets),
            per_depth.iter().map(|v| Stats::of(v)).collect(),
        ));
        report
            .depth_floor
            .push(floor_depth.iter().map(|v| Stats::of(v)).collect());
        say(&format!("scaling: phase {} of 2", phase + 1));
    }
    get.stop().await;
    list.stop().await;

    // 5b. Verify's cold case: distinct secrets, both caches off, beside its floor.
    let verify_cold = verify_cold(VerifyCold {
        bin_dir: &bin_dir,
        work: &work,
        direct: &direct,
        proxied: &proxied,
        proxy: &proxy,
        client: &client,
        org_ids: &org_ids,
        verify_http: &verify_http,
        plan,
    })
    .await?;
    proxy.stop();
    let verify_md = verify::markdown(&verify::Figures {
        cold: verify_cold.0,
        cold_floor: verify_cold.1,
        cold_ops: verify_cold.2,
        warm: Stats::of(&v),
        warm_floor: report.hello_warm,
    });
    std::fs::write(out.join("verify.md"), &verify_md)?;
    say("verify: the cold case measured");

    // 6. Sizes and the report.
    for (name, bin) in &bins[1..] {
        report.binary.push((name, std::fs::metadata(bin)?.len()));
    }
    if let Some(zips) = zips {
        for arch in ["x86_64", "arm64"] {
            for (name, _) in &bins[1..] {
                let p = zips.join(arch).join(format!("{name}.zip"));
                let size = std::fs::metadata(&p).ok().map(|m| m.len());
                report.zips.push((arch, name, size));
            }
        }
    }
    report.total_secs = started.elapsed().as_secs_f64();
    let md = report.markdown();
    std::fs::write(out.join("results.md"), &md)?;
    report::plot(&report, &out.join("list-depth.svg"))?;
    println!("{md}");
    let _ = std::fs::remove_dir_all(&work);
    say(&format!("wrote {}", out.display()));
    Ok(())
}

struct VerifyCold<'a> {
    bin_dir: &'a Path,
    work: &'a Path,
    direct: &'a [(String, String)],
    proxied: &'a [(String, String)],
    proxy: &'a proxy::Proxy,
    client: &'a aws_sdk_dynamodb::Client,
    /// The demo organization's seeded keys, newest first (`seed_org`, salt 1).
    org_ids: &'a [KeyId],
    verify_http: &'a Value,
    plan: Plan,
}

/// Verify's cold case (`verify`): verify-key with both caches off verifies `plan.warm`
/// distinct seeded secrets, in rounds, each followed by its floor replaying the calls of one
/// such verification for as many other keys. Returns both, and the floor's calls.
async fn verify_cold(c: VerifyCold<'_>) -> Result<(Stats, Stats, String), BoxError> {
    let n = c.org_ids.len();
    // The i-th seeded key (salt 1): its secret, and its credential hash and id as the
    // table holds them.
    let key = |i: usize| (seeded_secret(i, 1), c.org_ids[n - 1 - i]);
    let verify_event = |secret: &Secret| {
        let mut e = c.verify_http.clone();
        e["body"] = Value::String(
            serde_json::json!({"key": secret.expose(), "permissions": ["api_keys.view"]})
                .to_string(),
        );
        bytes(&e)
    };
    let count = c.plan.warm;
    if 2 * count + 1 > n {
        return Err("too few seeded keys for verify's cold case".into());
    }
    // The floor's calls: one verification of key 2·count, recorded through the proxy.
    let off = [("CALLER_CACHE_TTL_SECS", "0")];
    let mut with_proxy = c.proxied.to_vec();
    with_proxy.extend(off.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut f = Function::start(
        "verify-key",
        &c.bin_dir.join("verify-key"),
        &with_proxy,
        &c.work.join("verify-key.record.stderr"),
    )
    .await?;
    f.init_time().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.proxy.take();
    let (secret, id) = key(2 * count);
    check_valid(&f.invoke(verify_event(&secret)).await?)?;
    let calls = c.proxy.take();
    f.stop().await;
    let floor = verify::ColdFloor {
        calls: replay::grouped(
            calls
                .into_iter()
                .map(|x| (x.op, x.request, x.started, x.ended))
                .collect(),
        ),
        recorded_for: (secret.hash().as_str().to_owned(), id.to_string()),
    };
    // The function verifies keys 0..count, its floor count..2·count.
    let mut direct = c.direct.to_vec();
    direct.extend(off.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut f = Function::start(
        "verify-key",
        &c.bin_dir.join("verify-key"),
        &direct,
        &c.work.join("verify-key.cold.stderr"),
    )
    .await?;
    f.init_time().await?;
    let block = (count / c.plan.rounds).max(1);
    let (mut ours, mut floors) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for r in 0..count.div_ceil(block) {
        for i in r * block..((r + 1) * block).min(count) {
            let a = f.invoke(verify_event(&key(i).0)).await?;
            check_valid(&a)?;
            ours.push(a.duration);
        }
        let others: Vec<(String, String)> = (count + r * block
            ..count + ((r + 1) * block).min(count))
            .map(|i| {
                let (secret, id) = key(i);
                (secret.hash().as_str().to_owned(), id.to_string())
            })
            .collect();
        floors.extend(floor.run(c.client, &others).await?);
    }
    f.stop().await;
    Ok((Stats::of(&ours), Stats::of(&floors), floor.ops()))
}

/// Fails unless verify-key answered 200 with `VALID`.
fn check_valid(a: &emulator::Answer) -> Result<(), BoxError> {
    check_ok("verify-key", a)?;
    let v: Value = serde_json::from_slice(&a.body)?;
    if !v["body"].as_str().is_some_and(|b| b.contains("\"VALID\"")) {
        return Err(format!("verify-key did not answer VALID: {v}").into());
    }
    Ok(())
}

/// The functions' own variables of `tools/sam-local-env.json` (`IDEMPOTENCY_SECRET`,
/// `GITHUB_SECRET_SCANNING_KEYS`, ...), as `sam local invoke` and `make run` give them: the
/// sample events of the write and secret scanning functions need them. Every function gets
/// all of them; a variable a function does not read changes nothing. Read from the working
/// directory, the repository's root, as `events/` is (make runs the bench there).
fn local_functions_env() -> Result<Vec<(String, String)>, BoxError> {
    let path = Path::new("tools/sam-local-env.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let mut vars = std::collections::BTreeMap::new();
    for (section, values) in doc.as_object().into_iter().flatten() {
        if section == "Parameters" {
            continue;
        }
        for (k, v) in values.as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                vars.insert(k.clone(), v.to_owned());
            }
        }
    }
    Ok(vars.into_iter().collect())
}
