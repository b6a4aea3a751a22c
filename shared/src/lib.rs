//! apikeys: read API-key metadata for the caller's organization, from DynamoDB.
//!
//! Data flows one way: a handler binary passes the request to [`http`], which authenticates
//! the caller ([`auth`]), validates parameters ([`page`], [`key`]), reads through the
//! [`store::KeyStore`] trait (implemented on DynamoDB by [`dynamo`]), and renders a JSON body
//! or a problem ([`error`]).
//!
//! [`verify`] checks a key for an organization's other services; [`leak`] handles GitHub's
//! secret scanning reports of keys found in public code. Both read JSON bodies through
//! [`json_body`].

pub mod auth;
pub mod cache;
pub mod config;
pub mod demo;
pub mod dynamo;
pub mod error;
pub mod filter;
pub mod http;
pub mod json_body;
pub mod key;
pub mod leak;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod page;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod verify;

/// What a handler needs, built once per cold start.
#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub cursors: page::CursorKeys,
}
