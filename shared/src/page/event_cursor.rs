//! Cursors of event lists, sealed for the caller's organization with HMAC-SHA256 like the key
//! list's: one that is forged, altered, or issued to another organization does not open.
//!
//! They are keyed with the same `CURSOR_SECRET` (comma-separated; the first seals, all
//! open), under a context of their own, so an event cursor never opens as a key cursor or
//! the other way round.

use serde::{Deserialize, Serialize};

use crate::audit::EventId;
use crate::error::ParamError;
use crate::key::OrgId;
use crate::page::{CursorKeys, CursorState, Order, Purpose, WeakCursorSecret};

/// The context event cursors are sealed under.
const EVENTS: Purpose = Purpose::new(b"apikeys/event-cursor/v1\0");

/// An event list's position in a cursor (see `page::CursorState`): an event id, as `e`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPosition {
    #[serde(rename = "e")]
    pub id: EventId,
}

/// The keys that seal and open event cursors: the key lists' [`CursorKeys`], used for
/// [`EVENTS`].
#[derive(Clone, Debug)]
pub struct EventCursors(CursorKeys);

impl EventCursors {
    /// Parses `CURSOR_SECRET` as [`CursorKeys::parse`] does.
    pub fn parse(config: &str) -> Result<Self, WeakCursorSecret> {
        CursorKeys::parse(config).map(EventCursors)
    }

    /// The event cursors of these keys (a key list's cursor keys).
    pub fn new(keys: CursorKeys) -> Self {
        EventCursors(keys)
    }

    pub(crate) fn seal<T: Serialize>(&self, org: &OrgId, state: &T) -> String {
        self.0.seal_for(EVENTS, org, state)
    }

    /// The state, if the token was sealed by one of the keys for this organization.
    #[cfg(test)]
    fn open<T: serde::de::DeserializeOwned>(&self, org: &OrgId, token: &str) -> Option<T> {
        self.0.open_for(EVENTS, org, token)
    }

    /// The state of `token`, which must have been sealed for `org`, and for this `order`
    /// (if given) and these `filters` (their digest); see [`CursorKeys::resume`].
    pub(crate) fn resume(
        &self,
        org: &OrgId,
        token: &str,
        order: Option<Order>,
        filters: &str,
    ) -> Result<CursorState<EventPosition>, ParamError> {
        self.0.resume(EVENTS, org, token, order, Some(filters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> EventCursors {
        EventCursors::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn an_event_cursor_carries_the_json_it_always_has() {
        // Cursors in flight keep opening: the state's fields, their names and order.
        let id = "0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11";
        let state = CursorState {
            order: Order::Desc,
            direction: crate::page::Direction::Forward,
            position: EventPosition {
                id: id.parse().unwrap(),
            },
            filters: Some("0123456789abcdef".into()),
        };
        let json = serde_json::to_string(&state).unwrap();
        let old = format!(r#"{{"o":"d","d":"f","e":"{id}","f":"0123456789abcdef"}}"#);
        assert_eq!(json, old);
        let a: OrgId = "a".parse().unwrap();
        let token = keys().seal(&a, &state);
        let opened = keys().resume(&a, &token, None, "0123456789abcdef");
        assert_eq!(opened.unwrap(), state);
        let other = keys().resume(&a, &token, Some(Order::Asc), "0123456789abcdef");
        assert_eq!(other.unwrap_err().param, "cursor");
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
