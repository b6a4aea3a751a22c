//! The API, end to end: handlers on real API Gateway payloads, against DynamoDB Local.

mod auth;
mod cache;
mod errors;
mod events;
mod get;
mod isolation;
mod list;
mod logs;
mod store;
