//! API-key secrets: how they are generated, recognised, and hashed for storage.
//!
//! A secret is `apk_` followed by 38 base64url characters that encode 24 random bytes
//! (192 bits) and a 4-byte checksum. The prefix lets secret scanners find leaked keys; the
//! checksum lets them, and us, reject a mistyped or made-up token without a database read.
//! Only the SHA-256 of the whole secret is stored: a fast hash is sound here because the
//! secret is random and long, not a password a person chose.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The prefix every secret starts with.
pub const PREFIX: &str = "apk_";
const RANDOM_LEN: usize = 24;
const CHECK_LEN: usize = 4;
const BODY_CHARS: usize = 38; // base64url of RANDOM_LEN + CHECK_LEN bytes, unpadded

/// A secret API key. Its `Debug` is redacted, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Why a presented token is not a secret this service could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an API key issued by this service")]
pub struct MalformedSecret;

impl Secret {
    /// A new random secret.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut random = [0u8; RANDOM_LEN];
        getrandom::fill(&mut random)?;
        Ok(Self::from_random(random))
    }

    /// The secret built from these random bytes. Public for fixtures and demos that need a
    /// secret known in advance; production keys use [`Secret::generate`].
    pub fn from_random(random: [u8; RANDOM_LEN]) -> Self {
        let mut bytes = [0u8; RANDOM_LEN + CHECK_LEN];
        bytes[..RANDOM_LEN].copy_from_slice(&random);
        bytes[RANDOM_LEN..].copy_from_slice(&checksum(&random));
        Secret(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Checks the shape and checksum of a presented token. It says nothing about whether
    /// the key exists: that takes a lookup of its hash.
    pub fn parse(token: &str) -> Result<Self, MalformedSecret> {
        let body = token.strip_prefix(PREFIX).ok_or(MalformedSecret)?;
        if body.len() != BODY_CHARS {
            return Err(MalformedSecret);
        }
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| MalformedSecret)?;
        let (random, check) = bytes.split_at(RANDOM_LEN);
        if checksum(random) != check {
            return Err(MalformedSecret);
        }
        Ok(Secret(token.to_owned()))
    }

    /// The stored form: SHA-256 of the secret, hex.
    pub fn hash(&self) -> SecretHash {
        SecretHash(crate::digest::sha256_hex(self.0.as_bytes(), 32))
    }

    /// The last four characters, shown in key metadata as `last_four_digits`.
    pub fn last_four(&self) -> String {
        self.0[self.0.len() - 4..].to_owned()
    }

    /// The secret itself, to show once to whoever created the key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({PREFIX}…{})", self.last_four())
    }
}

/// The hex SHA-256 of a secret: what the store keeps and looks callers up by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a hash read back from the store.
    pub fn from_stored(hex: String) -> Self {
        SecretHash(hex)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes stay out of logs as well: a leaked hash still identifies a key.
        f.write_str("SecretHash(…)")
    }
}

fn checksum(random: &[u8]) -> [u8; CHECK_LEN] {
    let digest = Sha256::digest(random);
    [digest[0], digest[1], digest[2], digest[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_parse_back_and_differ() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert!(a.expose().starts_with("apk_"));
        assert_eq!(a.expose().len(), PREFIX.len() + BODY_CHARS);
        assert_eq!(Secret::parse(a.expose()), Ok(a.clone()));
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let s = Secret::from_random([7; RANDOM_LEN]);
        let text = s.expose();
        for i in PREFIX.len()..text.len() - 1 {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert_eq!(
                Secret::parse(&tampered),
                Err(MalformedSecret),
                "position {i}"
            );
        }
    }

    #[test]
    fn other_tokens_are_rejected_without_a_lookup() {
        for t in ["", "apk_", "Bearer x", "sk_live_abc", &"apk_".repeat(20)] {
            assert_eq!(Secret::parse(t), Err(MalformedSecret), "{t:?}");
        }
    }

    #[test]
    fn the_hash_is_hex_sha256_and_debug_output_hides_everything() {
        let s = Secret::from_random([1; RANDOM_LEN]);
        let h = s.hash();
        assert_eq!(h.as_str().len(), 64);
        assert!(h.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        let debug = format!("{s:?} {h:?}");
        assert!(!debug.contains(&s.expose()[4..20]));
        assert!(!debug.contains(h.as_str()));
    }
}
