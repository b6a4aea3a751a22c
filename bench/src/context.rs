//! What every step of the run shares: the command line, DynamoDB Local and the run's table,
//! the working directory, the functions' environment and the progress lines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apikeys::store::dynamo::DynamoStore;
use tokio::time::Instant;

use crate::BoxError;
use crate::emulator::Function;
use crate::plan::{Args, Plan};
use crate::samples::Samples;

const CURSOR_SECRET: &str = "benchmark-cursor-secret-0123456789abcdef";

pub struct Ctx {
    pub args: Args,
    pub plan: Plan,
    started: Instant,
    /// DynamoDB Local, as `AWS_ENDPOINT_URL_DYNAMODB` gives it.
    pub endpoint: String,
    pub upstream: SocketAddr,
    /// The functions' stderr and an empty HOME (so no local AWS profile is read), outside
    /// the output directory.
    pub work: PathBuf,
    pub samples: Samples,
    /// The functions' own SDK configuration, for the floors.
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// A patient client on the table, for setting up and seeding.
    pub store: DynamoStore,
    functions_env: Vec<(String, String)>,
}

impl Ctx {
    /// Reads the events, makes the working directories and a table with the demo
    /// organization.
    pub async fn new(args: Args, started: Instant) -> Result<Ctx, BoxError> {
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
        std::fs::create_dir_all(&args.out)?;
        let work = std::env::temp_dir().join(format!("apikeys-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let samples = Samples::read(&args.events)?;
        // The floors use the functions' own SDK configuration; setting up and seeding use a
        // patient one, as DynamoDB Local answers its first calls slowly on a busy machine.
        let sdk = apikeys::config::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let (table, store) = new_table(
            patient(aws_sdk_dynamodb::config::Builder::from(&sdk)),
            |w| say(started, w),
        )
        .await?;
        owner_as_sampled(&store, &args.events).await?;
        std::fs::create_dir_all(work.join("home"))?;
        Ok(Ctx {
            plan: args.plan,
            args,
            started,
            endpoint,
            upstream,
            work,
            samples,
            client,
            table,
            store,
            functions_env: local_functions_env()?,
        })
    }

    /// A progress line on stderr.
    pub fn say(&self, what: &str) {
        say(self.started, what)
    }

    pub fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The functions' environment with DynamoDB at `endpoint`, plus `extra`.
    pub fn env_with(&self, endpoint: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_owned()),
            ("AWS_REGION", region.clone()),
            // Lambda sets both; boto3 reads only this one.
            ("AWS_DEFAULT_REGION", region),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("TABLE_NAME", self.table.clone()),
            ("CURSOR_SECRET", CURSOR_SECRET.into()),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
            ("HOME", self.work.join("home").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env.extend(self.functions_env.iter().cloned());
        env
    }

    /// The functions' environment with DynamoDB Local itself.
    pub fn direct(&self) -> Vec<(String, String)> {
        self.env_with(&self.endpoint, &[])
    }

    /// The binary of `name` in the binary directory.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.args.bin_dir.join(name)
    }

    /// Starts the function `name` (binary `bin`) with `env`, its stderr in
    /// `<name>.<what>.stderr` of the working directory.
    pub async fn start_as(
        &self,
        name: &str,
        bin: &Path,
        env: &[(String, String)],
        what: &str,
    ) -> Result<Function, BoxError> {
        let stderr = match what {
            "" => format!("{name}.stderr"),
            what => format!("{name}.{what}.stderr"),
        };
        Function::start(name, bin, env, &self.work.join(stderr)).await
    }

    /// Starts the function `name` from its binary of the same name (see `start_as`).
    pub async fn start(
        &self,
        name: &str,
        env: &[(String, String)],
        what: &str,
    ) -> Result<Function, BoxError> {
        self.start_as(name, &self.bin(name), env, what).await
    }

    /// Removes the working directory.
    pub fn clean(&self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

fn say(started: Instant, what: &str) {
    eprintln!("bench: [{:6.1} s] {what}", started.elapsed().as_secs_f64());
}

/// A client of `config` that waits longer for DynamoDB Local's first answers.
fn patient(config: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        config
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            )
            .build(),
    )
}

/// A new table with the demo organization. A DynamoDB Local that has just started (its JVM
/// cold, the machine busy) may fail the very first calls: start over on a new table, three
/// times at most.
async fn new_table(
    client: aws_sdk_dynamodb::Client,
    say: impl Fn(&str),
) -> Result<(String, DynamoStore), BoxError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let table = format!("apikeys-bench-{}", uuid::Uuid::now_v7().simple());
        let store = DynamoStore::new(client.clone(), table.clone());
        let ready = async {
            store.create_table().await?;
            apikeys_demo::seed(&store).await?;
            Ok::<(), BoxError>(())
        };
        match ready.await {
            Ok(()) => return Ok((table, store)),
            Err(e) if attempt < 3 => {
                say(&format!("setting up the table failed ({e}); again"));
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The demo owner's limits as `events/owner.http.change.json` sets them, so that the owner
/// function's sample (`owner.http.json`, a GET) answers 200 with them, as it does after
/// that change in `tests/api/events.rs`.
async fn owner_as_sampled(store: &DynamoStore, events: &Path) -> Result<(), BoxError> {
    let sample = crate::samples::event(events, "owner.http.change.json")?;
    let id = sample["pathParameters"]["owner_id"]
        .as_str()
        .unwrap_or_default();
    let id: apikeys::owner::OwnerId = id.parse().map_err(|_| format!("owner id {id:?}"))?;
    let mut headers = lambda_http::http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse()?);
    let body = sample["body"].as_str().unwrap_or_default().as_bytes();
    let quota = apikeys::http::body::owner::parse(&headers, body).map_err(|e| e.to_string())?;
    let org: apikeys::key::OrgId = apikeys_demo::ORG.parse()?;
    let (policy, ctx) = (
        apikeys::write::WritePolicy::default(),
        apikeys::write::WriteContext::cli(),
    );
    apikeys::write::set_owner(store, &policy, &ctx, (&org, &id), &quota, None).await?;
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
