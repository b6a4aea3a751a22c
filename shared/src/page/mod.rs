//! Listing an organization's keys a page at a time.
//!
//! Keys are ordered by creation time, ties broken by id; with UUIDv7 ids that is id order,
//! which is the table's sort key. A page reads `limit + 1` keys so that `has_more` is
//! exact. `after`/`before` name a position (a key id, which need not exist any more); a
//! cursor is the position where a page stopped, signed for the caller's organization so it
//! cannot be forged, altered, or replayed by another tenant.
//!
//! The audit trail's event lists page the same way ([`events`]): the parameters they
//! share, the cursor state and the budgeted read loop are this module's.
//!
//! - [`params`]: the query parameters, validated into a [`ListRequest`];
//! - [`budget`]: what one request may read, whatever its parameters;
//! - [`cursor`]: sealing and opening cursors;
//! - [`runs`]: the budgeted read loop, over keys or events;
//! - [`read`]: reading a page of keys (plain, numbered or filtered) within the budget.

mod budget;
mod cursor;
pub mod event_cursor;
pub mod events;
pub mod filter;
mod params;
mod read;
mod runs;

use serde::{Deserialize, Serialize};

pub use budget::{DEFAULT_LIMIT, MAX_ITEMS_READ, MAX_LIMIT, MAX_PAGE_END, MAX_QUERIES, MIN_CHUNK};
pub use cursor::{CursorKeys, CursorState, KeyPosition, Purpose, WeakCursorSecret};
pub use event_cursor::EventCursors;
pub use events::{
    EventFilters, EventListRequest, EventPage, RawEventParams, SETTLE, list_events, settle_line,
};
pub use params::{ListRequest, RawListParams, parse_flag};
pub(crate) use params::{Shared, check_one_start};
pub use read::{Page, PageNumbers, list_keys};
pub(crate) use runs::{Runs, read_runs};

/// The requested order of a listing, by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[serde(rename = "a")]
    Asc,
    #[serde(rename = "d")]
    Desc,
}

/// Which way a page reads from its position: forward in the requested order (`after`,
/// or no position), or backward (`before`). Data is always returned in the requested order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "f")]
    Forward,
    #[serde(rename = "b")]
    Backward,
}
