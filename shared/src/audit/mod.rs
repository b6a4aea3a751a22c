//! The audit trail: one event per change of a key, written in the change's own transaction
//! (see `crate::write`), kept for a configured number of days (DynamoDB's TTL), and listed
//! newest first with the key list's paging rules.
//!
//! - [`event`]: what an event records;
//! - [`list`]: the list parameters, filters and the page read;
//! - [`cursor`]: cursors sealed for the organization.

pub mod cursor;
pub mod event;
pub mod list;

pub use cursor::EventCursors;
pub use event::{
    ActingSecret, Action, Actor, ActorKind, Change, Changes, Event, EventId, EventView, Leak,
    UnknownAction, WhichSecret, time_value,
};
pub use list::{
    EventFilters, EventListRequest, EventPage, RawEventParams, SETTLE, list_events, settle_line,
};
