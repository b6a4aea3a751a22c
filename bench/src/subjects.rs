//! The cold-start subjects (`coldstart::Subject`): the floors, every function of
//! template.yaml with events that do its real work at every start, each function's own floor
//! (its DynamoDB calls replayed, `replay`), the client variants, and the peers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use apikeys::key::KeyId;
use apikeys::secret::Secret;
use apikeys_tests::capacity::Proxy;
use apikeys_tests::github::Signer;
use bytes::Bytes;
use serde_json::Value;

use crate::coldstart::{self, FLOOR_CONNECTED, Subject, floor_of};
use crate::emulator::Function;
use crate::{BoxError, bytes, event, replay};

/// The keys the writes' cold starts work on, each function a slice of its own: ids and
/// secrets, in the demo organization.
pub type ColdKeys = [(KeyId, Secret)];

/// Where the programs are, and what the subjects need.
pub struct Setup<'a> {
    pub bin_dir: &'a Path,
    pub events: &'a Path,
    pub functions: &'a [String],
    pub python_peer: Option<&'a Path>,
    /// The Node.js peer's directory (its entry file and its node_modules).
    pub node_peer: Option<&'a Path>,
    pub nojitter: Option<&'a Path>,
    /// The system's roots plus the run's CA.
    pub bundle: &'a Path,
    /// Fresh events per write function: one more than the starts it will get.
    pub starts: usize,
    pub cold_keys: &'a ColdKeys,
    /// The verify event the functions' cold starts send (the VALID path).
    pub verify: &'a Value,
    /// Signs revoke-leaked's reports; the function trusts its key (`env`).
    pub github: &'a Signer,
    /// Sets this run's events apart from any run before (Idempotency-Keys, names).
    pub run: &'a str,
}

/// The writes whose starts each need a key of their own.
const KEYED_WRITES: [&str; 4] = ["update-key", "roll-key", "delete-key", "revoke-leaked"];

/// The status a function answers on success.
fn success(function: &str) -> u16 {
    match function {
        "create-key" => 201,
        "delete-key" => 204,
        _ => 200,
    }
}

/// The functions, each with the events of its starts.
pub fn functions(s: &Setup<'_>) -> Result<Vec<Subject>, BoxError> {
    let mut all = Vec::new();
    for f in s.functions {
        let sample = if f == "verify-key" {
            s.verify.clone()
        } else {
            event(s.events, &format!("{f}.http.json"))?
        };
        let mut subject = Subject::new(f, s.bin_dir.join(f), bytes(&sample));
        subject.expect = success(f);
        subject.sized = f == "get-key";
        subject.expect_body = match f.as_str() {
            "verify-key" => Some("\"VALID\""),
            "revoke-leaked" => Some("true_positive"),
            _ => None,
        };
        if f == "create-key" || KEYED_WRITES.contains(&f.as_str()) {
            let slot = KEYED_WRITES.iter().position(|w| w == f).unwrap_or(0);
            let keys = s
                .cold_keys
                .get(slot * s.starts..(slot + 1) * s.starts)
                .ok_or("too few keys seeded for the writes' cold starts")?;
            subject.events = (0..s.starts)
                .map(|n| write_event(f, &sample, &keys[n], n, s))
                .collect::<Result<_, _>>()?;
        }
        if f == "revoke-leaked" {
            let keys = apikeys_tests::github::key_list(&[s.github]);
            subject
                .env
                .push(("GITHUB_SECRET_SCANNING_KEYS".into(), keys));
        }
        all.push(subject);
    }
    Ok(all)
}

/// The `n`-th start's event of a write: it changes something, once.
fn write_event(
    f: &str,
    sample: &Value,
    (id, secret): &(KeyId, Secret),
    n: usize,
    s: &Setup<'_>,
) -> Result<Bytes, BoxError> {
    let mut e = sample.clone();
    let headers = e["headers"]
        .as_object_mut()
        .ok_or("an event without headers")?;
    headers.remove("content-length");
    let idempotency = format!("bench-{}-{f}-{n}", s.run);
    match f {
        "create-key" => {
            headers.insert("idempotency-key".into(), idempotency.into());
            let mut body: Value = serde_json::from_str(e["body"].as_str().unwrap_or("{}"))?;
            body["name"] = format!("cold start {n} of run {}", s.run).into();
            e["body"] = body.to_string().into();
        }
        "update-key" => {
            on_key(&mut e, *id)?;
            e["body"] = serde_json::json!({"name": format!("renamed by cold start {n}")})
                .to_string()
                .into();
        }
        "roll-key" => {
            headers.insert("idempotency-key".into(), idempotency.into());
            on_key(&mut e, *id)?;
        }
        "delete-key" => on_key(&mut e, *id)?,
        "revoke-leaked" => {
            let body = serde_json::json!([{
                "token": secret.expose(),
                "type": "apikeys_api_key",
                "url": "https://github.com/octo-org/octo-repo/blob/0123abc/.env",
                "source": "content",
            }])
            .to_string();
            let headers = e["headers"].as_object_mut().ok_or("headers")?;
            // Lower-case, as API Gateway's HTTP API passes them.
            for (name, value) in s.github.headers(body.as_bytes()) {
                headers.insert(name.to_ascii_lowercase(), value.into());
            }
            e["body"] = body.into();
        }
        _ => {}
    }
    Ok(bytes(&e))
}

/// Points a sample event of `/v1/api_key/{id}...` at another key.
fn on_key(e: &mut Value, id: KeyId) -> Result<(), BoxError> {
    let old = e["pathParameters"]["id"]
        .as_str()
        .ok_or("an event without pathParameters.id")?
        .to_owned();
    let new = id.to_string();
    for ptr in ["/rawPath", "/requestContext/http/path"] {
        if let Some(Value::String(p)) = e.pointer_mut(ptr) {
            *p = p.replace(&old, &new);
        }
    }
    e["pathParameters"]["id"] = new.into();
    Ok(())
}

/// The floors, the client variants and the peers, around the functions.
pub fn others(s: &Setup<'_>, functions: Vec<Subject>) -> Result<Vec<Subject>, BoxError> {
    let empty = Bytes::from_static(b"{}");
    let get_ev = bytes(&event(s.events, "get-key.http.json")?);
    let mut all = vec![
        Subject::new("hello", s.bin_dir.join("bench-hello"), empty.clone()),
        Subject::new("floor", s.bin_dir.join("bench-floor"), empty.clone()),
    ];
    let mut connected = Subject::new(FLOOR_CONNECTED, s.bin_dir.join("bench-floor"), empty);
    connected
        .env
        .push(("FLOOR_CONNECT_IN_INIT".into(), "1".into()));
    all.push(connected);
    all.extend(functions);
    let variant = |name: &str, program: PathBuf, which: &str| {
        let mut v = Subject::new(name, program, get_ev.clone());
        v.env.push(("BENCH_VARIANT".into(), which.into()));
        v
    };
    all.push(variant("before", s.bin_dir.join("bench-variant"), "before"));
    if let Some(bin) = s.nojitter {
        all.push(variant(
            "before, no jitter entropy",
            bin.to_path_buf(),
            "before",
        ));
    }
    for which in ["ring", "trust", "lambda-env"] {
        all.push(variant(
            &format!("before + {which}"),
            s.bin_dir.join("bench-variant"),
            which,
        ));
    }
    // get-key's client less one change; the warm-up on its own: get-key's client with and
    // without it, from one binary.
    for (name, which) in [
        ("get-key − trust store (system roots)", "no-trust"),
        ("get-key − lambda-env (default chain)", "no-lambda-env"),
        ("get-key, variant build", "shipped"),
        ("get-key, no warm-up", "no-warm-up"),
    ] {
        all.push(variant(name, s.bin_dir.join("bench-variant"), which));
    }
    all.extend(peers(s, &get_ev)?);
    for p in &all {
        if !p.program.exists() {
            return Err(format!(
                "{} is missing: build it first (make bench)",
                p.program.display()
            )
            .into());
        }
    }
    Ok(all)
}

/// The Python and Node.js peers, those asked for: get-key written in their languages.
fn peers(s: &Setup<'_>, get_ev: &Bytes) -> Result<Vec<Subject>, BoxError> {
    let mut peers = Vec::new();
    if let Some(python) = s.python_peer {
        let mut p = Subject::new(coldstart::PEERS[0], python.to_path_buf(), get_ev.clone());
        p.args = vec!["-m".into(), "awslambdaric".into(), "get_key.handler".into()];
        p.cwd = Some(PathBuf::from("bench/peers/python"));
        // boto3 loads a whole bundle of roots by default (certifi's); it gets the system's
        // plus the run's CA.
        p.env
            .push(("AWS_CA_BUNDLE".into(), s.bundle.display().to_string()));
        // Lambda's task directory is read-only: no bytecode is written there.
        p.env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        p.sized = true;
        peers.push(p);
    }
    if let Some(dir) = s.node_peer {
        // By its full path: a function's environment has no PATH.
        let node = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("node"))
                    .find(|p| p.is_file())
            })
            .ok_or("the Node.js peer needs node on PATH")?;
        let mut p = Subject::new(coldstart::PEERS[1], node, get_ev.clone());
        // The runtime's loop (bench/peers/node/README.md), which loads the handler.
        p.args = vec![dir.join("bootstrap.mjs").display().to_string()];
        p.cwd = Some(dir.to_path_buf());
        // Node reads extra roots at its start, as on Lambda.
        p.env
            .push(("NODE_EXTRA_CA_CERTS".into(), s.bundle.display().to_string()));
        p.sized = true;
        peers.push(p);
    }
    Ok(peers)
}

/// Each function's own floor: its first request's DynamoDB calls, recorded through `proxy`
/// (plain HTTP; the calls are the same through the TLS front), replayed by `bench-floor`
/// connected in init. Returns the floors and, per function, the operations they replay.
pub async fn own_floors(
    functions: &[Subject],
    bin_dir: &Path,
    env: &[(String, String)],
    proxy: &Proxy,
    work: &Path,
) -> Result<(Vec<Subject>, Vec<(String, Vec<String>)>), BoxError> {
    // The demo admin, every function's caller, is stamped first (last use, once a minute per
    // key): so the recordings, like nearly every cold start of the run, find the stamp
    // fresh and make no last-use write.
    if let Some(get) = functions.iter().find(|f| f.name == "get-key") {
        let stderr = work.join("get-key.prime.stderr");
        let mut p = Function::start(&get.name, &get.program, env, &stderr).await?;
        p.init_time().await?;
        get.check(&p.invoke(get.events[0].clone()).await?)?;
        p.stop().await;
    }
    let mut floors = Vec::new();
    let mut ops = Vec::new();
    for f in functions {
        let mut all = env.to_vec();
        all.extend(f.env.iter().cloned());
        let stderr = work.join(format!("{}.record.stderr", f.name));
        let mut p = Function::start(&f.name, &f.program, &all, &stderr).await?;
        p.init_time().await?;
        // The warm-up read of init lands; what comes after is the request's.
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.take();
        let answer = p.invoke(f.next_event()?).await?;
        f.check(&answer)?;
        let calls = proxy.take();
        p.stop().await;
        let recorded = replay::grouped(
            calls
                .into_iter()
                .map(|c| (c.op, c.request, c.started, c.ended))
                .collect(),
        );
        let spec = work.join(format!("floor-{}.json", f.name));
        std::fs::write(&spec, replay::to_json(&recorded).to_string())?;
        let mut floor = Subject::new(
            &floor_of(&f.name),
            bin_dir.join("bench-floor"),
            Bytes::from_static(b"{}"),
        );
        floor.env = vec![
            ("FLOOR_SPEC".into(), spec.display().to_string()),
            ("FLOOR_CONNECT_IN_INIT".into(), "1".into()),
        ];
        ops.push((
            f.name.clone(),
            replay::ops(&recorded)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ));
        floors.push(floor);
    }
    Ok((floors, ops))
}
