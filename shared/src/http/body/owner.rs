//! The body of `PUT /v1/owner/{owner_id}`: the owner's credits and rate limits, whole.
//! `credits` (`{"remaining": N, "refill": …}`) and `ratelimits` (a list) each take the
//! shapes and bounds of a key's; absent or `null`, the owner has none. An owner's own rules
//! (exact limits, no `low_at`) are the write domain's ([`crate::write::set_owner`]).

use lambda_http::http::HeaderMap;
use serde::Deserialize;

use super::quota::{CreditsField, LimitsField};
use super::read::{self, Accepts, Presence};
use crate::http::problem::ApiError;
use crate::quota::Quota;

/// The fields the body may hold.
pub const FIELDS: &[&str] = &["credits", "ratelimits"];

/// The owner object's fields that a `PUT` cannot write.
const READ_ONLY: &[&str] = &["owner_id", "updated_date"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerBody {
    #[serde(default)]
    credits: Option<CreditsField>,
    #[serde(default)]
    ratelimits: Option<LimitsField>,
}

/// The credits and limits the body sets.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Quota, ApiError> {
    let fields = read::read(headers, body, Accepts::Json, Presence::Required)?.unwrap_or_default();
    let body: OwnerBody = read::parse(&fields, FIELDS, READ_ONLY)?;
    Ok(Quota {
        credits: body.credits.map(|c| c.0),
        ratelimits: body.ratelimits.map(|l| l.0).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::{HeaderValue, header};
    use serde_json::{Value, json};

    fn put(body: Value) -> Result<Quota, ApiError> {
        let mut headers = HeaderMap::new();
        let json = HeaderValue::from_static("application/json");
        headers.insert(header::CONTENT_TYPE, json);
        parse(&headers, body.to_string().as_bytes())
    }

    fn field(err: ApiError) -> String {
        err.problem("r").parameter.unwrap_or_default()
    }

    #[test]
    fn a_body_sets_credits_and_limits_and_an_empty_one_sets_none() {
        let q = put(json!({
            "credits": {"remaining": 100, "refill": {"interval": "daily", "amount": 100}},
            "ratelimits": [{"name": "requests", "limit": 10, "duration_ms": 1000}]
        }))
        .unwrap();
        assert_eq!(q.credits.as_ref().map(|c| c.remaining), Some(100));
        assert_eq!(q.ratelimits.len(), 1);
        assert_eq!(put(json!({})).unwrap(), Quota::default());
        let nulls = put(json!({"credits": null, "ratelimits": null})).unwrap();
        assert_eq!(nulls, Quota::default());
    }

    #[test]
    fn bad_members_are_422s_naming_them() {
        assert_eq!(
            field(put(json!({"credits": {"remaining": -1}})).unwrap_err()),
            "credits"
        );
        assert_eq!(field(put(json!({"credits": {}})).unwrap_err()), "credits");
        let limits = json!({"ratelimits": [{"name": "r", "limit": 0, "duration_ms": 1000}]});
        assert_eq!(field(put(limits).unwrap_err()), "ratelimits");
        let err = put(json!({"owner_id": "x"})).unwrap_err();
        assert_eq!(field(err), "owner_id");
        assert_eq!(field(put(json!({"meta": {}})).unwrap_err()), "meta");
    }
}
