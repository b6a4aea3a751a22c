//! The verify request body: raw bytes, or objects built from fuzzed parts with the world's
//! secrets, near misses and permission names. Parsing never panics: it gives a request or a
//! 400, 413 or 422 naming the field. Every request is verified for a caller of either
//! organization: the answer shows a key only of the caller's organization, never a secret
//! or a hash, and is VALID only for an active key that grants every requested permission.
#![no_main]

use apikeys::http::body::MAX_BODY_BYTES as MAX_VERIFY_BODY_BYTES;
use apikeys::http::body::verify::FIELDS;
use apikeys::http::body::verify::parse_verify_body;
use apikeys::key::{ApiKey, KeyStatus, OrgId, Permission};
use apikeys::quota::MAX_COST;
use apikeys::quota::plan::Counters;
use apikeys::secret::Secret;
use apikeys::store::CredentialStore;
use apikeys::verify::cache::{Moment, VerifyCache};
use apikeys::verify::{Verdict, VerifyCode, VerifyRequest, verify};
use apikeys_fuzz::metered::Metered;
use apikeys_fuzz::{Count, FENCED_CIDRS, Json, Member, Token, json_headers, shows_a_secret, world};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Arbitrary, Debug)]
enum Perm {
    Known(u8),
    Raw(Json),
}

#[derive(Arbitrary, Debug)]
enum ClientIp {
    V4([u8; 4]),
    V6(u128),
    /// In 2001:db8::/32, the fenced key's IPv6 network.
    Doc(u64),
    Raw(Json),
}

impl ClientIp {
    fn to_value(&self) -> Value {
        match self {
            ClientIp::V4(b) => Value::String(std::net::Ipv4Addr::from(*b).to_string()),
            ClientIp::V6(n) => Value::String(std::net::Ipv6Addr::from(*n).to_string()),
            ClientIp::Doc(n) => {
                let n = (0x2001_0db8_u128 << 96) | u128::from(*n);
                Value::String(std::net::Ipv6Addr::from(n).to_string())
            }
            ClientIp::Raw(j) => j.to_value(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Fields {
        key: Option<Token>,
        key_json: Option<Json>,
        permissions: Option<Vec<Perm>>,
        permissions_json: Option<Json>,
        /// `cost`: at and beside its bounds, any integer, or not an integer.
        cost: Option<Count>,
        /// `client_ip`: an address inside or outside the fenced key's list, or any JSON.
        client_ip: Option<ClientIp>,
        /// Verify the fenced key (metadata and an IP allow-list) instead of `key`.
        fenced: bool,
        extra: Option<(Member, Json)>,
        pad: Option<u16>,
    },
}

fuzz_target!(|pair: (Input, bool)| {
    let (input, as_other) = pair;
    // The `cost` member the body was built with, if any.
    let mut sent_cost: Option<Value> = None;
    let body: Vec<u8> = match &input {
        Input::Raw(bytes) => bytes.clone(),
        Input::Fields {
            key,
            key_json,
            permissions,
            permissions_json,
            cost,
            client_ip,
            fenced,
            extra,
            pad,
        } => {
            let mut m = Map::new();
            match (key, key_json) {
                _ if *fenced => {
                    m.insert("key".into(), world().fenced_secret.expose().into());
                }
                (Some(t), _) => {
                    m.insert("key".into(), Value::String(t.text()));
                }
                (None, Some(j)) => {
                    m.insert("key".into(), j.to_value());
                }
                (None, None) => {}
            }
            match (permissions, permissions_json) {
                (Some(list), _) => {
                    let all = Permission::ALL;
                    let values = list
                        .iter()
                        .map(|p| match p {
                            Perm::Known(i) => {
                                Value::String(all[*i as usize % all.len()].as_str().into())
                            }
                            Perm::Raw(j) => j.to_value(),
                        })
                        .collect();
                    m.insert("permissions".into(), Value::Array(values));
                }
                (None, Some(j)) => {
                    m.insert("permissions".into(), j.to_value());
                }
                (None, None) => {}
            }
            if let Some(c) = cost {
                m.insert("cost".into(), c.to_value());
            }
            if let Some(ip) = client_ip {
                m.insert("client_ip".into(), ip.to_value());
            }
            if let Some((k, v)) = extra {
                m.insert(k.name(FIELDS), v.to_value());
            }
            sent_cost = m.get("cost").cloned();
            let mut text = Value::Object(m).to_string();
            if let Some(n) = pad {
                // Whitespace around the object, to cross the size bound.
                let n = MAX_VERIFY_BODY_BYTES - 64 + (*n as usize % 128);
                text = format!("{}{text}", " ".repeat(n.saturating_sub(text.len())));
            }
            text.into_bytes()
        }
    };
    let request = match parse_verify_body(&json_headers(), &body) {
        Ok(r) => r,
        Err(e) => {
            let status = e.status().as_u16();
            assert!(matches!(status, 400 | 413 | 422), "status {status}: {e}");
            let problem = e.problem("fuzz");
            if status == 422 {
                assert!(problem.parameter.is_some(), "a 422 names its field");
            }
            if problem.parameter.as_deref() == Some("cost") {
                let good = sent_cost.as_ref().and_then(whole);
                assert!(
                    good.is_none_or(|c| c > MAX_COST),
                    "a cost of {good:?} refused: {}",
                    problem.detail
                );
            }
            let detail = problem.detail;
            assert!(!shows_a_secret(&detail), "a secret in a problem: {detail}");
            return;
        }
    };
    assert!(request.cost <= MAX_COST, "a cost of {}", request.cost);
    // A null cost is no cost, as a null `permissions` is none.
    if let Some(sent) = sent_cost.as_ref().filter(|c| !c.is_null()) {
        assert_eq!(
            whole(sent),
            Some(request.cost),
            "the cost sent ({sent}) is the cost asked"
        );
    } else if matches!(input, Input::Fields { .. }) {
        assert_eq!(request.cost, 1, "the cost is 1 unless the body says");
    }
    let w = world();
    let store = metered_store();
    let org: &OrgId = if as_other { &w.other } else { &w.demo };
    // The oracle: what the store says of this token, read directly, before the verify.
    let credential = match Secret::parse(request.key()) {
        Err(_) => None,
        Ok(s) => {
            w.rt.block_on(w.app.store.find_credential(&s.hash()))
                .expect("the memory store does not fail")
        }
    };
    let mine = credential.filter(|c| &c.org == org);
    let known = mine.as_ref().and_then(|c| {
        w.demo_keys
            .iter()
            .chain(&w.other_keys)
            .find(|k| k.id == c.key_id)
    });
    let before = known.map(|k| store.now(k));
    let now = Moment::now();
    let v =
        w.rt.block_on(verify(
            store,
            &VerifyCache::default(),
            &w.app.usage,
            org,
            &request,
            now,
        ))
        .expect("the memory store does not fail");
    let text = serde_json::to_string(&v.body(now.wall)).expect("a body");
    assert!(!shows_a_secret(&text), "a secret or hash in {text}");
    let Some(c) = mine else {
        assert_eq!(v.code, VerifyCode::NotFound);
        assert!(v.key.is_none() && v.credits.is_none() && v.ratelimits.is_none());
        return;
    };
    let key = v.key.as_ref().expect("the caller's key is shown");
    assert_eq!((&key.org, key.id), (org, c.key_id));
    assert_eq!(v.meta, key.meta, "the answer's meta is the key's");
    let fenced = c.allowed_cidrs.as_ref();
    let expected = match c.status_at(now.wall) {
        KeyStatus::Disabled => VerifyCode::Disabled,
        KeyStatus::Expired => VerifyCode::Expired,
        // Restated: an address in one of the list's networks, and never a missing one.
        KeyStatus::Active
            if fenced.is_some()
                && !request.client_ip.is_some_and(|ip| {
                    let ip = ip.to_canonical();
                    FENCED_CIDRS.iter().any(|n| {
                        n.parse::<ipnet::IpNet>()
                            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .is_ok_and(|net| net.contains(&ip))
                    })
                }) =>
        {
            VerifyCode::Forbidden
        }
        KeyStatus::Active if request.permissions.iter().all(|p| c.access.grants(*p)) => {
            VerifyCode::Valid
        }
        KeyStatus::Active => VerifyCode::InsufficientPermissions,
    };
    let known = known.expect("every key of the world is known");
    let (before, after) = (before.expect("read before"), store.now(known));
    check_quota(known, &request, &v, expected, before, after, now);
});

/// The quota's part of the oracle: a key without credits or limits answers as before; a
/// metered key that passes every other check is VALID (spending exactly its cost), or
/// RATE_LIMITED or USAGE_EXCEEDED (spending nothing); no window ever holds more than its
/// limit; the answer's credits and limits are the store's.
fn check_quota(
    key: &ApiKey,
    request: &VerifyRequest,
    v: &Verdict,
    expected: VerifyCode,
    (credits_before, before): (Option<u64>, Counters),
    (credits_after, after): (Option<u64>, Counters),
    now: Moment,
) {
    let quota = &key.quota;
    assert_eq!(
        v.credits, credits_after,
        "the answer's credits are the store's"
    );
    assert_eq!(v.credits.is_some(), quota.credits.is_some());
    for l in &quota.ratelimits {
        if let Some(win) = after.windows.get(&l.name) {
            assert!(
                win.n <= l.limit,
                "{}: {} taken of {}",
                l.name,
                win.n,
                l.limit
            );
        }
    }
    let spent = credits_before != credits_after || before != after;
    if !quota.is_metered() || expected != VerifyCode::Valid {
        assert_eq!(v.code, expected);
        assert!(v.ratelimits.is_none(), "limits checked for {:?}", v.code);
        assert!(
            !spent,
            "{:?} spent: {credits_before:?} -> {credits_after:?}",
            v.code
        );
        return;
    }
    assert!(
        matches!(
            v.code,
            VerifyCode::Valid | VerifyCode::RateLimited | VerifyCode::UsageExceeded
        ),
        "{:?}",
        v.code
    );
    assert_eq!(v.valid, v.code == VerifyCode::Valid);
    if v.code != VerifyCode::Valid {
        assert_eq!(credits_before, credits_after, "{:?} spent credits", v.code);
        for (name, win) in &after.windows {
            let was = before.windows.get(name);
            assert!(
                was == Some(win) || win.n == 0,
                "{:?} took tokens of {name}",
                v.code
            );
        }
    }
    if v.code == VerifyCode::Valid {
        if let (Some(b), Some(a)) = (credits_before, credits_after) {
            let refilled = quota
                .credits
                .as_ref()
                .and_then(|c| c.refill)
                .map(|r| r.amount);
            assert!(
                b.checked_sub(request.cost) == Some(a)
                    || refilled.and_then(|n| n.checked_sub(request.cost)) == Some(a),
                "VALID at cost {} took {b} to {a}",
                request.cost
            );
        }
    }
    if v.code == VerifyCode::UsageExceeded {
        let left = credits_after.expect("credits");
        assert!(
            left < request.cost.max(1),
            "{left} left refused a cost of {}",
            request.cost
        );
    }
    // Present whenever the key has limits (they were checked), absent when it has none.
    let limits = match &v.ratelimits {
        None => {
            assert!(
                quota.ratelimits.is_empty(),
                "the limits were checked: {:?}",
                v.code
            );
            return;
        }
        Some(limits) => limits,
    };
    assert_eq!(limits.len(), quota.ratelimits.len(), "{limits:?}");
    let now_ms = now.wall.timestamp_millis();
    for (left, l) in limits.iter().zip(&quota.ratelimits) {
        assert_eq!((&left.name, left.limit), (&l.name, l.limit));
        assert!(left.remaining <= l.limit);
        let d = l.duration_ms as i64;
        assert!(
            left.reset % d == 0 && left.reset - d <= now_ms && now_ms < left.reset,
            "{left:?} at {now_ms}"
        );
    }
}

/// The world's store with counters, kept across runs like the world.
fn metered_store() -> &'static Metered<'static> {
    static STORE: std::sync::OnceLock<Metered<'static>> = std::sync::OnceLock::new();
    STORE.get_or_init(|| Metered::new(&world().app.store))
}

/// A JSON integer as JSON Schema has it: a number with no fraction (`60` or `60.0`), here
/// from 0 to 2^53 - 1.
fn whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=9_007_199_254_740_991.0).contains(f))
            .map(|f| f as u64)
    })
}
