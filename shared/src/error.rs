//! The model's errors that reach a client: a parameter that failed validation
//! ([`ParamError`], with anything secret-looking redacted) and why a caller was not
//! authenticated ([`AuthFailure`]). How each becomes a status and a problem is `http`'s.

/// A JSON type, for "must be X, not Y" messages.
pub fn kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A request parameter (query, path, or a field of a JSON body) that failed validation:
/// which one, and why.
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
/// `apk_[redacted]`, and every run of [`HASH_HEX_LEN`] hex digits or more (a secret's hash
/// may sit in one) with `[redacted]`.
pub fn redact_secrets(text: String) -> String {
    redact_hex_runs(redact_keys(text))
}

/// The length of a secret's hash in hex (SHA-256).
pub const HASH_HEX_LEN: usize = 64;

fn redact_hex_runs(text: String) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let (mut copied, mut i) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i - start >= HASH_HEX_LEN {
            // Hex digits are ASCII, so both ends are char boundaries.
            out.push_str(&text[copied..start]);
            out.push_str("[redacted]");
            copied = i;
        }
    }
    if copied == 0 {
        return text;
    }
    out.push_str(&text[copied..]);
    out
}

fn redact_keys(text: String) -> String {
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

/// Why a caller was not authenticated. Its `Display` is the precise reason, for the log;
/// [`AuthFailure::detail`] is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no API key: send \"Authorization: Bearer <key>\" or \"X-API-KEY: <key>\"")]
    Missing,
    #[error("the Authorization header must use the Bearer scheme")]
    WrongScheme,
    #[error("the Authorization and X-API-KEY headers hold different keys")]
    Conflicting,
    /// The header it names was sent more than once.
    #[error("the {0} header is sent more than once; send one API key, once")]
    Repeated(&'static str),
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key is disabled")]
    Disabled,
    #[error("the API key has expired")]
    Expired,
}

impl AuthFailure {
    /// The `detail` of the 401. A key that is unknown, disabled or expired gets one answer:
    /// the holder of a leaked key learns neither that it was real nor that it might be
    /// enabled again (SECURITY.md, "What a 401 tells"). The log line keeps the reason.
    pub fn detail(&self) -> String {
        match self {
            AuthFailure::Invalid | AuthFailure::Disabled | AuthFailure::Expired => {
                "the API key is not valid: it is unknown, disabled or expired".into()
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!e.to_string().contains(s));
        let plain = ParamError::new("limit", "must be an integer, got \"ten\"");
        assert_eq!(plain.reason, "must be an integer, got \"ten\"");
    }

    #[test]
    fn a_secrets_hash_given_as_a_field_name_is_redacted_even_inside_a_longer_hex_run() {
        let secret = crate::secret::Secret::from_random(*b"a-hash-in-a-field-name!!");
        let hash = secret.hash();
        let h = hash.as_str();
        assert_eq!(h.len(), HASH_HEX_LEN);
        let e = ParamError::new(format!("WLw9\0{h}"), format!("is 0000{h}00, not {h}"));
        assert_eq!(e.param, "WLw9\0[redacted]");
        assert_eq!(e.reason, "is [redacted], not [redacted]");
        // Shorter hex runs, such as key ids and digests in a detail, are kept.
        let id = "0c0f5a6e-3f5c-4c8e-9d0b-7a9e1c2b3d4e";
        let short = &h[..HASH_HEX_LEN - 1];
        let kept = ParamError::new(id, format!("{short} é"));
        assert_eq!(
            (kept.param.as_str(), kept.reason.as_str()),
            (id, &*format!("{short} é"))
        );
    }
}
