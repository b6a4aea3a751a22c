//! The API, end to end: handlers on real API Gateway payloads, against DynamoDB Local.

mod audit;
mod auth;
mod cache;
mod conditional;
mod cursors;
mod discue;
mod errors;
mod events;
mod faults;
mod filters;
mod get;
mod headers;
mod isolation;
mod last_used;
mod list;
mod logs;
mod openapi;
mod pages;
mod pretty;
mod secrets;
mod store;
mod template;
mod tenancy;
mod writes;
