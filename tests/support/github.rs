//! GitHub's side of secret scanning, for the tests: throwaway P-256 key pairs made in the
//! test, GitHub's key list document for them (what `GITHUB_SECRET_SCANNING_KEYS` holds), and
//! the signature headers of a report.

use std::sync::OnceLock;

use apikeys::leak::keys::{KeySource, NoFetch};
use apikeys::leak::signature::P256_SPKI_PREFIX;
use apikeys::leak::signature::PublicKeys;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

/// A key pair standing in for GitHub's, with its identifier.
pub struct Signer {
    pub key_id: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    /// A new key pair, made now.
    pub fn generate(key_id: &str) -> Self {
        Signer {
            key_id: key_id.to_owned(),
            pair: {
                let rng = SystemRandom::new();
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .expect("a P-256 pair");
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("the pair just made")
            },
        }
    }

    /// A new key pair whose identifier is the SHA-256 of `name` in hex: the shape of
    /// GitHub's identifiers, and one name gives one identifier (a forger may claim GitHub's).
    pub fn named(name: &str) -> Self {
        Self::generate(&apikeys::digest::sha256_hex(name.as_bytes(), 32))
    }

    /// The public key in PEM, as GitHub publishes it.
    pub fn public_pem(&self) -> String {
        let der = [&P256_SPKI_PREFIX[..], self.pair.public_key().as_ref()].concat();
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// The `Github-Public-Key-Signature` of `body`: base64 of the DER ECDSA signature.
    pub fn sign(&self, body: &[u8]) -> String {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), body)
            .expect("a signature");
        STANDARD.encode(sig.as_ref())
    }

    /// The headers of a report signed by this key: its identifier and the signature of
    /// `body`, named as GitHub sends them.
    pub fn headers(&self, body: &[u8]) -> [(&'static str, String); 2] {
        [
            ("Github-Public-Key-Identifier", self.key_id.clone()),
            ("Github-Public-Key-Signature", self.sign(body)),
        ]
    }
}

/// GitHub's key list document for these signers, the first one current.
pub fn key_list(signers: &[&Signer]) -> String {
    let keys: Vec<serde_json::Value> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "key_identifier": s.key_id,
                "key": s.public_pem(),
                "is_current": i == 0,
            })
        })
        .collect();
    serde_json::json!({ "public_keys": keys }).to_string()
}

/// The key GitHub signs the tests' reports with: made once per test binary.
pub fn github() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| Signer::generate("test-github-key"))
}

/// The keys the tests' revoke-leaked trusts, as the parameter supplies them: [`github`]'s.
pub fn key_source() -> KeySource<NoFetch> {
    let list = key_list(&[github()]);
    KeySource::fixed(PublicKeys::parse(list.as_bytes()).expect("a valid key list"))
}
