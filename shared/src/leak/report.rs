//! What GitHub reports: one [`ReportedToken`] per match, and the bounds of a report. The
//! HTTP edge reads the body (`http::body::report`) within them: at most
//! [`MAX_REPORT_BYTES`] and [`MAX_REPORT_ENTRIES`]; `url` and `source` cut to
//! [`MAX_URL_BYTES`] and [`MAX_SOURCE_BYTES`], because they are recorded in the audit trail,
//! whose items must stay small; `type` cut to [`MAX_TYPE_BYTES`].

use std::fmt;

/// The largest report accepted: 1 MiB.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// The most matches one report may carry.
pub const MAX_REPORT_ENTRIES: usize = 1000;
/// The longest `url` kept, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest `source` kept, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64;
/// The longest `type` kept, in bytes (echoed back as `token_type`).
pub const MAX_TYPE_BYTES: usize = 256;

/// One match GitHub reports. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportedToken {
    /// What GitHub found: maybe one of our secrets, maybe not.
    pub token: String,
    /// The secret type name agreed with GitHub (`type` in the body).
    pub token_type: String,
    /// Where it was found; may be empty.
    pub url: String,
    /// What kind of place it was found in (`content`, `commit`, `npm`…); may be empty.
    pub source: String,
}

impl fmt::Debug for ReportedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportedToken")
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
