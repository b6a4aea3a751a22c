//! Authenticating callers by their API key, and checking what they may do.
//!
//! The key arrives as `Authorization: Bearer <secret>` or `X-API-KEY: <secret>`. Its shape and
//! checksum are checked first, so that garbage costs no database read; then one GetItem by
//! its hash finds the organization, the permissions and the state. The caller's organization
//! is the only one any later read may touch.

use chrono::{DateTime, Utc};
use lambda_http::http::header::{AUTHORIZATION, AsHeaderName};
use lambda_http::http::{HeaderMap, HeaderValue};

use crate::error::AuthFailure;
use crate::key::{Access, KeyId, KeyStatus, OrgId, Permission};
use crate::secret::{Secret, SecretHash};
use crate::store::{Credential, CredentialStore, StoreError};

/// Why a request was not let through: no valid credentials, a permission its key lacks,
/// or a store that could not say.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthFailure),
    #[error("the API key lacks the {0} permission")]
    Forbidden(Permission),
    /// The key has an IP allow-list and the request comes from elsewhere (or from an
    /// address the gateway did not give).
    #[error("the API key may not be used from this address")]
    NotFromHere,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
    /// Which of the key's secrets was presented (what a write's event records).
    pub secret: crate::audit::ActingSecret,
    /// When the presented secret stops working: its key's expiry, or for a rolled-out
    /// secret the end of its grace period if that is sooner. What a write's authority is
    /// bounded by (`crate::authority`).
    pub expires: Option<DateTime<Utc>>,
    /// Its key's credits and rate limits, as its credential copies them (the credits left
    /// as of the key's last change).
    pub quota: crate::quota::Quota,
    /// The addresses its key may be used from, as its credential copies them; `None`: any.
    pub allowed_cidrs: Option<crate::allow::AllowList>,
    /// Its key's owner, as its credential copies it.
    pub owner_id: Option<crate::owner::OwnerId>,
}

impl Caller {
    /// What this caller may grant ([`crate::authority`]): its access, for as long as the
    /// secret it presented lives.
    pub fn authority(&self) -> crate::authority::Authority {
        crate::authority::Authority {
            access: self.access.clone(),
            expires: self.expires,
            quota: self.quota.clone(),
            allowed_cidrs: self.allowed_cidrs.clone(),
            owner: self.owner_id.clone(),
        }
    }

    /// Whether the caller's key may be used from `source`, the address the gateway saw the
    /// request come from (never a header a client can write, such as X-Forwarded-For).
    pub fn admit(&self, source: Option<std::net::IpAddr>) -> Result<(), AuthError> {
        if crate::allow::admits(self.allowed_cidrs.as_ref(), source) {
            Ok(())
        } else {
            Err(AuthError::NotFromHere)
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), AuthError> {
        if self.access.grants(permission) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(permission))
        }
    }
}

/// The API key the request presents, checked for shape but not yet looked up.
///
/// Which header counts:
/// - `Authorization: Bearer <key>` and `X-API-KEY: <key>` count alike; when both hold a key,
///   it must be the same key.
/// - An `Authorization` header of another scheme (`Basic`, say, from a proxy) is not ours: it
///   is ignored when `X-API-KEY` holds a key, and refused when nothing else does.
/// - A header that holds no key (`X-API-KEY:` empty, `Authorization: Bearer` alone) counts as
///   absent.
/// - A credential header sent more than once is refused, whatever its values. The function
///   sees repeats as several values, or, from an HTTP API, as one value joined with commas:
///   no key contains a comma. (A REST API hands the function only the last value; see
///   SECURITY.md.)
pub fn presented_secret(headers: &HeaderMap) -> Result<Secret, AuthFailure> {
    let token = match (authorization(headers)?, api_key_header(headers)?) {
        (Authorization::Bearer(a), Some(b)) if a != b => return Err(AuthFailure::Conflicting),
        (Authorization::Bearer(t), _) | (_, Some(t)) => t,
        (Authorization::OtherScheme, None) => return Err(AuthFailure::WrongScheme),
        (Authorization::Absent, None) => return Err(AuthFailure::Missing),
    };
    Secret::parse(token).map_err(|_| AuthFailure::Invalid)
}

/// What the `Authorization` header holds.
enum Authorization<'a> {
    Absent,
    Bearer(&'a str),
    OtherScheme,
}

fn authorization(headers: &HeaderMap) -> Result<Authorization<'_>, AuthFailure> {
    let Some(value) = only_value(headers, AUTHORIZATION, "Authorization")? else {
        return Ok(Authorization::Absent);
    };
    // Another scheme's credentials may hold any bytes: only the scheme is read from them.
    let value = value.as_bytes().trim_ascii();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(at) => (&value[..at], &value[at + 1..]),
        None => (value, &[][..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(Authorization::OtherScheme);
    }
    let token = std::str::from_utf8(rest)
        .map_err(|_| AuthFailure::Invalid)?
        .trim();
    if token.contains(',') {
        return Err(AuthFailure::Repeated("Authorization"));
    }
    Ok(if token.is_empty() {
        Authorization::Absent
    } else {
        Authorization::Bearer(token)
    })
}

fn api_key_header(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(value) = only_value(headers, "x-api-key", "X-API-KEY")? else {
        return Ok(None);
    };
    let token = value.to_str().map_err(|_| AuthFailure::Invalid)?.trim();
    if token.contains(',') {
        return Err(AuthFailure::Repeated("X-API-KEY"));
    }
    Ok((!token.is_empty()).then_some(token))
}

/// The header's value, if it is sent once; `label` names it in the refusal otherwise.
fn only_value<'h>(
    headers: &'h HeaderMap,
    name: impl AsHeaderName,
    label: &'static str,
) -> Result<Option<&'h HeaderValue>, AuthFailure> {
    let mut values = headers.get_all(name).into_iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthFailure::Repeated(label));
    }
    Ok(first)
}

/// Authenticates the request's API key at `now`.
pub async fn authenticate<S: CredentialStore>(
    store: &S,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Caller, AuthError> {
    let secret = presented_secret(headers).map_err(AuthError::Unauthenticated)?;
    let hash = secret.hash();
    let credential = store
        .find_credential(&hash)
        .await?
        .ok_or(AuthError::Unauthenticated(AuthFailure::Invalid))?;
    match credential.status_at(now) {
        KeyStatus::Active => Ok(Caller {
            secret: acting(&secret, &credential),
            org: credential.org,
            key_id: credential.key_id,
            access: credential.access,
            hash,
            last_used: credential.last_used,
            expires: credential.expires,
            quota: credential.quota,
            allowed_cidrs: credential.allowed_cidrs,
            owner_id: credential.owner_id,
        }),
        KeyStatus::Disabled => Err(refused(&credential, AuthFailure::Disabled)),
        KeyStatus::Expired => Err(refused(&credential, AuthFailure::Expired)),
    }
}

/// Which of its key's secrets `secret` is, as its credential says.
pub fn acting(secret: &Secret, credential: &Credential) -> crate::audit::ActingSecret {
    use crate::audit::{ActingSecret, WhichSecret};
    ActingSecret {
        which: if credential.previous {
            WhichSecret::Previous
        } else {
            WhichSecret::Current
        },
        last_four: secret.last_four(),
    }
}

/// The refusal of a real key that may not be used now. The client is told only that the key
/// is not valid; the request's log line names the key, its organization and the reason (the
/// `org` and `caller` fields of the request span that `http` opens).
fn refused(credential: &Credential, why: AuthFailure) -> AuthError {
    let span = tracing::Span::current();
    span.record("org", tracing::field::display(&credential.org));
    span.record("caller", tracing::field::display(&credential.key_id));
    AuthError::Unauthenticated(why)
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
    fn x_api_key_wins_over_an_authorization_header_of_another_scheme() {
        let s = Secret::from_random([3; 24]);
        let t = s.expose();
        for other in [
            "Basic dXNlcjpwYXNz",
            "Digest username=\"u\", realm=\"r\", nonce=\"n\"",
            "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=z",
            "Bearer",
        ] {
            let h = headers(&[("authorization", other), ("x-api-key", t)]);
            assert_eq!(presented_secret(&h), Ok(s.clone()), "{other}");
        }
        let mut latin1 = headers(&[("x-api-key", t)]);
        latin1.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Basic caf\xe9").unwrap(),
        );
        assert_eq!(presented_secret(&latin1), Ok(s.clone()));
    }

    #[test]
    fn a_credential_header_sent_twice_is_refused_whatever_its_values() {
        let t = Secret::from_random([3; 24]).expose().to_owned();
        let u = Secret::from_random([4; 24]).expose().to_owned();
        let bearer = |k: &str| format!("Bearer {k}");
        let cases = [
            // Two values, as a REST event's multiValueHeaders or a plain HTTP server has them.
            (
                headers(&[("x-api-key", &t), ("x-api-key", &t)]),
                "X-API-KEY",
            ),
            (
                headers(&[("x-api-key", &u), ("x-api-key", &t)]),
                "X-API-KEY",
            ),
            (
                headers(&[
                    ("authorization", &bearer(&t)),
                    ("authorization", &bearer(&t)),
                ]),
                "Authorization",
            ),
            (
                headers(&[("authorization", "Basic x"), ("authorization", &bearer(&t))]),
                "Authorization",
            ),
            // One value joined with commas, as an HTTP API event has them.
            (headers(&[("x-api-key", &format!("{u},{t}"))]), "X-API-KEY"),
            (
                headers(&[("authorization", &format!("{},{}", bearer(&t), bearer(&t)))]),
                "Authorization",
            ),
            // Refused even beside a good key in the other header.
            (
                headers(&[
                    ("authorization", &bearer(&t)),
                    ("x-api-key", &format!("{t},{t}")),
                ]),
                "X-API-KEY",
            ),
        ];
        for (h, name) in cases {
            assert_eq!(
                presented_secret(&h),
                Err(AuthFailure::Repeated(name)),
                "{h:?}"
            );
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
