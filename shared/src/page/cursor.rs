//! Cursors: the position where a page stopped, with the order, direction and filters it
//! was read under, sealed with an HMAC for the caller's organization. A cursor cannot be
//! forged, altered, or followed by another organization.
//!
//! Sealing is generic over what a cursor holds and what it is for ([`Purpose`]): the audit
//! trail's event cursors are sealed here too, under a context of their own, so a cursor of
//! one kind never opens as another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Direction, Order};
use crate::error::ParamError;
use crate::key::{KeyId, OrgId};

/// What a cursor carries, for keys and events alike: the order and direction it was read
/// in, the position where the page stopped (`P`, which names its own field), and the digest
/// of the filters it was read under (absent for none). Short field names keep the token
/// short; the JSON is the one cursors have always carried, so cursors in flight keep opening.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorState<P> {
    #[serde(rename = "o")]
    pub order: Order,
    #[serde(rename = "d")]
    pub direction: Direction,
    #[serde(flatten)]
    pub position: P,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<String>,
}

/// A key list's position in a cursor: a key id, as `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPosition {
    #[serde(rename = "k")]
    pub id: KeyId,
}

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 32;

/// What a cursor is for: the context its MAC covers, so that a cursor sealed for one purpose
/// never opens for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purpose(&'static [u8]);

impl Purpose {
    /// Cursors of key lists. Its context is the one key cursors have always been sealed
    /// under, so cursors already handed out keep opening.
    pub const KEYS: Purpose = Purpose(b"apikeys/cursor/v1\0");

    /// A purpose with its own MAC context, which must differ from every other purpose's and
    /// end in a NUL byte, as the organization follows it.
    pub const fn new(context: &'static [u8]) -> Self {
        Purpose(context)
    }
}

/// The keys that sign and check cursors. The first signs; all of them verify, so a new
/// key can be put first while cursors signed with the old one keep working.
#[derive(Clone)]
pub struct CursorKeys {
    keys: Vec<Vec<u8>>,
}

/// Why the configured cursor secret cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("CURSOR_SECRET must hold one or more comma-separated secrets of at least 32 characters")]
pub struct WeakCursorSecret;

impl CursorKeys {
    pub const MIN_SECRET_LEN: usize = 32;

    /// Parses `CURSOR_SECRET`: comma-separated secrets, the signing one first.
    pub fn parse(config: &str) -> Result<Self, WeakCursorSecret> {
        let keys: Vec<Vec<u8>> = config
            .split(',')
            .map(|s| s.trim().as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() < Self::MIN_SECRET_LEN) {
            return Err(WeakCursorSecret);
        }
        Ok(CursorKeys { keys })
    }

    fn mac(key: &[u8], purpose: Purpose, org: &OrgId, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(purpose.0);
        mac.update(org.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    /// Seals `state` for `org` and `purpose` with the signing key: its JSON, then the MAC,
    /// in base64url.
    pub fn seal_for<T: Serialize>(&self, purpose: Purpose, org: &OrgId, state: &T) -> String {
        let mut bytes = serde_json::to_vec(state).expect("a cursor state always serializes");
        let tag = Self::mac(&self.keys[0], purpose, org, &bytes)
            .finalize()
            .into_bytes();
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The state `token` holds, if one of the keys sealed it for `org` and `purpose`.
    pub fn open_for<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        org: &OrgId,
        token: &str,
    ) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() <= TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        self.keys
            .iter()
            .any(|key| {
                Self::mac(key, purpose, org, payload)
                    .verify_slice(tag)
                    .is_ok()
            })
            .then(|| serde_json::from_slice(payload).ok())
            .flatten()
    }

    /// Opens `token` for `org` and `purpose`, and checks that it goes on under the `order`
    /// asked for (if any) and the same `filters`: a cursor is followed only in the order and
    /// under the filters it was made with.
    pub fn resume<P: DeserializeOwned>(
        &self,
        purpose: Purpose,
        org: &OrgId,
        token: &str,
        order: Option<Order>,
        filters: Option<&str>,
    ) -> Result<CursorState<P>, ParamError> {
        let state: CursorState<P> = self.open_for(purpose, org, token).ok_or_else(|| {
            ParamError::new(
                "cursor",
                "is not a cursor this service issued for this organization; pass next_cursor unchanged",
            )
        })?;
        if order.is_some_and(|o| o != state.order) {
            return Err(ParamError::new(
                "cursor",
                "was issued for the other order; repeat the order of the first page or omit it",
            ));
        }
        if state.filters.as_deref() != filters {
            return Err(ParamError::new(
                "cursor",
                "was issued under other filters; repeat the filters of the first page exactly",
            ));
        }
        Ok(state)
    }
}

impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CursorKeys({} keys)", self.keys.len())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    type State = CursorState<KeyPosition>;

    pub fn keys() -> CursorKeys {
        CursorKeys::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    pub fn org(s: &str) -> OrgId {
        s.parse().unwrap()
    }

    pub const ID: &str = "0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11";

    pub fn sealed(org_id: &str, order: Order) -> String {
        keys().seal_for(
            Purpose::KEYS,
            &org(org_id),
            &CursorState {
                order,
                direction: Direction::Backward,
                position: KeyPosition {
                    id: ID.parse().unwrap(),
                },
                filters: None,
            },
        )
    }

    #[test]
    fn every_bit_flip_and_truncation_of_a_cursor_is_refused() {
        let token = sealed("a", Order::Desc);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let t = URL_SAFE_NO_PAD.encode(b);
            assert!(
                keys()
                    .open_for::<State>(Purpose::KEYS, &org("a"), &t)
                    .is_none(),
                "bit {i}"
            );
        }
        for n in 0..token.len() {
            assert!(
                keys()
                    .open_for::<State>(Purpose::KEYS, &org("a"), &token[..n])
                    .is_none(),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn rotation_keeps_cursors_signed_with_the_old_secret_valid() {
        let old = sealed("a", Order::Desc);
        let rotated =
            CursorKeys::parse("ffffffffffffffffffffffffffffffff,0123456789abcdef0123456789abcdef")
                .unwrap();
        assert!(
            rotated
                .open_for::<State>(Purpose::KEYS, &org("a"), &old)
                .is_some()
        );
        let retired = CursorKeys::parse("ffffffffffffffffffffffffffffffff").unwrap();
        assert!(
            retired
                .open_for::<State>(Purpose::KEYS, &org("a"), &old)
                .is_none()
        );
    }

    #[test]
    fn key_cursors_are_sealed_under_their_original_context() {
        // Cursors handed out before sealing became generic must keep opening.
        let token = sealed("a", Order::Desc);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut mac = HmacSha256::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(b"apikeys/cursor/v1\0a\0");
        mac.update(payload);
        assert!(mac.verify_slice(tag).is_ok());
    }

    #[test]
    fn a_cursor_sealed_for_another_purpose_does_not_open() {
        let other = Purpose::new(b"apikeys/other-cursor/v1\0");
        let token = keys().seal_for(
            other,
            &org("a"),
            &CursorState {
                order: Order::Desc,
                direction: Direction::Backward,
                position: KeyPosition {
                    id: ID.parse().unwrap(),
                },
                filters: None,
            },
        );
        assert!(
            keys()
                .open_for::<State>(Purpose::KEYS, &org("a"), &token)
                .is_none()
        );
        assert!(keys().open_for::<State>(other, &org("a"), &token).is_some());
    }

    #[test]
    fn a_key_cursor_carries_the_json_it_always_has() {
        let state = State {
            order: Order::Asc,
            direction: Direction::Backward,
            position: KeyPosition {
                id: ID.parse().unwrap(),
            },
            filters: Some("1f8730f0206d3e22".into()),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"o":"a","d":"b","k":"{ID}","f":"1f8730f0206d3e22"}}"#)
        );
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
        let plain = State {
            filters: None,
            ..state
        };
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, format!(r#"{{"o":"a","d":"b","k":"{ID}"}}"#));
        assert_eq!(serde_json::from_str::<State>(&json).unwrap(), plain);
    }

    #[test]
    fn short_cursor_secrets_are_refused() {
        assert!(CursorKeys::parse("short").is_err());
        assert!(CursorKeys::parse("0123456789abcdef0123456789abcdef,").is_err());
    }
}
