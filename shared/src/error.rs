//! One error type for the API, and the one place it becomes an HTTP status and a problem.
//!
//! Every non-2xx response is `application/problem+json` (RFC 9457) with `type`, `title`,
//! `status`, `detail` and `request_id`. `title` is the status's reason phrase, so the body is
//! also what clients of `{title, status}` error bodies expect. Internal causes are logged by
//! the caller of [`ApiError::problem`] and never appear in a body.

use lambda_http::http::StatusCode;
use serde::Serialize;

use crate::store::StoreError;

/// A query or path parameter that failed validation: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    pub param: String,
    pub reason: String,
}

impl ParamError {
    /// The parameter's name and the reason are shown to the client and logged: anything in
    /// them that looks like a secret (a client that put its key in the wrong place) is
    /// redacted first.
    pub fn new(param: impl Into<String>, reason: impl Into<String>) -> Self {
        ParamError {
            param: redact_secrets(param.into()),
            reason: redact_secrets(reason.into()),
        }
    }
}

/// Replaces every `apk_…` token (the secret prefix and the base64url run after it) with
/// `apk_[redacted]`.
pub fn redact_secrets(text: String) -> String {
    const PREFIX: &str = crate::secret::PREFIX;
    if !text.contains(PREFIX) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        out.push_str(PREFIX);
        out.push_str("[redacted]");
        let tail = &rest[at + PREFIX.len()..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Why a caller was not authenticated. The detail is safe to show: it only tells the holder
/// of a token what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no API key: send \"Authorization: Bearer <key>\" or \"X-API-KEY: <key>\"")]
    Missing,
    #[error("the Authorization header must use the Bearer scheme")]
    WrongScheme,
    #[error("the Authorization and X-API-KEY headers hold different keys")]
    Conflicting,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key is disabled")]
    Disabled,
    #[error("the API key has expired")]
    Expired,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid parameter {0}")]
    Invalid(#[from] ParamError),
    #[error("unauthenticated: {0}")]
    Unauthenticated(AuthFailure),
    #[error("the API key lacks the {0} permission")]
    Forbidden(crate::key::Permission),
    #[error("API key not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the Accept header excludes JSON")]
    NotAcceptable,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A JSON body that could not be read: 415, 413, 400 or 422.
    #[error("bad body: {0}")]
    Body(#[from] crate::json_body::BodyError),
    /// A secret scanning report whose signature was refused.
    #[error("bad signature: {0}")]
    Signature(#[from] crate::leak::signature::SignatureError),
    /// GitHub's signing keys could not be fetched (503 + Retry-After).
    #[error("GitHub's public keys are unavailable")]
    KeysUnavailable,
}

impl From<crate::leak::LeakError> for ApiError {
    fn from(e: crate::leak::LeakError) -> Self {
        use crate::leak::LeakError;
        match e {
            LeakError::Signature(s) => ApiError::Signature(s),
            LeakError::KeysUnavailable => ApiError::KeysUnavailable,
            LeakError::Body(b) => ApiError::Body(b),
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
    /// The parameter at fault, for 422s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Body(b) => b.status(),
            ApiError::Signature(_) => StatusCode::UNAUTHORIZED,
            ApiError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The problem body a client sees. Store errors get a fixed text, never their cause.
    pub fn problem(&self, request_id: &str) -> Problem {
        let status = self.status();
        let detail = match self {
            ApiError::Invalid(p) => format!("query or path parameter {:?} {}", p.param, p.reason),
            ApiError::Unauthenticated(why) => why.to_string(),
            ApiError::Forbidden(p) => {
                format!("this API key is restricted and lacks the {p} permission")
            }
            ApiError::NotFound => "no API key with this id exists in your organization".into(),
            ApiError::MethodNotAllowed => "this resource supports only GET and HEAD".into(),
            ApiError::NotAcceptable => {
                "this resource only produces application/json; allow it in the Accept header".into()
            }
            ApiError::Store(StoreError::Unavailable(_)) => format!(
                "the key store is temporarily unavailable; retry after {RETRY_AFTER_SECS} s"
            ),
            ApiError::Store(StoreError::Internal(_)) => {
                "an internal error occurred; quote the request_id when reporting it".into()
            }
            ApiError::Body(b) => b.to_string(),
            ApiError::Signature(s) => s.to_string(),
            ApiError::KeysUnavailable => format!(
                "GitHub's public keys could not be fetched to check the signature; retry after {RETRY_AFTER_SECS} s"
            ),
        };
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            request_id: request_id.to_owned(),
            parameter: match self {
                ApiError::Invalid(p) => Some(p.param.clone()),
                ApiError::Body(b) => b.field().map(str::to_owned),
                _ => None,
            },
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
    fn a_secret_given_as_a_parameter_is_redacted_from_name_and_reason() {
        let secret = crate::secret::Secret::from_random(*b"a-secret-in-a-parameter!");
        let s = secret.expose();
        let e = ParamError::new(s, format!("got {s:?} and {s}x, then apk_"));
        assert_eq!(e.param, "apk_[redacted]");
        assert_eq!(
            e.reason,
            "got \"apk_[redacted]\" and apk_[redacted], then apk_[redacted]"
        );
        assert!(!ApiError::Invalid(e).to_string().contains(s));
        let plain = ParamError::new("limit", "must be an integer, got \"ten\"");
        assert_eq!(plain.reason, "must be an integer, got \"ten\"");
    }

    #[test]
    fn body_signature_and_key_failures_map_to_their_statuses() {
        use crate::json_body::BodyError;
        use crate::leak::LeakError;
        use crate::leak::signature::SignatureError;
        let p = ApiError::Body(BodyError::invalid(
            "permissions[1]",
            "is not a known permission",
        ))
        .problem("r");
        assert_eq!(
            (p.status, p.parameter.as_deref()),
            (422, Some("permissions[1]"))
        );
        assert_eq!(p.detail, "permissions[1]: is not a known permission");
        let too_large = ApiError::from(BodyError::TooManyEntries { limit: 1000 });
        assert_eq!(too_large.problem("r").status, 413);
        let p = ApiError::from(LeakError::Signature(SignatureError::UnknownKey)).problem("r");
        assert_eq!((p.status, p.title), (401, "Unauthorized"));
        assert_eq!(ApiError::from(LeakError::KeysUnavailable).status(), 503);
        assert_eq!(
            ApiError::from(LeakError::Body(BodyError::UnsupportedMediaType)).status(),
            415
        );
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
