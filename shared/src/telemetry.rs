//! JSON logs on stdout, one object a line, filtered by `RUST_LOG` or else
//! `AWS_LAMBDA_LOG_LEVEL` (set by the function's logging configuration), default `info`.
//! Nothing here logs headers, so secrets never reach a log line.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .init();
}
