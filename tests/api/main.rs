//! The API, end to end: handlers on real API Gateway payloads, against DynamoDB Local.

mod auth;
mod cursors;
mod errors;
mod events;
mod faults;
mod get;
mod headers;
mod isolation;
mod list;
mod logs;
mod secrets;
mod store;
mod tenancy;
