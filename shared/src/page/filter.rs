//! List filters: `status`, `creator_id`, `restricted`, `permission`, `name` (a
//! case-insensitive prefix) and `owner_id`. They are applied to the keys as they are read, so they combine
//! with each other and with every order and position; a page reads at most
//! [`crate::page::MAX_ITEMS_READ`] keys while looking for matches.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ParamError;
use crate::key::{ApiKey, KeyStatus, Permission};
use crate::owner::OwnerId;
use crate::page::parse_flag;
use crate::store::{KeyIndex, MAX_NAME_BYTES};

/// The filter parameters as they arrived.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawFilters<'a> {
    pub status: Option<&'a str>,
    pub creator_id: Option<&'a str>,
    pub restricted: Option<&'a str>,
    pub permission: Option<&'a str>,
    pub name: Option<&'a str>,
    pub owner_id: Option<&'a str>,
}

/// Validated filters; all given ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub status: Option<KeyStatus>,
    pub creator_id: Option<Uuid>,
    pub restricted: Option<bool>,
    pub permission: Option<Permission>,
    /// Lower-cased.
    pub name_prefix: Option<String>,
    pub owner_id: Option<OwnerId>,
}

impl Filters {
    /// Validates each given filter, in the order of the fields.
    pub fn parse(raw: RawFilters<'_>) -> Result<Self, ParamError> {
        Ok(Filters {
            status: raw.status.map(parse_status).transpose()?,
            creator_id: raw.creator_id.map(parse_creator).transpose()?,
            restricted: raw
                .restricted
                .map(|s| parse_flag("restricted", s))
                .transpose()?,
            permission: raw.permission.map(parse_permission).transpose()?,
            name_prefix: raw.name.map(parse_name).transpose()?,
            owner_id: raw.owner_id.map(parse_owner).transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Whether a key passes every filter at `now`.
    pub fn matches(&self, key: &ApiKey, now: DateTime<Utc>) -> bool {
        self.status.is_none_or(|s| key.status_at(now) == s)
            && self.creator_id.is_none_or(|c| key.creator_id == c)
            && self
                .restricted
                .is_none_or(|r| key.access.is_restricted() == r)
            && self.permission.is_none_or(|p| key.access.grants(p))
            && self
                .name_prefix
                .as_deref()
                .is_none_or(|p| key.name.to_lowercase().starts_with(p))
            && self
                .owner_id
                .as_ref()
                .is_none_or(|o| key.owner_id.as_ref() == Some(o))
    }

    /// The index a run of keys is read from: the owner's, the narrower where both an owner
    /// and a creator are given (the creator is then a filter like the others), else the
    /// creator's; `None` for the organization's partition.
    pub fn index(&self) -> Option<KeyIndex> {
        match (&self.owner_id, self.creator_id) {
            (Some(o), _) => Some(KeyIndex::Owner(o.clone())),
            (None, Some(c)) => Some(KeyIndex::Creator(c)),
            (None, None) => None,
        }
    }

    /// A digest of the filter set, carried by cursors so that a cursor is only followed
    /// under the filters it was made with: the first 8 bytes of the SHA-256 of
    /// [`Filters::canonical`], in hex. `None` for no filters.
    pub fn digest(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        Some(crate::digest::sha256_hex(self.canonical().as_bytes(), 8))
    }

    /// The filter set as text that only this code defines, so that no dependency's
    /// formatting can change it (and with it, every cursor in flight): `v1`, then each
    /// given filter in a fixed order as `;<letter>=<value>`, with the parameter's own
    /// spelling of the value; the name prefix and the owner id, free text, are preceded by
    /// their length in bytes. (The owner comes last, so the text of a set without one is
    /// what it was before owners, and so are its cursors.)
    fn canonical(&self) -> String {
        let mut text = String::from("v1");
        if let Some(status) = self.status {
            let word = match status {
                KeyStatus::Active => "active",
                KeyStatus::Disabled => "disabled",
                KeyStatus::Expired => "expired",
            };
            text.push_str(&format!(";s={word}"));
        }
        if let Some(creator) = self.creator_id {
            text.push_str(&format!(";c={}", creator.hyphenated()));
        }
        if let Some(restricted) = self.restricted {
            text.push_str(&format!(";r={restricted}"));
        }
        if let Some(permission) = self.permission {
            text.push_str(&format!(";p={}", permission.as_str()));
        }
        if let Some(prefix) = &self.name_prefix {
            text.push_str(&format!(";n={}:{prefix}", prefix.len()));
        }
        if let Some(owner) = &self.owner_id {
            text.push_str(&format!(";o={}:{owner}", owner.as_str().len()));
        }
        text
    }
}

fn parse_status(s: &str) -> Result<KeyStatus, ParamError> {
    match s {
        "active" => Ok(KeyStatus::Active),
        "disabled" => Ok(KeyStatus::Disabled),
        "expired" => Ok(KeyStatus::Expired),
        _ => Err(ParamError::new(
            "status",
            format!("must be \"active\", \"disabled\" or \"expired\", got {s:?}"),
        )),
    }
}

fn parse_creator(s: &str) -> Result<Uuid, ParamError> {
    Uuid::try_parse(s)
        .map_err(|_| ParamError::new("creator_id", format!("must be a UUID, got {s:?}")))
}

fn parse_owner(s: &str) -> Result<OwnerId, ParamError> {
    s.parse::<OwnerId>()
        .map_err(|e| ParamError::new("owner_id", e.to_string()))
}

fn parse_permission(s: &str) -> Result<Permission, ParamError> {
    s.parse::<Permission>().map_err(|_| {
        ParamError::new(
            "permission",
            format!("must be one of the 56 permission strings, got {s:?}"),
        )
    })
}

/// A name prefix: 1 to [`MAX_NAME_BYTES`] bytes, lower-cased.
fn parse_name(s: &str) -> Result<String, ParamError> {
    if s.is_empty() || s.len() > MAX_NAME_BYTES {
        Err(ParamError::new(
            "name",
            format!("must be 1 to {MAX_NAME_BYTES} bytes"),
        ))
    } else {
        Ok(s.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Access, KeyId, KeyState};

    fn key(name: &str, access: Access, state: KeyState, expired: bool) -> ApiKey {
        let now = Utc::now();
        ApiKey {
            id: KeyId::generate(),
            org: "o".parse().unwrap(),
            name: name.into(),
            created: now,
            updated: now,
            last_used: None,
            expires: expired.then(|| now - chrono::Duration::seconds(5)),
            creator_id: Uuid::nil(),
            access,
            state,
            last_four: "abcd".into(),
            version: 1,
            disabled_reason: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Filters, ParamError> {
        let mut raw = RawFilters::default();
        for (k, v) in pairs {
            match *k {
                "status" => raw.status = Some(v),
                "creator_id" => raw.creator_id = Some(v),
                "restricted" => raw.restricted = Some(v),
                "permission" => raw.permission = Some(v),
                "name" => raw.name = Some(v),
                "owner_id" => raw.owner_id = Some(v),
                _ => unreachable!(),
            }
        }
        Filters::parse(raw)
    }

    #[test]
    fn filters_combine_and_names_match_by_case_insensitive_prefix() {
        let now = Utc::now();
        let calls = Access::new(true, vec![Permission::CallsView]);
        let ci = key("CI Deploy", Access::Unrestricted, KeyState::Active, false);
        let viewer = key("ci viewer", calls.clone(), KeyState::Active, false);
        let old = key("Ci old", calls, KeyState::Active, true);
        let off = key("other", Access::Unrestricted, KeyState::Disabled, false);

        let f = parse(&[("name", "cI")]).unwrap();
        let got: Vec<bool> = [&ci, &viewer, &old, &off]
            .iter()
            .map(|k| f.matches(k, now))
            .collect();
        assert_eq!(got, [true, true, true, false]);

        let f = parse(&[
            ("name", "ci"),
            ("status", "active"),
            ("permission", "calls.view"),
        ])
        .unwrap();
        assert!(
            f.matches(&ci, now),
            "unrestricted keys grant every permission"
        );
        assert!(f.matches(&viewer, now));
        assert!(!f.matches(&old, now), "expired");

        let f = parse(&[("restricted", "true"), ("status", "expired")]).unwrap();
        assert!(f.matches(&old, now) && !f.matches(&viewer, now));
        let f = parse(&[
            ("status", "disabled"),
            ("creator_id", &Uuid::nil().to_string()),
        ])
        .unwrap();
        assert!(f.matches(&off, now) && !f.matches(&ci, now));
        let f = parse(&[("permission", "billing.view")]).unwrap();
        assert!(!f.matches(&viewer, now) && f.matches(&ci, now));
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        for (pairs, param) in [
            (&[("status", "on")][..], "status"),
            (&[("creator_id", "x")], "creator_id"),
            (&[("restricted", "yes")], "restricted"),
            (&[("permission", "calls.read")], "permission"),
            (&[("name", "")], "name"),
            (&[("owner_id", "")], "owner_id"),
        ] {
            assert_eq!(parse(pairs).unwrap_err().param, param, "{pairs:?}");
        }
    }

    #[test]
    fn the_digest_of_a_known_filter_set_is_pinned() {
        // Changing either value invalidates every filtered cursor in flight: only ever on
        // purpose, with a new version tag in `canonical`.
        let f = parse(&[
            ("name", "CI;n=x"),
            ("permission", "calls.view"),
            ("restricted", "true"),
            ("creator_id", "3C90C3CC-0D44-4B50-8888-8DD25736052A"),
            ("status", "active"),
        ])
        .unwrap();
        assert_eq!(
            f.canonical(),
            "v1;s=active;c=3c90c3cc-0d44-4b50-8888-8dd25736052a;r=true;p=calls.view;n=6:ci;n=x"
        );
        assert_eq!(f.digest().as_deref(), Some("1f8730f0206d3e22"));
    }

    #[test]
    fn an_owner_filter_matches_its_keys_and_reads_the_owners_index() {
        let now = Utc::now();
        let mut mine = key("a", Access::Unrestricted, KeyState::Active, false);
        mine.owner_id = Some("cus_1".parse().unwrap());
        let other = key("b", Access::Unrestricted, KeyState::Active, false);
        let f = parse(&[
            ("owner_id", "cus_1"),
            ("creator_id", &Uuid::nil().to_string()),
        ])
        .unwrap();
        assert!(f.matches(&mine, now) && !f.matches(&other, now));
        assert_eq!(f.index(), Some(KeyIndex::Owner("cus_1".parse().unwrap())));
        assert_eq!(
            parse(&[("creator_id", &Uuid::nil().to_string())])
                .unwrap()
                .index(),
            Some(KeyIndex::Creator(Uuid::nil()))
        );
        assert_eq!(
            f.canonical(),
            "v1;c=00000000-0000-0000-0000-000000000000;o=5:cus_1"
        );
    }

    #[test]
    fn the_digest_tells_filter_sets_apart() {
        assert_eq!(parse(&[]).unwrap().digest(), None);
        let a = parse(&[("name", "CI")]).unwrap().digest();
        assert_eq!(
            a,
            parse(&[("name", "ci")]).unwrap().digest(),
            "case-insensitive"
        );
        assert_ne!(a, parse(&[("name", "cd")]).unwrap().digest());
        assert_ne!(
            a,
            parse(&[("name", "ci"), ("restricted", "true")])
                .unwrap()
                .digest()
        );
    }
}
