//! GitHub's signature on a secret scanning report: the two headers, the published public keys,
//! and the check itself (ECDSA P-256 with SHA-256 over the raw body bytes, DER signature).
//!
//! The check uses ring, the crypto library the AWS SDK's TLS stack (rustls on ring) already
//! links into every function, and rustls' key types to read the PEM: no crate is compiled for
//! it alone, and no function links a second crypto library.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use lambda_http::http::HeaderMap;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Deserialize;

/// Which of GitHub's keys signed the report (its `key_identifier`).
pub const KEY_ID_HEADER: &str = "github-public-key-identifier";
/// The base64 DER ECDSA signature of the raw body.
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// A DER ECDSA P-256 signature is at most 72 bytes, 96 characters of base64; a longer header
/// is refused before it is decoded.
const MAX_SIGNATURE_CHARS: usize = 128;
/// Longer than any key identifier a list could hold: refused before it is looked up.
const MAX_KEY_ID_CHARS: usize = 256;
/// GitHub's key identifiers are the SHA-256 of the PEM key, in hex.
const GITHUB_KEY_ID_HEX_DIGITS: usize = 64;
/// The longest INTEGER of a DER ECDSA P-256 signature: 32 bytes, and a leading zero when the
/// first is 0x80 or more.
const MAX_DER_INTEGER_BYTES: u8 = 33;

/// Why a report's signature was not accepted: always a `401`, decided before any token in the
/// body is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Github-Public-Key-Identifier header is missing")]
    MissingKeyId,
    #[error("the Github-Public-Key-Signature header is missing")]
    MissingSignature,
    #[error("the Github-Public-Key-Signature header is not a base64 DER ECDSA signature")]
    MalformedSignature,
    #[error("no GitHub secret scanning public key has this identifier")]
    UnknownKey,
    #[error("the signature does not match the body")]
    BadSignature,
}

/// The signature headers of a report, read but not yet checked.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub key_id: String,
    pub signature: Vec<u8>,
}

impl fmt::Debug for SignatureHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeaders")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Standard base64, with or without its padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl SignatureHeaders {
    /// Reads both headers (names are case-insensitive).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, SignatureError> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let key_id = text(KEY_ID_HEADER).ok_or(SignatureError::MissingKeyId)?;
        if key_id.len() > MAX_KEY_ID_CHARS {
            return Err(SignatureError::UnknownKey);
        }
        let signature = text(SIGNATURE_HEADER).ok_or(SignatureError::MissingSignature)?;
        if signature.len() > MAX_SIGNATURE_CHARS {
            return Err(SignatureError::MalformedSignature);
        }
        let signature = BASE64
            .decode(signature)
            .ok()
            .filter(|der| is_der_ecdsa_signature(der))
            .ok_or(SignatureError::MalformedSignature)?;
        Ok(SignatureHeaders {
            key_id: key_id.to_owned(),
            signature,
        })
    }
}

/// Whether `key_id` has the shape of GitHub's key identifiers: 64 hex digits (the SHA-256 of
/// the PEM key; either case is taken). Only such an identifier may make the keys be fetched
/// again ([`super::keys`]); a supplied list may name its keys otherwise (local tests do).
pub fn is_key_identifier(key_id: &str) -> bool {
    key_id.len() == GITHUB_KEY_ID_HEX_DIGITS && key_id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `der` is shaped as a DER ECDSA P-256 signature: a SEQUENCE of two INTEGERs of 1 to
/// 33 bytes each, and nothing after it. Whether the numbers are minimal and in range is left
/// to the check itself (then a [`SignatureError::BadSignature`]).
pub fn is_der_ecdsa_signature(der: &[u8]) -> bool {
    /// The bytes after one INTEGER at the start of `der`.
    fn after_integer(der: &[u8]) -> Option<&[u8]> {
        match der {
            [0x02, len, rest @ ..] if (1..=MAX_DER_INTEGER_BYTES).contains(len) => {
                rest.get(usize::from(*len)..)
            }
            _ => None,
        }
    }
    match der {
        [0x30, len, body @ ..] if usize::from(*len) == body.len() => after_integer(body)
            .and_then(after_integer)
            .is_some_and(<[u8]>::is_empty),
        _ => false,
    }
}

/// GitHub's secret scanning public keys, by identifier, parsed once.
#[derive(Clone, Default)]
pub struct PublicKeys {
    keys: HashMap<String, UnparsedPublicKey<Vec<u8>>>,
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("PublicKeys").field("ids", &ids).finish()
    }
}

/// Why a key list could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error(
        "the key list is not GitHub's format ({{\"public_keys\": [{{\"key_identifier\", \"key\", \"is_current\"}}]}}): {0}"
    )]
    Format(String),
    #[error("the key list holds no ECDSA P-256 public key in PEM")]
    NoUsableKey,
}

/// The document GitHub publishes at its secret scanning meta endpoint.
#[derive(Deserialize)]
struct KeyList {
    public_keys: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    key_identifier: String,
    key: String,
    /// Which key GitHub signs with now. Every listed key is trusted: a report signed just
    /// before a rotation still arrives signed with the previous one.
    #[serde(default)]
    #[allow(dead_code)]
    is_current: bool,
}

impl PublicKeys {
    /// Parses GitHub's key list. An entry whose key is not an ECDSA P-256 public key in PEM
    /// is skipped (GitHub may one day list another kind); a list with none usable is an error.
    pub fn parse(json: &[u8]) -> Result<Self, KeysError> {
        let list: KeyList =
            serde_json::from_slice(json).map_err(|e| KeysError::Format(e.to_string()))?;
        let mut keys = HashMap::new();
        for listed in list.public_keys {
            match parse_pem_key(&listed.key) {
                Some(key) => {
                    keys.insert(listed.key_identifier, key);
                }
                None => tracing::warn!(
                    key_id = %listed.key_identifier,
                    "skipping a GitHub public key that is not ECDSA P-256 in PEM"
                ),
            }
        }
        if keys.is_empty() {
            return Err(KeysError::NoUsableKey);
        }
        Ok(PublicKeys { keys })
    }

    pub fn contains(&self, key_id: &str) -> bool {
        self.keys.contains_key(key_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that `headers.signature` is the signature of `body` by the key `headers.key_id`.
    pub fn verify(&self, headers: &SignatureHeaders, body: &[u8]) -> Result<(), SignatureError> {
        let key = self
            .keys
            .get(&headers.key_id)
            .ok_or(SignatureError::UnknownKey)?;
        key.verify(body, &headers.signature)
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// The DER of a SubjectPublicKeyInfo of an ECDSA P-256 key, up to its point: the sequence,
/// the algorithm (id-ecPublicKey, prime256v1) and the bit string's header. What follows is
/// the uncompressed point (`04`, x, y: 65 bytes), the form ring verifies with.
pub const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An ECDSA P-256 public key in PEM (SubjectPublicKeyInfo), as GitHub publishes it; `None`
/// for anything else. The point itself is checked when a signature is verified with it.
fn parse_pem_key(pem: &str) -> Option<UnparsedPublicKey<Vec<u8>>> {
    let der = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes()).ok()?;
    let point = der.as_ref().strip_prefix(&P256_SPKI_PREFIX[..])?;
    (point.len() == 65 && point[0] == 0x04)
        .then(|| UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use apikeys_tests::github::{Signer, key_list};
    use base64::engine::general_purpose::STANDARD;
    use lambda_http::http::HeaderValue;

    fn headers(key_id: Option<&str>, signature: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(k) = key_id {
            h.insert(
                "Github-Public-Key-Identifier",
                HeaderValue::from_str(k).unwrap(),
            );
        }
        if let Some(s) = signature {
            h.insert(
                "GITHUB-PUBLIC-KEY-SIGNATURE",
                HeaderValue::from_str(s).unwrap(),
            );
        }
        h
    }

    const BODY: &[u8] =
        br#"[{"token":"apk_x","type":"apikeys_api_key","url":"","source":"content"}]"#;

    #[test]
    fn a_report_signed_by_a_listed_key_verifies_and_any_change_does_not() {
        let current = Signer::named("current");
        let previous = Signer::named("previous");
        let keys = PublicKeys::parse(key_list(&[&current, &previous]).as_bytes()).unwrap();
        assert_eq!(keys.len(), 2);
        for signer in [&current, &previous] {
            let h = SignatureHeaders::from_headers(&headers(
                Some(&signer.key_id),
                Some(&signer.sign(BODY)),
            ))
            .unwrap();
            assert_eq!(keys.verify(&h, BODY), Ok(()), "{}", signer.key_id);
            let mut changed = BODY.to_vec();
            changed[3] ^= 1;
            assert_eq!(keys.verify(&h, &changed), Err(SignatureError::BadSignature));
            // Reformatting the JSON changes the bytes: the raw body is what is signed.
            let reformatted = [BODY, b"\n"].concat();
            assert_eq!(
                keys.verify(&h, &reformatted),
                Err(SignatureError::BadSignature)
            );
        }
        // The right signature presented under the other key's identifier.
        let h = SignatureHeaders::from_headers(&headers(
            Some(&previous.key_id),
            Some(&current.sign(BODY)),
        ))
        .unwrap();
        assert_eq!(keys.verify(&h, BODY), Err(SignatureError::BadSignature));
    }

    #[test]
    fn an_unknown_identifier_is_refused() {
        let github = Signer::named("github");
        let keys = PublicKeys::parse(key_list(&[&github]).as_bytes()).unwrap();
        let forger = Signer::named("forger");
        let h = SignatureHeaders::from_headers(&headers(
            Some(&forger.key_id),
            Some(&forger.sign(BODY)),
        ))
        .unwrap();
        assert_eq!(keys.verify(&h, BODY), Err(SignatureError::UnknownKey));
    }

    #[test]
    fn missing_or_malformed_headers_are_typed_errors() {
        let sig = Signer::named("k").sign(BODY);
        let unpadded = sig.trim_end_matches('=').to_owned();
        assert_eq!(
            SignatureHeaders::from_headers(&headers(None, Some(&sig))),
            Err(SignatureError::MissingKeyId)
        );
        assert_eq!(
            SignatureHeaders::from_headers(&headers(Some("k"), None)),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            SignatureHeaders::from_headers(&headers(Some("k"), Some("  "))),
            Err(SignatureError::MissingSignature)
        );
        let der = BASE64.decode(&sig).unwrap();
        let cut_short = STANDARD.encode(&der[..der.len() - 1]);
        let trailing = STANDARD.encode([&der[..], &[0]].concat());
        // Base64 that is not DER ("not a signature"), a signature cut short or followed by
        // more bytes: not a signature, whatever the key.
        for bad in [
            "not base64!",
            &"A".repeat(200),
            "bm90IGEgc2lnbmF0dXJl",
            &cut_short,
            &trailing,
        ] {
            assert_eq!(
                SignatureHeaders::from_headers(&headers(Some("k"), Some(bad))),
                Err(SignatureError::MalformedSignature),
                "{bad}"
            );
        }
        let h = SignatureHeaders::from_headers(&headers(Some("k"), Some(&unpadded))).unwrap();
        assert_eq!(h.signature, BASE64.decode(&sig).unwrap());
        assert!(!format!("{h:?}").contains(&unpadded[..20]));
    }

    #[test]
    fn a_key_identifier_is_64_hex_digits() {
        let id = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
        assert!(is_key_identifier(id));
        assert!(is_key_identifier(&id.to_ascii_uppercase()));
        assert!(is_key_identifier(&Signer::named("g").key_id));
        for bad in [
            "",
            "apikeys-local-test-key",
            &id[..63],
            &format!("{id}0"),
            &id.replace('f', "g"),
            &format!(" {}", &id[1..]),
            &format!("{}é", &id[..62]),
        ] {
            assert!(!is_key_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn every_signature_ring_makes_is_der_and_garbage_is_not() {
        let signer = Signer::named("g");
        // About one in two has an integer with a leading zero (33 bytes), one in 256 a
        // shorter one: a few hundred signatures see every length.
        for i in 0..500u32 {
            let der = BASE64.decode(signer.sign(&i.to_be_bytes())).unwrap();
            assert!(is_der_ecdsa_signature(&der), "{der:02x?}");
        }
        assert!(is_der_ecdsa_signature(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]));
        let garbage: &[&[u8]] = &[
            &[],
            &[0x30],
            &[0x30, 0x00],
            &[0x30, 0x03, 2, 1, 1],
            &[0x30, 0x06, 2, 1, 1, 2, 1],
            &[0x30, 0x07, 2, 1, 1, 2, 1, 1, 0],
            &[0x30, 0x06, 2, 0, 2, 2, 1, 1],
            &[0x31, 0x06, 2, 1, 1, 2, 1, 1],
            &[0x30, 0x06, 4, 1, 1, 2, 1, 1],
            &[0xff; 72],
        ];
        for bad in garbage {
            assert!(!is_der_ecdsa_signature(bad), "{bad:02x?}");
        }
        let mut too_long = vec![0x30, 0x48, 2, 34];
        too_long.extend([1; 34]);
        too_long.extend([2, 34]);
        too_long.extend([1; 34]);
        assert!(!is_der_ecdsa_signature(&too_long));
    }

    #[test]
    fn garbage_signatures_are_bad_not_panics() {
        let github = Signer::named("github");
        let keys = PublicKeys::parse(key_list(&[&github]).as_bytes()).unwrap();
        for sig in [
            vec![],
            vec![0x30],
            vec![0x30, 0x06, 2, 1, 1, 2, 1, 1],
            vec![0xff; 72],
        ] {
            let h = SignatureHeaders {
                key_id: github.key_id.clone(),
                signature: sig,
            };
            assert_eq!(keys.verify(&h, BODY), Err(SignatureError::BadSignature));
        }
    }

    #[test]
    fn githubs_published_key_format_parses_and_unusable_entries_are_skipped() {
        // The shape of https://api.github.com/meta/public_keys/secret_scanning, with a key
        // GitHub's documentation shows (ECDSA P-256, SubjectPublicKeyInfo in PEM).
        let published = r#"{"public_keys":[
          {"key_identifier":"90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
           "key":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n",
           "is_current":false},
          {"key_identifier":"not-a-key","key":"hello","is_current":true}]}"#;
        let keys = PublicKeys::parse(published.as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        // Its identifier is the SHA-256 of the PEM, in hex: the shape is_key_identifier takes.
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            crate::digest::sha256_hex(pem.as_bytes(), 32),
            "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
        );
        assert!(keys.contains("90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"));
        assert!(!keys.contains("not-a-key"));

        // GitHub's documented sample: this payload, signed by that key.
        let h = SignatureHeaders::from_headers(&headers(
            Some("90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"),
            Some("MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc="),
        ))
        .unwrap();
        let payload = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
        assert_eq!(keys.verify(&h, payload), Ok(()));
        assert_eq!(
            keys.verify(&h, &payload[1..]),
            Err(SignatureError::BadSignature)
        );

        assert_eq!(
            PublicKeys::parse(br#"{"public_keys":[{"key_identifier":"x","key":"y"}]}"#)
                .unwrap_err(),
            KeysError::NoUsableKey
        );
        assert!(matches!(
            PublicKeys::parse(br#"{"keys":[]}"#),
            Err(KeysError::Format(_))
        ));
        assert!(matches!(
            PublicKeys::parse(b"<html>"),
            Err(KeysError::Format(_))
        ));
    }
}
