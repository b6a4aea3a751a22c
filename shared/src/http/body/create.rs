//! The body of `POST /v1/api_key/`: what key to create.
//!
//! `name` is required; `restricted` defaults to true; `permissions` is required (and may be
//! empty) when the key is restricted, and absent or null when it is not; `expires_date` is
//! an optional future time; `creator_id` is an optional UUID that defaults to the id of the
//! key making the request, so that `creator_id=<that id>` lists the keys it made;
//! `owner_id` optionally names whom the key is for (`owner_id=<it>` lists them). `meta` is
//! an optional JSON object ([`crate::meta`]), stored as given; `allowed_cidrs` an optional
//! list of CIDRs ([`crate::allow`]), null for any address.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Deserialize;
use uuid::Uuid;

use super::fields::{self, Cidrs, Flag, Id, MetaField, Name, Owner, Permissions, Time};
use super::quota::{CreditsField, LimitsField};
use super::read::{self, Accepts, Fields, Presence, field_error};
use crate::allow::AllowList;
use crate::auth::Caller;
use crate::http::problem::ApiError;
use crate::key::{Access, KeyId};
use crate::meta::Meta;
use crate::owner::OwnerId;
use crate::quota::Quota;
use crate::write::NewKey;

/// The fields a create body may hold.
pub const FIELDS: &[&str] = &[
    "name",
    "restricted",
    "permissions",
    "expires_date",
    "creator_id",
    "credits",
    "ratelimits",
    "owner_id",
    "meta",
    "allowed_cidrs",
];

/// Fields of the key object that the service sets itself.
pub const READ_ONLY: &[&str] = &[
    "id",
    "created_date",
    "updated_date",
    "last_used_date",
    "last_four_digits",
    "status",
    "secret",
    // Set by the service when it disables a key for a leak; enabling the key clears it.
    "disabled_reason",
];

/// A create body as sent: each field's type checks its value; null is absent for the
/// optional ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Name,
    #[serde(default = "restricted_by_default")]
    restricted: Flag,
    permissions: Option<Permissions>,
    expires_date: Option<Time>,
    creator_id: Option<Id>,
    credits: Option<CreditsField>,
    ratelimits: Option<LimitsField>,
    owner_id: Option<Owner>,
    meta: Option<MetaField>,
    allowed_cidrs: Option<Cidrs>,
}

fn restricted_by_default() -> Flag {
    Flag(true)
}

/// A validated create body, before it is tied to a caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateKey {
    pub name: String,
    pub access: Access,
    pub expires: Option<DateTime<Utc>>,
    /// `None`: the caller's key id (see [`CreateKey::new_key`]).
    pub creator_id: Option<Uuid>,
    pub quota: Quota,
    pub owner_id: Option<OwnerId>,
    pub meta: Option<Meta>,
    pub allowed_cidrs: Option<AllowList>,
}

impl CreateKey {
    /// Reads the create body of a request at `now`: 415, 413, 400 or 422 as [`read::read`]
    /// and the field rules say.
    pub fn from_request(req: &Request, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let fields = read::read_request(req, Accepts::Json, Presence::Required)?;
        Self::from_fields(&fields.unwrap_or_default(), now)
    }

    /// The rules of each field, on a body already read.
    pub fn from_fields(f: &Fields, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let body: CreateBody = read::parse(f, FIELDS, READ_ONLY)?;
        let restricted = body.restricted.0;
        let permissions = match (restricted, body.permissions) {
            (true, None) => {
                return Err(field_error(
                    "permissions",
                    "is required when restricted is true (it may be an empty list)",
                ));
            }
            (true, Some(list)) => list.0,
            (false, None) => Vec::new(),
            (false, Some(_)) => {
                return Err(field_error(
                    "permissions",
                    "must be absent or null when restricted is false: an unrestricted key \
                     holds every permission",
                ));
            }
        };
        let expires = match body.expires_date {
            None => None,
            Some(at) => {
                Some(fields::in_future(at.0, now).map_err(|why| field_error("expires_date", why))?)
            }
        };
        Ok(CreateKey {
            name: body.name.0,
            access: Access::new(restricted, permissions),
            expires,
            creator_id: body.creator_id.map(|id| id.0),
            quota: Quota {
                credits: body.credits.map(|c| c.0),
                ratelimits: body.ratelimits.map(|l| l.0).unwrap_or_default(),
            },
            owner_id: body.owner_id.map(|o| o.0),
            meta: body.meta.and_then(|m| m.0),
            allowed_cidrs: body.allowed_cidrs.map(|l| l.0),
        })
    }

    /// The key to store for this caller: in the caller's organization, created by
    /// `creator_id` or else by the caller's key id. `creator_id` is a label an unrestricted
    /// caller may set (for a key made on someone's behalf); a restricted caller may not,
    /// so that it cannot attribute its keys to another (a 422 naming it). Whether the caller
    /// may create this key at all is the write's to decide ([`crate::authority`]).
    pub fn new_key(self, caller: &Caller) -> Result<NewKey, ApiError> {
        if self.creator_id.is_some() && caller.access.is_restricted() {
            return Err(field_error(
                "creator_id",
                "may be set only by an unrestricted API key; a restricted key's keys are \
                 created by it",
            ));
        }
        Ok(NewKey {
            org: caller.org.clone(),
            name: self.name,
            creator_id: self.creator_id.unwrap_or_else(|| caller.key_id.as_uuid()),
            access: self.access,
            expires: self.expires,
            id: None::<KeyId>,
            quota: self.quota,
            owner_id: self.owner_id,
            meta: self.meta,
            allowed_cidrs: self.allowed_cidrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Permission::*;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    #[test]
    fn fields_lists_what_serde_reads() {
        assert_eq!(
            crate::http::body::read::serde_fields::<CreateBody>(),
            FIELDS
        );
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn parse(v: Value) -> Result<CreateKey, ApiError> {
        let Value::Object(map) = v else { panic!() };
        CreateKey::from_fields(&Fields(map.into_iter().collect()), now())
    }

    fn refused(v: Value) -> (String, String) {
        match parse(v.clone()) {
            Err(ApiError::InvalidField(p)) => (p.param, p.reason),
            other => panic!("{v}: not a field error: {other:?}"),
        }
    }

    fn caller(access: Access) -> Caller {
        Caller {
            org: "acme".parse().unwrap(),
            key_id: "01900000-0001-7000-8000-000000000002".parse().unwrap(),
            access,
            hash: crate::secret::Secret::from_random([9; 24]).hash(),
            last_used: None,
            expires: None,
            secret: crate::audit::ActingSecret {
                which: crate::audit::WhichSecret::Current,
                last_four: "abcd".into(),
            },
            quota: Default::default(),
            allowed_cidrs: None,
            owner_id: None,
        }
    }

    #[test]
    fn a_minimal_body_is_a_restricted_key_without_permissions() {
        let k = parse(json!({"name": "ci", "permissions": []})).unwrap();
        assert_eq!(k.name, "ci");
        assert_eq!(k.access, Access::Restricted(vec![]));
        assert_eq!((k.expires, k.creator_id), (None, None));
    }

    #[test]
    fn every_field_is_read() {
        let k = parse(json!({
            "name": "deploy",
            "restricted": true,
            "permissions": ["calls.view", "api_keys.view"],
            "expires_date": "2025-07-01T00:00:00Z",
            "creator_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        }))
        .unwrap();
        assert_eq!(k.access, Access::new(true, vec![CallsView, ApiKeysView]));
        assert_eq!(
            k.expires,
            Some(Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(
            k.creator_id.unwrap().to_string(),
            "3c90c3cc-0d44-4b50-8888-8dd25736052a"
        );
        let u = parse(json!({"name": "admin", "restricted": false})).unwrap();
        assert_eq!(u.access, Access::Unrestricted);
        let u = parse(
            json!({"name": "a", "restricted": false, "permissions": null,
                             "expires_date": null, "creator_id": null}),
        )
        .unwrap();
        assert_eq!(
            (u.access, u.expires, u.creator_id),
            (Access::Unrestricted, None, None)
        );
    }

    #[test]
    fn each_rule_is_a_422_naming_its_field() {
        for (body, field, says) in [
            (json!({"permissions": []}), "name", "is required"),
            (json!({"name": "", "permissions": []}), "name", "empty"),
            (
                json!({"name": "a\tb", "permissions": []}),
                "name",
                "control",
            ),
            (
                json!({"name": "x".repeat(257), "permissions": []}),
                "name",
                "at most 256 bytes",
            ),
            (
                json!({"name": ["x"], "permissions": []}),
                "name",
                "must be a string",
            ),
            (
                json!({"name": "k"}),
                "permissions",
                "required when restricted is true",
            ),
            (
                json!({"name": "k", "permissions": null}),
                "permissions",
                "required",
            ),
            (
                json!({"name": "k", "restricted": true}),
                "permissions",
                "may be an empty list",
            ),
            (
                json!({"name": "k", "restricted": false, "permissions": []}),
                "permissions",
                "absent or null",
            ),
            (
                json!({"name": "k", "restricted": "no", "permissions": []}),
                "restricted",
                "true or false",
            ),
            (
                json!({"name": "k", "restricted": null, "permissions": []}),
                "restricted",
                "not null",
            ),
            (
                json!({"name": "k", "permissions": ["x.y"]}),
                "permissions",
                "not a known permission",
            ),
            (
                json!({"name": "k", "permissions": [], "expires_date": "2025-06-01T11:59:59Z"}),
                "expires_date",
                "future",
            ),
            (
                json!({"name": "k", "permissions": [], "expires_date": "tomorrow"}),
                "expires_date",
                "RFC 3339",
            ),
            (
                json!({"name": "k", "permissions": [], "creator_id": "me"}),
                "creator_id",
                "UUID",
            ),
            (
                json!({"name": "k", "permissions": [], "id": "01900000-0001-7000-8000-000000000002"}),
                "id",
                "cannot be written",
            ),
            (
                json!({"name": "k", "permissions": [], "secret": "apk_x"}),
                "secret",
                "cannot be written",
            ),
            (
                json!({"name": "k", "permissions": [], "nmae": "k"}),
                "nmae",
                "not a known field",
            ),
        ] {
            let (got_field, why) = refused(body.clone());
            assert_eq!(got_field, field, "{body}");
            assert!(why.contains(says), "{body}: {why}");
        }
    }

    #[test]
    fn the_creator_defaults_to_the_callers_key() {
        let c = caller(Access::Unrestricted);
        let new = parse(json!({"name": "k", "permissions": []}))
            .unwrap()
            .new_key(&c)
            .unwrap();
        assert_eq!(new.creator_id, c.key_id.as_uuid());
        assert_eq!(new.org, c.org);
        assert_eq!(new.id, None);
        let given = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        let new = parse(json!({"name": "k", "permissions": [], "creator_id": given}))
            .unwrap()
            .new_key(&c)
            .unwrap();
        assert_eq!(new.creator_id.to_string(), given);
    }

    #[test]
    fn only_an_unrestricted_caller_sets_creator_id() {
        let c = caller(Access::new(true, vec![ApiKeysCreate, CallsView]));
        let given = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
        let ok = parse(json!({"name": "k", "permissions": ["calls.view"]})).unwrap();
        assert_eq!(ok.new_key(&c).unwrap().creator_id, c.key_id.as_uuid());
        let labelled = parse(json!({"name": "k", "permissions": [], "creator_id": given}));
        match labelled.unwrap().new_key(&c) {
            Err(ApiError::InvalidField(p)) => assert_eq!(p.param, "creator_id"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_is_created_is_what_into_record_stores() {
        let c = caller(Access::Unrestricted);
        let new = parse(json!({"name": "名前", "permissions": ["calls.view"],
                               "expires_date": "2026-01-01T00:00:00Z"}))
        .unwrap()
        .new_key(&c)
        .unwrap();
        let record = new
            .into_record(
                &crate::secret::Secret::from_random([2; 24]),
                chrono::Utc::now(),
            )
            .unwrap();
        assert_eq!(record.name, "名前");
        assert_eq!(record.access, Access::Restricted(vec![CallsView]));
        assert_eq!(
            record.expires,
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
        );
    }
}
