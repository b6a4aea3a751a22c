//! get-key with its DynamoDB client built one of the ways the cold-start measurement compares
//! (bench/README.md). `BENCH_VARIANT` chooses; each differs from `before` (the client as the
//! functions built it before: aws-config's default chain, the system's roots, rustls on
//! aws-lc) in one thing only:
//!
//! - `before`: as above. Built once more with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`, it is the
//!   jitter-entropy measurement.
//! - `ring`: rustls on ring.
//! - `trust`: the compiled-in trust store (`apikeys::client::trust_store`).
//! - `lambda-env`: the client built from the Lambda environment, not the default chain.
//!
//! The real get-key binary has all three. `no-trust` and `no-lambda-env` are get-key's
//! client less one of them (the system's roots; aws-config's default chain), which shows what
//! each is worth once the others are in place. Two more modes measure its connection warm-up
//! (`config::warm_up`), both with get-key's own client (`client::from_lambda_env`), so that
//! they differ from each other in the warm-up only:
//!
//! - `shipped`: get-key as it is, built in this package;
//! - `no-warm-up`: the same without the warm-up GetItem in init (the first request then pays
//!   the handshake).

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::config::{Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use lambda_http::{Error, Request, service_fn};

fn https(mode: CryptoMode, store: TrustStore) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::rustls(mode))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(store)
                .build()
                .unwrap_or_default(),
        )
        .build_https()
}

async fn client(variant: &str) -> Result<aws_sdk_dynamodb::Client, Error> {
    if matches!(variant, "shipped" | "no-warm-up") {
        let (timeouts, retries) = (apikeys::config::timeouts(), apikeys::config::retries());
        return Ok(apikeys::client::from_lambda_env(timeouts, retries)?);
    }
    // (ring, the compiled-in trust store, the client from the Lambda environment)
    let (ring, trust, lambda_env) = match variant {
        "before" => (false, false, false),
        "ring" => (true, false, false),
        "trust" => (false, true, false),
        "lambda-env" => (false, false, true),
        "no-trust" => (true, false, true),
        "no-lambda-env" => (true, true, false),
        other => return Err(format!("unknown BENCH_VARIANT {other}").into()),
    };
    let mode = if ring {
        CryptoMode::Ring
    } else {
        CryptoMode::AwsLc
    };
    let store = if trust {
        apikeys::client::trust_store()?
    } else {
        TrustStore::default()
    };
    let http = https(mode, store);
    if lambda_env {
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(std::env::var("AWS_REGION")?))
            .credentials_provider(EnvironmentVariableCredentialsProvider::new())
            .http_client(http)
            .timeout_config(apikeys::config::timeouts())
            .retry_config(apikeys::config::retries());
        if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
            config = config.endpoint_url(url);
        }
        return Ok(aws_sdk_dynamodb::Client::from_conf(config.build()));
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(apikeys::config::timeouts())
        .retry_config(apikeys::config::retries())
        .load()
        .await;
    Ok(aws_sdk_dynamodb::Client::new(&sdk))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    apikeys::telemetry::init();
    let ttl = apikeys::config::caller_cache_ttl()?;
    let variant = std::env::var("BENCH_VARIANT").unwrap_or_else(|_| "before".into());
    let client = client(&variant).await?;
    let table = std::env::var("TABLE_NAME")?;
    let cursors = apikeys::page::CursorKeys::parse(&std::env::var("CURSOR_SECRET")?)?;
    if variant != "no-warm-up" {
        apikeys::config::warm_up(&client, &table).await;
    }
    let app = apikeys::App {
        store: apikeys::store::dynamo::DynamoStore::new(client, table),
        callers: apikeys::cache::CallerCache::off(),
        cursors,
        usage: apikeys::usage::Recorder::default(),
    }
    .with_caller_cache(ttl);
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(apikeys::http::get_key(app, req).await)
    }))
    .await
}
