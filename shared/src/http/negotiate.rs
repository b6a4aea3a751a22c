//! Content negotiation: whether the client accepts the JSON every endpoint answers with.

use lambda_http::Request;
use lambda_http::http::header;

use crate::http::problem::ApiError;

pub(super) fn check_accept(req: &Request) -> Result<(), ApiError> {
    let mut values = req.headers().get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let ranges: Vec<&str> = values.filter_map(|v| v.to_str().ok()).collect();
    let accept = ranges.join(",");
    // An empty Accept header says nothing, like an absent one.
    if accept.trim().is_empty() || accepts_json(&accept) {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable)
    }
}

/// Whether an `Accept` header value admits `application/json`: the most specific matching
/// media range decides, and `q=0` excludes (RFC 9110, section 12.5.1).
pub(super) fn accepts_json(accept: &str) -> bool {
    let mut best: Option<(u8, f32)> = None; // (specificity, q)
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = match media.as_str() {
            "application/json" => 3,
            "application/*" => 2,
            "*/*" => 1,
            _ => continue,
        };
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().unwrap_or(0.0))
            })
            .next()
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
}
