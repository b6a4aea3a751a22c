//! Authenticating callers by their API key, and checking what they may do.
//!
//! The key arrives as `Authorization: Bearer <secret>` or `X-API-KEY: <secret>`. Its shape and
//! checksum are checked first, so that garbage costs no database read; then one GetItem by
//! its hash finds the organization, the permissions and the state. The caller's organization
//! is the only one any later read may touch.

use chrono::{DateTime, Utc};
use lambda_http::http::HeaderMap;

use crate::error::{ApiError, AuthFailure};
use crate::key::{Access, KeyId, KeyStatus, OrgId, Permission};
use crate::secret::{Secret, SecretHash};
use crate::store::KeyStore;

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
pub async fn authenticate<S: KeyStore>(
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
