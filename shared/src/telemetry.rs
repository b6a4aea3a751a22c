//! JSON logs, one object a line, filtered by `RUST_LOG` or else `AWS_LAMBDA_LOG_LEVEL` (set
//! by the function's logging configuration), default `info`. Each line carries the request
//! span (request id, organization, caller key id). Nothing here logs headers; the runtime,
//! the SDK and the HTTP stack would log whole events and request bodies (headers with
//! secrets, keys with hashes) at trace level, so those crates are capped at debug whatever
//! level is asked for; a cap never raises a level (at `info`, the SDK's debug lines stay off).
//!
//! Metrics are log lines too: a [`MetricSink`] writes one line in CloudWatch's embedded metric
//! format per event, and CloudWatch Logs turns it into a data point (no API call, no agent).

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// The subscriber the functions use, writing to `writer`: what `filter` enables, and of the
/// payload-logging crates no more than their caps.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .with_writer(writer)
        .with_filter(filter.and(caps()));
    tracing_subscriber::registry().with(layer)
}

/// Crates that log payloads at trace level, and the most they may log. A cap only ever
/// lowers a level: it is a second filter that a line must pass too, not a directive that
/// would turn these crates' debug lines on when `info` is asked for.
const CAPS: &[(&str, LevelFilter)] = &[
    ("lambda_runtime", LevelFilter::DEBUG),
    ("lambda_runtime_api_client", LevelFilter::DEBUG),
    ("lambda_http", LevelFilter::DEBUG),
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_smithy_runtime_api", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_smithy_types", LevelFilter::DEBUG),
    ("aws_sdk_dynamodb", LevelFilter::DEBUG),
    ("aws_sigv4", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
    ("hyper", LevelFilter::INFO),
    ("hyper_util", LevelFilter::INFO),
    ("h2", LevelFilter::INFO),
    ("rustls", LevelFilter::INFO),
];

fn caps() -> Targets {
    CAPS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, (target, level)| t.with_target(*target, *level),
    )
}

/// The filter for `directives` (an `EnvFilter` string such as `info` or `apikeys=trace`).
/// [`subscriber`] applies the caps on top of it.
pub fn filter(directives: &str) -> EnvFilter {
    EnvFilter::new(directives)
}

/// Installs the subscriber on stdout for the whole process.
pub fn init() {
    let directives = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_ascii_lowercase()))
        .unwrap_or_else(|_| "info".into());
    let _ =
        tracing::subscriber::set_global_default(subscriber(filter(&directives), std::io::stdout));
}

/// The CloudWatch namespace of the service's own metrics.
pub const METRICS_NAMESPACE: &str = "apikeys";

/// Where metric lines go: stdout, which Lambda sends to CloudWatch Logs; or memory, for tests.
#[derive(Clone, Debug, Default)]
pub enum MetricSink {
    #[default]
    Stdout,
    Memory(Arc<Mutex<Vec<String>>>),
}

impl MetricSink {
    /// A sink that keeps its lines, for [`MetricSink::lines`].
    pub fn memory() -> Self {
        MetricSink::Memory(Arc::default())
    }

    /// The lines written so far (none for stdout).
    pub fn lines(&self) -> Vec<String> {
        match self {
            MetricSink::Stdout => Vec::new(),
            MetricSink::Memory(lines) => lines.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Counts one `metric` at `at`, in one log line that also carries `context` (searchable
    /// in CloudWatch Logs, not a dimension).
    pub fn count(&self, metric: &str, at: DateTime<Utc>, context: Map<String, Value>) {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
        let line = emf_count(metric, &function, at, context);
        match self {
            MetricSink::Stdout => {
                // One write of a whole line, so that it never interleaves with another line.
                let _ = std::io::stdout()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes());
            }
            MetricSink::Memory(lines) => lines.lock().unwrap_or_else(|e| e.into_inner()).push(line),
        }
    }
}

/// One line of CloudWatch embedded metric format: `metric` = 1 (unit Count) in
/// [`METRICS_NAMESPACE`], with the dimension `FunctionName`. It carries `"level": "WARN"`, so
/// that Lambda's log-level filtering keeps it at every application log level up to WARN.
fn emf_count(
    metric: &str,
    function: &str,
    at: DateTime<Utc>,
    context: Map<String, Value>,
) -> String {
    let mut line = context;
    line.insert("level".into(), json!("WARN"));
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{ "Name": metric, "Unit": "Count" }],
            }],
        }),
    );
    line.insert("FunctionName".into(), json!(function));
    line.insert(metric.into(), json!(1));
    Value::Object(line).to_string()
}

/// The error and its causes, for the log line of a 5xx.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_at(directives: &str) -> String {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = subscriber(filter(directives), move || sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "aws_smithy_runtime", "sdk debug");
            tracing::trace!(target: "aws_smithy_runtime", "sdk trace");
            tracing::info!(target: "apikeys", "app info");
            tracing::trace!(target: "apikeys", "app trace");
        });
        String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn caps_lower_levels_and_never_raise_them() {
        let info = lines_at("info");
        assert!(info.contains("app info"));
        assert!(
            !info.contains("sdk debug"),
            "info must not turn the SDK's debug lines on"
        );
        let trace = lines_at("trace");
        assert!(trace.contains("app trace") && trace.contains("sdk debug"));
        assert!(!trace.contains("sdk trace"), "the SDK is capped at debug");
    }

    #[test]
    fn a_metric_line_follows_the_embedded_metric_format() {
        let sink = MetricSink::memory();
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let mut context = Map::new();
        context.insert("reason".into(), json!("timeout"));
        sink.count("SomethingFailed", at, context);
        let lines = sink.lines();
        assert_eq!(lines.len(), 1);
        let line: Value = serde_json::from_str(&lines[0]).expect("one JSON object");
        let meta = &line["_aws"];
        assert_eq!(meta["Timestamp"], 1_700_000_000_123i64);
        let directive = &meta["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], METRICS_NAMESPACE);
        assert_eq!(directive["Metrics"][0]["Name"], "SomethingFailed");
        assert_eq!(directive["Metrics"][0]["Unit"], "Count");
        // Every metric and dimension the directive names is a member of the root, with a
        // value of the right type: a number for a metric, a string for a dimension.
        assert_eq!(line["SomethingFailed"], 1);
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(line[dimension.as_str().unwrap()].is_string(), "{line}");
        }
        assert_eq!(line["reason"], "timeout");
        assert_eq!(line["level"], "WARN");
    }
}
