//! Tenant isolation as a property: random organizations with random keys, then random get
//! and list requests from every caller (foreign ids, positions at foreign keys, foreign,
//! forged and tampered cursors, lists by an owner id that every organization uses, reads of
//! an owner whose limits some organizations set under the same id, verifies of keys of such
//! owners, the caller's and other organizations'). No response may hold
//! another organization's data, and no response or log line may hold a secret, a hash or
//! internal error text.
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
use chrono::{DateTime, Utc};
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
    /// The credits this organization set for each of [`OWNERS`], if it set any.
    owners: Vec<Option<u64>>,
    /// The secrets of its keys that have an owner, with the owner (an index of [`OWNERS`]).
    owned: Vec<(Secret, usize)>,
    /// How many credits its verifies have spent from each of [`OWNERS`] so far.
    spent: Vec<std::cell::Cell<u64>>,
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
        /// The `owner_id` filter, one of [`OWNERS`]: every organization uses the same ids.
        owner: Option<usize>,
    },
    /// `GET /v1/owner/{id}` of one of [`OWNERS`].
    Owner(usize),
    /// A verify of a key with an owner, of this organization.
    Verify {
        org: usize,
        key: usize,
    },
}

/// The owner ids of the world's keys, the same in every organization: an owner id is scoped
/// to its organization, so a list by owner must still hold only the caller's keys.
const OWNERS: [&str; 3] = ["cus_0", "cus_1", "cus_2"];

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
        1 => (0..OWNERS.len()).prop_map(Op::Owner),
        1 => (0..orgs, any::<usize>()).prop_map(|(org, key)| Op::Verify { org, key }),
        2 => (
            proptest::option::of(1usize..=60),
            proptest::option::of(any::<bool>()),
            position(orgs),
            proptest::option::weighted(0.3, 0..OWNERS.len()),
        )
            .prop_map(|(limit, order, position, owner)| Op::List { limit, order, position, owner }),
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
            let owner = rng
                .random_bool(0.5)
                .then(|| rng.random_range(0..OWNERS.len()));
            if let Some(o) = owner {
                new.owner_id = Some(OWNERS[o].parse().expect("an owner id"));
            }
            let store = app.store.clone();
            created.spawn(async move {
                let (key, secret) = apikeys::write::create_key(&store, new)
                    .await
                    .expect("create a key");
                (key, owner.map(|o| (secret, o)))
            });
        }
        let (mut keys, owned): (Vec<ApiKey>, Vec<_>) = created.join_all().await.into_iter().unzip();
        let owned: Vec<(Secret, usize)> = owned.into_iter().flatten().collect();
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
        // Some of the owner ids get credits of their own, a number that is this
        // organization's: a read of the owner in another organization must not show it.
        let mut owners = Vec::new();
        for (o, id) in OWNERS.iter().enumerate() {
            let set = (t + o) % 2 == 0;
            // More than the run's verifies spend.
            let remaining = 1_000_000 * (t as u64 + 1) + o as u64;
            if set {
                let body = serde_json::json!({"credits": {"remaining": remaining}});
                let reply = Call::put_owner(Payload::Http, id, &body)
                    .bearer(&secrets[0])
                    .send(app)
                    .await;
                assert_eq!(reply.status, 201, "{}", reply.body);
            }
            owners.push(set.then_some(remaining));
        }
        tenants.push(Tenant {
            org,
            keys,
            secrets,
            cursors,
            owners,
            owned,
            spent: OWNERS.iter().map(|_| Default::default()).collect(),
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
    /// 200, with an owner's credits: this many remaining.
    Credits(u64),
    /// A verify's answer: its code, and its owner's credits left, if it has an owner with
    /// credits.
    Verified(&'static str, Option<u64>),
}

impl Expect {
    /// Whether `reply` is what was expected.
    fn met(&self, reply: &Reply) -> bool {
        match self {
            Expect::Status(s) => reply.status == *s,
            Expect::OneOf(list) => list.contains(&reply.status),
            Expect::Credits(remaining) => {
                reply.status == 200
                    && reply.body["credits"]["remaining"] == serde_json::json!(remaining)
            }
            Expect::Verified(code, remaining) => {
                reply.status == 200
                    && reply.body["code"] == *code
                    && reply.body["owner"]["credits"]["remaining"].as_u64() == *remaining
            }
        }
    }
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
        Op::Owner(o) => {
            let expect = match me.owners[*o] {
                Some(set) => Expect::Credits(set - me.spent[*o].get()),
                None => Expect::Status(404),
            };
            (Call::owner(payload, OWNERS[*o]), expect)
        }
        Op::Verify { org, key } => {
            let theirs = &tenants[*org];
            match theirs.owned.get(key % theirs.owned.len().max(1)) {
                // An organization without such keys: a secret of no key.
                None => (
                    Call::verify(payload, &serde_json::json!({"key": "apk_none"})),
                    Expect::Verified("NOT_FOUND", None),
                ),
                // Another organization's key is not found, and spends nothing of its owner.
                Some((secret, _)) if *org != req.caller_org => (
                    Call::verify(payload, &serde_json::json!({"key": secret.expose()})),
                    Expect::Verified("NOT_FOUND", None),
                ),
                Some((secret, o)) => {
                    let call = Call::verify(payload, &serde_json::json!({"key": secret.expose()}));
                    let remaining = me.owners[*o].map(|set| {
                        // A caller that may not verify spends nothing.
                        if ROLES[req.role] != Role::NoView {
                            me.spent[*o].set(me.spent[*o].get() + 1);
                        }
                        set - me.spent[*o].get()
                    });
                    (call, Expect::Verified("VALID", remaining))
                }
            }
        }
        Op::List {
            limit,
            order,
            position,
            owner,
        } => {
            let mut call = Call::list(payload);
            if let Some(l) = limit {
                call = call.query("limit", l);
            }
            if let Some(o) = owner {
                call = call.query("owner_id", OWNERS[*o]);
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
                        // The cursors were issued without filters: with one, they are refused.
                        let valid = *org == req.caller_org
                            && token == *cursor
                            && same_order
                            && owner.is_none();
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
        prop_assert!(
            expect.met(&reply),
            "{:?}: expected {:?}, got {} {}",
            req,
            expect,
            reply.status,
            reply.body
        );
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

// Writes: random creates, updates (rename, enable, disable, expiry), rolls, deletes and
// event reads over HTTP, by random callers of random organizations: unrestricted or
// restricted, permanent or expiring. No write may change another organization's keys or
// events, no answer may reveal them, and each answer is the one the authority rule gives
// (crate::authority): a restricted caller changes only keys it holds, and no caller grants
// a key more access, or a longer life, than its own.
//
// `APIKEYS_ISOLATION_WRITE_CASES` sets the number of requests (default 200; writes cost
// more than reads). The run prints one `isolation (writes):` line with its figures.

const DEFAULT_WRITE_CASES: u32 = 200;

/// An expiry a write may ask for, relative to the run's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Never,
    /// An hour: within every caller's life.
    Hour,
    /// A month: past the expiring callers' day.
    Month,
}

impl Life {
    fn at(self, t0: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Life::Never => None,
            Life::Hour => Some(t0 + chrono::Duration::hours(1)),
            Life::Month => Some(t0 + chrono::Duration::days(30)),
        }
    }

    fn json(self, t0: DateTime<Utc>) -> serde_json::Value {
        self.at(t0).map_or(serde_json::Value::Null, |t| {
            serde_json::json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        })
    }
}

fn life() -> impl Strategy<Value = Life> {
    prop_oneof![Just(Life::Never), Just(Life::Hour), Just(Life::Month)]
}

#[derive(Clone, Debug)]
enum WriteOp {
    Create {
        unrestricted: bool,
        billing: bool,
        life: Life,
    },
    Rename(Target),
    SetStatus(Target, bool),
    SetExpiry(Target, Life),
    /// Restricts the key to `calls.view` and `api_keys.view`: for a key without
    /// `api_keys.view`, a widening.
    Widen(Target),
    Roll(Target, u32),
    Delete(Target),
    Events {
        key: Option<Target>,
        limit: usize,
    },
}

#[derive(Clone, Debug)]
struct WriteReq {
    caller_org: usize,
    /// Which of the organization's callers (see [`CALLERS`]).
    who: usize,
    http_api: bool,
    op: WriteOp,
}

/// The callers every organization has: (restricted to [`LIMITED`], expires a day after the
/// run's start).
const CALLERS: [(bool, bool); 4] = [(false, false), (true, false), (true, true), (false, true)];

/// A key the writes may target, as the model knows it.
#[derive(Clone, Copy, Debug)]
struct Modelled {
    id: KeyId,
    /// Holds more than [`LIMITED`] (so a restricted caller does not hold it).
    more: bool,
    unrestricted: bool,
    /// Holds exactly `calls.view` and `api_keys.view` (a [`WriteOp::Widen`] made it so).
    widened: bool,
    expires: Option<DateTime<Utc>>,
}

/// An organization of the write run, and what its own writes did to it.
struct Writable {
    org: OrgId,
    /// One per [`CALLERS`] entry.
    callers: Vec<(ApiKey, Secret)>,
    /// The keys its writes may target (not its callers').
    keys: Vec<Modelled>,
    deleted: HashSet<KeyId>,
    disabled: HashSet<KeyId>,
    /// Keys its own writes changed or made.
    touched: HashSet<KeyId>,
    /// Its keys as listed before the run, without `last_used_date`.
    snapshot: BTreeMap<String, serde_json::Value>,
    /// Its writes that succeeded.
    writes: usize,
}

const LIMITED: &[Permission] = &[
    Permission::ApiKeysView,
    Permission::ApiKeysCreate,
    Permission::ApiKeysUpdate,
    Permission::ApiKeysDelete,
    Permission::CallsView,
];

fn write_request(orgs: usize) -> impl Strategy<Value = WriteReq> {
    let target = move || {
        prop_oneof![
            3 => any::<usize>().prop_map(Target::Own),
            3 => (0..orgs, any::<usize>()).prop_map(|(org, key)| Target::Foreign { org, key }),
            1 => any::<u128>().prop_map(Target::Unknown),
        ]
    };
    let op = prop_oneof![
        2 => (any::<bool>(), any::<bool>(), life())
            .prop_map(|(unrestricted, billing, life)| WriteOp::Create { unrestricted, billing, life }),
        2 => target().prop_map(WriteOp::Rename),
        2 => (target(), any::<bool>()).prop_map(|(t, on)| WriteOp::SetStatus(t, on)),
        2 => (target(), life()).prop_map(|(t, l)| WriteOp::SetExpiry(t, l)),
        1 => target().prop_map(WriteOp::Widen),
        2 => (target(), 0u32..=60).prop_map(|(t, g)| WriteOp::Roll(t, g)),
        1 => target().prop_map(WriteOp::Delete),
        1 => (proptest::option::of(target()), 1usize..=50)
            .prop_map(|(key, limit)| WriteOp::Events { key, limit }),
    ];
    (0..orgs, 0..CALLERS.len(), any::<bool>(), op).prop_map(|(caller_org, who, http_api, op)| {
        WriteReq {
            caller_org,
            who,
            http_api,
            op,
        }
    })
}

/// Random organizations (3 or 4) with 3 to 8 keys each, some restricted, some expiring,
/// and one caller of each kind in [`CALLERS`].
async fn writable_world(
    app: &App<DynamoStore>,
    rng: &mut TestRng,
    t0: DateTime<Utc>,
) -> Vec<Writable> {
    let n = rng.random_range(3..=4);
    let mut world = Vec::new();
    for _ in 0..n {
        let org = org();
        let mut keys = Vec::new();
        for i in 0..rng.random_range(3..=8usize) {
            let mut new = new_key(&org, &format!("{org} key {i}"));
            let unrestricted = rng.random_bool(0.5);
            if !unrestricted {
                new.access = restricted(&[Permission::CallsView]);
            }
            new.expires =
                [Life::Never, Life::Hour, Life::Month][rng.random_range(0..3usize)].at(t0);
            let made = create(app, new).await.0;
            keys.push(Modelled {
                id: made.id,
                more: unrestricted,
                unrestricted,
                widened: false,
                expires: made.expires,
            });
        }
        let mut callers = Vec::new();
        for (i, (limited, expiring)) in CALLERS.iter().enumerate() {
            let mut new = new_key(&org, &format!("{org} caller {i}"));
            if *limited {
                new.access = restricted(LIMITED);
            }
            if *expiring {
                new.expires = Some(t0 + chrono::Duration::days(1));
            }
            callers.push(create(app, new).await);
        }
        let listed = Call::list(Payload::Rest)
            .query("limit", 1000)
            .bearer(&callers[0].1)
            .send(app)
            .await;
        let snapshot = listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["id"].as_str().unwrap().to_owned(), unused(k)))
            .collect();
        world.push(Writable {
            org,
            callers,
            keys,
            deleted: HashSet::new(),
            disabled: HashSet::new(),
            touched: HashSet::new(),
            snapshot,
            writes: 0,
        });
    }
    world
}

/// A key view without `last_used_date`, which its caller's own requests change.
fn unused(key: &serde_json::Value) -> serde_json::Value {
    let mut key = key.clone();
    key.as_object_mut().unwrap().remove("last_used_date");
    key
}

/// Where a write's target lands.
enum Aim {
    Mine(usize),
    Theirs(KeyId),
    Unknown(uuid::Uuid),
}

fn aim(world: &[Writable], caller_org: usize, target: &Target) -> Aim {
    let pick = |org: usize, i: usize| i % world[org].keys.len();
    match *target {
        Target::Own(i) => Aim::Mine(pick(caller_org, i)),
        Target::Foreign { org, key } if org == caller_org => Aim::Mine(pick(org, key)),
        Target::Foreign { org, key } => Aim::Theirs(world[org].keys[pick(org, key)].id),
        Target::Unknown(n) => Aim::Unknown(uuid::Uuid::from_u128(n)),
    }
}

/// Whether expiry `a` is later than `b` (`None`: never, the latest).
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (None, b) => b.is_some(),
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

/// The status the authority rule gives `req` on a live key of the caller's organization.
fn ruled(me: &Writable, req: &WriteReq, key: &Modelled, t0: DateTime<Utc>) -> u16 {
    let (limited, expiring) = CALLERS[req.who];
    let caller_end = expiring.then(|| t0 + chrono::Duration::days(1));
    let holds = !limited || !key.more;
    let outlives = |e: Option<DateTime<Utc>>| later(e, caller_end);
    let allowed = holds
        && match req.op {
            WriteOp::SetStatus(_, true) => !me.disabled.contains(&key.id) || !outlives(key.expires),
            WriteOp::SetExpiry(_, l) => !later(l.at(t0), key.expires) || !outlives(l.at(t0)),
            WriteOp::Widen(_) => !widens(key) || !outlives(key.expires),
            WriteOp::Roll(..) => !outlives(key.expires),
            _ => true,
        };
    match (allowed, &req.op) {
        (false, _) => 403,
        (true, WriteOp::Delete(_)) => 204,
        (true, _) => 200,
    }
}

/// Whether a [`WriteOp::Widen`] of `key` gives it a permission it lacks.
fn widens(key: &Modelled) -> bool {
    !key.unrestricted && !key.widened
}

/// The call for `req`, what it must get, and the key it writes when it succeeds.
fn build_write(
    world: &[Writable],
    req: &WriteReq,
    n: usize,
    t0: DateTime<Utc>,
) -> (Call, Expect, Option<KeyId>) {
    let me = &world[req.caller_org];
    let payload = if req.http_api {
        Payload::Http
    } else {
        Payload::Rest
    };
    let id_of = |a: &Aim| match a {
        Aim::Mine(i) => me.keys[*i].id.to_string(),
        Aim::Theirs(id) => id.to_string(),
        Aim::Unknown(u) => u.to_string(),
    };
    // A write's status: the rule's on the caller's live key, else 404 (or 422 for an id that
    // is not a UUIDv7).
    let outcome = |a: &Aim| match a {
        Aim::Mine(i) if me.deleted.contains(&me.keys[*i].id) => (Expect::Status(404), None),
        Aim::Mine(i) => {
            let key = &me.keys[*i];
            let status = ruled(me, req, key, t0);
            (Expect::Status(status), (status < 300).then_some(key.id))
        }
        Aim::Theirs(_) => (Expect::Status(404), None),
        Aim::Unknown(_) => (Expect::OneOf(&[404, 422]), None),
    };
    let (call, (expect, writes)) = match &req.op {
        WriteOp::Create {
            unrestricted,
            billing,
            life,
        } => {
            let name = format!("{} made {n}", me.org);
            let expires = life.json(t0);
            let body = if *unrestricted {
                serde_json::json!({"name": name, "restricted": false, "expires_date": expires})
            } else if *billing {
                serde_json::json!({"name": name, "permissions": ["calls.view", "billing.update"],
                                   "expires_date": expires})
            } else {
                serde_json::json!({"name": name, "permissions": ["calls.view"],
                                   "expires_date": expires})
            };
            let (limited, expiring) = CALLERS[req.who];
            let caller_end = expiring.then(|| t0 + chrono::Duration::days(1));
            let refused =
                (limited && (*unrestricted || *billing)) || later(life.at(t0), caller_end);
            let status = if refused { 403 } else { 201 };
            (Call::create(payload, body), (Expect::Status(status), None))
        }
        WriteOp::Rename(t) => {
            let a = aim(world, req.caller_org, t);
            let body = serde_json::json!({"name": format!("{} renamed {n}", me.org)});
            (Call::update(payload, id_of(&a), body), outcome(&a))
        }
        WriteOp::SetStatus(t, on) => {
            let a = aim(world, req.caller_org, t);
            let status = if *on { "active" } else { "disabled" };
            let body = serde_json::json!({ "status": status });
            (Call::update(payload, id_of(&a), body), outcome(&a))
        }
        WriteOp::SetExpiry(t, l) => {
            let a = aim(world, req.caller_org, t);
            let body = serde_json::json!({ "expires_date": l.json(t0) });
            (Call::update(payload, id_of(&a), body), outcome(&a))
        }
        WriteOp::Widen(t) => {
            let a = aim(world, req.caller_org, t);
            let body = serde_json::json!({"restricted": true,
                                          "permissions": ["calls.view", "api_keys.view"]});
            (Call::update(payload, id_of(&a), body), outcome(&a))
        }
        WriteOp::Roll(t, grace) => {
            let a = aim(world, req.caller_org, t);
            let body = serde_json::json!({ "grace_period_seconds": grace });
            (Call::roll(payload, id_of(&a), Some(body)), outcome(&a))
        }
        WriteOp::Delete(t) => {
            let a = aim(world, req.caller_org, t);
            (Call::delete(payload, id_of(&a)), outcome(&a))
        }
        WriteOp::Events { key, limit } => {
            let call = match key.as_ref().map(|t| aim(world, req.caller_org, t)) {
                None => (Call::events(payload), (Expect::Status(200), None)),
                Some(Aim::Unknown(u)) => (
                    Call::key_events(payload, u),
                    (Expect::OneOf(&[200, 422]), None),
                ),
                Some(a) => (
                    Call::key_events(payload, id_of(&a)),
                    (Expect::Status(200), None),
                ),
            };
            (call.0.query("limit", limit), call.1)
        }
    };
    let secret = &me.callers[req.who].1;
    (call.bearer(secret), expect, writes)
}

/// Whether `req`, if it succeeds, grants its key life: a create, a roll, enabling a
/// disabled key, or moving an expiry later.
fn grants_life(world: &[Writable], req: &WriteReq, t0: DateTime<Utc>) -> bool {
    let me = &world[req.caller_org];
    let key = |t: &Target| match aim(world, req.caller_org, t) {
        Aim::Mine(i) => Some(me.keys[i]),
        _ => None,
    };
    match &req.op {
        WriteOp::Create { .. } | WriteOp::Roll(..) => true,
        WriteOp::SetStatus(t, true) => key(t).is_some_and(|k| me.disabled.contains(&k.id)),
        WriteOp::SetExpiry(t, l) => key(t).is_some_and(|k| later(l.at(t0), k.expires)),
        WriteOp::Widen(t) => key(t).is_some_and(|k| widens(&k)),
        _ => false,
    }
}

/// The property, on the key a write by `req`'s caller left: it holds nothing the caller
/// lacks, and a write that granted it life ([`grants_life`]) left it expiring no later
/// than the caller.
fn within_its_caller(
    req: &WriteReq,
    key: &serde_json::Value,
    t0: DateTime<Utc>,
    granted: bool,
) -> Result<(), String> {
    let (limited, expiring) = CALLERS[req.who];
    if limited {
        let list = key["permissions"]
            .as_array()
            .ok_or("a restricted caller left an unrestricted key")?;
        for p in list {
            if !LIMITED.iter().any(|l| l.as_str() == p) {
                return Err(format!("a restricted caller left a key holding {p}"));
            }
        }
    }
    if expiring && granted {
        let end = t0 + chrono::Duration::days(1);
        let expires = key["expires_date"]
            .as_str()
            .map(|t| t.parse::<DateTime<Utc>>().unwrap());
        if later(expires, Some(end)) {
            return Err(format!(
                "a caller expiring at {end} left a key expiring at {expires:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn no_write_ever_changes_or_reveals_another_organizations_keys_or_events() {
    let cases = std::env::var("APIKEYS_ISOLATION_WRITE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_WRITE_CASES);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let logs = LogCapture::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber("info"));
    let seed_n: u64 = std::env::var("APIKEYS_ISOLATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| uuid::Uuid::now_v7().as_u128() as u64);
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&seed_n.to_le_bytes());
    let mut world_rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    rt.block_on(wait_for_dynamodb());
    let app = rt.block_on(app());
    // Times to the millisecond, as the store keeps them.
    let t0 = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let world = std::cell::RefCell::new(rt.block_on(writable_world(&app, &mut world_rng, t0)));
    let orgs = world.borrow().len();
    let secrets = std::cell::RefCell::new(
        world
            .borrow()
            .iter()
            .flat_map(|t| t.callers.iter().map(|c| c.1.clone()))
            .collect::<Vec<Secret>>(),
    );
    // What belongs to whom: ids, names, organization ids; created keys join as they come.
    let owner = std::cell::RefCell::new(
        world
            .borrow()
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.snapshot
                    .values()
                    .flat_map(move |k| {
                        [
                            (k["id"].as_str().unwrap().to_owned(), i),
                            (k["name"].as_str().unwrap().to_owned(), i),
                        ]
                    })
                    .chain(std::iter::once((t.org.to_string(), i)))
            })
            .collect::<BTreeMap<String, usize>>(),
    );

    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 16,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, world_rng);
    let statuses = std::cell::RefCell::new(BTreeMap::<u16, u32>::new());
    let sent = std::cell::Cell::new(0usize);
    let started = Instant::now();
    let result = runner.run(&write_request(orgs), |req| {
        let (call, expect, writes) = build_write(&world.borrow(), &req, sent.get(), t0);
        // Outcomes, not speed: a loaded machine may take longer than a function's timeout.
        let reply = rt.block_on(call.send_with_time_left(&app, std::time::Duration::from_secs(60)));
        sent.set(sent.get() + 1);
        *statuses.borrow_mut().entry(reply.status).or_default() += 1;
        prop_assert!(
            expect.met(&reply),
            "{:?}: expected {:?}, got {} {}",
            req,
            expect,
            reply.status,
            reply.body
        );
        // The secret a create or roll hands out is the only one a body may hold.
        let mut body = reply.body.clone();
        if let Some(s) = body.as_object_mut().and_then(|b| b.remove("secret")) {
            let hands_out = matches!(req.op, WriteOp::Create { .. } | WriteOp::Roll(..));
            prop_assert!(hands_out, "a secret in the answer of {:?}", req);
            let s = Secret::parse(s.as_str().unwrap()).expect("a well-formed secret");
            secrets.borrow_mut().push(s);
        }
        let events = matches!(req.op, WriteOp::Events { .. });
        // An event shows the client's address: not internal text there.
        assert_no_leak("a response", &body.to_string(), &secrets.borrow(), !events);
        let granted = grants_life(&world.borrow(), &req, t0);
        let mut w = world.borrow_mut();
        let mine = req.caller_org;
        if let WriteOp::Create {
            unrestricted,
            billing,
            life,
        } = req.op
            && reply.status == 201
        {
            let id: KeyId = reply.body["id"].as_str().unwrap().parse().unwrap();
            let mut o = owner.borrow_mut();
            o.insert(id.to_string(), mine);
            o.insert(reply.body["name"].as_str().unwrap().to_owned(), mine);
            w[mine].keys.push(Modelled {
                id,
                more: unrestricted || billing,
                unrestricted,
                widened: false,
                expires: life.at(t0),
            });
            w[mine].touched.insert(id);
            w[mine].writes += 1;
            if let Err(e) = within_its_caller(&req, &reply.body, t0, granted) {
                return Err(TestCaseError::fail(format!("{req:?}: {e}")));
            }
        }
        if let (Some(id), true) = (writes, reply.status < 300) {
            if matches!(req.op, WriteOp::Rename(_)) {
                owner
                    .borrow_mut()
                    .insert(reply.body["name"].as_str().unwrap().to_owned(), mine);
            }
            if matches!(req.op, WriteOp::Delete(_)) {
                w[mine].deleted.insert(id);
            }
            w[mine].touched.insert(id);
            let changed = match req.op {
                // A status set to what it was is no change, and records nothing.
                WriteOp::SetStatus(_, on) => {
                    prop_assert_eq!(
                        &reply.body["status"],
                        if on { "active" } else { "disabled" }
                    );
                    if on {
                        w[mine].disabled.remove(&id)
                    } else {
                        w[mine].disabled.insert(id)
                    }
                }
                WriteOp::SetExpiry(_, l) => {
                    let key = w[mine].keys.iter_mut().find(|k| k.id == id).unwrap();
                    let changed = key.expires != l.at(t0);
                    key.expires = l.at(t0);
                    changed
                }
                WriteOp::Widen(_) => {
                    let key = w[mine].keys.iter_mut().find(|k| k.id == id).unwrap();
                    let changed = !key.widened;
                    (key.more, key.unrestricted, key.widened) = (false, false, true);
                    changed
                }
                _ => true,
            };
            if changed {
                w[mine].writes += 1;
            }
            // The property: what the write left is within its caller.
            if !matches!(req.op, WriteOp::Delete(_)) {
                let admin = &w[mine].callers[0].1;
                let got = rt.block_on(Call::get(Payload::Rest, id).bearer(admin).send(&app));
                prop_assert_eq!(got.status, 200, "{}", got.body);
                if let Err(e) = within_its_caller(&req, &got.body, t0, granted) {
                    return Err(TestCaseError::fail(format!("{req:?}: {e}")));
                }
            }
        }
        // Nothing of another organization in the answer.
        let mut found = Vec::new();
        strings(&reply.body, &mut found);
        for s in &found {
            if let Some(&o) = owner.borrow().get(s) {
                prop_assert_eq!(o, mine, "{:?} showed {:?} of another organization", req, s);
            }
        }
        let raw = String::from_utf8_lossy(&reply.raw);
        for (i, t) in w.iter().enumerate() {
            if i != mine {
                prop_assert!(!raw.contains(t.org.as_str()), "another org id in {}", raw);
            }
        }
        if events && reply.status == 200 {
            for e in reply.body["data"].as_array().unwrap() {
                let key = e["key_id"].as_str().unwrap();
                prop_assert_eq!(owner_of(&owner.borrow(), key), Some(mine), "{}", e);
            }
        }
        Ok(())
    });
    let elapsed = started.elapsed();
    drop(_logging);
    eprintln!(
        "isolation (writes): {} requests in {} organizations, {:.1} s, statuses {:?}, seed {}",
        sent.get(),
        orgs,
        elapsed.as_secs_f64(),
        statuses.borrow(),
        seed_n,
    );
    if let Err(e) = result {
        panic!("{e}");
    }

    // Each organization's keys and events are its own writes' doing, and nobody else's.
    let world = world.into_inner();
    for (i, t) in world.iter().enumerate() {
        let admin = &t.callers[0].1;
        let listed = rt.block_on(
            Call::list(Payload::Http)
                .query("limit", 1000)
                .bearer(admin)
                .send(&app),
        );
        let mut seen = HashSet::new();
        for k in listed.body["data"].as_array().unwrap() {
            let id = k["id"].as_str().unwrap().to_owned();
            assert_eq!(owner_of(&owner.borrow(), &id), Some(i), "{k}");
            let key: KeyId = id.parse().unwrap();
            if !t.touched.contains(&key) {
                assert_eq!(
                    Some(&unused(k)),
                    t.snapshot.get(&id),
                    "changed from outside"
                );
            }
            seen.insert(key);
        }
        for k in &t.keys {
            assert_eq!(seen.contains(&k.id), !t.deleted.contains(&k.id), "{}", k.id);
        }
        let events = rt.block_on(crate::http_writes::all_events(
            &app,
            Payload::Rest,
            admin,
            None,
        ));
        let callers: Vec<String> = t.callers.iter().map(|c| c.0.id.to_string()).collect();
        for e in &events {
            let key = e["key_id"].as_str().unwrap();
            assert_eq!(owner_of(&owner.borrow(), key), Some(i), "{e}");
            let actor = &e["actor"];
            assert!(
                actor["type"] == "cli" || callers.iter().any(|c| actor["id"] == c.as_str()),
                "{e}"
            );
        }
        let by_callers = crate::http_writes::by_api(&events).len();
        assert_eq!(by_callers, t.writes, "{}: one event per write", t.org);
    }
    let text = logs.text();
    for line in text.lines() {
        assert_no_leak("a log line", line, &secrets.borrow(), false);
    }
}

fn owner_of(owner: &BTreeMap<String, usize>, s: &str) -> Option<usize> {
    owner.get(s).copied()
}
