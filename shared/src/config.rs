//! Configuration read once per cold start: the table, the cursor secret, the caller cache's
//! TTL, and an SDK client whose timeouts bound each DynamoDB call. The request as a whole is
//! bounded by its deadline (see `deadline`), inside the function's own timeout. The client's
//! connection is opened during init, so the first request does not pay for the handshake.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::App;
use crate::cache::{DEFAULT_TTL, MAX_TTL};
use crate::page::{CursorKeys, WeakCursorSecret};
use crate::store::dynamo::DynamoStore;

/// Connecting to DynamoDB may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// One attempt at an operation may take this long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// One operation, retries included, may take this long. A request makes up to five
/// operations one after another (authenticate, then up to four Queries for a filtered page;
/// see `page::MAX_QUERIES`), which could add up past the functions' timeout in
/// template.yaml (6 s): the request's deadline (`deadline::Deadline`, the invocation's
/// deadline less 0.5 s) cuts them off and answers 503 first.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(2000);
/// Attempts per operation, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the environment variable {0} must be set")]
    Missing(&'static str),
    #[error(transparent)]
    CursorSecret(#[from] WeakCursorSecret),
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    #[error("CALLER_CACHE_TTL_SECS must be a whole number of seconds from 0 to {}", MAX_TTL.as_secs())]
    CacheTtl,
}

/// How long an authenticated caller stays cached: `CALLER_CACHE_TTL_SECS` (0 to 60; 0 turns
/// the cache off), else [`DEFAULT_TTL`]. This is the longest time a disabled key may still
/// work (see `cache`).
pub fn caller_cache_ttl() -> Result<Duration, ConfigError> {
    match std::env::var("CALLER_CACHE_TTL_SECS") {
        Err(_) => Ok(DEFAULT_TTL),
        Ok(v) if v.is_empty() => Ok(DEFAULT_TTL),
        Ok(v) => v
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .filter(|ttl| *ttl <= MAX_TTL)
            .ok_or(ConfigError::CacheTtl),
    }
}

/// The longest the connection warm-up may hold up a cold start.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_millis(1000);

/// Opens the client's connection (DNS, TCP, TLS, credentials) with one GetItem of an item that
/// never exists. It needs no permission beyond the GetItem both functions have, costs 0.5
/// read units per cold start, and saves the first request the handshake. A failure here is
/// not an error: the first request will connect and report faults itself.
pub async fn warm_up(client: &aws_sdk_dynamodb::Client, table: &str) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let read = client
        .get_item()
        .table_name(table)
        .key(crate::store::dynamo::PK, AttributeValue::S("WARMUP".into()))
        .key(crate::store::dynamo::SK, AttributeValue::S("WARMUP".into()))
        .send();
    match tokio::time::timeout(WARM_UP_TIMEOUT, read).await {
        Ok(Ok(_)) => tracing::debug!("connection warmed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "connection warm-up failed"),
        Err(_) => tracing::warn!("connection warm-up timed out"),
    }
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The shared AWS configuration: the standard chain (profile, region, credentials,
/// `AWS_ENDPOINT_URL_DYNAMODB`), with this service's timeouts and retries.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::client::standard_http_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}

/// This service's timeouts, for every client.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// This service's retries, for every client.
pub fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

impl App<DynamoStore> {
    /// Builds the application from `TABLE_NAME`, `CURSOR_SECRET` and the Lambda environment
    /// (`client::from_lambda_env`), and warms the DynamoDB connection.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = var("TABLE_NAME")?;
        let cursors = CursorKeys::parse(&var("CURSOR_SECRET")?)?;
        let client = crate::client::from_lambda_env(timeouts(), retries())?;
        warm_up(&client, &table).await;
        Ok(App {
            store: DynamoStore::new(client, table),
            callers: crate::cache::CallerCache::off(),
            cursors,
            usage: crate::usage::Recorder::default(),
        })
    }
}

/// The store alone, from `TABLE_NAME` and the Lambda environment, its connection warmed:
/// for expiry-notices, which serves no caller, so reads no cursor secret.
pub async fn store_from_env() -> Result<DynamoStore, ConfigError> {
    let table = var("TABLE_NAME")?;
    let client = crate::client::from_lambda_env(timeouts(), retries())?;
    warm_up(&client, &table).await;
    Ok(DynamoStore::new(client, table))
}

/// `config` with one operation allowed `operation` (a tenth of it to connect, half of it per
/// attempt): for the admin CLI and the tests, which wait for a slow DynamoDB rather than
/// answer a client quickly.
pub fn patient(config: aws_config::SdkConfig, operation: Duration) -> aws_config::SdkConfig {
    config
        .into_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(operation / 10)
                .operation_attempt_timeout(operation / 2)
                .operation_timeout(operation)
                .build(),
        )
        .build()
}
