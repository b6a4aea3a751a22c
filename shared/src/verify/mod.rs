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
//! Lookups of the caller's own keys are cached ([`cache`]) for the caller cache's TTL. Give
//! [`verify`] the store *without* the caller cache in front: the verify cache's entries count
//! their age from the store read, which a cached credential would hide.

pub mod body;
pub mod cache;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Caller;
use crate::key::{ApiKey, KeyId, KeyStatus, KeyView, OrgId};
use crate::secret::{Secret, SecretHash};
use crate::store::{Credential, KeyStore, StoreError};
use body::VerifyRequest;
use cache::{Looked, Moment, VerifyCache};

/// The two reads a verification makes. Any [`KeyStore`] provides them.
pub trait VerifyStore: Send + Sync {
    /// Who holds the secret with this hash, if anyone.
    fn credential(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<Credential>, StoreError>> + Send;

    /// The organization's key with this id, if any.
    fn key(
        &self,
        org: &OrgId,
        id: KeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;
}

impl<S: KeyStore> VerifyStore for S {
    async fn credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        self.find_credential(hash).await
    }

    async fn key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.get_key(org, id).await
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

/// A verification: its code, and the key when it is the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub code: VerifyCode,
    pub key: Option<ApiKey>,
    /// The verified key as a caller, for recording its use: only when `VALID`.
    used: Option<Caller>,
}

/// The response body: `{"valid": bool, "code": …, "key": <key object> | null}`.
#[derive(Debug, Serialize)]
pub struct VerifyBody<'a> {
    pub valid: bool,
    pub code: VerifyCode,
    pub key: Option<KeyView<'a>>,
}

impl Verification {
    fn not_found() -> Self {
        Verification {
            code: VerifyCode::NotFound,
            key: None,
            used: None,
        }
    }

    pub fn valid(&self) -> bool {
        self.code == VerifyCode::Valid
    }

    /// The response body, with the key as it reads at `now`.
    pub fn body(&self, now: DateTime<Utc>) -> VerifyBody<'_> {
        VerifyBody {
            valid: self.valid(),
            code: self.code,
            key: self.key.as_ref().map(|k| k.view(now)),
        }
    }

    /// The verified key, for [`record_use`]: only a `VALID` verification has one.
    pub fn used(&self) -> Option<&Caller> {
        self.used.as_ref()
    }
}

/// Verifies `request.key()` for a caller of `org`, at `now`.
pub async fn verify<S: VerifyStore>(
    store: &S,
    cache: &VerifyCache,
    org: &OrgId,
    request: &VerifyRequest,
    now: Moment,
) -> Result<Verification, StoreError> {
    let Ok(secret) = Secret::parse(request.key()) else {
        return Ok(Verification::not_found());
    };
    let hash = secret.hash();
    let looked = match cache.get(org, &hash, now) {
        Some(hit) => hit,
        None => match read(store, org, &hash).await? {
            Some(looked) => {
                cache.put(org, &hash, looked.clone(), now);
                looked
            }
            None => return Ok(Verification::not_found()),
        },
    };
    Ok(decide(looked, hash, request, now.wall))
}

/// The credential, then the key if the credential is the caller organization's.
async fn read<S: VerifyStore>(
    store: &S,
    org: &OrgId,
    hash: &SecretHash,
) -> Result<Option<Looked>, StoreError> {
    let Some(credential) = store.credential(hash).await? else {
        return Ok(None);
    };
    if &credential.org != org {
        return Ok(None);
    }
    let key = store.key(org, credential.key_id).await?;
    Ok(key.map(|key| Looked { credential, key }))
}

fn decide(
    looked: Looked,
    hash: SecretHash,
    request: &VerifyRequest,
    now: DateTime<Utc>,
) -> Verification {
    let Looked { credential, key } = looked;
    let code = match credential.status_at(now) {
        KeyStatus::Disabled => VerifyCode::Disabled,
        KeyStatus::Expired => VerifyCode::Expired,
        KeyStatus::Active
            if request
                .permissions
                .iter()
                .all(|p| credential.access.grants(*p)) =>
        {
            VerifyCode::Valid
        }
        KeyStatus::Active => VerifyCode::InsufficientPermissions,
    };
    let used = (code == VerifyCode::Valid).then_some(Caller {
        org: credential.org,
        key_id: credential.key_id,
        access: credential.access,
        hash,
        last_used: credential.last_used,
    });
    Verification {
        code,
        key: Some(key),
        used,
    }
}

/// Records the use of a `VALID` verification's key at `now`, as authentication does (at
/// most once a minute; never failing), and notes it in the cache.
pub async fn record_use<S: KeyStore>(
    store: &S,
    cache: &VerifyCache,
    verification: &Verification,
    now: DateTime<Utc>,
) {
    let Some(used) = verification.used() else {
        return;
    };
    let stale_before = now - chrono::Duration::seconds(crate::auth::LAST_USED_RESOLUTION_SECS);
    if used.last_used.is_some_and(|t| t >= stale_before) {
        return;
    }
    crate::auth::record_use(store, used, now).await;
    cache.note_use(&used.org, &used.hash, now);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::key::{Access, KeyState, Permission};
    use crate::memory::MemoryStore;
    use crate::store::{NewKey, create_key_with_secret};

    /// A memory store that counts each kind of read.
    #[derive(Default)]
    struct Counting {
        store: MemoryStore,
        credential_reads: AtomicUsize,
        key_reads: AtomicUsize,
    }

    impl VerifyStore for Counting {
        async fn credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
            self.credential_reads.fetch_add(1, Ordering::SeqCst);
            self.store.find_credential(hash).await
        }
        async fn key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
            self.key_reads.fetch_add(1, Ordering::SeqCst);
            self.store.get_key(org, id).await
        }
    }

    impl Counting {
        fn reads(&self) -> (usize, usize) {
            (
                self.credential_reads.load(Ordering::SeqCst),
                self.key_reads.load(Ordering::SeqCst),
            )
        }
    }

    struct World {
        store: Counting,
        acme: OrgId,
        globex: OrgId,
    }

    impl World {
        fn new() -> Self {
            World {
                store: Counting::default(),
                acme: "acme".parse().unwrap(),
                globex: "globex".parse().unwrap(),
            }
        }

        async fn key(
            &self,
            org: &OrgId,
            seed: u8,
            access: Access,
            expires: Option<DateTime<Utc>>,
        ) -> (ApiKey, Secret) {
            let secret = Secret::from_random([seed; 24]);
            let new = NewKey {
                org: org.clone(),
                name: format!("key {seed}"),
                creator_id: uuid::Uuid::nil(),
                access,
                expires,
                id: None,
            };
            let key = create_key_with_secret(&self.store.store, new, &secret)
                .await
                .unwrap();
            (key, secret)
        }

        /// Verifies with a cache of its own (nothing cached between calls).
        async fn check(
            &self,
            org: &OrgId,
            secret: &str,
            permissions: &[Permission],
        ) -> Verification {
            let request = VerifyRequest::new(secret, permissions.to_vec());
            verify(
                &self.store,
                &VerifyCache::default(),
                org,
                &request,
                Moment::now(),
            )
            .await
            .unwrap()
        }
    }

    fn restricted(list: &[Permission]) -> Access {
        Access::new(true, list.to_vec())
    }

    #[tokio::test]
    async fn an_active_key_is_valid_with_its_object() {
        let w = World::new();
        let (key, secret) = w.key(&w.acme, 1, Access::Unrestricted, None).await;
        let v = w
            .check(&w.acme, secret.expose(), &[Permission::CallsView])
            .await;
        assert_eq!(v.code, VerifyCode::Valid);
        assert!(v.valid());
        assert_eq!(v.key.as_ref(), Some(&key));
        let used = v.used().unwrap();
        assert_eq!((used.key_id, &used.org), (key.id, &w.acme));
        let body = serde_json::to_value(v.body(Utc::now())).unwrap();
        assert_eq!(body["valid"], true);
        assert_eq!(body["code"], "VALID");
        assert_eq!(body["key"]["id"], key.id.to_string());
        assert_eq!(body["key"]["status"], "active");
        let text = body.to_string();
        assert!(!text.contains(secret.expose()) && !text.contains(secret.hash().as_str()));
    }

    #[tokio::test]
    async fn every_requested_permission_must_be_granted() {
        use Permission::*;
        let w = World::new();
        let (key, secret) = w
            .key(&w.acme, 1, restricted(&[CallsView, ToolsView]), None)
            .await;
        let s = secret.expose();
        assert_eq!(w.check(&w.acme, s, &[]).await.code, VerifyCode::Valid);
        assert_eq!(
            w.check(&w.acme, s, &[CallsView, ToolsView]).await.code,
            VerifyCode::Valid
        );
        let v = w.check(&w.acme, s, &[CallsView, CallsCreate]).await;
        assert_eq!(v.code, VerifyCode::InsufficientPermissions);
        assert!(!v.valid());
        assert_eq!(
            v.key.map(|k| k.id),
            Some(key.id),
            "the caller's key is shown"
        );
        assert!(v.used.is_none(), "only a valid verification records a use");
        let body =
            serde_json::to_value(w.check(&w.acme, s, &[ApiKeysDelete]).await.body(Utc::now()))
                .unwrap();
        assert_eq!(body["code"], "INSUFFICIENT_PERMISSIONS");
        assert_eq!(body["valid"], false);
    }

    #[tokio::test]
    async fn disabled_and_expired_keys_say_so_and_disabled_wins() {
        let w = World::new();
        let past = Some(Utc::now() - chrono::Duration::seconds(1));
        let (disabled, d) = w.key(&w.acme, 1, Access::Unrestricted, None).await;
        let (expired, e) = w.key(&w.acme, 2, Access::Unrestricted, past).await;
        let (both, b) = w.key(&w.acme, 3, Access::Unrestricted, past).await;
        for k in [&disabled, &both] {
            w.store
                .store
                .set_state(&w.acme, k.id, KeyState::Disabled, Utc::now())
                .await
                .unwrap();
        }
        let v = w.check(&w.acme, d.expose(), &[]).await;
        assert_eq!(
            (v.code, v.key.map(|k| k.id)),
            (VerifyCode::Disabled, Some(disabled.id))
        );
        let v = w.check(&w.acme, e.expose(), &[]).await;
        assert_eq!(
            (v.code, v.key.map(|k| k.id)),
            (VerifyCode::Expired, Some(expired.id))
        );
        assert_eq!(
            w.check(&w.acme, b.expose(), &[]).await.code,
            VerifyCode::Disabled
        );
        // Status outranks permissions.
        assert_eq!(
            w.check(&w.acme, e.expose(), &[Permission::BillingUpdate])
                .await
                .code,
            VerifyCode::Expired
        );
        let body =
            serde_json::to_value(w.check(&w.acme, e.expose(), &[]).await.body(Utc::now())).unwrap();
        assert_eq!(
            (body["code"].as_str(), body["key"]["status"].as_str()),
            (Some("EXPIRED"), Some("expired"))
        );
    }

    #[tokio::test]
    async fn a_malformed_secret_is_not_found_without_a_read() {
        let w = World::new();
        let (_, secret) = w.key(&w.acme, 1, Access::Unrestricted, None).await;
        let mut tampered = secret.expose().to_owned();
        tampered.pop();
        tampered.push(if secret.expose().ends_with('A') {
            'Q'
        } else {
            'A'
        });
        for token in [
            "",
            "apk_",
            "Bearer x",
            &tampered,
            &format!(" {}", secret.expose()),
        ] {
            let v = w.check(&w.acme, token, &[]).await;
            assert_eq!(v, Verification::not_found(), "{token:?}");
        }
        assert_eq!(w.store.reads(), (0, 0));
    }

    #[tokio::test]
    async fn another_organizations_key_is_indistinguishable_from_a_missing_one() {
        let w = World::new();
        let (_, foreign) = w.key(&w.globex, 1, Access::Unrestricted, None).await;
        let missing = Secret::from_random([77; 24]);
        let cache = VerifyCache::default();
        let mut answers = Vec::new();
        for secret in [&foreign, &missing, &foreign, &missing] {
            let before = w.store.reads();
            let request = VerifyRequest::new(secret.expose(), vec![]);
            let v = verify(&w.store, &cache, &w.acme, &request, Moment::now())
                .await
                .unwrap();
            let after = w.store.reads();
            let body = serde_json::to_string(&v.body(Utc::now())).unwrap();
            // The same body and the same reads: one credential read, no key read, no entry.
            answers.push((body, after.0 - before.0, after.1 - before.1));
        }
        assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
        assert_eq!(
            answers[0],
            (
                r#"{"valid":false,"code":"NOT_FOUND","key":null}"#.to_owned(),
                1,
                0
            )
        );
        assert!(cache.is_empty());

        // Even right after its owner verified it (and so cached it), another organization
        // gets the same answer at the same cost.
        let request = VerifyRequest::new(foreign.expose(), vec![]);
        let own = verify(&w.store, &cache, &w.globex, &request, Moment::now())
            .await
            .unwrap();
        assert_eq!(own.code, VerifyCode::Valid);
        let before = w.store.reads();
        let v = verify(&w.store, &cache, &w.acme, &request, Moment::now())
            .await
            .unwrap();
        assert_eq!(v, Verification::not_found());
        assert_eq!(w.store.reads().0 - before.0, 1);
    }

    #[tokio::test]
    async fn a_deleted_key_is_not_found() {
        let w = World::new();
        let (key, secret) = w.key(&w.acme, 1, Access::Unrestricted, None).await;
        w.store.store.delete_key(&w.acme, key.id).await.unwrap();
        assert_eq!(
            w.check(&w.acme, secret.expose(), &[]).await,
            Verification::not_found()
        );
    }

    #[tokio::test]
    async fn a_cached_verification_needs_no_read_until_the_ttl_passes() {
        let w = World::new();
        let (key, secret) = w.key(&w.acme, 1, Access::Unrestricted, None).await;
        let cache = VerifyCache::new(Duration::from_secs(5));
        let request = VerifyRequest::new(secret.expose(), vec![]);
        let t0 = Moment::now();
        let first = verify(&w.store, &cache, &w.acme, &request, t0)
            .await
            .unwrap();
        assert_eq!(w.store.reads(), (1, 1));
        // Disabled behind the cache's back: the documented window, then the change shows.
        w.store
            .store
            .set_state(&w.acme, key.id, KeyState::Disabled, Utc::now())
            .await
            .unwrap();
        let within = t0.plus(Duration::from_millis(4_999));
        let again = verify(&w.store, &cache, &w.acme, &request, within)
            .await
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(w.store.reads(), (1, 1), "served from the cache");
        let after = verify(
            &w.store,
            &cache,
            &w.acme,
            &request,
            t0.plus(Duration::from_secs(5)),
        )
        .await
        .unwrap();
        assert_eq!(after.code, VerifyCode::Disabled);
        assert_eq!(w.store.reads(), (2, 2));
        // Permissions are checked at every request, cached or not.
        let narrower = VerifyRequest::new(secret.expose(), vec![Permission::CallsView]);
        let v = verify(
            &w.store,
            &cache,
            &w.acme,
            &narrower,
            t0.plus(Duration::from_secs(6)),
        )
        .await
        .unwrap();
        assert_eq!(v.code, VerifyCode::Disabled);
        assert_eq!(w.store.reads(), (2, 2));
    }

    #[tokio::test]
    async fn expiry_is_computed_at_each_verification_even_from_the_cache() {
        let w = World::new();
        let t0 = Moment::now();
        let expires = t0.wall + chrono::Duration::seconds(2);
        let (_, secret) = w.key(&w.acme, 1, Access::Unrestricted, Some(expires)).await;
        let cache = VerifyCache::new(Duration::from_secs(5));
        let request = VerifyRequest::new(secret.expose(), vec![]);
        let v = verify(&w.store, &cache, &w.acme, &request, t0)
            .await
            .unwrap();
        assert_eq!(v.code, VerifyCode::Valid);
        let later = t0.plus(Duration::from_secs(3));
        let v = verify(&w.store, &cache, &w.acme, &request, later)
            .await
            .unwrap();
        assert_eq!(v.code, VerifyCode::Expired);
        assert_eq!(w.store.reads(), (1, 1), "from the cache");
    }

    #[tokio::test]
    async fn a_valid_verification_records_the_use_once_a_minute() {
        let store = MemoryStore::default();
        let org: OrgId = "acme".parse().unwrap();
        let secret = Secret::from_random([5; 24]);
        let new = NewKey {
            org: org.clone(),
            name: "k".into(),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id: None,
        };
        let key = create_key_with_secret(&store, new, &secret).await.unwrap();
        let cache = VerifyCache::new(Duration::from_secs(5));
        let request = VerifyRequest::new(secret.expose(), vec![]);
        let t0 = Moment::now();
        let v = verify(&store, &cache, &org, &request, t0).await.unwrap();
        record_use(&store, &cache, &v, t0.wall).await;
        let stored = store.get_key(&org, key.id).await.unwrap().unwrap();
        assert_eq!(stored.last_used, Some(t0.wall));
        // The cached entry knows, so the next verification within the minute writes nothing.
        let v2 = verify(
            &store,
            &cache,
            &org,
            &request,
            t0.plus(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        assert_eq!(v2.used().unwrap().last_used, Some(t0.wall));
        // Past the minute the cache holds no stamp anyone relies on: the TTL dropped it, and
        // the store is read again.
        let t1 = t0.plus(Duration::from_secs(61));
        let v3 = verify(&store, &cache, &org, &request, t1).await.unwrap();
        record_use(&store, &cache, &v3, t1.wall).await;
        let stored = store.get_key(&org, key.id).await.unwrap().unwrap();
        assert_eq!(stored.last_used, Some(t1.wall));
    }
}
