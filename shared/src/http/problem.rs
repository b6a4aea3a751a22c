//! One error type for the API, and the one place it becomes an HTTP status and a problem.
//!
//! Every non-2xx response is `application/problem+json` (RFC 9457) with `type`, `title`,
//! `status`, `detail` and `request_id`. `title` is the status's reason phrase, so the body is
//! also what clients of `{title, status}` error bodies expect. Internal causes are logged by
//! the caller of [`ApiError::problem`] and never appear in a body.

use lambda_http::http::StatusCode;
use serde::Serialize;

use crate::auth::AuthError;
use crate::error::{AuthFailure, ParamError, redact_secrets};
use crate::leak::keys::VerifyError;
use crate::store::StoreError;
use crate::write::{InvalidWrite, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid parameter {0}")]
    Invalid(#[from] ParamError),
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthFailure),
    #[error("the API key lacks the {0} permission")]
    Forbidden(crate::key::Permission),
    /// The caller's key has an IP allow-list that the request's source address is not in.
    /// The problem names neither the address nor the list.
    #[error("the API key may not be used from this address")]
    NotFromHere,
    #[error("API key not found")]
    NotFound,
    /// No owner with this id has credits or rate limits set in the caller's organization.
    #[error("owner not found")]
    OwnerNotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    #[error("the Accept header excludes JSON")]
    NotAcceptable,
    /// A field of a JSON request body: unknown, repeated, of the wrong type or out of range.
    #[error("invalid body field {0}")]
    InvalidField(ParamError),
    /// A request header failed validation (`Idempotency-Key`).
    #[error("invalid header {}: {}", .0.param, .0.reason)]
    InvalidHeader(ParamError),
    /// The body is not JSON; the text says where it broke.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The body is larger than the endpoint takes (measured after base64 decoding).
    #[error("body of {size} bytes over the limit of {limit}")]
    PayloadTooLarge { size: usize, limit: usize },
    /// The body's Content-Type is not one the endpoint takes; `accepted` names those.
    #[error("unsupported Content-Type {got:?}")]
    UnsupportedMediaType {
        accepted: &'static str,
        got: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A body holding more entries than the endpoint takes (a secret scanning report).
    #[error("body of {count} entries over the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    /// A secret scanning report whose signature was refused (401).
    #[error("bad signature: {0}")]
    Signature(#[from] crate::leak::signature::SignatureError),
    /// GitHub's signing keys could not be fetched (503 + Retry-After).
    #[error("GitHub's public keys are unavailable")]
    KeysUnavailable,
    /// A write that did not happen (see [`WriteError`]); a store failure inside it is
    /// rendered as [`ApiError::Store`] is.
    #[error(transparent)]
    Write(WriteError),
}

impl From<crate::deadline::DeadlinePassed> for ApiError {
    fn from(passed: crate::deadline::DeadlinePassed) -> Self {
        ApiError::Store(passed.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(why) => ApiError::Unauthenticated(why),
            AuthError::Forbidden(permission) => ApiError::Forbidden(permission),
            AuthError::NotFromHere => ApiError::NotFromHere,
            AuthError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Signature(s) => ApiError::Signature(s),
            VerifyError::KeysUnavailable => ApiError::KeysUnavailable,
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound => ApiError::NotFound,
            WriteError::Store(s) => ApiError::Store(s),
            WriteError::Invalid(InvalidWrite::Access(why)) => {
                ApiError::InvalidField(ParamError::new("permissions", why))
            }
            WriteError::Invalid(InvalidWrite::Meta(why)) => {
                ApiError::InvalidField(ParamError::new("meta", why.to_string()))
            }
            other => ApiError::Write(other),
        }
    }
}

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// An RFC 9457 problem body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub request_id: String,
    /// The parameter or body field at fault, for 422s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::NotFromHere => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::OwnerNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::InvalidField(_) | ApiError::InvalidHeader(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooManyEntries { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Signature(_) => StatusCode::UNAUTHORIZED,
            ApiError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Write(e) => match e {
                WriteError::NotFound => StatusCode::NOT_FOUND,
                // If-Match named another version.
                WriteError::VersionMismatch => StatusCode::PRECONDITION_FAILED,
                WriteError::Conflict => StatusCode::CONFLICT,
                // The draft standard for Idempotency-Key (draft-ietf-httpapi-idempotency-key-
                // header, section 2.7): a key reused with another payload is a 422.
                WriteError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
                // The authority rule (crate::authority).
                WriteError::Refused(_) => StatusCode::FORBIDDEN,
                // The key's state forbids it until it is rolled.
                WriteError::LeakedSecret => StatusCode::CONFLICT,
                // The key's credits do not allow the adjustment.
                WriteError::NoCredits | WriteError::TooFewCredits(_) => StatusCode::CONFLICT,
                WriteError::Invalid(InvalidWrite::NoSecretKeys) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                WriteError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                WriteError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
                WriteError::Store(StoreError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The problem body a client sees. Store errors get a fixed text, never their cause.
    pub fn problem(&self, request_id: &str) -> Problem {
        let status = self.status();
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            request_id: request_id.to_owned(),
            parameter: self.parameter(),
        }
    }

    /// The `detail` of the problem: what went wrong, and what to do about it.
    fn detail(&self) -> String {
        match self {
            ApiError::Invalid(p) => format!("query or path parameter {:?} {}", p.param, p.reason),
            ApiError::Unauthenticated(why) => why.detail(),
            ApiError::Forbidden(p) => {
                format!("this API key is restricted and lacks the {p} permission")
            }
            ApiError::NotFromHere => {
                "this API key has an IP allow-list and may not be used from the address this \
                 request came from"
                    .into()
            }
            ApiError::NotFound => NOT_FOUND.into(),
            ApiError::OwnerNotFound => {
                "no owner with this id has credits or rate limits of its own in your \
                 organization; PUT sets them"
                    .into()
            }
            ApiError::MethodNotAllowed { allow } => format!("this resource supports only {allow}"),
            ApiError::NotAcceptable => {
                "this resource only produces application/json; allow it in the Accept header".into()
            }
            ApiError::InvalidField(p) => format!("body field {:?} {}", p.param, p.reason),
            ApiError::InvalidHeader(p) => format!("header {:?} {}", p.param, p.reason),
            ApiError::MalformedBody(why) => redact_secrets(why.clone()),
            ApiError::PayloadTooLarge { size, limit } => {
                format!("the body is {size} bytes; this endpoint takes at most {limit}")
            }
            ApiError::UnsupportedMediaType { accepted, got } => match got {
                Some(got) => format!("this endpoint takes a body of {accepted}, not {got:?}"),
                None => format!("this endpoint takes a body of {accepted}: set Content-Type"),
            },
            ApiError::Store(e) => store_detail(e),
            ApiError::TooManyEntries { count, limit } => {
                format!("the body holds {count} entries; this endpoint takes at most {limit}")
            }
            ApiError::Signature(s) => s.to_string(),
            ApiError::KeysUnavailable => format!(
                "GitHub's public keys could not be fetched to check the signature; retry after {RETRY_AFTER_SECS} s"
            ),
            ApiError::Write(e) => write_detail(e),
        }
    }

    /// The parameter or body field at fault, where there is one.
    fn parameter(&self) -> Option<String> {
        match self {
            ApiError::Invalid(p) | ApiError::InvalidField(p) | ApiError::InvalidHeader(p) => {
                Some(p.param.clone())
            }
            ApiError::Write(WriteError::IdempotencyMismatch) => Some("Idempotency-Key".to_owned()),
            ApiError::Write(WriteError::Invalid(invalid)) => match invalid {
                InvalidWrite::Name => Some("name".to_owned()),
                InvalidWrite::IdNotV7 => Some("id".to_owned()),
                InvalidWrite::Grace(_) | InvalidWrite::SelfRollWithoutGrace => {
                    Some("grace_period_seconds".to_owned())
                }
                InvalidWrite::Access(_) => Some("permissions".to_owned()),
                InvalidWrite::Quota(field, _) => Some((*field).to_owned()),
                InvalidWrite::Meta(_) => Some("meta".to_owned()),
                InvalidWrite::NoSecretKeys => None,
            },
            ApiError::Write(WriteError::Refused(why)) => why.parameter().map(str::to_owned),
            ApiError::Write(WriteError::LeakedSecret) => Some("status".to_owned()),
            _ => None,
        }
    }
}

/// The `detail` of a 404.
const NOT_FOUND: &str = "no API key with this id exists in your organization";

/// A store failure's `detail`: a fixed text, never its cause.
fn store_detail(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(_) => {
            format!("the key store is temporarily unavailable; retry after {RETRY_AFTER_SECS} s")
        }
        StoreError::Internal(_) => INTERNAL.into(),
    }
}

/// The `detail` of a 500.
const INTERNAL: &str = "an internal error occurred; quote the request_id when reporting it";

/// The `detail` of a write that did not happen.
fn write_detail(e: &WriteError) -> String {
    match e {
        WriteError::Store(s) => store_detail(s),
        WriteError::Invalid(InvalidWrite::NoSecretKeys) => INTERNAL.into(),
        WriteError::NotFound => NOT_FOUND.into(),
        WriteError::VersionMismatch => {
            "the key has changed since the ETag in If-Match; read it again and retry".into()
        }
        WriteError::Conflict => {
            "the key was changed by another request at the same time; read it again and retry"
                .into()
        }
        WriteError::IdempotencyMismatch => {
            "this Idempotency-Key was used in the last 24 hours for another request (another body, operation or key); use a new key"
                .into()
        }
        WriteError::Invalid(why) => why.to_string(),
        WriteError::Refused(why) => why.to_string(),
        WriteError::NoCredits | WriteError::TooFewCredits(_) => e.to_string(),
        WriteError::LeakedSecret => {
            "a secret of this key was reported leaked and still authenticates as one of its \
             secrets; roll the key (POST /v1/api_key/{id}/roll), which drops the leaked \
             secret, then enable it"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_reason_phrases() {
        let p = ApiError::Invalid(ParamError::new("limit", "too big")).problem("r1");
        assert_eq!((p.title, p.status), ("Unprocessable Entity", 422));
        assert_eq!(p.parameter.as_deref(), Some("limit"));
        assert_eq!(ApiError::NotFound.problem("r").title, "Not Found");
        assert_eq!(ApiError::NotAcceptable.problem("r").title, "Not Acceptable");
    }

    #[test]
    fn body_errors_have_their_statuses_and_name_the_field() {
        let p = ApiError::InvalidField(ParamError::new("name", "is required")).problem("r");
        assert_eq!((p.status, p.parameter.as_deref()), (422, Some("name")));
        assert_eq!(p.detail, "body field \"name\" is required");
        let p = ApiError::MalformedBody("the body is not valid JSON".into()).problem("r");
        assert_eq!((p.status, p.title, p.parameter), (400, "Bad Request", None));
        let p = ApiError::PayloadTooLarge {
            size: 20_000,
            limit: 16_384,
        }
        .problem("r");
        assert_eq!((p.status, p.title), (413, "Payload Too Large"));
        assert_eq!(
            p.detail,
            "the body is 20000 bytes; this endpoint takes at most 16384"
        );
        let p = ApiError::UnsupportedMediaType {
            accepted: "application/json",
            got: None,
        }
        .problem("r");
        assert_eq!(
            (p.status, p.title, p.parameter),
            (415, "Unsupported Media Type", None)
        );
        assert!(p.detail.contains("application/json"), "{}", p.detail);
    }

    #[test]
    fn report_entry_signature_and_github_key_failures_map_to_their_statuses() {
        use crate::leak::signature::SignatureError;
        let p = ApiError::TooManyEntries {
            count: 1001,
            limit: 1000,
        }
        .problem("r");
        assert_eq!(p.status, 413);
        assert!(
            p.detail.contains("1001") && p.detail.contains("1000"),
            "{p:?}"
        );
        let p = ApiError::from(SignatureError::UnknownKey).problem("r");
        assert_eq!((p.status, p.title), (401, "Unauthorized"));
        let p = ApiError::KeysUnavailable.problem("r");
        assert_eq!(p.status, 503);
        assert!(p.detail.contains("retry after"), "{p:?}");
    }

    #[test]
    fn store_failures_never_show_their_cause() {
        let cause = "ResourceNotFoundException: table arn:aws:dynamodb:eu-west-1:123456789012";
        for e in [
            StoreError::Internal(cause.into()),
            StoreError::Unavailable(cause.into()),
        ] {
            let p = ApiError::Store(e).problem("r");
            let body = serde_json::to_string(&p).unwrap();
            assert!(
                !body.contains("arn:") && !body.contains("Exception"),
                "{body}"
            );
        }
    }
}
