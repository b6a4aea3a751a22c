//! What an update changes: a merge patch (RFC 7396) of a key's name, access, expiry,
//! state, quota and owner, and how it applies to the key as read. The edge parses the body into a
//! [`KeyChange`]; the rules that need the key (its access) are here.
//!
//! - `restricted: false` makes the key unrestricted, and its permissions null; a non-null
//!   `permissions` beside it is refused.
//! - Making an unrestricted key restricted needs `permissions` in the same patch (it may be
//!   empty); `permissions` alone on an unrestricted key is refused rather than silently
//!   restricting the key.
//! - On a restricted key, `permissions` replaces the whole list; `null` is refused.
//! - `meta` merges into the key's metadata ([`Meta::merged`]); `allowed_cidrs` replaces
//!   its allow-list; null removes either.

use chrono::{DateTime, Utc};

use super::{InvalidWrite, check_name};
use crate::allow::AllowList;
use crate::key::{Access, ApiKey, KeyState, Permission};
use crate::meta::Meta;
use crate::owner::OwnerId;
use crate::quota::{Credits, InvalidQuota, RateLimit, Refill};

/// A merge patch of a key. `None`: absent, the value is kept; `Some(None)`: null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub name: Option<String>,
    pub restricted: Option<bool>,
    pub permissions: Option<Option<Vec<Permission>>>,
    pub expires: Option<Option<DateTime<Utc>>>,
    pub status: Option<KeyState>,
    /// `Some(None)`: unlimited; `Some(Some(change))`: merged into the key's credits.
    pub credits: Option<Option<CreditsChange>>,
    /// `Some(None)`: no limits; `Some(Some(list))`: the whole list.
    pub ratelimits: Option<Option<Vec<RateLimit>>>,
    /// `Some(None)`: no owner; `Some(Some(id))`: this owner.
    pub owner_id: Option<Option<OwnerId>>,
    /// `Some(None)`: no metadata; `Some(Some(patch))`: merged into it (RFC 7396).
    pub meta: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    /// `Some(None)`: any address; `Some(Some(list))`: the whole list.
    pub allowed_cidrs: Option<Option<AllowList>>,
}

/// A merge patch of a key's credits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditsChange {
    pub remaining: Option<u64>,
    /// `Some(None)`: no refill.
    pub refill: Option<Option<Refill>>,
    /// `Some(None)`: no threshold.
    pub low_at: Option<Option<u64>>,
}

impl CreditsChange {
    /// The credits after this patch of `current` (`None`: the key has none).
    fn apply(&self, current: Option<&Credits>) -> Result<Credits, InvalidWrite> {
        let remaining =
            self.remaining
                .or(current.map(|c| c.remaining))
                .ok_or(InvalidWrite::Quota(
                    "credits",
                    InvalidQuota::RemainingRequired,
                ))?;
        let refill = match self.refill {
            Some(r) => r,
            None => current.and_then(|c| c.refill),
        };
        let low_at = match self.low_at {
            Some(l) => l,
            None => current.and_then(|c| c.low_at),
        };
        Ok(Credits {
            remaining,
            refill,
            low_at,
        })
    }
}

impl KeyChange {
    /// A change of the key's state alone.
    pub fn state(state: KeyState) -> Self {
        KeyChange {
            status: Some(state),
            ..KeyChange::default()
        }
    }

    /// A change of the key's name alone.
    pub fn name(name: impl Into<String>) -> Self {
        KeyChange {
            name: Some(name.into()),
            ..KeyChange::default()
        }
    }

    /// Whether the patch names no field at all.
    pub fn is_empty(&self) -> bool {
        *self == KeyChange::default()
    }

    /// The key after this patch: [`InvalidWrite::Access`] when it leaves the key's access
    /// undefined, [`InvalidWrite::Name`] for a name out of bounds. Only the name, access,
    /// expiry and state change; the caller stamps the version and time.
    pub fn apply(&self, current: &ApiKey) -> Result<ApiKey, InvalidWrite> {
        let mut next = current.clone();
        next.access = self.access(&current.access)?;
        if let Some(name) = &self.name {
            check_name(name)?;
            next.name.clone_from(name);
        }
        if let Some(expires) = self.expires {
            next.expires = expires;
        }
        if let Some(state) = self.status {
            next.state = state;
        }
        if let Some(owner) = &self.owner_id {
            next.owner_id.clone_from(owner);
        }
        match &self.credits {
            Some(None) => next.quota.credits = None,
            Some(Some(change)) => {
                next.quota.credits = Some(change.apply(current.quota.credits.as_ref())?);
            }
            None => {}
        }
        if let Some(limits) = &self.ratelimits {
            next.quota.ratelimits = limits.clone().unwrap_or_default();
        }
        super::check_quota(&next.quota)?;
        match &self.meta {
            Some(None) => next.meta = None,
            Some(Some(patch)) => {
                next.meta =
                    Meta::merged(current.meta.as_ref(), patch).map_err(InvalidWrite::Meta)?;
            }
            None => {}
        }
        if let Some(list) = &self.allowed_cidrs {
            next.allowed_cidrs.clone_from(list);
        }
        Ok(next)
    }

    fn access(&self, current: &Access) -> Result<Access, InvalidWrite> {
        let restricted = self.restricted.unwrap_or(current.is_restricted());
        match (restricted, &self.permissions) {
            (false, None | Some(None)) => Ok(Access::Unrestricted),
            (false, Some(Some(_))) if self.restricted.is_none() => Err(InvalidWrite::Access(
                "cannot be set on an unrestricted key; send \"restricted\": true with the \
                 permissions to restrict it",
            )),
            (false, Some(Some(_))) => Err(InvalidWrite::Access(
                "must be absent or null when restricted is false: an unrestricted key holds \
                 every permission",
            )),
            (true, Some(Some(list))) => Ok(Access::new(true, list.clone())),
            (true, Some(None)) => Err(InvalidWrite::Access(
                "cannot be null while the key is restricted; send [] to remove every \
                 permission, or \"restricted\": false",
            )),
            (true, None) => match current {
                Access::Restricted(_) => Ok(current.clone()),
                Access::Unrestricted => Err(InvalidWrite::Access(
                    "is required when the key becomes restricted (it may be an empty list)",
                )),
            },
        }
    }
}
