//! Tenant isolation as a property: random organizations with random keys, then random get
//! and list requests from every caller (foreign ids, positions at foreign keys, foreign,
//! forged and tampered cursors). No response may hold another organization's data, and
//! no response or log line may hold a secret, a hash or internal error text.
//!
//! `APIKEYS_ISOLATION_CASES` sets the number of requests (default 1,000; `make security`
//! runs 10,000). The run prints one `isolation:` line with its figures.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use apikeys::App;
use apikeys::key::{ApiKey, KeyId, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::dynamo::DynamoStore;
use apikeys_tests::*;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

const DEFAULT_CASES: u32 = 1_000;

/// The kinds of caller each organization has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Admin,
    /// Restricted to `api_keys.view`.
    Viewer,
    /// Restricted, without `api_keys.view`: every request is 403.
    NoView,
}

const ROLES: [Role; 3] = [Role::Admin, Role::Viewer, Role::NoView];

struct Tenant {
    org: OrgId,
    keys: Vec<ApiKey>,
    /// One secret per role, in the order of `ROLES`.
    secrets: Vec<Secret>,
    /// Cursors issued to this organization, by order.
    cursors: Vec<(String, &'static str)>,
}

/// A position parameter or cursor, chosen by index into the world.
#[derive(Clone, Debug)]
enum Position {
    None,
    After {
        org: usize,
        key: usize,
    },
    Before {
        org: usize,
        key: usize,
    },
    /// A key id no organization has.
    AfterUnknown(u128),
    Cursor {
        org: usize,
        which: usize,
        tamper: Tamper,
        order: Option<bool>,
    },
    ForgedCursor(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Tamper {
    None,
    FlipBit(usize),
    Truncate(usize),
    Append(u8),
}

#[derive(Clone, Debug)]
enum Target {
    Own(usize),
    Foreign { org: usize, key: usize },
    Unknown(u128),
}

#[derive(Clone, Debug)]
enum Op {
    Get(Target),
    List {
        limit: Option<usize>,
        order: Option<bool>,
        position: Position,
    },
}

#[derive(Clone, Debug)]
struct Req {
    caller_org: usize,
    role: usize,
    http_api: bool,
    x_api_key: bool,
    op: Op,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        1 => Just(Tamper::None),
        3 => any::<usize>().prop_map(Tamper::FlipBit),
        1 => any::<usize>().prop_map(Tamper::Truncate),
        1 => any::<u8>().prop_map(Tamper::Append),
    ]
}

fn position(orgs: usize) -> impl Strategy<Value = Position> {
    let ix = || (0..orgs, any::<usize>());
    prop_oneof![
        2 => Just(Position::None),
        2 => ix().prop_map(|(org, key)| Position::After { org, key }),
        2 => ix().prop_map(|(org, key)| Position::Before { org, key }),
        1 => any::<u128>().prop_map(Position::AfterUnknown),
        4 => (ix(), tamper(), proptest::option::of(any::<bool>()))
            .prop_map(|((org, which), tamper, order)| Position::Cursor { org, which, tamper, order }),
        1 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(Position::ForgedCursor),
    ]
}

fn request(orgs: usize) -> impl Strategy<Value = Req> {
    let target = prop_oneof![
        2 => any::<usize>().prop_map(Target::Own),
        3 => (0..orgs, any::<usize>()).prop_map(|(org, key)| Target::Foreign { org, key }),
        1 => any::<u128>().prop_map(Target::Unknown),
    ];
    let op = prop_oneof![
        1 => target.prop_map(Op::Get),
        2 => (
            proptest::option::of(1usize..=60),
            proptest::option::of(any::<bool>()),
            position(orgs)
        )
            .prop_map(|(limit, order, position)| Op::List { limit, order, position }),
    ];
    // Mostly callers allowed to read keys; some that are not (every answer a 403).
    let role = prop_oneof![9 => Just(0usize), 9 => Just(1usize), 2 => Just(2usize)];
    (0..orgs, role, any::<bool>(), any::<bool>(), op).prop_map(
        |(caller_org, role, http_api, x_api_key, op)| Req {
            caller_org,
            role,
            http_api,
            x_api_key,
            op,
        },
    )
}

/// Random organizations (3 to 6) with 0 to 40 keys each, created at interleaved times so
/// that one organization's positions fall among another's.
async fn world(app: &App<DynamoStore>, rng: &mut TestRng) -> Vec<Tenant> {
    let n = rng.random_range(3..=6);
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let mut tenants = Vec::new();
    for t in 0..n {
        let org = org();
        let count = rng.random_range(0..=40usize);
        let mut created = tokio::task::JoinSet::new();
        for i in 0..count {
            let mut new = new_key(&org, &format!("{org} key {i} {}", rng.random::<u32>()));
            let jitter = rng.random_range(0..1_000_000i64);
            new.id = Some(KeyId::new_at(
                start + chrono::Duration::microseconds(jitter),
            ));
            if rng.random_bool(0.3) {
                new.access = restricted(&[Permission::CallsView]);
            }
            let store = app.store.clone();
            created.spawn(async move {
                apikeys::write::create_key(&store, new)
                    .await
                    .expect("create a key")
                    .0
            });
        }
        let mut keys = created.join_all().await;
        let mut secrets = Vec::new();
        for role in ROLES {
            let mut new = new_key(&org, &format!("{org} caller {role:?}"));
            new.access = match role {
                Role::Admin => apikeys::key::Access::Unrestricted,
                Role::Viewer => restricted(&[Permission::ApiKeysView]),
                Role::NoView => restricted(&[Permission::CallsView]),
            };
            let (key, secret) = create(app, new).await;
            keys.push(key);
            secrets.push(secret);
        }
        keys.sort_by_key(|k| k.id);
        let mut cursors = Vec::new();
        for order in ["asc", "desc"] {
            for from in [None, keys.get(keys.len() / 2)] {
                let mut call = Call::list(Payload::Rest)
                    .query("limit", 1 + t)
                    .query("order", order)
                    .bearer(&secrets[0]);
                if let Some(k) = from {
                    call = call.query("after", k.id);
                }
                let reply = call.send(app).await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                if let Some(c) = reply.body["next_cursor"].as_str() {
                    cursors.push((c.to_owned(), order));
                }
            }
        }
        tenants.push(Tenant {
            org,
            keys,
            secrets,
            cursors,
        });
    }
    tenants
}

fn tampered(cursor: &str, how: &Tamper) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bytes = engine.decode(cursor).expect("issued cursors decode");
    match how {
        Tamper::None => return cursor.to_owned(),
        Tamper::FlipBit(i) => {
            let bit = i % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        Tamper::Truncate(n) => bytes.truncate(n % bytes.len()),
        Tamper::Append(b) => bytes.push(*b),
    }
    engine.encode(bytes)
}

/// What a request is expected to get, besides isolation.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Status(u16),
    /// Any of these statuses.
    OneOf(&'static [u16]),
}

/// Builds the call for `req`, and says what it must get.
fn build(tenants: &[Tenant], req: &Req) -> (Call, Expect) {
    let me = &tenants[req.caller_org];
    let payload = if req.http_api {
        Payload::Http
    } else {
        Payload::Rest
    };
    let pick = |org: usize, i: usize| &tenants[org].keys[i % tenants[org].keys.len()];
    let (mut call, mut expect) = match &req.op {
        Op::Get(Target::Own(i)) => (
            Call::get(payload, pick(req.caller_org, *i).id),
            Expect::Status(200),
        ),
        Op::Get(Target::Foreign { org, key }) => {
            let k = pick(*org, *key);
            let status = if *org == req.caller_org { 200 } else { 404 };
            (Call::get(payload, k.id), Expect::Status(status))
        }
        Op::Get(Target::Unknown(n)) => (
            Call::get(payload, uuid::Uuid::from_u128(*n)),
            // Not every u128 is a valid UUIDv7 id.
            Expect::OneOf(&[404, 422]),
        ),
        Op::List {
            limit,
            order,
            position,
        } => {
            let mut call = Call::list(payload);
            if let Some(l) = limit {
                call = call.query("limit", l);
            }
            let order_name = |asc: bool| if asc { "asc" } else { "desc" };
            let mut expect = Expect::Status(200);
            match position {
                Position::None => {}
                Position::After { org, key } => call = call.query("after", pick(*org, *key).id),
                Position::Before { org, key } => call = call.query("before", pick(*org, *key).id),
                Position::AfterUnknown(n) => {
                    call = call.query("after", uuid::Uuid::from_u128(*n));
                    expect = Expect::OneOf(&[200, 422]);
                }
                Position::Cursor {
                    org,
                    which,
                    tamper,
                    order: cursor_order,
                } => {
                    let issued = &tenants[*org].cursors;
                    if issued.is_empty() {
                        call = call.query("cursor", "none-issued");
                        expect = Expect::Status(422);
                    } else {
                        let (cursor, issued_order) = &issued[which % issued.len()];
                        let token = tampered(cursor, tamper);
                        call = call.query("cursor", &token);
                        let same_order =
                            cursor_order.is_none_or(|o| order_name(o) == *issued_order);
                        let valid = *org == req.caller_org && token == *cursor && same_order;
                        expect = Expect::Status(if valid { 200 } else { 422 });
                        if let Some(o) = cursor_order {
                            call = call.query("order", order_name(*o));
                        }
                    }
                }
                Position::ForgedCursor(bytes) => {
                    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    call = call.query("cursor", engine.encode(bytes));
                    expect = Expect::Status(422);
                }
            }
            if let (Some(o), false) = (order, matches!(position, Position::Cursor { .. })) {
                call = call.query("order", order_name(*o));
            }
            (call, expect)
        }
    };
    let secret = &me.secrets[req.role];
    call = if req.x_api_key {
        call.api_key(secret)
    } else {
        call.bearer(secret)
    };
    if ROLES[req.role] == Role::NoView {
        expect = Expect::Status(403);
    }
    (call, expect)
}

/// Every string anywhere in a JSON value.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn no_request_ever_sees_another_organizations_data() {
    let cases = std::env::var("APIKEYS_ISOLATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let logs = LogCapture::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber("trace"));

    // A fixed seed repeats a run: APIKEYS_ISOLATION_SEED=<the seed it printed>.
    let seed_n: u64 = std::env::var("APIKEYS_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| uuid::Uuid::now_v7().as_u128() as u64);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&seed_n.to_le_bytes());
    let mut world_rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    rt.block_on(wait_for_dynamodb());
    let app = rt.block_on(app());
    let tenants = rt.block_on(world(&app, &mut world_rng));
    let all_secrets: Vec<Secret> = tenants.iter().flat_map(|t| t.secrets.clone()).collect();
    let key_count: usize = tenants.iter().map(|t| t.keys.len()).sum();

    // What belongs to whom: ids, names, organization ids.
    let owner: BTreeMap<String, usize> = tenants
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.keys
                .iter()
                .flat_map(move |k| [(k.id.to_string(), i), (k.name.clone(), i)])
                .chain(std::iter::once((t.org.to_string(), i)))
        })
        .collect();

    let config = Config {
        cases,
        failure_persistence: None,
        // Each case is one request: shrinking a failure re-runs only a few.
        max_shrink_iters: 64,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, world_rng);
    let statuses = std::cell::RefCell::new(BTreeMap::<u16, u32>::new());
    let sent = std::cell::Cell::new(0u32);
    let started = Instant::now();
    let result = runner.run(&request(tenants.len()), |req| {
        let (call, expect) = build(&tenants, &req);
        let reply = rt.block_on(call.send(&app));
        sent.set(sent.get() + 1);
        *statuses.borrow_mut().entry(reply.status).or_default() += 1;
        match expect {
            Expect::Status(s) => prop_assert_eq!(reply.status, s, "{:?}: {}", req, reply.body),
            Expect::OneOf(list) => {
                prop_assert!(list.contains(&reply.status), "{:?}: {}", req, reply.body)
            }
        }
        let raw = String::from_utf8(reply.raw.clone()).expect("UTF-8 bodies");
        assert_no_leak("a response", &raw, &all_secrets, true);
        // Isolation: every string in the body that names an id, a name or an
        // organization names the caller's own.
        let mut found = Vec::new();
        strings(&reply.body, &mut found);
        for s in &found {
            if let Some(&o) = owner.get(s) {
                prop_assert_eq!(
                    o,
                    req.caller_org,
                    "{:?} showed {:?} of another organization",
                    req,
                    s
                );
            }
        }
        for (i, t) in tenants.iter().enumerate() {
            if i != req.caller_org {
                prop_assert!(!raw.contains(t.org.as_str()), "another org id in {}", raw);
            }
        }
        if reply.status == 200 && reply.body["data"].is_array() {
            let mine: HashSet<String> = tenants[req.caller_org]
                .keys
                .iter()
                .map(|k| k.id.to_string())
                .collect();
            for id in reply.ids() {
                prop_assert!(mine.contains(&id), "{:?} listed {}", req, id);
            }
        }
        Ok(())
    });
    let elapsed = started.elapsed();
    drop(_logging);
    eprintln!(
        "isolation: {} requests from {} callers in {} organizations ({} keys), {:.1} s, statuses {:?}, seed {}",
        sent.get(),
        tenants.len() * ROLES.len(),
        tenants.len(),
        key_count,
        elapsed.as_secs_f64(),
        statuses.borrow(),
        seed_n,
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        sent.get() >= cases,
        "only {} requests were sent",
        sent.get()
    );
    // Every log line of the run: JSON, and no secret, hash or cursor secret.
    let text = logs.text();
    assert!(
        text.lines().count() >= cases as usize,
        "one line per request at least"
    );
    for line in text.lines() {
        assert_no_leak("a log line", line, &all_secrets, false);
    }
}
