//! One audit event as the bus carries it: `Source` [`SOURCE`], `DetailType` `apikeys <action>`,
//! and the detail the event as `GET …/events` shows it ([`EventView`]), with its
//! organization. So nothing leaves that the API would not show: no secret, no hash.

use serde::Serialize;

use crate::audit::{Event, EventView};
use crate::key::OrgId;

/// The `Source` of every event the service publishes.
pub const SOURCE: &str = "apikeys";

/// An event for PutEvents, before the bus is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `apikeys key.created`, …
    pub detail_type: String,
    /// The JSON of the detail.
    pub detail: String,
}

#[derive(Serialize)]
struct Detail<'a> {
    organization: &'a OrgId,
    #[serde(flatten)]
    event: EventView<'a>,
}

/// The entry that publishes `event`.
pub fn entry(event: &Event) -> Result<Entry, serde_json::Error> {
    let detail = Detail {
        organization: &event.org,
        event: event.view(),
    };
    Ok(Entry {
        detail_type: format!("{SOURCE} {}", event.action),
        detail: serde_json::to_string(&detail)?,
    })
}
