//! The API, end to end: handlers on real API Gateway payloads, against DynamoDB Local.

mod audit;
mod auth;
mod authority;
mod builds;
mod cache;
mod capacity;
mod cidrs;
mod conditional;
mod cursors;
mod deadline;
mod discue;
mod errors;
mod events;
mod expiry;
mod faults;
mod filters;
mod get;
mod headers;
mod http_events;
mod http_leaks;
mod http_verify;
mod http_writes;
mod isolation;
mod last_used;
mod leaks;
mod list;
mod logs;
mod meta;
mod metering;
mod openapi;
mod owner_api;
mod owner_quota;
mod owners;
mod pages;
mod pretty;
mod publish;
mod quota;
mod quota_credits;
mod quota_input;
mod quota_refill;
mod quota_rules;
mod reads;
mod realistic;
mod secrets;
mod store;
mod template;
mod tenancy;
mod verify;
mod writes;

/// The repository's root, as the tests run rather than as they were compiled: cargo sets
/// `CARGO_MANIFEST_DIR` for a test run, while `env!` would keep the path of the clone that
/// built them, which a build cache shared between clones (CI's) may reuse at another path.
fn repo_root() -> std::path::PathBuf {
    let tests = std::env::var_os("CARGO_MANIFEST_DIR")
        .expect("run through cargo test, which sets CARGO_MANIFEST_DIR");
    std::path::PathBuf::from(tests).join("..")
}
