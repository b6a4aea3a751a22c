//! apikeys: read API-key metadata for the caller's organization, from DynamoDB.
//!
//! Data flows one way: a handler binary passes the request to [`http`], which authenticates
//! the caller ([`auth`]), validates parameters ([`page`], [`key`]), reads through the
//! [`store::KeyStore`] trait (implemented on DynamoDB by [`dynamo`]), and renders a JSON body
//! or a problem ([`error`]).

pub mod auth;
pub mod cache;
pub mod client;
pub mod config;
pub mod demo;
pub mod dynamo;
pub mod error;
pub mod filter;
pub mod http;
pub mod key;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod page;
pub mod secret;
pub mod store;
pub mod telemetry;

/// What a handler needs, built once per cold start.
#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub cursors: page::CursorKeys,
}
