//! The body of `POST /v1/api_key/{id}/roll`: how long the previous secret keeps working.
//!
//! `{"grace_period_seconds": N}` with N from 0 to [`MAX_GRACE_SECS`] (7 days), default 0.
//! The body is optional: none at all (no bytes, or only whitespace, without a
//! Content-Type or with a JSON one) means the default. A non-JSON Content-Type is a 415
//! even with an empty body.

use chrono::Duration;
use lambda_http::Request;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::fields::{checked, kind};
use super::read::{self, Accepts, Fields, Presence};
use crate::http::problem::ApiError;

/// The longest grace period: 7 days, in seconds.
pub const MAX_GRACE_SECS: u32 = 604_800;

/// The fields a roll body may hold.
pub const FIELDS: &[&str] = &["grace_period_seconds"];

/// A validated roll body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollKey {
    #[serde(default, deserialize_with = "grace")]
    pub grace_period_seconds: u32,
}

impl RollKey {
    /// Reads the roll body of a request (optional), with the 415, 413, 400 and 422 of
    /// [`read::read`] and the field rule.
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        match read::read_request(req, Accepts::Json, Presence::Optional)? {
            None => Ok(RollKey::default()),
            Some(fields) => Self::from_fields(&fields),
        }
    }

    pub fn from_fields(f: &Fields) -> Result<Self, ApiError> {
        read::parse(f, FIELDS, &[])
    }

    /// How long the previous secret keeps working after the roll.
    pub fn grace(&self) -> Duration {
        Duration::seconds(i64::from(self.grace_period_seconds))
    }
}

fn grace<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    checked(d, |value| {
        let range = || format!("must be a whole number of seconds from 0 to {MAX_GRACE_SECS}");
        let Value::Number(n) = value else {
            return Err(format!("{}, not {}", range(), kind(value)));
        };
        n.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= MAX_GRACE_SECS)
            .ok_or_else(|| format!("{}, got {n}", range()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_lists_what_serde_reads() {
        assert_eq!(crate::http::body::read::serde_fields::<RollKey>(), FIELDS);
    }

    fn roll(v: Value) -> Result<RollKey, ApiError> {
        let Value::Object(map) = v else { panic!() };
        RollKey::from_fields(&Fields(map.into_iter().collect()))
    }

    #[test]
    fn the_grace_period_is_0_to_7_days_and_defaults_to_0() {
        assert_eq!(roll(json!({})).unwrap().grace_period_seconds, 0);
        for n in [0, 1, 3600, MAX_GRACE_SECS] {
            let r = roll(json!({"grace_period_seconds": n})).unwrap();
            assert_eq!(r.grace(), Duration::seconds(i64::from(n)));
        }
        assert_eq!(MAX_GRACE_SECS, 7 * 24 * 3600);
    }

    #[test]
    fn anything_else_is_a_422_naming_the_field() {
        for (v, says) in [
            (json!(-1), "got -1"),
            (json!(604_801), "got 604801"),
            (json!(u64::MAX), "from 0 to 604800"),
            (json!(1.5), "whole number"),
            (json!(60.0), "whole number"),
            (json!("60"), "not a string"),
            (json!(null), "not null"),
        ] {
            match roll(json!({"grace_period_seconds": v})) {
                Err(ApiError::InvalidField(p)) => {
                    assert_eq!(p.param, "grace_period_seconds");
                    assert!(p.reason.contains(says), "{v}: {}", p.reason);
                }
                other => panic!("{v}: {other:?}"),
            }
        }
        match roll(json!({"grace": 5})) {
            Err(ApiError::InvalidField(p)) => assert_eq!(p.param, "grace"),
            other => panic!("{other:?}"),
        }
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/v1/api_key/x/roll");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(lambda_http::Body::from(body)).unwrap()
    }

    #[test]
    fn an_absent_or_empty_body_means_the_default() {
        for (ct, body) in [(None, ""), (None, "\n"), (Some("application/json"), "")] {
            assert_eq!(
                RollKey::from_request(&request(ct, body)).unwrap(),
                RollKey::default()
            );
        }
        let r = RollKey::from_request(&request(
            Some("application/json"),
            r#"{"grace_period_seconds":9}"#,
        ));
        assert_eq!(r.unwrap().grace_period_seconds, 9);
        for (ct, body, status) in [
            (Some("application/x-www-form-urlencoded"), "", 415),
            (None, "{}", 415),
            (Some("application/json"), "{", 400),
            (Some("application/json"), "null", 422),
        ] {
            let err = RollKey::from_request(&request(ct, body)).unwrap_err();
            assert_eq!(err.status().as_u16(), status, "{ct:?} {body:?}");
        }
    }
}
