//! apikeys: API-key metadata for the caller's organization, in DynamoDB.
//!
//! Data flows one way: a handler binary passes the request to [`http`], which authenticates
//! the caller ([`auth`]), validates parameters ([`page`], [`key`]), reads through the
//! storage roles of [`store`] (implemented on DynamoDB by [`dynamo`]), and renders a JSON
//! body or a problem ([`error`]). Writes go through [`write`], each one transaction with
//! its event of the audit trail ([`audit`]).

pub mod audit;
pub mod auth;
pub mod cache;
pub mod config;
pub mod demo;
pub mod error;
pub mod filter;
pub mod http;
pub mod key;
pub mod page;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod write;

/// The DynamoDB store, at its historical path.
pub use store::dynamo;
/// The in-memory store, for unit tests.
#[cfg(any(test, feature = "memory"))]
pub use store::memory;

/// What a handler needs, built once per cold start.
#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub cursors: page::CursorKeys,
}
