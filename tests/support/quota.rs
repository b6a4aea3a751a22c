//! Support for the tests of credits and rate limits: keys and answers as JSON, windows that will not roll over mid-test, verifiers in other processes, and owners with credits and limits of their own ([`seed_owner`]).
//!
//! A test that needs several processes re-executes its own test binary ([`Children`]), asking
//! for one test by name (`--exact`) and telling it what to do in [`CHILD_VAR`]. That test
//! ([`child_spec`] gives its task, or `None` when it is not a child, and it returns at once)
//! builds its own application on the parent's table, so its own caches and leases, runs its
//! share of the verifiers concurrently through the verify handler, and prints one line,
//! [`TALLY`] then a JSON array of what each verification answered, which the parent reads.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apikeys::App;
use apikeys::cache::CallerCache;
use apikeys::page::CursorKeys;
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use serde_json::{Value, json};

use crate::{CURSOR_SECRET, Call, Payload, Reply, client, patient_recorder};

/// The environment variable that makes a child test do its work: its task, as JSON.
pub const CHILD_VAR: &str = "APIKEYS_QUOTA_CHILD";

/// What starts a child's one tally (after libtest's "test … " on the same line): what its
/// verifications answered.
pub const TALLY: &str = "QUOTA_TALLY ";

/// The longest a child may run before the parent kills it.
pub const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Epoch milliseconds now.
pub fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis() as u64
}

/// Creates a key with this body (`name` and `restricted: false` unless given) over HTTP, as
/// `admin`; returns the key object and its secret.
pub async fn create_json(
    app: &App<DynamoStore>,
    p: Payload,
    admin: &Secret,
    body: Value,
) -> (Value, Secret) {
    let mut body = body;
    let fields = body.as_object_mut().expect("a body object");
    fields.entry("name").or_insert(json!("metered"));
    if !fields.contains_key("permissions") {
        fields.entry("restricted").or_insert(json!(false));
    }
    let reply = Call::create(p, body).bearer(admin).send(app).await;
    assert_eq!(reply.status, 201, "create: {}", reply.body);
    let mut key = reply.body;
    let secret = key
        .as_object_mut()
        .and_then(|k| k.remove("secret"))
        .and_then(|s| s.as_str().map(str::to_owned))
        .expect("a secret");
    (key, Secret::parse(&secret).expect("a well-formed secret"))
}

/// The key id of a key object.
pub fn id_of(key: &Value) -> String {
    key["id"].as_str().expect("an id").to_owned()
}

/// Verifies `secret` with `cost` (none: the default) as `caller`; asserts a 200 and returns
/// the answer.
pub async fn verify_json(
    app: &App<DynamoStore>,
    p: Payload,
    caller: &Secret,
    secret: &Secret,
    cost: Option<u64>,
) -> Value {
    let body = match cost {
        Some(c) => json!({"key": secret.expose(), "cost": c}),
        None => json!({"key": secret.expose()}),
    };
    let reply = Call::verify(p, &body).bearer(caller).send(app).await;
    assert_eq!(reply.status, 200, "verify: {}", reply.body);
    reply.body
}

/// The key object as GET shows it to `caller`.
pub async fn get_json(app: &App<DynamoStore>, p: Payload, caller: &Secret, id: &str) -> Value {
    let reply = Call::get(p, id).bearer(caller).send(app).await;
    assert_eq!(reply.status, 200, "get: {}", reply.body);
    reply.body
}

/// `credits.remaining` of a key or an answer (`None`: no credits member).
pub fn remaining(v: &Value) -> Option<u64> {
    v.get("credits")
        .map(|c| c["remaining"].as_u64().expect("a remaining count"))
}

/// `ratelimits[i].remaining` of an answer.
pub fn tokens(v: &Value, i: usize) -> u64 {
    v["ratelimits"][i]["remaining"]
        .as_u64()
        .unwrap_or_else(|| panic!("ratelimits[{i}].remaining in {v}"))
}

/// Waits, if needed, until the window of `duration_ms` now has at least `margin` left, so
/// that a test's verifications share one window.
pub async fn settle_window(duration_ms: u64, margin: Duration) {
    let now = now_ms();
    let end = (now / duration_ms + 1) * duration_ms;
    if end - now < margin.as_millis() as u64 {
        tokio::time::sleep(Duration::from_millis(end - now + 50)).await;
    }
}

/// The reply's problem `parameter`, after checking its status.
#[track_caller]
pub fn parameter(reply: &Reply, status: u16) -> Option<String> {
    reply.problem(status);
    reply.body["parameter"].as_str().map(str::to_owned)
}

/// An application on an existing table (a child process's own: its own caches).
pub async fn app_on(table: &str) -> App<DynamoStore> {
    crate::keep_callsites_open();
    App {
        store: DynamoStore::new(client().await, table),
        callers: CallerCache::new(Duration::from_secs(5)),
        cursors: CursorKeys::parse(CURSOR_SECRET).unwrap(),
        usage: patient_recorder(),
    }
}

/// A child's task: verify `key` as `admin` on `table`, with `verifiers` concurrent loops of
/// at most `attempts` verifications each, from `start_ms` until `until_ms` (epoch ms).
pub fn child_task(
    app: &App<DynamoStore>,
    admin: &Secret,
    key: &Secret,
    verifiers: usize,
    attempts: usize,
    (start_ms, until_ms): (u64, u64),
) -> Value {
    json!({
        "table": app.store.table(),
        "admin": admin.expose(),
        "key": key.expose(),
        "verifiers": verifiers,
        "attempts": attempts,
        "start_ms": start_ms,
        "until_ms": until_ms,
    })
}

/// The task of this process, if it is a child of a quota test.
pub fn child_spec() -> Option<Value> {
    let spec = std::env::var(CHILD_VAR).ok()?;
    Some(serde_json::from_str(&spec).expect("the child's task is JSON"))
}

/// What one verification answered: its status, code, credits left, and its first limit's
/// window end and tokens left.
fn outcome(reply: &Reply) -> Value {
    let limit = &reply.body["ratelimits"][0];
    json!({
        "status": reply.status,
        "code": reply.body["code"],
        "credits": reply.body["credits"]["remaining"],
        "reset": limit["reset"],
        "remaining": limit["remaining"],
        "detail": reply.body["detail"],
    })
}

/// Runs a child's task in this process, and returns what each verification answered.
pub async fn run_child(spec: &Value) -> Vec<Value> {
    let app = Arc::new(app_on(spec["table"].as_str().unwrap()).await);
    let cache = Arc::new(apikeys::verify::VerifyCache::new(Duration::from_secs(5)));
    let admin = Secret::parse(spec["admin"].as_str().unwrap()).unwrap();
    let key = spec["key"].as_str().unwrap().to_owned();
    let attempts = spec["attempts"].as_u64().unwrap() as usize;
    let until = spec["until_ms"].as_u64().unwrap();
    let start = spec["start_ms"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
    let mut set = tokio::task::JoinSet::new();
    for v in 0..spec["verifiers"].as_u64().unwrap() {
        let (app, cache, admin) = (app.clone(), cache.clone(), admin.clone());
        let p = if v % 2 == 0 {
            Payload::Rest
        } else {
            Payload::Http
        };
        let call = Call::verify(p, &json!({ "key": key })).bearer(&admin);
        set.spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < attempts && now_ms() < until {
                let response = apikeys::http::verify_key(&app, &cache, call.request()).await;
                let reply = Reply::from(response);
                // A refused client waits a little before asking again, as clients do: a
                // refusal answered from the process's memory of a full window takes no
                // time, and the attempts must last over several windows.
                let refused = reply.status == 200 && reply.body["valid"] == false;
                seen.push(outcome(&reply));
                if refused {
                    tokio::time::sleep(Duration::from_millis(70)).await;
                }
            }
            seen
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

/// Child processes of this test binary, each running one test with its task.
pub struct Children {
    running: Vec<(Child, std::thread::JoinHandle<String>)>,
}

impl Children {
    /// Starts one child per task, each running the test named `test` (its full path) alone.
    pub fn spawn(test: &str, tasks: &[Value]) -> Self {
        let exe = std::env::current_exe().expect("this test binary");
        let running = tasks
            .iter()
            .map(|task| {
                let mut child = Command::new(&exe)
                    .args([test, "--exact", "--nocapture", "--test-threads=1"])
                    .env(CHILD_VAR, task.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("start a child process");
                let mut out = child.stdout.take().expect("its stdout");
                let reader = std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = out.read_to_string(&mut text);
                    text
                });
                (child, reader)
            })
            .collect();
        Children { running }
    }

    /// Waits for every child (killing all that still run after [`CHILD_LIMIT`]), and returns
    /// each one's answers. Fails if a child failed, was killed, or printed no tally.
    pub fn tallies(self) -> Vec<Vec<Value>> {
        let deadline = Instant::now() + CHILD_LIMIT;
        let mut running = self.running;
        loop {
            let mut done = true;
            for (child, _) in &mut running {
                done &= child.try_wait().expect("a child's status").is_some();
            }
            if done {
                break;
            }
            if Instant::now() > deadline {
                for (child, _) in &mut running {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                panic!("a child ran longer than {CHILD_LIMIT:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        running
            .into_iter()
            .map(|(mut child, reader)| {
                let status = child.wait().expect("a child's status");
                let text = reader.join().expect("its stdout");
                assert!(status.success(), "a child failed ({status}):\n{text}");
                let tallies: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.split_once(TALLY).map(|(_, tally)| tally))
                    .collect();
                assert_eq!(tallies.len(), 1, "one tally line from each child:\n{text}");
                serde_json::from_str(tallies[0]).expect("a tally is JSON")
            })
            .collect()
    }
}

/// Runs `tasks` in child processes of `test` and returns every answer they got, together.
pub async fn in_children(test: &'static str, tasks: Vec<Value>) -> Vec<Value> {
    let tallies = tokio::task::spawn_blocking(move || Children::spawn(test, &tasks).tallies())
        .await
        .expect("the children's waiter");
    assert!(tallies.len() >= 3, "at least three processes");
    tallies.into_iter().flatten().collect()
}

/// Gives the owner `owner` of `org` these credits and limits, as the store writes them.
pub async fn seed_owner(
    app: &App<DynamoStore>,
    org: &apikeys::key::OrgId,
    owner: &str,
    quota: apikeys::quota::Quota,
) {
    let owner = apikeys::owner::Owner {
        org: org.clone(),
        id: owner.parse().unwrap(),
        quota,
        version: 1,
        updated: chrono::Utc::now(),
    };
    let item = apikeys::store::dynamo::owner_item(&owner, None).unwrap();
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("write the owner item");
}
