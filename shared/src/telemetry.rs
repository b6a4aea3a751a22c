//! JSON logs, one object a line, filtered by `RUST_LOG` or else `AWS_LAMBDA_LOG_LEVEL` (set
//! by the function's logging configuration), default `info`. Each line carries the request
//! span (request id, organization, caller key id). Nothing logs headers, so secrets never
//! reach a log line.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The subscriber the functions use, writing to `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .with_writer(writer)
        .finish()
}

/// Installs the subscriber on stdout for the whole process.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing::subscriber::set_global_default(subscriber(filter, std::io::stdout));
}
