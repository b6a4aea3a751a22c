//! What the fuzz targets share: one in-memory world (the demo organization and a second
//! organization, each with keys and known secrets), valid cursors to mutate, and the checks
//! every response must pass whatever the input was.

pub mod metered;

use std::sync::OnceLock;

use apikeys::App;
use apikeys::key::{Access, ApiKey, KeyId, OrgId};
use apikeys::page::{CursorKeys, ListRequest, Order, RawListParams};
use apikeys::secret::Secret;
use apikeys::store::memory::MemoryStore;
use apikeys::write::{NewKey, create_key_with_secret};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

pub const CURSOR_SECRET: &str = "fuzzing-cursor-secret-0123456789abcdef";
pub const OTHER_ORG: &str = "other-org";
/// The owner id of the other organization's keys, which a query may name for the demo's.
pub const SHARED_OWNER: &str = "cus_shared";

/// The state every run of a target shares. Read-only once built.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub app: App<MemoryStore>,
    pub demo: OrgId,
    pub other: OrgId,
    pub demo_keys: Vec<ApiKey>,
    pub other_keys: Vec<ApiKey>,
    /// Every secret in the store: the demo keys' (admin first), then the other organization's,
    /// then the metered keys'.
    pub secrets: Vec<Secret>,
    /// Demo keys with credits or rate limits (also in `demo_keys`).
    pub metered: Vec<ApiKey>,
    pub other_secret: Secret,
    /// The secret of the other organization's key with metadata and an IP allow-list
    /// ([`FENCED_CIDRS`]; also in `other_keys`). Not in `secrets`: a caller of the read
    /// targets would be refused for its address, which their oracles do not model.
    pub fenced_secret: Secret,
    /// Cursors issued to the demo organization, for each order and direction.
    pub demo_cursors: Vec<String>,
    /// Cursors issued to the other organization.
    pub other_cursors: Vec<String>,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build)
}

fn build() -> World {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let app = App {
        store: MemoryStore::default(),
        callers: apikeys::cache::CallerCache::off(),
        cursors: CursorKeys::parse(CURSOR_SECRET).expect("a strong cursor secret"),
        usage: apikeys::usage::Recorder::default(),
    };
    let demo: OrgId = apikeys_demo::ORG.parse().expect("the demo org id");
    let other: OrgId = OTHER_ORG.parse().expect("an org id");
    let (demo_keys, other_keys, other_secret, metered) = rt.block_on(async {
        let demo_keys = apikeys_demo::seed(&app.store).await.expect("seed the demo");
        let other_secret = Secret::from_random(*b"fuzzing-other-org-admin!");
        let mut other_keys = Vec::new();
        for i in 0..4 {
            let new = NewKey {
                org: other.clone(),
                name: format!("other-secret-name-{i}"),
                creator_id: KeyId::generate().as_uuid(),
                access: Access::Unrestricted,
                expires: None,
                id: Some(KeyId::generate()),
                quota: Default::default(),
                // An owner id the queries also name for the demo organization: owners are
                // scoped to their organization, so its keys must never show there.
                owner_id: Some(SHARED_OWNER.parse().expect("an owner id")),
                meta: None,
                allowed_cidrs: None,
            };
            let secret = if i == 0 {
                other_secret.clone()
            } else {
                Secret::from_random([i as u8; 24])
            };
            other_keys.push(
                create_key_with_secret(&app.store, new, &secret)
                    .await
                    .expect("create a key"),
            );
        }
        other_keys.push(fenced_key(&app.store, &other).await);
        let mut demo_keys = demo_keys;
        let metered = metered_keys(&app.store, &demo).await;
        demo_keys.extend(metered.iter().cloned());
        (demo_keys, other_keys, other_secret, metered)
    });
    let mut secrets: Vec<Secret> = [
        apikeys_demo::ADMIN_ID,
        apikeys_demo::VIEWER_ID,
        apikeys_demo::CALLS_ID,
        apikeys_demo::DISABLED_ID,
        apikeys_demo::EXPIRED_ID,
    ]
    .iter()
    .filter_map(|id| apikeys_demo::secret_of(id))
    .collect();
    secrets.push(other_secret.clone());
    for i in 1..4u8 {
        secrets.push(Secret::from_random([i; 24]));
    }
    secrets.extend((0..QUOTAS.len()).map(metered_secret));
    let cursors_of = |org: &OrgId, keys: &[ApiKey]| {
        let mut out = Vec::new();
        for order in [Order::Asc, Order::Desc] {
            for (after, before) in [
                (None, None),
                (Some(keys[2].id), None),
                (None, Some(keys[2].id)),
            ] {
                let (a, b) = (
                    after.map(|k: KeyId| k.to_string()),
                    before.map(|k: KeyId| k.to_string()),
                );
                let raw = RawListParams {
                    limit: Some("1"),
                    order: Some(if order == Order::Asc { "asc" } else { "desc" }),
                    after: a.as_deref(),
                    before: b.as_deref(),
                    ..Default::default()
                };
                let request = ListRequest::parse(raw, org, &app.cursors).expect("valid params");
                let page = rt
                    .block_on(apikeys::page::list_keys(
                        &app.store,
                        org,
                        &request,
                        &app.cursors,
                    ))
                    .expect("the memory store does not fail");
                out.extend(page.next_cursor);
            }
        }
        assert!(!out.is_empty(), "the world issues cursors");
        out
    };
    let demo_cursors = cursors_of(&demo, &demo_keys);
    let other_cursors = cursors_of(&other, &other_keys);
    World {
        rt,
        app,
        demo,
        other,
        demo_keys,
        other_keys,
        secrets,
        metered,
        other_secret,
        fenced_secret: fenced_secret(),
        demo_cursors,
        other_cursors,
    }
}

/// The networks the fenced key may be used from.
pub const FENCED_CIDRS: &[&str] = &["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"];

fn fenced_secret() -> Secret {
    Secret::from_random(*b"fuzzing-a-fenced-key-ok!")
}

/// The other organization's key with metadata (a member named like a secret) and an IP
/// allow-list.
async fn fenced_key(store: &MemoryStore, org: &OrgId) -> ApiKey {
    let meta = serde_json::json!({"tenant": "fuzz", "apk_like": "apk_not_a_secret"});
    let new = NewKey {
        org: org.clone(),
        name: "fenced".into(),
        creator_id: KeyId::generate().as_uuid(),
        access: Access::Unrestricted,
        expires: None,
        id: Some(KeyId::generate()),
        quota: Default::default(),
        owner_id: None,
        meta: apikeys::meta::Meta::new(&meta).expect("a meta"),
        allowed_cidrs: Some(apikeys::allow::AllowList::parse(FENCED_CIDRS).expect("a list")),
    };
    create_key_with_secret(store, new, &fenced_secret())
        .await
        .expect("create the fenced key")
}

/// The metered keys' quotas, as JSON: credits that run out, credits that refill, an exact
/// limit of 2 a second, and a leased limit beside an exact one.
const QUOTAS: &[&str] = &[
    r#"{"credits": {"remaining": 3, "refill": null}}"#,
    r#"{"credits": {"remaining": 9007199254740991,
                    "refill": {"interval": "daily", "amount": 1000}}}"#,
    r#"{"credits": {"remaining": 1000000, "refill": null},
        "ratelimits": [{"name": "fast", "limit": 2, "duration_ms": 1000}]}"#,
    r#"{"ratelimits": [{"name": "lease", "limit": 20, "duration_ms": 1000, "mode": "leased"},
                       {"name": "slow", "limit": 100000, "duration_ms": 86400000}]}"#,
];

fn metered_secret(i: usize) -> Secret {
    Secret::from_random([0xA0 + i as u8; 24])
}

/// Creates the metered keys in `org`.
async fn metered_keys(store: &MemoryStore, org: &OrgId) -> Vec<ApiKey> {
    let mut keys = Vec::new();
    for (i, quota) in QUOTAS.iter().enumerate() {
        let new = NewKey {
            org: org.clone(),
            name: format!("metered-{i}"),
            creator_id: KeyId::generate().as_uuid(),
            access: Access::Unrestricted,
            expires: None,
            id: Some(KeyId::generate()),
            quota: serde_json::from_str(quota).expect("a quota"),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let key = create_key_with_secret(store, new, &metered_secret(i))
            .await
            .expect("create a metered key");
        keys.push(key);
    }
    keys
}

/// The response of one handler, with its body as bytes.
pub struct Reply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Vec<u8>,
}

/// Runs a request through one of the two handlers.
pub fn send(req: Request, get: bool) -> Reply {
    let w = world();
    let response: Response<Body> = w.rt.block_on(async {
        if get {
            apikeys::http::get_key(&w.app, req).await
        } else {
            apikeys::http::list_keys(&w.app, req).await
        }
    });
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.to_vec(),
    }
}

/// Which organization's data a response may show: the caller's, if known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    Demo,
    Other,
    /// Unknown (a raw event): the body may show one organization's data, never both.
    Either,
}

/// The checks every response passes, whatever the request: a status the API documents,
/// the security headers, a complete JSON body (none for HEAD), no secret or hash, and no
/// data of an organization other than the caller's.
pub fn check(reply: &Reply, head: bool, viewer: Viewer) {
    let w = world();
    assert!(
        matches!(reply.status, 200 | 401 | 403 | 404 | 405 | 406 | 422),
        "unexpected status {} (the memory store never fails)",
        reply.status
    );
    let header = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("x-content-type-options"), Some("nosniff"));
    let cache = header("cache-control").expect("a Cache-Control header");
    let content_type = header("content-type").expect("a Content-Type header");
    if reply.status == 200 {
        assert_eq!(content_type, "application/json");
        assert!(
            cache == "no-store" || cache.starts_with("private"),
            "a 200 must not be cached by shared caches: {cache}"
        );
    } else {
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(cache, "no-store", "errors are never cached");
    }
    if head {
        assert!(reply.body.is_empty(), "HEAD has no body");
        return;
    }
    let body: Value = serde_json::from_slice(&reply.body).expect("a complete JSON body");
    let text = String::from_utf8(reply.body.clone()).expect("UTF-8");
    for s in &w.secrets {
        assert!(!text.contains(s.expose()), "a secret in a body");
        assert!(
            !text.contains(s.hash().as_str()),
            "a secret's hash in a body"
        );
    }
    if reply.status != 200 {
        assert_eq!(body["status"], reply.status);
        return;
    }
    let shows = |keys: &[ApiKey]| {
        keys.iter()
            .any(|k| text.contains(&k.id.to_string()) || text.contains(&k.name))
    };
    let (demo, other) = (shows(&w.demo_keys), shows(&w.other_keys));
    match viewer {
        Viewer::Demo => assert!(!other, "the demo caller saw another organization's key"),
        Viewer::Other => assert!(!demo, "the other caller saw a demo key"),
        Viewer::Either => assert!(!(demo && other), "one response showed two organizations"),
    }
}

/// The members of the event's `headers` and `multiValueHeaders` objects as they come, a
/// repeated name included: `Value` keeps only the last of a repeated name, where
/// `lambda_http` keeps them all (a second `Host` is a host it builds the URI from too).
fn header_maps(event: &str) -> Vec<Vec<(String, Value)>> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Members;
    impl<'de> DeserializeSeed<'de> for Members {
        type Value = Vec<(String, Value)>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(member) = map.next_entry::<String, Value>()? {
                out.push(member);
            }
            Ok(out)
        }
    }
    struct Top;
    impl<'de> Visitor<'de> for Top {
        type Value = Vec<Vec<(String, Value)>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an event object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                if key == "headers" || key == "multiValueHeaders" {
                    out.push(map.next_value_seed(Members)?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    serde_json::Deserializer::from_str(event)
        .deserialize_map(Top)
        .unwrap_or_default()
}

/// Whether `lambda_http` can turn this event into a request without panicking.
///
/// `lambda_http` 1.3 builds the request URI with `Url::parse(..).unwrap()` from the
/// `Host` header (or `requestContext.domainName`), the `X-Forwarded-Proto` header and the
/// path, so a host such as `a:b` panics inside the runtime library, before any code of
/// this service runs. API Gateway sets those fields itself; the Lambda runtime's panic
/// layer would turn such a panic into an invocation error. The targets skip those events
/// (see "Findings" in SECURITY.md); everything else reaches the handlers.
pub fn lambda_http_accepts(event: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(event) else {
        return true; // refused by from_str with an error, not a panic
    };
    let maps = header_maps(event);
    let header = |name: &str| -> Vec<String> {
        let mut out = Vec::new();
        for (k, val) in maps.iter().flatten() {
            if k.eq_ignore_ascii_case(name) {
                match val {
                    Value::String(s) => out.push(s.clone()),
                    Value::Array(a) => {
                        out.extend(a.iter().filter_map(|x| x.as_str().map(str::to_owned)))
                    }
                    _ => {}
                }
            }
        }
        out
    };
    let ctx = v.get("requestContext");
    let mut hosts: Vec<String> = header("host");
    if let Some(d) = ctx
        .and_then(|c| c.get("domainName"))
        .and_then(Value::as_str)
    {
        hosts.push(d.to_owned());
    }
    let mut schemes = header("x-forwarded-proto");
    schemes.push("https".into());
    let stage = ctx
        .and_then(|c| c.get("stage"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut paths = Vec::new();
    for key in ["rawPath", "path"] {
        if let Some(p) = v.get(key).and_then(Value::as_str) {
            paths.push(p.to_owned());
            paths.push(format!("/{stage}{p}"));
        }
    }
    paths.push(String::new());
    // HTTP API events carry the query string raw; lambda_http appends it to the URI as is
    // (API Gateway sends it percent-encoded, so a raw space never reaches it in AWS).
    let query = v
        .get("rawQueryString")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !query.is_empty() {
        for host in &hosts {
            for scheme in &schemes {
                for path in &paths {
                    let raw = format!("{scheme}://{host}{path}?{query}");
                    if raw.parse::<lambda_http::http::Uri>().is_err() {
                        return false;
                    }
                }
            }
        }
    }
    for path in &paths {
        if url::Url::parse(&format!("http://localhost{path}")).is_err() {
            return false;
        }
        for host in &hosts {
            for scheme in &schemes {
                match url::Url::parse(&format!("{scheme}://{host}{path}")) {
                    Ok(u) if u.as_str().parse::<lambda_http::http::Uri>().is_ok() => {}
                    _ => return false,
                }
            }
        }
    }
    true
}

/// The name of a body member: one the parser knows (from its own list of fields), or any.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub enum Member {
    Known(u8),
    Other(String),
}

impl Member {
    /// The name, a known one drawn from `fields`.
    pub fn name(&self, fields: &[&str]) -> String {
        match self {
            Member::Known(i) if !fields.is_empty() => fields[*i as usize % fields.len()].to_owned(),
            Member::Known(_) => String::new(),
            Member::Other(s) => s.clone(),
        }
    }
}

/// A JSON value built from fuzzed parts, for the body parsers.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Strings(Vec<String>),
    Object(Vec<(String, String)>),
}

impl Json {
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Strings(list) => list.iter().cloned().map(Value::String).collect(),
            Json::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        }
    }
}

/// A token to present: one of the world's secrets, one of them changed, or anything.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub enum Token {
    Secret(u8),
    /// A secret with one character replaced and the length changed.
    Mutated {
        which: u8,
        at: u8,
        with: char,
        cut: bool,
    },
    Raw(String),
}

impl Token {
    pub fn text(&self) -> String {
        let w = world();
        match self {
            Token::Secret(i) => w.secrets[*i as usize % w.secrets.len()].expose().to_owned(),
            Token::Mutated {
                which,
                at,
                with,
                cut,
            } => {
                let mut chars: Vec<char> = w.secrets[*which as usize % w.secrets.len()]
                    .expose()
                    .chars()
                    .collect();
                let i = *at as usize % chars.len();
                chars[i] = *with;
                if *cut {
                    chars.pop();
                }
                chars.into_iter().collect()
            }
            Token::Raw(s) => s.clone(),
        }
    }
}

/// Whether `text` shows any of the world's secrets or their hashes.
pub fn shows_a_secret(text: &str) -> bool {
    let w = world();
    w.secrets
        .iter()
        .chain(std::iter::once(&w.fenced_secret))
        .any(|s| text.contains(s.expose()) || text.contains(s.hash().as_str()))
}

/// Headers of a JSON request body.
pub fn json_headers() -> lambda_http::http::HeaderMap {
    let mut h = lambda_http::http::HeaderMap::new();
    h.insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    h
}

/// A count for a quota member: one at or beside a bound the members have, a small one, any
/// integer, or not an integer at all.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub enum Count {
    Edge(u8),
    Small(u8),
    Any(i64),
    Other(Json),
}

/// The bounds of the quota members (`cost`, `remaining`, `amount`, `day`, `limit`,
/// `duration_ms`), and one either side.
pub const EDGES: &[i64] = &[
    -1,
    0,
    1,
    2,
    30,
    31,
    32,
    999,
    1000,
    10_000,
    10_001,
    86_400_000,
    86_400_001,
    1_000_000_000,
    1_000_000_001,
    9_007_199_254_740_991,
    9_007_199_254_740_992,
];

impl Count {
    pub fn to_value(&self) -> Value {
        match self {
            Count::Edge(i) => Value::from(EDGES[*i as usize % EDGES.len()]),
            Count::Small(n) => Value::from(*n),
            Count::Any(n) => Value::from(*n),
            Count::Other(j) => j.to_value(),
        }
    }
}

/// A `credits.refill` member: an interval (daily, monthly or any text), an amount, a day.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub struct Refill {
    pub interval: Result<u8, String>,
    pub amount: Option<Count>,
    pub day: Option<Count>,
}

/// A `credits` member: `null`, or an object of a remaining count, a refill (absent, null
/// or one), a `low_at` (absent, null or a count), and perhaps a member no one knows.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub struct Credits {
    pub remaining: Option<Count>,
    pub refill: Option<Option<Refill>>,
    pub low_at: Option<Option<Count>>,
    pub extra: Option<(String, Json)>,
}

/// One entry of `ratelimits`.
#[derive(arbitrary::Arbitrary, Debug, Clone)]
pub struct Limit {
    /// One of a few names (so that lists repeat them), or any text.
    pub name: Result<u8, String>,
    pub limit: Option<Count>,
    pub duration_ms: Option<Count>,
    /// exact, leased, or any text.
    pub mode: Option<Result<bool, String>>,
}

const LIMIT_NAMES: &[&str] = &["per_second", "per-minute", "day.1", "x", ""];

impl Credits {
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(r) = &self.remaining {
            m.insert("remaining".into(), r.to_value());
        }
        match &self.refill {
            None => {}
            Some(None) => {
                m.insert("refill".into(), Value::Null);
            }
            Some(Some(r)) => {
                m.insert("refill".into(), r.to_value());
            }
        }
        match &self.low_at {
            None => {}
            Some(None) => {
                m.insert("low_at".into(), Value::Null);
            }
            Some(Some(l)) => {
                m.insert("low_at".into(), l.to_value());
            }
        }
        if let Some((k, v)) = &self.extra {
            m.insert(k.clone(), v.to_value());
        }
        Value::Object(m)
    }
}

impl Refill {
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        let interval = match &self.interval {
            Ok(i) => ["daily", "monthly"][*i as usize % 2].to_owned(),
            Err(s) => s.clone(),
        };
        m.insert("interval".into(), Value::String(interval));
        if let Some(a) = &self.amount {
            m.insert("amount".into(), a.to_value());
        }
        if let Some(d) = &self.day {
            m.insert("day".into(), d.to_value());
        }
        Value::Object(m)
    }
}

impl Limit {
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        let name = match &self.name {
            Ok(i) => LIMIT_NAMES[*i as usize % LIMIT_NAMES.len()].to_owned(),
            Err(s) => s.clone(),
        };
        m.insert("name".into(), Value::String(name));
        if let Some(l) = &self.limit {
            m.insert("limit".into(), l.to_value());
        }
        if let Some(d) = &self.duration_ms {
            m.insert("duration_ms".into(), d.to_value());
        }
        match &self.mode {
            None => {}
            Some(Ok(leased)) => {
                let mode = if *leased { "leased" } else { "exact" };
                m.insert("mode".into(), Value::String(mode.into()));
            }
            Some(Err(s)) => {
                m.insert("mode".into(), Value::String(s.clone()));
            }
        }
        Value::Object(m)
    }
}

/// A `ratelimits` member: `null`, or a list of entries (at most 8).
pub fn limits_value(limits: &Option<Vec<Limit>>) -> Value {
    match limits {
        None => Value::Null,
        Some(list) => Value::Array(list.iter().take(8).map(Limit::to_value).collect()),
    }
}
