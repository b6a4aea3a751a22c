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
//! - `FORBIDDEN`: the key has an IP allow-list ([`crate::allow`]) and the request's
//!   `client_ip` is outside it, or absent (never a silent pass). Decided from the credential,
//!   which copies the list: no read of its own, and nothing spent.
//! - `INSUFFICIENT_PERMISSIONS`: an active key that lacks any of the requested permissions.
//! - `RATE_LIMITED`, then `USAGE_EXCEEDED`: a key with rate limits or credits ([`meter`])
//!   has too few tokens in a window, or too few credits, for the request's `cost`. Neither
//!   spends anything.
//! - `VALID`.
//!
//! `key` is the key object (as GET shows it) for every code but `NOT_FOUND`; `owner_id`
//! beside it names the key's owner, when it has one, and `owner` what the owner has left
//! when it has credits or rate limits of its own, which every verify of its keys spends
//! from too ([`joint`]): `RATE_LIMITED` and `USAGE_EXCEEDED` are then the key's or the
//! owner's, and spend nothing on either; `meta`, the key's metadata, from the same read.
//!
//! A `VALID` verification records the key's use through the process's
//! [`crate::usage::Recorder`], as authentication does: at most once a minute per key, the
//! write running alongside the key read, waited for at most the recorder's bound.
//!
//! Lookups of the caller's own keys are cached ([`cache`]) for the caller cache's TTL. The
//! cache never answers for a key with credits or rate limits: its lookup says the key is
//! active and holds the permissions, and the spend, a write, decides the rest.
//! [`verify`] takes the store itself: the application's store is never behind the caller
//! cache (that one wraps only authentication's lookup, see [`crate::cache`]), so the verify
//! cache's entries count their age from a store read.

pub mod cache;
pub mod joint;
pub mod lease;
pub mod meter;

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::key::{ApiKey, KeyStatus, OrgId, Permission};
use crate::meta::Meta;
use crate::owner::OwnerId;
use crate::secret::{Secret, SecretHash};
use crate::store::{Credential, CredentialStore, KeyReader, OwnerSpent, QuotaStore, StoreError};
use crate::usage::{KeyUse, Recorder};
use cache::Looked;
pub use cache::{Moment, VerifyCache};
use meter::{Basis, Metered};
pub use meter::{Left, LimitLeft};

/// A parsed verify request. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    key: String,
    /// Every one must be granted; sorted, without duplicates.
    pub permissions: Vec<Permission>,
    /// What the verify spends from the key's credits and each of its rate limits
    /// (0 to [`crate::quota::MAX_COST`]; 1 unless the request says).
    pub cost: u64,
    /// The address of the calling service's client, which a key's allow-list is checked
    /// against; `None`: not given (a key with a list is then `FORBIDDEN`).
    pub client_ip: Option<IpAddr>,
}

impl fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("permissions", &self.permissions)
            .field("cost", &self.cost)
            .field("client_ip", &self.client_ip)
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
            cost: 1,
            client_ip: None,
        }
    }

    /// The same request, spending `cost`.
    pub fn costing(self, cost: u64) -> Self {
        VerifyRequest { cost, ..self }
    }

    /// The same request, from a client at `ip`.
    pub fn from_client(self, ip: Option<IpAddr>) -> Self {
        VerifyRequest {
            client_ip: ip,
            ..self
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
    Forbidden,
    InsufficientPermissions,
    RateLimited,
    UsageExceeded,
}

/// A verification: whether the key is valid, why, the key when it is the caller's, and
/// what it has left where it has credits or rate limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub valid: bool,
    pub code: VerifyCode,
    pub key: Option<ApiKey>,
    /// The credits left, whenever the key has credits.
    pub credits: Option<u64>,
    /// Each rate limit's tokens left, when the limits were checked.
    pub ratelimits: Option<Vec<LimitLeft>>,
    /// The key's owner, when it has one (the answer's top-level `owner_id`).
    pub owner_id: Option<OwnerId>,
    /// What the owner has left, when it has credits or rate limits of its own.
    pub owner: Option<Left>,
    /// The key's metadata, for the calling service ([`crate::meta`]).
    pub meta: Option<Meta>,
}

impl Verdict {
    fn not_found() -> Self {
        Verdict {
            valid: false,
            code: VerifyCode::NotFound,
            key: None,
            credits: None,
            ratelimits: None,
            owner_id: None,
            owner: None,
            meta: None,
        }
    }
}

/// Where a verification's reads and spends go: the store, the process's cache and leases,
/// and the last-use recorder.
#[derive(Clone, Copy, Debug)]
pub struct Verifier<'a, S> {
    pub store: &'a S,
    pub cache: &'a VerifyCache,
    pub usage: &'a Recorder,
}

/// Verifies `request.key()` for a caller of `caller_org`, at `now`, and records the use of
/// a `VALID` key in `usage`.
#[tracing::instrument(skip_all, fields(org = %caller_org), err(Display))]
pub async fn verify<S: CredentialStore + KeyReader + QuotaStore>(
    store: &S,
    cache: &VerifyCache,
    usage: &Recorder,
    caller_org: &OrgId,
    request: &VerifyRequest,
    now: Moment,
) -> Result<Verdict, StoreError> {
    let v = Verifier {
        store,
        cache,
        usage,
    };
    let Ok(secret) = Secret::parse(request.key()) else {
        return Ok(Verdict::not_found());
    };
    let hash = secret.hash();
    if let Some(looked) = cache.get(caller_org, &hash, now) {
        return v.cached(looked, &hash, request, now).await;
    }
    let Some(credential) = store.find_credential(&hash).await? else {
        return Ok(Verdict::not_found());
    };
    if &credential.org != caller_org {
        // Answered as a missing secret is, after the same reads.
        store.spend_as_a_miss(&hash).await?;
        return Ok(Verdict::not_found());
    }
    v.read(credential, &hash, request, now).await
}

impl<S: CredentialStore + KeyReader + QuotaStore> Verifier<'_, S> {
    /// A verification from the cache's lookup.
    async fn cached(
        &self,
        looked: Looked,
        hash: &SecretHash,
        request: &VerifyRequest,
        now: Moment,
    ) -> Result<Verdict, StoreError> {
        let code = code_of(&looked.credential, request, now.wall);
        if code != VerifyCode::Valid {
            return Ok(verdict(code, looked.key));
        }
        let org = &looked.credential.org;
        let owner = self
            .owner_of(org, looked.key.owner_id.as_ref(), now)
            .await?;
        if looked.key.quota.is_metered() || owner.is_some() {
            let basis = Basis {
                version: looked.key.version,
                quota: &looked.key.quota,
            };
            let m = self
                .meter(&looked.credential, basis, owner, request, now)
                .await?;
            if let Some(key) = &m.key {
                self.cache.note_key(&looked.credential.org, hash, key);
            }
            return Ok(self
                .metered(m, looked.key, &looked.credential, hash, now)
                .await);
        }
        record(
            self.store,
            self.cache,
            self.usage,
            &looked.credential,
            hash,
            now.wall,
        )
        .await;
        Ok(verdict(code, looked.key))
    }

    /// A verification from a credential just read: the key is read, or, for a key with
    /// credits or rate limits, read back by its spend.
    async fn read(
        &self,
        credential: Credential,
        hash: &SecretHash,
        request: &VerifyRequest,
        now: Moment,
    ) -> Result<Verdict, StoreError> {
        let code = code_of(&credential, request, now.wall);
        let owner = match code {
            VerifyCode::Valid => {
                let owner = credential.owner_id.as_ref();
                self.owner_of(&credential.org, owner, now).await?
            }
            _ => None,
        };
        if code == VerifyCode::Valid && (credential.quota.is_metered() || owner.is_some()) {
            let basis = Basis {
                version: credential.version,
                quota: &credential.quota,
            };
            let m = self.meter(&credential, basis, owner, request, now).await?;
            return self.metered_read(m, credential, hash, now).await;
        }
        let read = self.store.get_key(&credential.org, credential.key_id);
        let key = if code == VerifyCode::Valid && !credential.quota.is_metered() {
            let stamp = record_use(self.store, self.usage, &credential, hash, now.wall);
            let (key, ()) = tokio::join!(read, stamp);
            key
        } else {
            read.await
        };
        // Deleted between the two reads: as if it never was.
        let Some(key) = key? else {
            return Ok(Verdict::not_found());
        };
        if code == VerifyCode::Valid && key.quota.is_metered() {
            // The credential read missed the key's newest quota: spend by the key's.
            let basis = Basis {
                version: key.version,
                quota: &key.quota,
            };
            let m = self.meter(&credential, basis, None, request, now).await?;
            return self.metered_read(m, credential, hash, now).await;
        }
        let mut credential = credential;
        if code == VerifyCode::Valid {
            credential.last_used = credential.last_used.max(Some(now.wall));
        }
        let looked = Looked { credential, key };
        self.cache
            .put(&looked.credential.org, hash, looked.clone(), now);
        Ok(verdict(code, looked.key))
    }

    /// The owner's item, when the key's owner has credits or limits of its own: the
    /// process's copy, or read (then `true`).
    async fn owner_of(
        &self,
        org: &OrgId,
        owner: Option<&OwnerId>,
        now: Moment,
    ) -> Result<Option<(OwnerSpent, bool)>, StoreError> {
        let Some(owner) = owner else {
            return Ok(None);
        };
        if let Some(copy) = self.cache.owner(org, owner, now) {
            return Ok(copy.map(|o| (o, false)));
        }
        let read = self.store.owner_spent(org, owner).await?;
        let read = read.filter(|o| o.owner.quota.is_metered());
        self.cache.put_owner(org, owner, read.clone(), now);
        Ok(read.map(|o| (o, true)))
    }

    /// Spends the cost from the key, and from its owner's own credits and limits if any.
    async fn meter(
        &self,
        credential: &Credential,
        basis: Basis<'_>,
        owner: Option<(OwnerSpent, bool)>,
        request: &VerifyRequest,
        now: Moment,
    ) -> Result<Metered, StoreError> {
        let (org, cost) = (&credential.org, request.cost);
        let key = (org, credential.key_id);
        if let Some(owner) = owner {
            let id = owner.0.owner.id.clone();
            match joint::meter_jointly(self.store, key, basis, owner, cost, now.wall).await? {
                (Some(m), copy) => {
                    if let Some(copy) = copy {
                        self.cache.note_owner(org, &copy);
                    }
                    return Ok(m);
                }
                // The owner's item went: the key spends alone.
                (None, _) => self.cache.put_owner(org, &id, None, now),
            }
            if !basis.quota.is_metered() {
                return Ok(Metered {
                    code: VerifyCode::Valid,
                    key: None,
                    left: Left::default(),
                    owner: None,
                });
            }
        }
        let leases = self.cache.leases();
        meter::meter(self.store, leases, key, basis, cost, now.wall).await
    }

    /// A metered verification of a credential just read: the key comes from the spend, or
    /// is read when the spend wrote nothing; the lookup is cached.
    async fn metered_read(
        &self,
        m: Metered,
        credential: Credential,
        hash: &SecretHash,
        now: Moment,
    ) -> Result<Verdict, StoreError> {
        let key = match &m.key {
            Some(key) => Some(key.clone()),
            None if m.code == VerifyCode::NotFound => None,
            None => {
                self.store
                    .get_key(&credential.org, credential.key_id)
                    .await?
            }
        };
        let Some(key) = key else {
            return Ok(Verdict::not_found());
        };
        let looked = Looked {
            credential: credential.clone(),
            key: key.clone(),
        };
        self.cache.put(&credential.org, hash, looked, now);
        Ok(self.metered(m, key, &credential, hash, now).await)
    }

    /// The verdict of a metered verification, recording the use of a `VALID` key.
    async fn metered(
        &self,
        m: Metered,
        known: ApiKey,
        credential: &Credential,
        hash: &SecretHash,
        now: Moment,
    ) -> Verdict {
        if m.code == VerifyCode::NotFound {
            return Verdict::not_found();
        }
        if m.code == VerifyCode::Valid {
            record(
                self.store, self.cache, self.usage, credential, hash, now.wall,
            )
            .await;
        }
        let key = m.key.unwrap_or(known);
        Verdict {
            valid: m.code == VerifyCode::Valid,
            code: m.code,
            credits: m.left.credits,
            ratelimits: Some(m.left.ratelimits).filter(|l| !l.is_empty()),
            owner_id: key.owner_id.clone(),
            owner: m.owner,
            meta: key.meta.clone(),
            key: Some(key),
        }
    }
}

fn verdict(code: VerifyCode, key: ApiKey) -> Verdict {
    Verdict {
        valid: code == VerifyCode::Valid,
        code,
        credits: key.quota.credits.as_ref().map(|c| c.remaining),
        ratelimits: None,
        owner_id: key.owner_id.clone(),
        owner: None,
        meta: key.meta.clone(),
        key: Some(key),
    }
}

/// The code for a credential of the caller's organization.
fn code_of(credential: &Credential, request: &VerifyRequest, now: DateTime<Utc>) -> VerifyCode {
    let wanted = &request.permissions;
    match credential.status_at(now) {
        KeyStatus::Disabled => VerifyCode::Disabled,
        KeyStatus::Expired => VerifyCode::Expired,
        KeyStatus::Active
            if !crate::allow::admits(credential.allowed_cidrs.as_ref(), request.client_ip) =>
        {
            VerifyCode::Forbidden
        }
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
