//! JSON logs, one object a line, filtered by `RUST_LOG` or else `AWS_LAMBDA_LOG_LEVEL` (set
//! by the function's logging configuration), default `info`. Each line carries the request
//! span (request id, organization, caller key id). Nothing here logs headers; the runtime,
//! the SDK and the HTTP stack would log whole events and request bodies (headers with
//! secrets, keys with hashes) at trace level, so those crates are capped at debug whatever
//! level is asked for.

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

/// Crates that log payloads at trace level, and the most they may log.
const CAPS: &[&str] = &[
    "lambda_runtime=debug",
    "lambda_runtime_api_client=debug",
    "lambda_http=debug",
    "aws_smithy_runtime=debug",
    "aws_smithy_runtime_api=debug",
    "aws_smithy_http_client=debug",
    "aws_smithy_types=debug",
    "aws_sdk_dynamodb=debug",
    "aws_sigv4=debug",
    "aws_config=debug",
    "hyper=info",
    "hyper_util=info",
    "h2=info",
    "rustls=info",
];

/// The filter for `directives` (an `EnvFilter` string such as `info` or `apikeys=trace`),
/// with the payload-logging crates capped.
pub fn filter(directives: &str) -> EnvFilter {
    CAPS.iter().fold(EnvFilter::new(directives), |f, cap| {
        f.add_directive(cap.parse().expect("the caps are valid directives"))
    })
}

/// Installs the subscriber on stdout for the whole process.
pub fn init() {
    let directives = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let _ =
        tracing::subscriber::set_global_default(subscriber(filter(&directives), std::io::stdout));
}
