//! The preconditions of a write: `If-Match` against the key's version, so that no update
//! is silently lost, and `Idempotency-Key`, so that a retried create or roll happens once.

use lambda_http::Request;
use lambda_http::http::header;

use crate::error::ParamError;
use crate::http::problem::ApiError;
use crate::write::{Expected, Idempotency};

/// The header that makes a create or roll idempotent.
pub(super) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One key's entity tag: its version, then the digest of the body, as in `"3-1f2e…"`.
///
/// The digest makes it a strong validator of this representation, for `If-None-Match`. The
/// version is what `If-Match` compares. So a tag stays good for a write when only the key's
/// use (`last_used_date`) has changed since, and goes stale as soon as anything a write
/// can change has.
pub(super) fn key_etag(version: u64, body: &[u8]) -> String {
    format!("\"{version}-{}\"", crate::digest::sha256_hex(body, 16))
}

/// A write's `If-Match` (RFC 9110, section 13.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum IfMatch {
    /// No header: the write applies to the key as it is.
    Absent,
    /// `*`: the key must exist.
    Any,
    /// The versions the tags name. A weak tag, or one that is not a key's, names none: it
    /// never matches, so the write is refused.
    Versions(Vec<u64>),
}

impl IfMatch {
    pub(super) fn of(req: &Request) -> Self {
        let mut values = req.headers().get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return IfMatch::Absent;
        }
        let mut versions = Vec::new();
        for tag in values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
        {
            if tag == "*" {
                return IfMatch::Any;
            }
            if let Some(version) = tag
                .strip_prefix('"')
                .and_then(|t| t.split_once('-'))
                .and_then(|(v, _)| v.parse::<u64>().ok())
            {
                versions.push(version);
            }
        }
        IfMatch::Versions(versions)
    }

    /// The versions the write must find the key at, as the write domain takes them: `None`
    /// when any will do (the domain answers 412 when the key is at none of them).
    pub(super) fn expected(&self) -> Expected<'_> {
        match self {
            IfMatch::Absent | IfMatch::Any => None,
            IfMatch::Versions(v) => Some(v),
        }
    }
}

/// The request's `Idempotency-Key`, with the body it must be retried with: at most one,
/// well formed, else a 422 naming the header.
pub(super) fn idempotency(req: &Request) -> Result<Option<Idempotency>, ApiError> {
    let mut values = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid =
        |reason: String| ApiError::InvalidHeader(ParamError::new(IDEMPOTENCY_KEY, reason));
    if values.next().is_some() {
        return Err(invalid("was given more than once".into()));
    }
    let key = value
        .to_str()
        .map_err(|_| invalid("must be visible ASCII characters".into()))?;
    Idempotency::new(key, req.body().as_ref())
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(if_match: &[&str]) -> Request {
        let mut builder = lambda_http::http::Request::builder();
        for v in if_match {
            builder = builder.header(header::IF_MATCH, *v);
        }
        builder.body(lambda_http::Body::Empty).unwrap()
    }

    #[test]
    fn if_match_names_the_versions_a_key_tag_names() {
        let tag = key_etag(3, b"{}");
        assert!(tag.starts_with("\"3-") && tag.ends_with('"'), "{tag}");
        let m = IfMatch::of(&request(&[&tag]));
        assert_eq!(m.expected(), Some(&[3][..]));
        // Any of several tags, in one header or several.
        let several = IfMatch::of(&request(&["\"1-aa\", \"5-bb\"", "\"7-cc\""]));
        assert_eq!(several.expected(), Some(&[1, 5, 7][..]));
    }

    #[test]
    fn a_weak_or_foreign_tag_names_no_version_and_star_or_no_header_take_any() {
        for foreign in ["W/\"3-aa\"", "\"abcdef\"", "3-aa", "\"x-3\"", ""] {
            let m = IfMatch::of(&request(&[foreign]));
            assert_eq!(m.expected(), Some(&[][..]), "{foreign:?}");
        }
        assert_eq!(IfMatch::of(&request(&["*"])).expected(), None);
        assert_eq!(IfMatch::of(&request(&[])), IfMatch::Absent);
        assert_eq!(IfMatch::of(&request(&[])).expected(), None);
    }
}
