//! `apikeys expiry-notices`: one run of the expiry notices, as the scheduled function runs
//! them (`apikeys::expiry::run`), at the present time or at `--at` (to see locally what a
//! run on that date would write). `make run` has no schedule: this is its way to run them.

use apikeys::expiry::{DEFAULT_LEAD_DAYS, MAX_LEAD_DAYS, NoticePolicy};
use apikeys::store::dynamo::DynamoStore;
use apikeys::write::WritePolicy;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::{CliError, Output};

#[derive(clap::Args)]
pub struct Notices {
    /// The run's time, RFC 3339 (default: now).
    #[arg(long, value_parser = crate::parse_time)]
    at: Option<DateTime<Utc>>,
    /// Days before a key's expiry that key.expiring is due (the stack's ExpiryNoticeLeadDays).
    #[arg(long, env = "EXPIRY_NOTICE_LEAD_DAYS", default_value_t = DEFAULT_LEAD_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LEAD_DAYS)))]
    lead_days: u32,
}

pub async fn run(
    store: &DynamoStore,
    write: WritePolicy,
    args: Notices,
    out: Output,
) -> Result<(), CliError> {
    let policy =
        NoticePolicy::new(args.lead_days, write).map_err(|e| CliError::Input(e.to_string()))?;
    let at = args.at.unwrap_or_else(Utc::now);
    let request_id = format!("cli-{}", uuid::Uuid::now_v7());
    let summary = apikeys::expiry::run(store, &policy, at, &request_id).await?;
    out.print(json!(summary), || {
        format!(
            "expiry notices at {}: {} key.expiring, {} key.expired, {} skipped{}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            summary.expiring,
            summary.expired,
            summary.skipped,
            if summary.complete {
                ""
            } else {
                " (more are due: run it again)"
            }
        )
    });
    Ok(())
}

/// `apikeys backfill-expiry`: lists in the `by-expiry` index the active keys with an expiry
/// that are not in it (written before the release that added it), so that they get their
/// notices. Safe to run again, and beside the service: a key written meanwhile is listed by
/// its write and skipped here.
pub async fn backfill(store: &DynamoStore, out: Output) -> Result<(), CliError> {
    use apikeys::store::KeyWriter;
    let unlisted = store.unlisted_expiring().await?;
    let (mut listed, mut skipped) = (0usize, 0usize);
    for (org, id) in &unlisted {
        let done = match store.key_for_write(org, *id).await? {
            Some(stored) => store.relist(&stored).await?,
            None => false,
        };
        if done {
            listed += 1;
        } else {
            skipped += 1;
        }
    }
    out.print(
        json!({"found": unlisted.len(), "listed": listed, "skipped": skipped}),
        || {
            format!(
                "backfill-expiry: {} keys with an expiry were not listed; listed {listed}, \
             {skipped} changed or gone meanwhile (their writes list them)",
                unlisted.len()
            )
        },
    );
    Ok(())
}
