//! The body of `PATCH /v1/api_key/{id}`: a JSON merge patch (RFC 7396) of a key.
//!
//! It may change `name`, `restricted`, `permissions`, `expires_date` (null removes it; a new
//! one must be in the future) and `status` (`active` or `disabled`). The interplay:
//! - `{"restricted": false}` makes the key unrestricted, and its `permissions` null; a
//!   non-null `permissions` beside it is refused.
//! - Making an unrestricted key restricted needs `permissions` in the same patch (it may be
//!   empty), as on create; `permissions` alone on an unrestricted key is refused, naming
//!   `permissions`, rather than silently restricting the key.
//! - On a restricted key, `permissions` replaces the whole list; `null` is refused (send
//!   `[]`, or `"restricted": false`).
//! - `credits`: null removes them (the key is unlimited); an object merges into the key's
//!   credits (`remaining` is required when the key has none); its `refill` is replaced
//!   whole, and null removes it.
//! - `ratelimits`: replaces the whole list; null or `[]` removes every limit.
//! - `owner_id`: names the key's owner; null removes it.
//! - `meta`: null removes it; an object is merged into it as a merge patch (a member set to
//!   null is removed, an object merges into the object it replaces), and the result is
//!   checked as a whole ([`crate::meta`]); nothing left is no metadata (null).
//! - `allowed_cidrs`: replaces the whole list; null removes it (any address).
//! - A patch that changes nothing (`{}`, or values equal to the current ones) gives back
//!   the key unchanged, `updated_date` included: there is nothing to write or record.
//!
//! The rules that need the key are the write's ([`KeyChange::apply`]); this module parses.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::{Deserialize, Deserializer};

use super::fields::{self, Cidrs, Flag, MetaPatch, Name, Owner, Permissions, Time, double_option};
use super::quota::{CreditsPatchField, LimitsField};
use super::read::{self, Accepts, Fields, Presence, field_error};
use crate::http::problem::ApiError;
use crate::key::KeyState;
use crate::write::KeyChange;

/// The fields a patch may hold.
pub const FIELDS: &[&str] = &[
    "name",
    "restricted",
    "permissions",
    "expires_date",
    "status",
    "credits",
    "ratelimits",
    "owner_id",
    "meta",
    "allowed_cidrs",
];

/// Fields of the key object that no patch may change.
pub const READ_ONLY: &[&str] = &[
    "id",
    "created_date",
    "updated_date",
    "last_used_date",
    "last_four_digits",
    "creator_id",
    "secret",
    // Set by the service when it disables a key for a leak; enabling the key clears it.
    "disabled_reason",
];

/// A validated merge patch: the write's [`KeyChange`], which applies it to the key as
/// the write reads it ([`KeyChange::apply`]).
pub type KeyPatch = KeyChange;

impl KeyPatch {
    /// Reads the patch of a request at `now`: `application/merge-patch+json` or
    /// `application/json`, with the 415, 413, 400 and 422 of [`read::read`] and the field
    /// rules.
    pub fn from_request(req: &Request, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let fields = read::read_request(req, Accepts::MergePatch, Presence::Required)?;
        Self::from_fields(&fields.unwrap_or_default(), now)
    }

    /// The rules of each field that need no key: types, values, a future `expires_date`.
    pub fn from_fields(f: &Fields, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let body: PatchBody = read::parse(f, FIELDS, READ_ONLY)?;
        let name = kept(body.name, "name", "a string")?;
        let restricted = kept(body.restricted, "restricted", "true or false")?;
        let status = kept(body.status, "status", "active or disabled")?;
        let expires = match body.expires_date {
            Some(Some(at)) => Some(Some(
                fields::in_future(at.0, now).map_err(|why| field_error("expires_date", why))?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        Ok(KeyChange {
            name: name.map(|n| n.0),
            restricted: restricted.map(|r| r.0),
            permissions: body.permissions.map(|p| p.map(|list| list.0)),
            expires,
            status: status.map(|s| s.0),
            credits: body.credits.map(|c| c.map(|c| c.0)),
            ratelimits: body.ratelimits.map(|l| l.map(|l| l.0)),
            owner_id: body.owner_id.map(|o| o.map(|o| o.0)),
            meta: body.meta.map(|m| m.map(|m| m.0)),
            allowed_cidrs: body.allowed_cidrs.map(|l| l.map(|l| l.0)),
        })
    }
}

/// A merge patch as sent: for each member, absent (`None`), null (`Some(None)`) or a value
/// its type has checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "double_option")]
    name: Option<Option<Name>>,
    #[serde(default, deserialize_with = "double_option")]
    restricted: Option<Option<Flag>>,
    #[serde(default, deserialize_with = "double_option")]
    permissions: Option<Option<Permissions>>,
    #[serde(default, deserialize_with = "double_option")]
    expires_date: Option<Option<Time>>,
    #[serde(default, deserialize_with = "double_option")]
    status: Option<Option<Status>>,
    #[serde(default, deserialize_with = "double_option")]
    credits: Option<Option<CreditsPatchField>>,
    #[serde(default, deserialize_with = "double_option")]
    ratelimits: Option<Option<LimitsField>>,
    #[serde(default, deserialize_with = "double_option")]
    owner_id: Option<Option<Owner>>,
    #[serde(default, deserialize_with = "double_option")]
    meta: Option<Option<MetaPatch>>,
    #[serde(default, deserialize_with = "double_option")]
    allowed_cidrs: Option<Option<Cidrs>>,
}

/// A member that a patch may change but not remove: null is refused, naming it.
fn kept<T>(member: Option<Option<T>>, field: &str, what: &str) -> Result<Option<T>, ApiError> {
    match member {
        Some(None) => Err(field_error(
            field,
            format!("cannot be removed (null); it must be {what}"),
        )),
        Some(Some(value)) => Ok(Some(value)),
        None => Ok(None),
    }
}

/// The status a patch may set: `active` or `disabled`.
struct Status(KeyState);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fields::checked(d, |value| match value.as_str() {
            Some("active") => Ok(Status(KeyState::Active)),
            Some("disabled") => Ok(Status(KeyState::Disabled)),
            Some("expired") => Err("cannot be set to expired: a key expires by its \
                                    expires_date; send active or disabled"
                .to_owned()),
            _ => Err("must be \"active\" or \"disabled\"".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Permission::*;
    use crate::key::{Access, ApiKey};
    use chrono::TimeZone;
    use serde_json::{Value, json};

    #[test]
    fn fields_lists_what_serde_reads() {
        assert_eq!(crate::http::body::read::serde_fields::<PatchBody>(), FIELDS);
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn patch(v: Value) -> Result<KeyPatch, ApiError> {
        let Value::Object(map) = v else { panic!() };
        KeyPatch::from_fields(&Fields(map.into_iter().collect()), now())
    }

    fn key(access: Access) -> ApiKey {
        let created = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        ApiKey {
            id: crate::key::KeyId::new_at(created),
            org: "acme".parse().unwrap(),
            name: "ci".into(),
            created,
            updated: created,
            last_used: None,
            expires: None,
            creator_id: uuid::Uuid::nil(),
            access,
            state: KeyState::Active,
            last_four: "Ab9_".into(),
            version: 0,
            disabled_reason: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        }
    }

    fn field_of(r: Result<impl std::fmt::Debug, ApiError>) -> (String, String) {
        match r {
            Err(ApiError::InvalidField(p)) => (p.param, p.reason),
            other => panic!("not a field error: {other:?}"),
        }
    }

    fn applied(p: Value, current: &ApiKey) -> Result<ApiKey, ApiError> {
        let change = patch(p)?;
        change
            .apply(current)
            .map_err(|e| ApiError::from(crate::write::WriteError::from(e)))
    }

    #[test]
    fn each_field_changes_only_itself() {
        let k = key(Access::new(true, vec![CallsView]));
        let with = |change: fn(&mut ApiKey)| {
            let mut want = k.clone();
            change(&mut want);
            want
        };
        let cases = [
            (
                json!({"name": "renamed"}),
                with(|k| k.name = "renamed".into()),
            ),
            (
                json!({"status": "disabled"}),
                with(|k| k.state = KeyState::Disabled),
            ),
            (
                json!({"expires_date": "2025-07-01T00:00:00Z"}),
                with(|k| k.expires = Some(Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap())),
            ),
            (
                json!({"permissions": ["billing.view", "calls.view"]}),
                with(|k| k.access = Access::new(true, vec![CallsView, BillingView])),
            ),
            (
                json!({"restricted": false}),
                with(|k| k.access = Access::Unrestricted),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(applied(p.clone(), &k).unwrap(), want, "{p}");
        }
    }

    #[test]
    fn an_empty_or_equal_patch_changes_nothing() {
        let k = key(Access::new(true, vec![CallsView]));
        assert!(patch(json!({})).unwrap().is_empty());
        assert_eq!(applied(json!({}), &k).unwrap(), k);
        let same = json!({"name": "ci", "status": "active", "restricted": true,
                          "permissions": ["calls.view"], "expires_date": null});
        assert!(!patch(same.clone()).unwrap().is_empty());
        assert_eq!(applied(same, &k).unwrap(), k);
    }

    #[test]
    fn null_removes_the_expiry_and_a_disabled_key_can_be_enabled() {
        let mut k = key(Access::Unrestricted);
        k.expires = Some(now() + chrono::Duration::days(1));
        k.state = KeyState::Disabled;
        let next = applied(json!({"expires_date": null, "status": "active"}), &k).unwrap();
        assert_eq!((next.expires, next.state), (None, KeyState::Active));
    }

    #[test]
    fn making_a_key_unrestricted_nulls_its_permissions() {
        let k = key(Access::new(true, vec![CallsView]));
        for p in [
            json!({"restricted": false}),
            json!({"restricted": false, "permissions": null}),
        ] {
            let next = applied(p, &k).unwrap();
            assert_eq!(next.access, Access::Unrestricted);
            assert_eq!(next.view(now()).permissions, None);
        }
        let (field, why) = field_of(applied(json!({"restricted": false, "permissions": []}), &k));
        assert_eq!(field, "permissions");
        assert!(
            why.contains("absent or null when restricted is false"),
            "{why}"
        );
    }

    #[test]
    fn permissions_on_an_unrestricted_key_need_restricted_true() {
        let k = key(Access::Unrestricted);
        let (field, why) = field_of(applied(json!({"permissions": ["calls.view"]}), &k));
        assert_eq!(field, "permissions");
        assert!(why.contains("send \"restricted\": true"), "{why}");
        let (field, why) = field_of(applied(json!({"restricted": true}), &k));
        assert_eq!(field, "permissions");
        assert!(
            why.contains("required when the key becomes restricted"),
            "{why}"
        );
        let next = applied(json!({"restricted": true, "permissions": []}), &k).unwrap();
        assert_eq!(next.access, Access::Restricted(vec![]));
        // null on an unrestricted key is what it already is.
        assert_eq!(applied(json!({"permissions": null}), &k).unwrap(), k);
    }

    #[test]
    fn a_restricted_key_keeps_or_replaces_its_list_never_nulls_it() {
        let k = key(Access::new(true, vec![CallsView, BillingView]));
        assert_eq!(applied(json!({"restricted": true}), &k).unwrap(), k);
        let next = applied(json!({"permissions": []}), &k).unwrap();
        assert_eq!(next.access, Access::Restricted(vec![]));
        let (field, why) = field_of(applied(json!({"permissions": null}), &k));
        assert_eq!(field, "permissions");
        assert!(why.contains("send []"), "{why}");
    }

    #[test]
    fn read_only_unknown_and_mistyped_fields_are_422s_naming_them() {
        for (p, field, says) in [
            (
                json!({"id": "01900000-0001-7000-8000-000000000002"}),
                "id",
                "cannot be written",
            ),
            (
                json!({"created_date": "2025-01-01T00:00:00Z"}),
                "created_date",
                "cannot be written",
            ),
            (
                json!({"last_four_digits": "abcd"}),
                "last_four_digits",
                "cannot be written",
            ),
            (
                json!({"creator_id": null}),
                "creator_id",
                "cannot be written",
            ),
            (json!({"colour": "red"}), "colour", "not a known field"),
            (json!({"name": null}), "name", "cannot be removed"),
            (json!({"name": 3}), "name", "must be a string"),
            (
                json!({"restricted": null}),
                "restricted",
                "cannot be removed",
            ),
            (json!({"restricted": 1}), "restricted", "true or false"),
            (json!({"status": "expired"}), "status", "expires_date"),
            (
                json!({"status": "on"}),
                "status",
                "\"active\" or \"disabled\"",
            ),
            (json!({"status": null}), "status", "cannot be removed"),
            (
                json!({"expires_date": "2025-05-01T00:00:00Z"}),
                "expires_date",
                "future",
            ),
            (json!({"expires_date": 5}), "expires_date", "not a number"),
            (
                json!({"permissions": ["calls.view", "calls.view"]}),
                "permissions",
                "twice",
            ),
        ] {
            let (got, why) = field_of(patch(p.clone()));
            assert_eq!(got, field, "{p}");
            assert!(why.contains(says), "{p}: {why}");
        }
    }

    #[test]
    fn the_rest_of_the_key_is_untouched() {
        let mut k = key(Access::new(true, vec![CallsView]));
        k.last_used = Some(now());
        let next = applied(
            json!({"name": "n", "restricted": false, "status": "disabled",
                   "expires_date": "2030-01-01T00:00:00Z"}),
            &k,
        )
        .unwrap();
        assert_eq!(
            (
                next.id,
                &next.org,
                next.created,
                next.last_used,
                next.creator_id,
                &next.last_four
            ),
            (
                k.id,
                &k.org,
                k.created,
                k.last_used,
                k.creator_id,
                &k.last_four
            )
        );
    }
}
