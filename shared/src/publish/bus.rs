//! Where entries go: [`Bus`], and its EventBridge implementation ([`EventBridgeBus`]), which
//! puts them on the bus `EVENT_BUS_NAME` with the functions' HTTP client (`client`).

use std::future::Future;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::entry::{Entry, SOURCE};
use crate::client::ClientError;

/// A PutEvents call that failed as a whole (nothing was put, or nothing is known to be).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BusError(pub String);

/// An event bus.
pub trait Bus {
    /// Puts `entries` (at most ten) on the bus. For each entry, in order: `None` if it was
    /// put, or the error code it was refused with.
    fn put(
        &self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<Option<String>>, BusError>> + Send;
}

/// The EventBridge bus named by `EVENT_BUS_NAME` (a name or an ARN).
#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            bus: bus.into(),
        }
    }

    /// The bus of `EVENT_BUS_NAME`, with the client of `client::eventbridge_from_lambda_env`.
    pub fn from_env() -> Result<Self, ClientError> {
        let bus = std::env::var("EVENT_BUS_NAME")
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or(ClientError::Missing("EVENT_BUS_NAME"))?;
        Ok(EventBridgeBus::new(
            crate::client::eventbridge_from_lambda_env()?,
            bus,
        ))
    }

    fn request_entry(&self, entry: &Entry) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(&entry.detail_type)
            .detail(&entry.detail)
            .event_bus_name(&self.bus)
            .build()
    }
}

impl Bus for EventBridgeBus {
    async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, BusError> {
        let out = self
            .client
            .put_events()
            .set_entries(Some(
                entries.iter().map(|e| self.request_entry(e)).collect(),
            ))
            .send()
            .await
            .map_err(|e| {
                BusError(aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string())
            })?;
        let results = out.entries();
        // An answer without one result per entry says nothing of the missing ones: refused.
        Ok((0..entries.len())
            .map(|i| match results.get(i) {
                Some(r) if r.error_code().is_none() && r.event_id().is_some() => None,
                Some(r) => Some(r.error_code().unwrap_or("NoEventId").to_owned()),
                None => Some("NoResult".to_owned()),
            })
            .collect())
    }
}
