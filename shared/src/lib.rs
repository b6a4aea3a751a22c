//! apikeys: API-key metadata for the caller's organization, in DynamoDB.
//!
//! Data flows one way: a handler binary passes the request to [`http`], which authenticates
//! the caller ([`auth`]), validates parameters ([`page`], [`key`]), reads through the
//! storage roles of [`store`] (implemented on DynamoDB by [`store::dynamo`]), and renders a
//! JSON body or a problem ([`error`]); alongside the read, [`usage`] stamps the caller's key
//! as used. Writes go through [`write`], each one transaction with its event of the audit
//! trail ([`audit`]).
//!
//! [`verify`] checks a key for an organization's other services; [`leak`] handles GitHub's
//! secret scanning reports of keys found in public code, revoking each live key through
//! [`write`]. Both read their JSON bodies through [`request::body`].

pub mod audit;
pub mod auth;
pub mod authority;
pub mod cache;
pub mod client;
pub mod config;
pub mod deadline;
pub mod digest;
pub mod error;
pub mod filter;
pub mod http;
pub mod key;
pub mod leak;
pub mod page;
pub mod request;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod verify;
pub mod write;

/// What a handler needs, built once per cold start.
#[derive(Debug)]
pub struct App<S> {
    pub store: S,
    pub cursors: page::CursorKeys,
    /// Records callers' last uses; its back-off state lives as long as the process.
    pub usage: usage::Recorder,
}
