//! `Idempotency-Key` on create and roll: a retry with the same key and the same body within
//! [`IDEMPOTENCY_WINDOW`] gets the same response, the same secret included, and changes
//! nothing more.
//!
//! The record of the first request ([`IdempotencyRecord`]) is written in the write's own
//! transaction, on condition that none exists; so of concurrent retries exactly one writes,
//! and the others read its record and replay it.
//!
//! No secret is stored. A secret made for an idempotent request is derived:
//! `HMAC-SHA256(server key, record id ‖ request digest ‖ nonce)`, its first 24 bytes being the
//! secret's random part. The nonce is random and stored in the record; the server key
//! (`IDEMPOTENCY_SECRET`) is not in the table. A replay derives the secret again and checks
//! it against the hash the record keeps. Reading the table alone therefore yields no
//! secret; only whoever also holds the server key can derive the secrets of idempotent
//! requests whose records are still there (a day, until DynamoDB's TTL deletes them).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::key::OrgId;
use crate::secret::{Secret, SecretHash};

/// How long a request's idempotency record answers retries.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An `Idempotency-Key` and the request body it came with.
#[derive(Clone)]
pub struct Idempotency {
    key: String,
    body: [u8; 32],
}

/// Why an `Idempotency-Key` header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters (a UUID, say)"
)]
pub struct InvalidIdempotencyKey;

impl Idempotency {
    /// The header's value, and the body exactly as received: a retry must send the same
    /// bytes.
    pub fn new(key: &str, body: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let ok = (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !ok || key.trim().is_empty() {
            return Err(InvalidIdempotencyKey);
        }
        Ok(Idempotency {
            key: key.to_owned(),
            body: Sha256::digest(body).into(),
        })
    }

    /// The record's id: one per organization, caller and key, so two callers never share
    /// a record.
    pub(super) fn record_id(&self, org: &OrgId, actor: &Actor) -> String {
        let kind = serde_json::to_string(&actor.kind).unwrap_or_default();
        hex(&digest(&[
            b"apikeys/idempotency/v1",
            org.as_str().as_bytes(),
            kind.as_bytes(),
            actor.id.as_bytes(),
            self.key.as_bytes(),
        ]))
    }

    /// What a retry must repeat: the operation, its target, and the body.
    pub(super) fn request(&self, operation: &str) -> String {
        hex(&digest(&[operation.as_bytes(), &self.body]))
    }
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Idempotency(…)")
    }
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type HmacSha256 = Hmac<Sha256>;
const DERIVE_CONTEXT: &[u8] = b"apikeys/idempotent-secret/v1\0";

/// The server keys idempotent requests derive their secrets with. The first derives; all
/// are tried on a replay, so a new key can be put first while the old one still answers
/// the retries of the last day.
#[derive(Clone)]
pub struct SecretKeys {
    keys: Vec<Vec<u8>>,
}

/// Why the configured idempotency secret cannot be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "IDEMPOTENCY_SECRET must hold one or more comma-separated secrets of at least 32 characters"
)]
pub struct WeakSecretKeys;

impl SecretKeys {
    pub const MIN_SECRET_LEN: usize = 32;

    pub fn parse(config: &str) -> Result<Self, WeakSecretKeys> {
        let keys: Vec<Vec<u8>> = config
            .split(',')
            .map(|s| s.trim().as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() < Self::MIN_SECRET_LEN) {
            return Err(WeakSecretKeys);
        }
        Ok(SecretKeys { keys })
    }

    fn derive_with(key: &[u8], record: &str, request: &str, nonce: &str) -> Secret {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(DERIVE_CONTEXT);
        for part in [record, request, nonce] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        let out = mac.finalize().into_bytes();
        let mut random = [0u8; 24];
        random.copy_from_slice(&out[..24]);
        Secret::from_random(random)
    }

    /// The secret of a new idempotent request.
    pub(super) fn derive(&self, record: &str, request: &str, nonce: &str) -> Secret {
        Self::derive_with(&self.keys[0], record, request, nonce)
    }

    /// The secret a record's request was given, derived again: the one whose hash the
    /// record holds.
    pub(super) fn rederive(
        &self,
        record: &str,
        request: &str,
        nonce: &str,
        hash: &SecretHash,
    ) -> Option<Secret> {
        self.keys
            .iter()
            .map(|k| Self::derive_with(k, record, request, nonce))
            .find(|s| &s.hash() == hash)
    }
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKeys({} keys)", self.keys.len())
    }
}

/// A new random nonce, base64url.
pub(super) fn nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "idempotency-tests-secret-0123456789";
    const B: &str = "another-idempotency-secret-0123456789";

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(Idempotency::new("3c90c3cc-0d44-4b50-8888-8dd25736052a", b"{}").is_ok());
        for bad in ["", " ", "é", "a\nb", &"x".repeat(256)] {
            assert!(Idempotency::new(bad, b"{}").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn records_are_per_organization_and_caller_and_requests_per_body_and_operation() {
        let i = Idempotency::new("k", b"{}").unwrap();
        let (o, p): (OrgId, OrgId) = ("o".parse().unwrap(), "p".parse().unwrap());
        let (me, you) = (Actor::cli("me"), Actor::cli("you"));
        assert_eq!(i.record_id(&o, &me), i.record_id(&o, &me));
        assert_ne!(i.record_id(&o, &me), i.record_id(&p, &me));
        assert_ne!(i.record_id(&o, &me), i.record_id(&o, &you));
        let j = Idempotency::new("k", b"{ }").unwrap();
        assert_ne!(i.request("create"), j.request("create"));
        assert_ne!(i.request("create"), i.request("roll x"));
    }

    #[test]
    fn a_secret_is_derived_again_from_its_record_even_after_a_new_key_is_put_first() {
        let old = SecretKeys::parse(A).unwrap();
        let s = old.derive("r", "q", "n");
        assert_eq!(Secret::parse(s.expose()), Ok(s.clone()));
        assert_ne!(s, old.derive("r", "q", "m"), "the nonce makes it new");
        let rotated = SecretKeys::parse(&format!("{B},{A}")).unwrap();
        assert_eq!(rotated.rederive("r", "q", "n", &s.hash()), Some(s.clone()));
        let other = SecretKeys::parse(B).unwrap();
        assert_eq!(other.rederive("r", "q", "n", &s.hash()), None);
        assert!(SecretKeys::parse("short").is_err());
        assert!(!format!("{old:?}").contains(A));
    }
}
