//! apikeys: API-key metadata for the caller's organization, in DynamoDB.
//!
//! Edge on top, domain below; each layer imports only the layers below it
//! (`tools/check-structure.py` checks it):
//! - the edge, [`http`]: routing, content negotiation, request bodies ([`http::body`]), the
//!   JSON views, and the one map from every domain error to a status and a problem
//!   ([`http::problem`]); [`config`] builds an [`App`] once per cold start;
//! - the use cases: the writes ([`write`]), [`verify`], leaked keys ([`leak`]), listing keys
//!   and events ([`page`]), recording last uses ([`usage`]), the expiry notices ([`expiry`]),
//!   publishing the audit trail ([`publish`]);
//! - who is calling ([`auth`]) and the credential cache ([`cache`]);
//! - the store's roles ([`store`], on DynamoDB in [`store::dynamo`]);
//! - the model: keys ([`key`]), their owners ([`owner`]), metadata ([`meta`]) and IP allow-lists ([`allow`]), what they may use ([`quota`]), secrets ([`secret`]), events ([`audit`]), the authority rule
//!   ([`authority`]) and the errors a client may see ([`error`]);
//! - utilities: [`digest`], [`telemetry`], the DynamoDB [`client`], the request's
//!   [`deadline`].

pub mod allow;
pub mod audit;
pub mod auth;
pub mod authority;
pub mod cache;
pub mod client;
pub mod config;
pub mod deadline;
pub mod digest;
pub mod error;
pub mod expiry;
pub mod http;
pub mod key;
pub mod leak;
pub mod meta;
pub mod owner;
pub mod page;
pub mod publish;
pub mod quota;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod verify;
pub mod write;

/// What a handler needs, built once per cold start.
#[derive(Debug)]
pub struct App<S> {
    /// The store, never behind a cache: every read, write and verification sees it as it is.
    pub store: S,
    /// The credentials of recent callers, which only authentication reads through
    /// ([`cache::CallerCache::over`]). Off unless [`App::with_caller_cache`] turns it on.
    pub callers: cache::CallerCache,
    pub cursors: page::CursorKeys,
    /// Records callers' last uses; its back-off state lives as long as the process.
    pub usage: usage::Recorder,
}

impl<S> App<S> {
    /// The same application with its callers cached for `ttl` (see [`cache`]).
    pub fn with_caller_cache(self, ttl: std::time::Duration) -> Self {
        App {
            callers: cache::CallerCache::new(ttl),
            ..self
        }
    }
}
