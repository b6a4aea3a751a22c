//! The `credits` and `ratelimits` members of create and patch bodies, and the body of
//! `POST /v1/api_key/{id}/credits`. serde reads each member's shape (unknown members are
//! refused); the bounds are the model's ([`crate::quota::check_credits`],
//! [`crate::quota::check_limits`]); the reason is the 422's, naming the body field.

use serde::Deserialize;
use serde_json::Value;

use super::fields::{checked_type, double_option, kind, whole, whole_if_present, whole_or_null};
use crate::quota::{Credits, Interval, MAX_CREDITS, Mode, RateLimit, Refill};
use crate::write::CreditsChange;

/// A refill as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefillBody {
    interval: Interval,
    #[serde(deserialize_with = "whole")]
    amount: u64,
    /// Absent for a daily refill, or the 1st; never null (the key object leaves it out
    /// where it has none).
    #[serde(default, deserialize_with = "whole_if_present")]
    day: Option<u64>,
}

impl From<RefillBody> for Refill {
    fn from(r: RefillBody) -> Self {
        let day = match r.interval {
            // A monthly refill without a day refills on the 1st.
            Interval::Monthly => Some(r.day.unwrap_or(1)),
            Interval::Daily => r.day,
        };
        // Out of 1..=31, the day is refused by the bounds (255 is out too).
        let day = day.map(|d| u8::try_from(d).unwrap_or(u8::MAX));
        Refill {
            interval: r.interval,
            amount: r.amount,
            day,
        }
    }
}

/// `credits` as sent: on create `remaining` is required; a patch merges into the key's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditsBody {
    #[serde(default, deserialize_with = "whole_or_null")]
    remaining: Option<u64>,
    #[serde(default, deserialize_with = "double_option")]
    refill: Option<Option<RefillBody>>,
    /// Absent: unchanged; null: none; a whole number: the threshold.
    #[serde(default, deserialize_with = "present_whole_or_null")]
    low_at: Option<Option<u64>>,
}

/// A member that may be null: present (`Some`), as a whole number or `None`.
fn present_whole_or_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<u64>>, D::Error> {
    whole_or_null(d).map(Some)
}

/// A rate limit as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    name: String,
    #[serde(deserialize_with = "whole")]
    limit: u64,
    #[serde(deserialize_with = "whole")]
    duration_ms: u64,
    #[serde(default)]
    mode: Mode,
}

/// serde's reason, without its position (a member's value is not the whole body).
fn shape<T: for<'de> Deserialize<'de>>(value: &Value, want: &str) -> Result<T, String> {
    if !value.is_object() {
        return Err(format!("must be {want}, not {}", kind(value)));
    }
    serde_json::from_value(value.clone()).map_err(|e| {
        let text = e.to_string();
        let text = text.split(" at line").next().unwrap_or(&text).to_owned();
        format!("is not {want}: {text}")
    })
}

fn credits_patch(value: &Value) -> Result<CreditsChange, String> {
    let want = "a credits object {\"remaining\": N, \"refill\": …, \"low_at\": N}";
    let body: CreditsBody = shape(value, want)?;
    let change = CreditsChange {
        remaining: body.remaining,
        refill: body.refill.map(|r| r.map(Refill::from)),
        low_at: body.low_at,
    };
    let probe = Credits {
        remaining: change.remaining.unwrap_or(0),
        refill: change.refill.flatten(),
        low_at: change.low_at.flatten(),
    };
    crate::quota::check_credits(&probe).map_err(|e| e.to_string())?;
    Ok(change)
}

/// A create's credits: `remaining` is required.
fn credits_value(value: &Value) -> Result<Credits, String> {
    let change = credits_patch(value)?;
    let remaining = change.remaining.ok_or_else(|| {
        format!("needs remaining: the credits the key starts with (0 to {MAX_CREDITS})")
    })?;
    Ok(Credits {
        remaining,
        refill: change.refill.flatten(),
        low_at: change.low_at.flatten(),
    })
}

fn limits_value(value: &Value) -> Result<Vec<RateLimit>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "must be an array of rate limits or null, not {}",
            kind(value)
        ));
    };
    let mut limits = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let want = "a rate limit {\"name\", \"limit\", \"duration_ms\", \"mode\"}";
        let l: LimitBody = shape(item, want).map_err(|why| format!("entry {i} {why}"))?;
        limits.push(RateLimit {
            name: l.name,
            limit: l.limit,
            duration_ms: l.duration_ms,
            mode: l.mode,
        });
    }
    crate::quota::check_limits(&limits).map_err(|e| e.to_string())?;
    Ok(limits)
}

checked_type!(
    /// A create's `credits`.
    CreditsField(Credits) by credits_value
);
checked_type!(
    /// A patch's `credits`: what it changes.
    CreditsPatchField(CreditsChange) by credits_patch
);
checked_type!(
    /// `ratelimits`: 1 to 5 limits (an empty list is none).
    LimitsField(Vec<RateLimit>) by limits_value
);

/// The body of `POST /v1/api_key/{id}/credits`: exactly one of `increment` or `decrement`.
pub mod adjust {
    use serde::Deserialize;

    use super::super::fields::whole_or_null;
    use super::super::read::{self, Accepts, Presence, field_error};
    use crate::audit::Adjustment;
    use crate::http::problem::ApiError;
    use crate::quota::MAX_CREDITS;
    use lambda_http::http::HeaderMap;

    /// The fields an adjustment may hold.
    pub const FIELDS: &[&str] = &["increment", "decrement"];

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AdjustBody {
        #[serde(default, deserialize_with = "whole_or_null")]
        increment: Option<u64>,
        #[serde(default, deserialize_with = "whole_or_null")]
        decrement: Option<u64>,
    }

    /// The adjustment the body asks for.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Adjustment, ApiError> {
        let fields =
            read::read(headers, body, Accepts::Json, Presence::Required)?.unwrap_or_default();
        let body: AdjustBody = read::parse(&fields, FIELDS, &[])?;
        let (field, amount, adjustment) = match (body.increment, body.decrement) {
            (Some(n), None) => ("increment", n, Adjustment::Increment(n)),
            (None, Some(n)) => ("decrement", n, Adjustment::Decrement(n)),
            _ => {
                return Err(field_error(
                    "increment",
                    "exactly one of increment or decrement is required",
                ));
            }
        };
        if !(1..=MAX_CREDITS).contains(&amount) {
            return Err(field_error(field, format!("must be 1 to {MAX_CREDITS}")));
        }
        Ok(adjustment)
    }
}
