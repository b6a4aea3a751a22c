//! Write bodies: any bytes, or a JSON object of likely and unlikely fields, under any
//! Content-Type, for create, update, roll and an owner's PUT, by an unrestricted or a
//! restricted caller, with or without an owner of its own,
//! delivered as it is or base64-encoded in an HTTP API event. The answer is a value every
//! rule holds for, or a refusal with a documented status (400, 403, 413, 415, 422) whose
//! problem names a field when it is a 422 and never shows the secret put in the input.
//! `meta` and `allowed_cidrs` are built near and across their bounds; an accepted key's
//! meta is within them, and its list reaches no further than its caller's unless the write
//! only narrowed it. A caller of an owner makes and leaves keys only for its owner; an
//! owner's limits are set only by an unrestricted caller, and loosened only within its own.
#![no_main]

use apikeys::allow::{self, AllowList};
use apikeys::auth::Caller;
use apikeys::http::body::fields::name_problem;
use apikeys::http::body::{
    CreateKey, KeyPatch, MAX_BODY_BYTES, MAX_GRACE_SECS, RollKey, create, owner, patch, roll,
};
use apikeys::http::problem::ApiError;
use apikeys::key::{Access, ApiKey, KeyId, KeyState, Permission};
use apikeys::quota::{
    Interval, MAX_CREDITS, MAX_DURATION_MS, MAX_LIMIT, MAX_LIMITS, MIN_DURATION_MS, Quota, Refill,
};
use apikeys::secret::Secret;
use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

#[derive(Arbitrary, Debug)]
enum Endpoint {
    Create,
    Patch,
    Roll,
    Owner,
}

#[derive(Arbitrary, Debug)]
enum ContentType {
    None,
    Json,
    JsonUtf8,
    MergePatch,
    WithSecret,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// A field some body takes, or one no body may write: from the parsers' own lists.
    Known(u8),
    Secret,
    /// The quota members, named outright so that their values (below) often meet them.
    Credits,
    Ratelimits,
    OwnerId,
    Meta,
    AllowedCidrs,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Permission(u8),
    /// Seconds from now, as RFC 3339.
    Time(i32),
    Uuid(u128),
    Status(u8),
    Secret,
}

#[derive(Arbitrary, Debug)]
enum Json {
    Scalar(Scalar),
    Array(Vec<Scalar>),
    Object(Vec<(String, Scalar)>),
    /// A `credits` value: null, or an object near and across its bounds.
    Credits(Option<apikeys_fuzz::Credits>),
    /// A `ratelimits` value: null, or a list of entries near and across their bounds.
    Ratelimits(Option<Vec<apikeys_fuzz::Limit>>),
    /// A `meta` value: members (a secret's among them), nested `depth` levels, padded to
    /// near its size bound.
    Meta {
        members: Vec<(String, Scalar)>,
        depth: u8,
        pad: u16,
    },
    /// An `allowed_cidrs` value: entries near and across their rules.
    Cidrs(Vec<Cidr>),
}

#[derive(Arbitrary, Debug)]
enum Cidr {
    V4([u8; 4], u8),
    V6(u128, u8),
    Bare([u8; 4]),
    Text(String),
}

impl Cidr {
    fn to_value(&self) -> Value {
        match self {
            Cidr::V4(b, p) => json!(format!("{}/{}", std::net::Ipv4Addr::from(*b), p % 40)),
            Cidr::V6(n, p) => json!(format!("{}/{}", std::net::Ipv6Addr::from(*n), p % 140)),
            Cidr::Bare(b) => json!(std::net::Ipv4Addr::from(*b).to_string()),
            Cidr::Text(s) => json!(s),
        }
    }
}

/// Allow-lists for the caller and the patched key: none, a network, a wide one, IPv6.
const CIDR_LISTS: &[&[&str]] = &[
    &["10.0.0.0/8"],
    &["0.0.0.0/0"],
    &["2001:db8::/32", "10.1.0.0/16"],
];

fn cidr_list(pick: Option<u8>) -> Option<AllowList> {
    pick.map(|i| AllowList::parse(CIDR_LISTS[i as usize % CIDR_LISTS.len()]).expect("a list"))
}

/// A `meta` value: `depth` levels of `{"n": ...}` around the members and a pad.
fn meta_value(members: &[(String, Scalar)], depth: u8, pad: u16, now: DateTime<Utc>) -> Value {
    let mut inner: Map<String, Value> = members
        .iter()
        .take(8)
        .map(|(k, s)| (k.clone(), scalar(s, now)))
        .collect();
    inner.insert("pad".into(), json!("x".repeat(usize::from(pad % 4200))));
    let mut v = Value::Object(inner);
    for _ in 0..depth % 12 {
        v = json!({ "n": v });
    }
    v
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Object(Vec<(Name, Json)>),
    /// An object, then this many spaces: around the size limit.
    Padded(Vec<(Name, Json)>, u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    endpoint: Endpoint,
    content_type: ContentType,
    payload: Payload,
    /// The caller's permissions, as bits; `None` for an unrestricted caller.
    caller: Option<u64>,
    /// The caller's own credits and rate limits: one of [`QUOTAS`].
    caller_quota: u8,
    /// The patched key's permissions, as bits; `None` for an unrestricted key.
    current: Option<u64>,
    /// The patched key's credits and rate limits: one of [`QUOTAS`].
    current_quota: u8,
    /// The caller's own allow-list and the patched key's: one of [`CIDR_LISTS`], or none.
    caller_cidrs: Option<u8>,
    current_cidrs: Option<u8>,
    /// Through an HTTP API event, base64-encoded when true.
    event: Option<bool>,
    /// The caller's own key belongs to the patched key's owner (`cus_current`).
    caller_owned: bool,
}

fn secret() -> &'static Secret {
    static SECRET: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| Secret::from_random(*b"fuzzing-a-write-body-key"))
}

fn access(bits: Option<u64>) -> Access {
    match bits {
        None => Access::Unrestricted,
        Some(bits) => Access::new(
            true,
            Permission::ALL
                .iter()
                .copied()
                .filter(|p| bits & p.bit() != 0)
                .collect(),
        ),
    }
}

fn scalar(s: &Scalar, now: DateTime<Utc>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => json!(b),
        Scalar::Int(n) => json!(n),
        Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Scalar::Str(s) => json!(s),
        Scalar::Permission(i) => {
            json!(Permission::ALL[*i as usize % Permission::ALL.len()].as_str())
        }
        Scalar::Time(secs) => {
            json!((now + chrono::Duration::seconds(i64::from(*secs))).to_rfc3339())
        }
        Scalar::Uuid(n) => json!(format!("{n:032x}")),
        Scalar::Status(i) => json!(["active", "disabled", "expired"][*i as usize % 3]),
        Scalar::Secret => json!(secret().expose()),
    }
}

fn value(j: &Json, now: DateTime<Utc>) -> Value {
    match j {
        Json::Scalar(s) => scalar(s, now),
        Json::Array(items) => Value::Array(items.iter().take(64).map(|s| scalar(s, now)).collect()),
        Json::Object(members) => Value::Object(
            members
                .iter()
                .take(8)
                .map(|(k, s)| (k.clone(), scalar(s, now)))
                .collect::<Map<_, _>>(),
        ),
        Json::Credits(None) => Value::Null,
        Json::Credits(Some(c)) => c.to_value(),
        Json::Ratelimits(list) => apikeys_fuzz::limits_value(list),
        Json::Meta {
            members,
            depth,
            pad,
        } => meta_value(members, *depth, *pad, now),
        Json::Cidrs(list) => Value::Array(list.iter().take(64).map(Cidr::to_value).collect()),
    }
}

fn name(n: &Name) -> String {
    match n {
        Name::Known(i) => {
            let known = [
                create::FIELDS,
                patch::FIELDS,
                roll::FIELDS,
                patch::READ_ONLY,
                owner::FIELDS,
            ]
            .concat();
            known[*i as usize % known.len()].to_owned()
        }
        Name::Secret => secret().expose().to_owned(),
        Name::Credits => "credits".to_owned(),
        Name::Ratelimits => "ratelimits".to_owned(),
        Name::OwnerId => "owner_id".to_owned(),
        Name::Meta => "meta".to_owned(),
        Name::AllowedCidrs => "allowed_cidrs".to_owned(),
        Name::Other(s) => s.clone(),
    }
}

/// The members as JSON text, in order, repeats kept (a map would drop them).
fn object(members: &[(Name, Json)], now: DateTime<Utc>) -> Vec<u8> {
    let parts: Vec<String> = members
        .iter()
        .take(16)
        .map(|(n, j)| format!("{}:{}", json!(name(n)), value(j, now)))
        .collect();
    format!("{{{}}}", parts.join(",")).into_bytes()
}

fn request(
    content_type: Option<&str>,
    body: &[u8],
    event: Option<bool>,
) -> Option<lambda_http::Request> {
    use base64::Engine as _;
    match event {
        None => {
            let mut b = lambda_http::http::Request::builder()
                .method("POST")
                .uri("/v1/api_key/");
            if let Some(ct) = content_type {
                b = b.header("content-type", ct);
            }
            b.body(lambda_http::Body::from(body.to_vec())).ok()
        }
        Some(encode) => {
            // Only values a gateway could deliver as a header.
            if content_type.is_some_and(|ct| lambda_http::http::HeaderValue::from_str(ct).is_err())
            {
                return None;
            }
            let text = std::str::from_utf8(body).ok().filter(|_| !encode);
            let mut headers = Map::new();
            headers.insert("host".into(), json!("localhost"));
            if let Some(ct) = content_type {
                headers.insert("content-type".into(), json!(ct));
            }
            let event = json!({
                "version": "2.0",
                "routeKey": "POST /v1/api_key",
                "rawPath": "/v1/api_key",
                "rawQueryString": "",
                "headers": headers,
                "requestContext": {
                    "http": {"method": "POST", "path": "/v1/api_key"},
                    "routeKey": "POST /v1/api_key",
                    "stage": "$default",
                    "requestId": "fuzz"
                },
                "body": match text {
                    Some(t) => t.to_owned(),
                    None => base64::engine::general_purpose::STANDARD.encode(body),
                },
                "isBase64Encoded": text.is_none(),
            });
            lambda_http::request::from_str(&event.to_string()).ok()
        }
    }
}

/// What every refusal must be.
fn check_refusal(e: &ApiError, body: &[u8]) {
    let body_len = body.len();
    let status = e.status().as_u16();
    assert!(
        matches!(status, 400 | 403 | 413 | 415 | 422),
        "status {status}: {e}"
    );
    if body_len > MAX_BODY_BYTES {
        assert!(
            matches!(status, 413 | 415),
            "an oversized body got {status}"
        );
    }
    let problem = e.problem("fuzz");
    let text = serde_json::to_string(&problem).expect("a problem serializes");
    assert!(
        !text.contains(secret().expose()),
        "a secret in a problem: {text}"
    );
    assert!(
        !e.to_string().contains(secret().expose()),
        "a secret in a log line"
    );
    assert!(!problem.detail.is_empty());
    match status {
        // A member named "" is named as it is.
        422 => assert!(
            problem
                .parameter
                .is_some_and(|p| !p.is_empty() || body.windows(2).any(|w| w == b"\"\"")),
            "a 422 names its field"
        ),
        // The authority rule names the field of what it refuses, where there is one.
        403 => assert!(
            problem.parameter.as_deref().is_none_or(|p| {
                [
                    "permissions",
                    "restricted",
                    "expires_date",
                    "status",
                    "credits",
                    "ratelimits",
                    "allowed_cidrs",
                    "owner_id",
                ]
                .contains(&p)
            }),
            "a 403 names a field of the body or none: {:?}",
            problem.parameter
        ),
        _ => assert_eq!(problem.parameter, None),
    }
}

/// Quotas for the caller and the patched key: none, credits with or without a refill, a
/// limit whose name the fuzzed limits use, and all of them.
const QUOTAS: &[&str] = &[
    "{}",
    r#"{"credits": {"remaining": 100, "refill": null}}"#,
    r#"{"credits": {"remaining": 100, "refill": {"interval": "daily", "amount": 10}}}"#,
    r#"{"ratelimits": [{"name": "per_second", "limit": 10, "duration_ms": 1000}]}"#,
    r#"{"credits": {"remaining": 31, "refill": {"interval": "monthly", "amount": 31, "day": 31}},
        "ratelimits": [{"name": "per_second", "limit": 10, "duration_ms": 1000},
                       {"name": "x", "limit": 1000, "duration_ms": 86400000, "mode": "leased"}]}"#,
];

fn quota(i: u8) -> Quota {
    serde_json::from_str(QUOTAS[i as usize % QUOTAS.len()]).expect("a quota")
}

/// A quota any key may hold: the bounds of every member.
fn assert_valid(q: &Quota) {
    if let Some(c) = &q.credits {
        assert!(c.remaining <= MAX_CREDITS, "{q:?}");
        let low_at = c.low_at.unwrap_or(1);
        assert!((1..=MAX_CREDITS).contains(&low_at), "{q:?}");
        if let Some(r) = c.refill {
            assert!((1..=MAX_CREDITS).contains(&r.amount), "{q:?}");
            match r.interval {
                Interval::Daily => assert_eq!(r.day, None, "{q:?}"),
                Interval::Monthly => assert!(r.day.is_none_or(|d| (1..=31).contains(&d)), "{q:?}"),
            }
        }
    }
    assert!(q.ratelimits.len() <= MAX_LIMITS, "{q:?}");
    for (i, l) in q.ratelimits.iter().enumerate() {
        assert!((1..=32).contains(&l.name.len()), "{q:?}");
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
        assert!(l.name.chars().all(allowed), "{q:?}");
        assert!(q.ratelimits[..i].iter().all(|o| o.name != l.name), "{q:?}");
        assert!((1..=MAX_LIMIT).contains(&l.limit), "{q:?}");
        assert!(
            (MIN_DURATION_MS..=MAX_DURATION_MS).contains(&l.duration_ms),
            "{q:?}"
        );
    }
}

/// The contract's rule, restated: `key` can use no more than `bound`. Credits if `bound`
/// has them, no more left, a refill no larger (none, or the same interval and no larger
/// amount); each of `bound`'s limits by name, with the same duration and no larger.
fn within(key: &Quota, bound: &Quota) -> bool {
    let credits = match (&bound.credits, &key.credits) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(b), Some(k)) => {
            k.remaining <= b.remaining
                && match (b.refill, k.refill) {
                    (_, None) => true,
                    (None, Some(_)) => false,
                    (Some(rb), Some(rk)) => rk.interval == rb.interval && rk.amount <= rb.amount,
                }
        }
    };
    credits
        && bound.ratelimits.iter().all(|b| {
            key.ratelimits
                .iter()
                .any(|k| k.name == b.name && k.duration_ms == b.duration_ms && k.limit <= b.limit)
        })
}

/// Whether `after` can use no more than `before`: what any holder may do (tightening).
fn no_more(after: &Quota, before: &Quota) -> bool {
    let refill_no_larger = |a: Option<Refill>, b: Option<Refill>| match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => {
            a.amount <= b.amount
                && !(a.interval == Interval::Daily && b.interval == Interval::Monthly)
        }
    };
    let credits = match (&before.credits, &after.credits) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(b), Some(a)) => a.remaining <= b.remaining && refill_no_larger(a.refill, b.refill),
    };
    credits
        && before.ratelimits.iter().all(|b| {
            after
                .ratelimits
                .iter()
                .any(|a| a.name == b.name && a.duration_ms == b.duration_ms && a.limit <= b.limit)
        })
}

/// A key's metadata as any key may hold it: a non-empty object within the bounds.
fn assert_meta(meta: Option<&apikeys::meta::Meta>) {
    if let Some(m) = meta {
        assert!(!m.as_map().is_empty(), "an empty meta is none");
        let text = m.to_json();
        assert!(
            text.len() <= apikeys::meta::MAX_META_BYTES,
            "{} bytes",
            text.len()
        );
        assert_eq!(apikeys::meta::Meta::from_json(&text).as_ref(), Some(m));
    }
}

fn current_key(access: Access, now: DateTime<Utc>) -> ApiKey {
    ApiKey {
        id: KeyId::new_at(now - chrono::Duration::days(1)),
        org: "fuzz".parse().expect("an org id"),
        name: "current".into(),
        created: now - chrono::Duration::days(1),
        updated: now - chrono::Duration::days(1),
        last_used: None,
        expires: None,
        creator_id: KeyId::new_at(now).as_uuid(),
        access,
        state: KeyState::Active,
        last_four: "abcd".into(),
        version: 0,
        disabled_reason: None,
        quota: Quota::default(),
        owner_id: Some(current_owner()),
        meta: None,
        allowed_cidrs: None,
    }
}

/// The patched key's owner, and the owner a PUT sets.
fn current_owner() -> apikeys::owner::OwnerId {
    "cus_current".parse().expect("an owner id")
}

/// An owner id as the contract states it: 1 to 128 characters, none a control character.
fn assert_owner(owner: Option<&apikeys::owner::OwnerId>) {
    if let Some(o) = owner {
        let chars = o.as_str().chars().count();
        assert!((1..=128).contains(&chars), "{o:?}");
        assert!(!o.as_str().chars().any(char::is_control), "{o:?}");
    }
}

fuzz_target!(|input: Input| {
    let now = Utc::now();
    let body = match &input.payload {
        Payload::Bytes(b) => b.clone(),
        Payload::Object(m) => object(m, now),
        Payload::Padded(m, pad) => {
            let mut b = object(m, now);
            b.resize(
                b.len() + MAX_BODY_BYTES - 64 + usize::from(*pad % 128),
                b' ',
            );
            b
        }
    };
    let with_secret = format!("application/json; x={}", secret().expose());
    let ct = match &input.content_type {
        ContentType::None => None,
        ContentType::Json => Some("application/json"),
        ContentType::JsonUtf8 => Some("application/json; charset=UTF-8"),
        ContentType::MergePatch => Some("application/merge-patch+json"),
        ContentType::WithSecret => Some(with_secret.as_str()),
        ContentType::Raw(s) => Some(s.as_str()),
    };
    let Some(req) = request(ct, &body, input.event) else {
        return;
    };
    assert_eq!(
        req.body().as_ref(),
        &body[..],
        "lambda_http hands over the bytes sent"
    );
    let caller_access = access(input.caller);
    let caller = Caller {
        org: "fuzz".parse().expect("an org id"),
        key_id: KeyId::new_at(now),
        access: caller_access.clone(),
        hash: secret().hash(),
        last_used: None,
        expires: None,
        secret: apikeys::audit::ActingSecret {
            which: apikeys::audit::WhichSecret::Current,
            last_four: secret().last_four(),
        },
        quota: quota(input.caller_quota),
        allowed_cidrs: cidr_list(input.caller_cidrs),
        owner_id: input.caller_owned.then(current_owner),
    };
    let caller_owner = caller.owner_id.clone();
    let caller_cidrs = caller.allowed_cidrs.clone();
    let caller_quota = caller.quota.clone();
    let authority = caller.authority();
    let refused = |r| ApiError::from(apikeys::write::WriteError::Refused(r));
    let held = |p: &Permission| caller_access.grants(*p);
    match input.endpoint {
        Endpoint::Create => {
            let made = CreateKey::from_request(&req, now)
                .and_then(|c| c.new_key(&caller))
                .and_then(|new| {
                    authority
                        .may_create(&new.access, new.expires)
                        .and_then(|()| authority.may_meter(&new.quota))
                        .and_then(|()| authority.may_reach(new.allowed_cidrs.as_ref()))
                        .and_then(|()| authority.may_own(new.owner_id.as_ref()))
                        .map(|()| new)
                        .map_err(refused)
                });
            match made {
                Ok(new) => {
                    assert!(name_problem(&new.name).is_none(), "{:?}", new.name);
                    assert!(new.expires.is_none_or(|t| t > now));
                    if caller_access.is_restricted() {
                        let list = new
                            .access
                            .permissions()
                            .expect("a restricted caller made an unrestricted key");
                        assert!(
                            list.iter().all(held),
                            "a permission the caller lacks was granted"
                        );
                    }
                    if let Some(list) = new.access.permissions() {
                        assert!(
                            list.windows(2).all(|w| w[0] < w[1]),
                            "sorted, without repeats"
                        );
                    }
                    assert_valid(&new.quota);
                    assert_owner(new.owner_id.as_ref());
                    assert!(
                        caller_owner.is_none() || new.owner_id == caller_owner,
                        "a caller of an owner made a key for {:?}",
                        new.owner_id
                    );
                    assert_meta(new.meta.as_ref());
                    assert!(
                        allow::within(new.allowed_cidrs.as_ref(), caller_cidrs.as_ref()),
                        "a key that reaches further than its caller: {:?} by {caller_cidrs:?}",
                        new.allowed_cidrs
                    );
                    assert!(
                        within(&new.quota, &caller_quota),
                        "a key beyond its caller: {:?} by {caller_quota:?}",
                        new.quota
                    );
                    new.into_record(secret(), now)
                        .expect("a validated key stores");
                }
                Err(e) => check_refusal(&e, &body),
            }
        }
        Endpoint::Patch => {
            let mut current = current_key(access(input.current), now);
            current.quota = quota(input.current_quota);
            current.allowed_cidrs = cidr_list(input.current_cidrs);
            match KeyPatch::from_request(&req, now)
                .and_then(|p| {
                    p.apply(&current)
                        .map_err(|e| ApiError::from(apikeys::write::WriteError::from(e)))
                })
                .and_then(|next| {
                    authority
                        .may_update(&current, &next)
                        .map(|()| next)
                        .map_err(refused)
                }) {
                Ok(next) => {
                    assert_eq!(
                        (
                            next.id,
                            &next.org,
                            next.created,
                            next.creator_id,
                            &next.last_four
                        ),
                        (
                            current.id,
                            &current.org,
                            current.created,
                            current.creator_id,
                            &current.last_four
                        )
                    );
                    assert!(name_problem(&next.name).is_none());
                    assert_valid(&next.quota);
                    assert_owner(next.owner_id.as_ref());
                    if next.owner_id != current.owner_id {
                        assert!(
                            caller_owner.is_none() || next.owner_id == caller_owner,
                            "a caller of an owner moved a key out of it"
                        );
                        assert!(!caller_quota.is_metered(), "a metered caller moved a key out");
                    }
                    assert_meta(next.meta.as_ref());
                    let (was, now_list) =
                        (current.allowed_cidrs.as_ref(), next.allowed_cidrs.as_ref());
                    assert!(
                        !allow::widens(was, now_list)
                            || allow::within(now_list, caller_cidrs.as_ref()),
                        "a list widened past its caller's: {was:?} to {now_list:?} by {caller_cidrs:?}"
                    );
                    assert!(
                        no_more(&next.quota, &current.quota) || within(&next.quota, &caller_quota),
                        "a key grown beyond its caller: {:?} to {:?} by {caller_quota:?}",
                        current.quota,
                        next.quota
                    );
                    // The write stamps the time and version when it commits.
                    assert_eq!(
                        (next.updated, next.version),
                        (current.updated, current.version)
                    );
                    if caller_access.is_restricted() {
                        match (&current.access, &next.access) {
                            // It held the key, and the key holds nothing it lacks.
                            (Access::Restricted(before), Access::Restricted(list)) => {
                                assert!(before.iter().all(held) && list.iter().all(held))
                            }
                            _ => panic!("a restricted caller changed or made an unrestricted key"),
                        }
                    }
                }
                Err(e) => check_refusal(&e, &body),
            }
        }
        Endpoint::Roll => match RollKey::from_request(&req) {
            Ok(r) => assert!(r.grace_period_seconds <= MAX_GRACE_SECS),
            Err(e) => check_refusal(&e, &body),
        },
        Endpoint::Owner => {
            let before = quota(input.current_quota);
            let id = current_owner();
            let set = owner::parse(req.headers(), req.body()).and_then(|q| {
                authority
                    .may_set_owner(&id, &before, &q)
                    .map(|()| q)
                    .map_err(refused)
            });
            match set {
                Ok(q) => {
                    assert_valid(&q);
                    assert!(!caller_access.is_restricted(), "a restricted caller set an owner");
                    if !no_more(&q, &before) {
                        assert!(caller_owner.is_none(), "a caller loosened its own owner");
                        assert!(within(&q, &caller_quota), "an owner loosened past its caller");
                    }
                }
                Err(e) => check_refusal(&e, &body),
            }
        }
    }
});
