//! Authenticating callers by their API key, and checking what they may do.
//!
//! The key arrives as `Authorization: Bearer <secret>` or `X-API-KEY: <secret>`. Its shape and
//! checksum are checked first, so that garbage costs no database read; then one GetItem by
//! its hash finds the organization, the permissions and the state. The caller's organization
//! is the only one any later read may touch.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderMap;

use crate::error::{ApiError, AuthFailure};
use crate::key::{Access, KeyId, KeyStatus, OrgId, Permission};
use crate::secret::{Secret, SecretHash};
use crate::store::CredentialStore;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub key_id: KeyId,
    pub access: Access,
    /// The hash of the presented secret: where the credential item lives. Its `Debug` is
    /// redacted.
    pub hash: SecretHash,
    /// When the key was last used, as its credential says.
    pub last_used: Option<DateTime<Utc>>,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.access.grants(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(permission))
        }
    }
}

/// The API key the request presents, checked for shape but not yet looked up.
pub fn presented_secret(headers: &HeaderMap) -> Result<Secret, AuthFailure> {
    let bearer = match headers.get(lambda_http::http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| AuthFailure::Invalid)?.trim();
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthFailure::WrongScheme);
            }
            Some(token.trim())
        }
    };
    let api_key = match headers.get("x-api-key") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| AuthFailure::Invalid)?.trim()),
    };
    let token = match (bearer, api_key) {
        (None, None) => return Err(AuthFailure::Missing),
        (Some(a), Some(b)) if a != b => return Err(AuthFailure::Conflicting),
        (Some(t), _) | (None, Some(t)) => t,
    };
    if token.is_empty() {
        return Err(AuthFailure::Missing);
    }
    Secret::parse(token).map_err(|_| AuthFailure::Invalid)
}

/// Authenticates the request's API key at `now`.
pub async fn authenticate<S: CredentialStore>(
    store: &S,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, ApiError> {
    let secret = presented_secret(headers).map_err(ApiError::Unauthenticated)?;
    let hash = secret.hash();
    let credential = store
        .find_credential(&hash)
        .await?
        .ok_or(ApiError::Unauthenticated(AuthFailure::Invalid))?;
    match credential.status_at(now) {
        KeyStatus::Active => Ok(Caller {
            org: credential.org,
            key_id: credential.key_id,
            access: credential.access,
            hash,
            last_used: credential.last_used,
        }),
        KeyStatus::Disabled => Err(ApiError::Unauthenticated(AuthFailure::Disabled)),
        KeyStatus::Expired => Err(ApiError::Unauthenticated(AuthFailure::Expired)),
    }
}

/// How precisely `last_used_date` is kept: a key used again within this many seconds of its
/// recorded last use is not written again.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

static LAST_USED_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many times recording a key's use has failed in this process.
pub fn last_used_failures() -> u64 {
    LAST_USED_FAILURES.load(Ordering::Relaxed)
}

/// Records that the caller's key was used at `now`, at most once per
/// [`LAST_USED_RESOLUTION_SECS`]: nothing is written when the credential says the key was
/// used more recently than that. Never fails: a failure is counted and logged, and the
/// request goes on.
pub async fn record_use<S: CredentialStore>(store: &S, caller: &Caller, now: DateTime<Utc>) {
    let stale_before = now - chrono::Duration::seconds(LAST_USED_RESOLUTION_SECS);
    if caller.last_used.is_some_and(|t| t >= stale_before) {
        return;
    }
    if let Err(err) = store
        .record_use(&caller.org, caller.key_id, &caller.hash, now, stale_before)
        .await
    {
        let failures = LAST_USED_FAILURES.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(error = %err, failures, "could not record the key's last use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyReader;
    use lambda_http::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn both_headers_are_accepted_and_the_scheme_is_case_insensitive() {
        let s = Secret::from_random([3; 24]);
        let t = s.expose();
        for h in [
            headers(&[("authorization", &format!("Bearer {t}"))]),
            headers(&[("authorization", &format!("bearer  {t} "))]),
            headers(&[("x-api-key", t)]),
            headers(&[("x-api-key", t), ("authorization", &format!("Bearer {t}"))]),
        ] {
            assert_eq!(presented_secret(&h), Ok(s.clone()));
        }
    }

    #[test]
    fn bad_credentials_are_told_apart() {
        let t = Secret::from_random([3; 24]).expose().to_owned();
        let u = Secret::from_random([4; 24]).expose().to_owned();
        let cases = [
            (headers(&[]), AuthFailure::Missing),
            (
                headers(&[("authorization", "Bearer")]),
                AuthFailure::Missing,
            ),
            (headers(&[("x-api-key", "")]), AuthFailure::Missing),
            (
                headers(&[("authorization", &format!("Basic {t}"))]),
                AuthFailure::WrongScheme,
            ),
            (
                headers(&[("authorization", "Bearer apk_nope")]),
                AuthFailure::Invalid,
            ),
            (
                headers(&[("authorization", &format!("Bearer {t}")), ("x-api-key", &u)]),
                AuthFailure::Conflicting,
            ),
        ];
        for (h, want) in cases {
            assert_eq!(presented_secret(&h), Err(want), "{h:?}");
        }
    }

    async fn store_with_key() -> (crate::memory::MemoryStore, crate::key::ApiKey, Secret) {
        let store = crate::memory::MemoryStore::default();
        let new = crate::store::NewKey {
            org: "o".parse().unwrap(),
            name: "k".into(),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id: None,
        };
        let (key, secret) = crate::store::create_key(&store, new).await.unwrap();
        (store, key, secret)
    }

    fn caller(
        key: &crate::key::ApiKey,
        secret: &Secret,
        last_used: Option<DateTime<Utc>>,
    ) -> Caller {
        Caller {
            org: key.org.clone(),
            key_id: key.id,
            access: key.access.clone(),
            hash: secret.hash(),
            last_used,
        }
    }

    async fn last_used(
        store: &crate::memory::MemoryStore,
        key: &crate::key::ApiKey,
    ) -> Option<DateTime<Utc>> {
        store
            .get_key(&key.org, key.id)
            .await
            .unwrap()
            .unwrap()
            .last_used
    }

    #[tokio::test]
    async fn a_use_is_recorded_at_most_once_a_minute() {
        let (store, key, secret) = store_with_key().await;
        let now = Utc::now();
        record_use(&store, &caller(&key, &secret, None), now).await;
        assert_eq!(last_used(&store, &key).await, Some(now));

        // The credential says it was used 59 s ago: no write, even though the store could.
        let later = now + chrono::Duration::seconds(30);
        let recent = caller(&key, &secret, Some(later - chrono::Duration::seconds(59)));
        record_use(&store, &recent, later).await;
        assert_eq!(last_used(&store, &key).await, Some(now));

        // A stale credential (a cache, say) still cannot make the store write twice a minute.
        record_use(&store, &caller(&key, &secret, None), later).await;
        assert_eq!(last_used(&store, &key).await, Some(now));

        let much_later = now + chrono::Duration::seconds(61);
        record_use(&store, &caller(&key, &secret, Some(now)), much_later).await;
        assert_eq!(last_used(&store, &key).await, Some(much_later));
    }

    #[tokio::test]
    async fn a_failed_record_is_counted_and_does_not_propagate() {
        let (store, key, secret) = store_with_key().await;
        store
            .fail_record_use
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let before = last_used_failures();
        record_use(&store, &caller(&key, &secret, None), Utc::now()).await;
        assert!(last_used_failures() > before);
        assert_eq!(last_used(&store, &key).await, None);
    }
}
