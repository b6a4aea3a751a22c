//! What the audit trail needs from storage: runs of an organization's events, or of one
//! key's, within a range of event ids. Events are written by the writes (see
//! [`crate::store::KeyWriter`]), in the transaction of their change.

use std::future::Future;

use crate::audit::{Event, EventId};
use crate::key::{KeyId, OrgId};
use crate::store::StoreError;

/// An inclusive range of event ids: since UUIDv7 ids are time-ordered, a time range too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRange {
    pub first: EventId,
    pub last: EventId,
}

impl EventRange {
    pub const ALL: EventRange = EventRange {
        first: EventId::MIN,
        last: EventId::MAX,
    };

    pub fn is_empty(&self) -> bool {
        self.first > self.last
    }
}

/// Reading audit events.
pub trait AuditReader: Send + Sync {
    /// Up to `max` events of the organization (of only `key`'s, when given) whose ids lie in
    /// `range`, in ascending id order when `ascending`, else descending.
    fn read_events(
        &self,
        org: &OrgId,
        key: Option<KeyId>,
        range: EventRange,
        ascending: bool,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
}
