//! DynamoDB Local's stream, read as Lambda reads the deployed table's, for `make run` and the
//! tests (feature `local-stream`): each shard from its start or from now, its records handed
//! to [`publish`] as Lambda hands them, and a failed batch retried from its first failed
//! record, as Lambda retries it. Not for production: it keeps its place in memory only.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord};
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};

use super::{Bus, Outcome, publish};
use crate::store::StoreError;
use crate::store::dynamo::DynamoStore;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the table's stream: {0}")]
    Store(#[from] StoreError),
    #[error("the table has no stream, even after it was enabled")]
    NoStream,
    #[error("DynamoDB Streams: {0}")]
    Api(String),
}

fn api(e: impl std::error::Error) -> StreamError {
    StreamError::Api(aws_sdk_dynamodbstreams::error::DisplayErrorContext(e).to_string())
}

/// A reader of one table's stream, and the records read but not yet published.
pub struct LocalStream {
    client: Client,
    arn: String,
    start: ShardIteratorType,
    /// Each open shard's next iterator, and the shards read to their end.
    iterators: BTreeMap<String, String>,
    /// The last sequence number read of each shard, to renew an iterator from.
    last: BTreeMap<String, String>,
    done: BTreeSet<String>,
    pending: Vec<EventRecord>,
}

impl LocalStream {
    /// The stream of `store`'s table (enabled if it has none, as on a table `make run` kept
    /// from before), at the endpoint `AWS_ENDPOINT_URL_DYNAMODB` (DynamoDB Local serves its
    /// stream there), read from its start or only from now.
    pub async fn open(
        store: &DynamoStore,
        sdk: &SdkConfig,
        from_start: bool,
    ) -> Result<Self, StreamError> {
        if store.stream_arn().await?.is_none() {
            store.enable_stream().await?;
        }
        let arn = store.stream_arn().await?.ok_or(StreamError::NoStream)?;
        let mut config = aws_sdk_dynamodbstreams::config::Builder::from(sdk);
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            config = config.endpoint_url(url);
        }
        let start = match from_start {
            true => ShardIteratorType::TrimHorizon,
            false => ShardIteratorType::Latest,
        };
        let mut stream = LocalStream {
            client: Client::from_conf(config.build()),
            arn,
            start,
            iterators: BTreeMap::new(),
            last: BTreeMap::new(),
            done: BTreeSet::new(),
            pending: Vec::new(),
        };
        stream.find_shards().await?;
        Ok(stream)
    }

    /// An iterator for each shard not yet seen (a new shard is read from its start).
    async fn find_shards(&mut self) -> Result<(), StreamError> {
        let out = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(api)?;
        let shards = out
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.iterators.contains_key(id) || self.done.contains(id) {
                continue;
            }
            let it = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(id)
                .shard_iterator_type(self.start.clone())
                .send()
                .await
                .map_err(api)?;
            if let Some(it) = it.shard_iterator() {
                self.iterators.insert(id.to_owned(), it.to_owned());
            }
        }
        self.start = ShardIteratorType::TrimHorizon;
        Ok(())
    }

    /// The records written since the last read, shard by shard.
    async fn read(&mut self) -> Result<Vec<EventRecord>, StreamError> {
        let mut records = Vec::new();
        let mut ended = false;
        for (shard, iterator) in std::mem::take(&mut self.iterators) {
            let out = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
            {
                Ok(out) => out,
                // An iterator DynamoDB Local no longer honours (expired, or past a trim):
                // a new one, just after the last record read.
                Err(e) if renewable(&e) => {
                    let renewed = self.renew(&shard).await?;
                    let records = self.client.get_records().shard_iterator(renewed);
                    records.send().await.map_err(api)?
                }
                Err(e) => return Err(api(e)),
            };
            if let Some(seq) = out
                .records()
                .last()
                .and_then(|r| r.dynamodb()?.sequence_number())
            {
                self.last.insert(shard.clone(), seq.to_owned());
            }
            let mapped = out.records().iter().map(lambda_record);
            records.extend(mapped.filter(passes_filter));
            match out.next_shard_iterator() {
                Some(next) => {
                    self.iterators.insert(shard, next.to_owned());
                }
                None => {
                    self.done.insert(shard);
                    ended = true;
                }
            }
        }
        if ended || self.iterators.is_empty() {
            self.find_shards().await?;
        }
        Ok(records)
    }

    /// A new iterator of `shard`: after its last record read, else from its start.
    async fn renew(&self, shard: &str) -> Result<String, StreamError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard);
        let request = match self.last.get(shard) {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = request.send().await.map_err(api)?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| StreamError::Api(format!("no iterator for shard {shard}")))
    }

    /// One round: the records left by a failed round and those written since, published;
    /// from the first that failed, they are kept for the next round.
    pub async fn pump(&mut self, bus: &impl Bus) -> Result<Outcome, StreamError> {
        let new = self.read().await?;
        self.pending.extend(new);
        let outcome = publish(bus, &self.pending).await;
        let keep = match &outcome.failed_from {
            Some(seq) => self
                .pending
                .iter()
                .position(|r| r.change.sequence_number.as_ref() == Some(seq))
                .unwrap_or(0),
            None => self.pending.len(),
        };
        self.pending.drain(..keep);
        Ok(outcome)
    }

    /// The records waiting for a retry.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Whether GetRecords failed on its iterator, which a new one mends.
fn renewable(
    e: &aws_sdk_dynamodbstreams::error::SdkError<
        aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError,
    >,
) -> bool {
    e.as_service_error()
        .is_some_and(|e| e.is_expired_iterator_exception() || e.is_trimmed_data_access_exception())
}

/// Whether the stream mapping's FilterCriteria (template.yaml) lets `record` through: an
/// INSERT whose sort key begins with `EVENT#`, or a MODIFY of a key item (`KEY#`) that has
/// credits after it.
fn passes_filter(record: &EventRecord) -> bool {
    let sk = match record.change.keys.get(crate::store::dynamo::SK) {
        Some(serde_dynamo::AttributeValue::S(sk)) => sk.as_str(),
        _ => return false,
    };
    match record.event_name.as_str() {
        "INSERT" => sk.starts_with("EVENT#"),
        "MODIFY" => {
            let credits = record.change.new_image.get("credits_remaining");
            sk.starts_with("KEY#") && matches!(credits, Some(serde_dynamo::AttributeValue::N(_)))
        }
        _ => false,
    }
}

/// A record as Lambda's event source mapping delivers it.
fn lambda_record(record: &Record) -> EventRecord {
    let mut change = StreamRecord::default();
    if let Some(r) = record.dynamodb() {
        change.sequence_number = r.sequence_number().map(str::to_owned);
        change.size_bytes = r.size_bytes().unwrap_or_default();
        change.keys = r.keys().cloned().unwrap_or_default().into();
        change.new_image = r.new_image().cloned().unwrap_or_default().into();
        change.old_image = r.old_image().cloned().unwrap_or_default().into();
        if let Some(at) = r.approximate_creation_date_time() {
            let at = chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos());
            change.approximate_creation_date_time = at.unwrap_or_default();
        }
    }
    let mut out = EventRecord::default();
    out.event_id = record.event_id().unwrap_or_default().to_owned();
    out.event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    out.aws_region = record.aws_region().unwrap_or_default().to_owned();
    out.change = change;
    out
}
