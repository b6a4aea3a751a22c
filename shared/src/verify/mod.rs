//! Verifying a key for an organization's other services (`POST /v1/api_key/verify`).
//!
//! The answer is `{valid, code, key}`, decided in this order:
//! - `NOT_FOUND`: the secret is malformed (decided without a read), no key holds it, or its
//!   key belongs to another organization. The last two take the same path (one credential
//!   read, nothing cached, no key read), so nothing tells them apart, not even the time.
//!   Isolation holds by construction: the credential's organization is compared with the
//!   caller's before anything of the key is read.
//! - `DISABLED`, then `EXPIRED`: the key's status now (a disabled key that also expired is
//!   `DISABLED`, as everywhere else).
//! - `INSUFFICIENT_PERMISSIONS`: an active key that lacks any of the requested permissions.
//! - `VALID`.
//!
//! `key` is the key object (as GET shows it) for every code but `NOT_FOUND`.
//!
//! A `VALID` verification records the key's use through the process's
//! [`crate::usage::Recorder`], as authentication does: at most once a minute per key, the
//! write running alongside the key read, waited for at most the recorder's bound.
//!
//! Lookups of the caller's own keys are cached ([`cache`]) for the caller cache's TTL.
//! [`verify`] takes the store itself: the application's store is never behind the caller
//! cache (that one wraps only authentication's lookup, see [`crate::cache`]), so the verify
//! cache's entries count their age from a store read.

pub mod cache;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::key::{ApiKey, KeyStatus, OrgId, Permission};
use crate::secret::{Secret, SecretHash};
use crate::store::{Credential, CredentialStore, KeyReader, StoreError};
use crate::usage::{KeyUse, Recorder};
use cache::Looked;
pub use cache::{Moment, VerifyCache};

/// A parsed verify request. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    key: String,
    /// Every one must be granted; sorted, without duplicates.
    pub permissions: Vec<Permission>,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl VerifyRequest {
    pub fn new(key: impl Into<String>, mut permissions: Vec<Permission>) -> Self {
        permissions.sort();
        permissions.dedup();
        VerifyRequest {
            key: key.into(),
            permissions,
        }
    }

    /// The key to verify, as presented.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The outcome of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    Valid,
    NotFound,
    Disabled,
    Expired,
    InsufficientPermissions,
}

/// A verification: whether the key is valid, why, and the key when it is the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    pub code: VerifyCode,
    pub key: Option<ApiKey>,
}

impl Verdict {
    fn not_found() -> Self {
        Verdict {
            valid: false,
            code: VerifyCode::NotFound,
            key: None,
        }
    }
}

/// Verifies `request.key()` for a caller of `caller_org`, at `now`, and records the use of
/// a `VALID` key in `usage`.
#[tracing::instrument(skip_all, fields(org = %caller_org), err(Display))]
pub async fn verify<S: CredentialStore + KeyReader>(
    store: &S,
    cache: &VerifyCache,
    usage: &Recorder,
    caller_org: &OrgId,
    request: &VerifyRequest,
    now: Moment,
) -> Result<Verdict, StoreError> {
    let Ok(secret) = Secret::parse(request.key()) else {
        return Ok(Verdict::not_found());
    };
    let hash = secret.hash();
    if let Some(looked) = cache.get(caller_org, &hash, now) {
        let code = code_of(&looked.credential, &request.permissions, now.wall);
        if code == VerifyCode::Valid {
            record(store, cache, usage, &looked.credential, &hash, now.wall).await;
        }
        return Ok(verdict(code, looked.key));
    }
    let Some(credential) = store.find_credential(&hash).await? else {
        return Ok(Verdict::not_found());
    };
    if &credential.org != caller_org {
        // Answered as a missing secret is, after the same reads.
        store.spend_as_a_miss(&hash).await?;
        return Ok(Verdict::not_found());
    }
    let code = code_of(&credential, &request.permissions, now.wall);
    let read = store.get_key(caller_org, credential.key_id);
    let key = if code == VerifyCode::Valid {
        let stamp = record_use(store, usage, &credential, &hash, now.wall);
        let (key, ()) = tokio::join!(read, stamp);
        key
    } else {
        read.await
    };
    // Deleted between the two reads: as if it never was.
    let Some(key) = key? else {
        return Ok(Verdict::not_found());
    };
    let mut credential = credential;
    if code == VerifyCode::Valid {
        credential.last_used = credential.last_used.max(Some(now.wall));
    }
    let looked = Looked { credential, key };
    cache.put(caller_org, &hash, looked.clone(), now);
    Ok(verdict(code, looked.key))
}

fn verdict(code: VerifyCode, key: ApiKey) -> Verdict {
    Verdict {
        valid: code == VerifyCode::Valid,
        code,
        key: Some(key),
    }
}

/// The code for a credential of the caller's organization.
fn code_of(credential: &Credential, wanted: &[Permission], now: DateTime<Utc>) -> VerifyCode {
    match credential.status_at(now) {
        KeyStatus::Disabled => VerifyCode::Disabled,
        KeyStatus::Expired => VerifyCode::Expired,
        KeyStatus::Active if wanted.iter().all(|p| credential.access.grants(*p)) => {
            VerifyCode::Valid
        }
        KeyStatus::Active => VerifyCode::InsufficientPermissions,
    }
}

/// Records a use of the verified key, as authentication records its caller's.
async fn record_use<S: CredentialStore>(
    store: &S,
    usage: &Recorder,
    credential: &Credential,
    hash: &SecretHash,
    now: DateTime<Utc>,
) {
    usage
        .record(store, &KeyUse::of(credential, hash), now)
        .await;
}

/// Records a use of a key found in the cache, and notes it there, so the next hit within
/// the minute writes nothing.
async fn record<S: CredentialStore>(
    store: &S,
    cache: &VerifyCache,
    usage: &Recorder,
    credential: &Credential,
    hash: &SecretHash,
    now: DateTime<Utc>,
) {
    let stale_before = now - chrono::Duration::seconds(crate::usage::LAST_USED_RESOLUTION_SECS);
    if credential.last_used.is_some_and(|t| t >= stale_before) {
        return;
    }
    record_use(store, usage, credential, hash, now).await;
    cache.note_use(&credential.org, hash, now);
}
