//! `apikeys follow-events`: `make run`'s publisher. It reads the local table's stream from
//! now on and hands each batch to the publisher's use case, as Lambda hands the deployed
//! one's, with the console as the bus: each audit event is printed as EventBridge would
//! receive it, detail-type and detail.

use std::time::Duration;

use apikeys::publish::stream::{LocalStream, StreamError};
use apikeys::publish::{Bus, BusError, Entry};
use apikeys::store::dynamo::DynamoStore;

/// A bus that prints what it is given.
struct Console;

impl Bus for Console {
    async fn put(&self, entries: &[Entry]) -> Result<Vec<Option<String>>, BusError> {
        for e in entries {
            println!("make run: published {}: {}", e.detail_type, e.detail);
        }
        Ok(vec![None; entries.len()])
    }
}

/// Publishes the events written from now on, until stopped.
pub async fn follow(
    store: &DynamoStore,
    config: &aws_config::SdkConfig,
) -> Result<(), StreamError> {
    let mut stream = LocalStream::open(store, config, false).await?;
    eprintln!(
        "make run: publishing the audit events of {} to the console",
        store.table()
    );
    loop {
        if stream.pump(&Console).await?.published == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
