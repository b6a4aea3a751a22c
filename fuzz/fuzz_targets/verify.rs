//! The verify request body: raw bytes, or objects built from fuzzed parts with the world's
//! secrets, near misses and permission names. Parsing never panics: it gives a request or a
//! 400, 413 or 422 naming the field. Every request is verified for a caller of either
//! organization: the answer shows a key only of the caller's organization, never a secret
//! or a hash, and is VALID only for an active key that grants every requested permission.
#![no_main]

use apikeys::http::body::MAX_BODY_BYTES as MAX_VERIFY_BODY_BYTES;
use apikeys::http::body::verify::FIELDS;
use apikeys::http::body::verify::parse_verify_body;
use apikeys::key::{KeyStatus, OrgId, Permission};
use apikeys::secret::Secret;
use apikeys::store::CredentialStore;
use apikeys::verify::cache::{Moment, VerifyCache};
use apikeys::verify::{VerifyCode, verify};
use apikeys_fuzz::{Count, Json, Member, Token, json_headers, shows_a_secret, world};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

#[derive(Arbitrary, Debug)]
enum Perm {
    Known(u8),
    Raw(Json),
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
        extra: Option<(Member, Json)>,
        pad: Option<u16>,
    },
}

fuzz_target!(|pair: (Input, bool)| {
    let (input, as_other) = pair;
    let body: Vec<u8> = match &input {
        Input::Raw(bytes) => bytes.clone(),
        Input::Fields {
            key,
            key_json,
            permissions,
            permissions_json,
            cost,
            extra,
            pad,
        } => {
            let mut m = Map::new();
            match (key, key_json) {
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
            if let Some((k, v)) = extra {
                m.insert(k.name(FIELDS), v.to_value());
            }
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
            if status == 422 {
                assert!(
                    e.problem("fuzz").parameter.is_some(),
                    "a 422 names its field"
                );
            }
            let detail = e.problem("fuzz").detail;
            assert!(!shows_a_secret(&detail), "a secret in a problem: {detail}");
            return;
        }
    };
    let w = world();
    let org: &OrgId = if as_other { &w.other } else { &w.demo };
    let now = Moment::now();
    let v =
        w.rt.block_on(verify(
            &w.app.store,
            &VerifyCache::default(),
            &w.app.usage,
            org,
            &request,
            now,
        ))
        .expect("the memory store does not fail");
    let text = serde_json::to_string(&v.body(now.wall)).expect("a body");
    assert!(!shows_a_secret(&text), "a secret or hash in {text}");
    // The oracle: what the store says of this token, read directly.
    let credential = match Secret::parse(request.key()) {
        Err(_) => None,
        Ok(s) => {
            w.rt.block_on(w.app.store.find_credential(&s.hash()))
                .expect("the memory store does not fail")
        }
    };
    match credential.filter(|c| &c.org == org) {
        None => {
            assert_eq!(v.code, VerifyCode::NotFound);
            assert!(v.key.is_none());
        }
        Some(c) => {
            let key = v.key.as_ref().expect("the caller's key is shown");
            assert_eq!((&key.org, key.id), (org, c.key_id));
            let expected = match c.status_at(now.wall) {
                KeyStatus::Disabled => VerifyCode::Disabled,
                KeyStatus::Expired => VerifyCode::Expired,
                KeyStatus::Active if request.permissions.iter().all(|p| c.access.grants(*p)) => {
                    VerifyCode::Valid
                }
                KeyStatus::Active => VerifyCode::InsufficientPermissions,
            };
            assert_eq!(v.code, expected);
            assert_eq!(v.valid, expected == VerifyCode::Valid);
        }
    }
});
