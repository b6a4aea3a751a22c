//! Cursors of event lists, sealed for the caller's organization with HMAC-SHA256 like the key
//! list's: one that is forged, altered, or issued to another organization does not open.
//!
//! They are keyed with the same `CURSOR_SECRET` (comma-separated; the first seals, all
//! open), under a context of their own, so an event cursor never opens as a key cursor or
//! the other way round.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use crate::key::OrgId;
use crate::page::{CursorKeys, WeakCursorSecret};

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 32;
const MAC_CONTEXT: &[u8] = b"apikeys/event-cursor/v1\0";

/// The keys that seal and open event cursors.
#[derive(Clone)]
pub struct EventCursors {
    keys: Vec<Vec<u8>>,
}

impl EventCursors {
    /// Parses `CURSOR_SECRET` as [`CursorKeys::parse`] does.
    pub fn parse(config: &str) -> Result<Self, WeakCursorSecret> {
        CursorKeys::parse(config)?;
        Ok(EventCursors {
            keys: config
                .split(',')
                .map(|s| s.trim().as_bytes().to_vec())
                .collect(),
        })
    }

    fn mac(key: &[u8], org: &OrgId, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(MAC_CONTEXT);
        mac.update(org.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    pub(crate) fn seal<T: Serialize>(&self, org: &OrgId, state: &T) -> String {
        let mut bytes = serde_json::to_vec(state).expect("a cursor state always serializes");
        let tag = Self::mac(&self.keys[0], org, &bytes)
            .finalize()
            .into_bytes();
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The state, if the token was sealed by one of the keys for this organization.
    pub(crate) fn open<T: DeserializeOwned>(&self, org: &OrgId, token: &str) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() <= TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        self.keys
            .iter()
            .any(|key| Self::mac(key, org, payload).verify_slice(tag).is_ok())
            .then(|| serde_json::from_slice(payload).ok())
            .flatten()
    }
}

impl std::fmt::Debug for EventCursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventCursors({} keys)", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> EventCursors {
        EventCursors::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_cursor_opens_only_for_its_organization_and_unaltered() {
        let (a, b): (OrgId, OrgId) = ("a".parse().unwrap(), "b".parse().unwrap());
        let token = keys().seal(&a, &("x", 1));
        assert_eq!(
            keys().open::<(String, u32)>(&a, &token),
            Some(("x".into(), 1))
        );
        assert_eq!(keys().open::<(String, u32)>(&b, &token), None);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut t = bytes.clone();
            t[i / 8] ^= 1 << (i % 8);
            let t = URL_SAFE_NO_PAD.encode(t);
            assert_eq!(keys().open::<(String, u32)>(&a, &t), None, "bit {i}");
        }
        assert!(EventCursors::parse("short").is_err());
    }
}
