//! `make bench-events`: the delay from a write to its audit event on the bus, measured
//! locally. Under `tools/dynamodb-local.sh run`: a new table with its stream (DynamoDB
//! Local), moto's EventBridge (`apikeys_tests::moto`, on a free loopback port, stopped by
//! its PID), then [`WRITES`] creates over HTTP one at a time, each followed by the stream
//! read as the publisher reads it until its event is put. Writes `events.md` into `--out`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apikeys::publish::stream::LocalStream;
use apikeys::publish::{Bus, BusError, Entry};
use apikeys_tests::moto::Moto;
use apikeys_tests::{Call, Payload, app, create, new_key, org};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The writes measured, after [`WARM_UP`] not counted.
const WRITES: usize = 200;
const WARM_UP: usize = 10;
/// The wait between two reads of the stream that found nothing new.
const POLL: Duration = Duration::from_millis(5);
/// The longest one event may take before the run fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// A bus that notes when its last PutEvents was answered.
struct Timed<B> {
    inner: B,
    answered: Mutex<Option<Instant>>,
}

impl<B: Bus + Sync> Bus for Timed<B> {
    async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, BusError> {
        let out = self.inner.put(entries).await;
        *self.answered.lock().expect("the clock") = Some(Instant::now());
        out
    }
}

/// One write's delays: from its request, and from its answer, to PutEvents' answer.
type Delay = (Duration, Duration);

/// Creates a key over HTTP, then reads the stream until its one event is published.
async fn one_write(
    app: &apikeys::App<apikeys::store::dynamo::DynamoStore>,
    admin: &apikeys::secret::Secret,
    stream: &mut LocalStream,
    bus: &Timed<impl Bus + Sync>,
    n: usize,
) -> Result<Delay, BoxError> {
    let start = Instant::now();
    let body = json!({"name": format!("bench {n}"), "restricted": false});
    let reply = Call::create(Payload::Http, body)
        .bearer(admin)
        .send(app)
        .await;
    if reply.status != 201 {
        return Err(format!("create: {} {}", reply.status, reply.body).into());
    }
    let answered = Instant::now();
    loop {
        let outcome = stream.pump(bus).await?;
        if outcome.failed_from.is_some() || outcome.published > 1 {
            return Err(format!("write {n}: {outcome:?}").into());
        }
        if outcome.published == 1 {
            break;
        }
        if start.elapsed() > PATIENCE {
            return Err(format!("write {n}: no event within {PATIENCE:?}").into());
        }
        tokio::time::sleep(POLL).await;
    }
    let put = bus.answered.lock().expect("the clock").unwrap_or(answered);
    Ok((put - start, put - answered))
}

/// The `p` quantile (nearest rank) of `sorted`, in milliseconds.
fn quantile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

fn row(name: &str, mut delays: Vec<Duration>) -> String {
    delays.sort();
    let (p50, p99) = (quantile(&delays, 0.5), quantile(&delays, 0.99));
    let max = quantile(&delays, 1.0);
    format!(
        "| {name} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms | {} |\n",
        delays.len()
    )
}

fn report(delays: &[Delay], whole: Duration) -> String {
    let mut text = String::from("# Audit events: from a write to the bus\n\n");
    text += &format!(
        "{WRITES} creates over HTTP (the create-key handler in this process, HTTP API \
         payload), one at a time, after {WARM_UP} not counted. After each, DynamoDB Local's \
         stream is read at once, then every {} ms until the write's event is published: the \
         records go to the publisher's use case (`apikeys::publish::publish`, as in \
         publish-events), which puts the event on moto's EventBridge server. A delay ends \
         when PutEvents answers; it starts at the write's request, or at its answer. Not in \
         it: Lambda's polling of the stream (four times a second per shard, so up to 250 ms \
         more in AWS), its invocation of publish-events, and EventBridge's delivery to a \
         rule's target.\n\n",
        POLL.as_millis()
    );
    text += "| delay to PutEvents' answer | p50 | p99 | max | writes |\n";
    text += "| --- | --- | --- | --- | --- |\n";
    text += &row(
        "from the write's request",
        delays.iter().map(|d| d.0).collect(),
    );
    text += &row(
        "from the write's answer",
        delays.iter().map(|d| d.1).collect(),
    );
    text += &format!(
        "\nWritten by `bench-events --out bench/results`; whole run {} s.\n",
        whole.as_secs()
    );
    text
}

async fn run(out: PathBuf) -> Result<(), BoxError> {
    let started = Instant::now();
    let moto = Moto::start().await;
    let bus = Timed {
        inner: moto.bus("bench").await,
        answered: Mutex::new(None),
    };
    let app = app().await;
    let sdk = apikeys::config::sdk_config().await;
    let mut stream = LocalStream::open(&app.store, &sdk, true).await?;
    let mut caller = new_key(&org(), "caller");
    caller.access = apikeys::key::Access::Unrestricted;
    let (_, admin) = create(&app, caller).await;
    // The caller's own creation: published before the first write.
    while stream.pump(&bus).await?.published == 0 {
        if started.elapsed() > PATIENCE {
            return Err("the caller's event was not published".into());
        }
        tokio::time::sleep(POLL).await;
    }
    let mut delays = Vec::with_capacity(WRITES);
    for n in 0..WARM_UP + WRITES {
        let delay = one_write(&app, &admin, &mut stream, &bus, n).await?;
        if n >= WARM_UP {
            delays.push(delay);
        }
    }
    drop(moto);
    let text = report(&delays, started.elapsed());
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("events.md"), &text)?;
    print!("{text}");
    Ok(())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let out = match (args.next().as_deref(), args.next()) {
        (Some("--out"), Some(dir)) => PathBuf::from(dir),
        _ => {
            eprintln!("usage: bench-events --out DIR");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(out).await {
        eprintln!("bench-events: {e}");
        std::process::exit(1);
    }
}
