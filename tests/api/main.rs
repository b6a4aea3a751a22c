//! The API, end to end: handlers on real API Gateway payloads, against DynamoDB Local.

mod auth;
mod conditional;
mod discue;
mod errors;
mod events;
mod filters;
mod get;
mod isolation;
mod last_used;
mod list;
mod logs;
mod openapi;
mod pages;
mod pretty;
mod store;
mod template;
