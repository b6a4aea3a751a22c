//! The JSON views of a key: the diga view (`KeyView`, what every endpoint of ours shows of
//! a key) and the discue view (`DiscueView`, `GET /v1/api_keys/{api_key_id}`, for clients
//! of that API). Neither ever holds the secret or its hash.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::allow::AllowList;
use crate::key::{Access, ApiKey, DisabledReason, KeyId, KeyState, KeyStatus, Permission};
use crate::meta::Meta;
use crate::owner::{Owner, OwnerId};
use crate::quota::{Credits, RateLimit};
use crate::verify::{LimitLeft, Verdict, VerifyCode};

impl ApiKey {
    /// The API's representation of this key at `now`.
    pub fn view(&self, now: DateTime<Utc>) -> KeyView<'_> {
        KeyView {
            id: self.id,
            name: &self.name,
            created_date: Rfc3339(self.created),
            last_four_digits: &self.last_four,
            creator_id: self.creator_id,
            restricted: self.access.is_restricted(),
            permissions: self.access.permissions(),
            status: self.status_at(now),
            updated_date: Rfc3339(self.updated),
            last_used_date: self.last_used.map(Rfc3339),
            expires_date: self.expires.map(Rfc3339),
            disabled_reason: self
                .disabled_reason
                .filter(|_| self.state == KeyState::Disabled),
            credits: self.quota.credits.as_ref(),
            ratelimits: &self.quota.ratelimits,
            owner_id: self.owner_id.as_ref(),
            meta: self.meta.as_ref(),
            allowed_cidrs: self.allowed_cidrs.as_ref(),
        }
    }
}

impl ApiKey {
    /// The key as a list page shows it: without its credits and rate limits, which a page
    /// read from the `by-creator-v2` index does not carry (GET shows them).
    pub fn list_view(&self, now: DateTime<Utc>) -> KeyView<'_> {
        KeyView {
            credits: None,
            ratelimits: &[],
            ..self.view(now)
        }
    }
}

/// Whether a discue scope only reads its resource or may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeAccess {
    Read,
    Write,
}

/// One entry of a discue view's `scopes`: a resource (the part of a permission before the
/// dot), whether the key reads or writes it, and which of its objects: all of them (`*`),
/// since permissions are not limited to particular objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub resource: &'static str,
    pub access: ScopeAccess,
    pub targets: [&'static str; 1],
}

/// The verify response body: `{"valid": bool, "code": …, "key": <key object> | null}`,
/// and, for a key with credits or rate limits, what it has left.
#[derive(Debug, Serialize)]
pub struct VerifyBody<'a> {
    pub valid: bool,
    pub code: VerifyCode,
    pub key: Option<KeyView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<CreditsLeft>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<&'a [LimitLeft]>,
    /// The key's owner, absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<&'a OwnerId>,
    /// What the owner has left, absent unless it has credits or rate limits of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerLeft<'a>>,
    /// The key's metadata, where it has any (also in `key`): what the calling service keeps
    /// about the key, without a lookup of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a Meta>,
}

/// A verify answer's `owner`: `{"credits": {"remaining": N}, "ratelimits": [...]}`, each
/// absent when the owner has none.
#[derive(Debug, Serialize)]
pub struct OwnerLeft<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<CreditsLeft>,
    #[serde(skip_serializing_if = "<[LimitLeft]>::is_empty")]
    pub ratelimits: &'a [LimitLeft],
}

/// A verify answer's `credits`: `{"remaining": N}`.
#[derive(Debug, Serialize)]
pub struct CreditsLeft {
    pub remaining: u64,
}

impl Verdict {
    /// The response body, with the key as it reads at `now`.
    pub fn body(&self, now: DateTime<Utc>) -> VerifyBody<'_> {
        VerifyBody {
            valid: self.valid,
            code: self.code,
            key: self.key.as_ref().map(|k| k.view(now)),
            credits: self.credits.map(|remaining| CreditsLeft { remaining }),
            ratelimits: self.ratelimits.as_deref(),
            owner_id: self.owner_id.as_ref(),
            owner: self.owner.as_ref().map(|o| OwnerLeft {
                credits: o.credits.map(|remaining| CreditsLeft { remaining }),
                ratelimits: &o.ratelimits,
            }),
            meta: self.meta.as_ref(),
        }
    }
}

/// The scopes an access grants, one per resource in reference order: `write` if any of its
/// permissions writes, else `read`. An unrestricted key has every resource's permissions.
pub fn scopes(access: &Access) -> Vec<Scope> {
    let list = access.permissions().unwrap_or(Permission::ALL);
    let mut scopes: Vec<Scope> = Vec::new();
    for p in Permission::ALL.iter().filter(|p| list.contains(p)) {
        let access = if p.writes() {
            ScopeAccess::Write
        } else {
            ScopeAccess::Read
        };
        match scopes.iter_mut().find(|s| s.resource == p.resource()) {
            Some(scope) => {
                if access == ScopeAccess::Write {
                    scope.access = ScopeAccess::Write;
                }
            }
            None => scopes.push(Scope {
                resource: p.resource(),
                access,
                targets: ["*"],
            }),
        }
    }
    scopes
}

/// A discue key status: whether the key can be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscueStatus {
    Enabled,
    Disabled,
}

/// The discue-compatible representation of a key (`GET /v1/api_keys/{api_key_id}`).
#[derive(Debug, Serialize)]
pub struct DiscueView<'a> {
    pub api_key: DiscueKey<'a>,
    pub _links: Links,
}

/// The key inside a [`DiscueView`]: times in epoch milliseconds, the secret redacted.
#[derive(Debug, Serialize)]
pub struct DiscueKey<'a> {
    pub id: KeyId,
    pub name: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    /// Never the secret: its prefix and last four characters, as in `apk_...Pq1w`.
    pub key: String,
    pub status: DiscueStatus,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Serialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: Link,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub href: String,
}

impl ApiKey {
    /// The discue representation of this key at `now`; `href` is the URL it was read at.
    pub fn discue_view(&self, now: DateTime<Utc>, href: String) -> DiscueView<'_> {
        DiscueView {
            api_key: DiscueKey {
                id: self.id,
                name: &self.name,
                created_at: self.created.timestamp_millis(),
                updated_at: self.updated.timestamp_millis(),
                last_used_at: self.last_used.map(|t| t.timestamp_millis()),
                key: format!("{}...{}", crate::secret::PREFIX, self.last_four),
                status: match self.status_at(now) {
                    KeyStatus::Active => DiscueStatus::Enabled,
                    KeyStatus::Disabled | KeyStatus::Expired => DiscueStatus::Disabled,
                },
                scopes: scopes(&self.access),
            },
            _links: Links {
                self_: Link { href },
            },
        }
    }
}

/// The JSON object the API returns for a key. The first seven fields are the reference
/// contract; the others are additive.
#[derive(Debug, Serialize)]
pub struct KeyView<'a> {
    pub id: KeyId,
    pub name: &'a str,
    pub created_date: Rfc3339,
    pub last_four_digits: &'a str,
    pub creator_id: Uuid,
    pub restricted: bool,
    pub permissions: Option<&'a [Permission]>,
    pub status: KeyStatus,
    pub updated_date: Rfc3339,
    pub last_used_date: Option<Rfc3339>,
    pub expires_date: Option<Rfc3339>,
    /// Only on a key the service disabled on its own (`leaked`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<DisabledReason>,
    /// Its credits (`{remaining, refill}`), absent when it has none (unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<&'a Credits>,
    /// Its rate limits, absent when it has none.
    #[serde(skip_serializing_if = "<[RateLimit]>::is_empty")]
    pub ratelimits: &'a [RateLimit],
    /// Whom the key is for; `null` for nobody.
    pub owner_id: Option<&'a OwnerId>,
    /// Its metadata ([`crate::meta`]), null when it has none.
    pub meta: Option<&'a Meta>,
    /// The addresses it may be used from ([`crate::allow`]), null for any.
    pub allowed_cidrs: Option<&'a AllowList>,
}

/// A UTC time rendered as RFC 3339 with whole seconds and a `Z`, as in `2023-11-07T05:31:56Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn scopes_group_permissions_by_resource_and_writing_wins() {
        use Permission::*;
        let access = Access::new(
            true,
            vec![
                CallsView,
                PhonesView,
                PhonesImport,
                ToolsCreate,
                BillingView,
            ],
        );
        let got: Vec<(&str, ScopeAccess)> = scopes(&access)
            .iter()
            .map(|s| (s.resource, s.access))
            .collect();
        assert_eq!(
            got,
            [
                ("calls", ScopeAccess::Read),
                ("phones", ScopeAccess::Write),
                ("tools", ScopeAccess::Write),
                ("billing", ScopeAccess::Read),
            ]
        );
        assert!(scopes(&Access::new(true, vec![])).is_empty());
        let all = scopes(&Access::Unrestricted);
        assert_eq!(all.len(), 20);
        assert!(all.iter().all(|s| s.targets == ["*"]));
        let read_only: Vec<&str> = all
            .iter()
            .filter(|s| s.access == ScopeAccess::Read)
            .map(|s| s.resource)
            .collect();
        assert_eq!(
            read_only,
            [
                "messages",
                "voices",
                "transcriptions",
                "recordings",
                "stats"
            ]
        );
        assert!(PhonesPurchase.writes() && !CallsView.writes());
    }

    #[test]
    fn times_render_as_rfc3339_seconds_utc() {
        let t = Utc.with_ymd_and_hms(2023, 11, 7, 5, 31, 56).unwrap()
            + chrono::Duration::milliseconds(789);
        assert_eq!(
            serde_json::to_string(&Rfc3339(t)).unwrap(),
            "\"2023-11-07T05:31:56Z\""
        );
    }
}

/// The JSON object of `GET`/`PUT /v1/owner/{owner_id}`: an owner's own credits (with what
/// is left) and rate limits, `null` and `[]` when it has none; the body a `PUT` takes, plus
/// the owner's id and when its limits last changed.
#[derive(Debug, Serialize)]
pub struct OwnerView<'a> {
    pub owner_id: &'a OwnerId,
    pub credits: Option<&'a Credits>,
    pub ratelimits: &'a [RateLimit],
    pub updated_date: Rfc3339,
}

impl Owner {
    pub fn view(&self) -> OwnerView<'_> {
        OwnerView {
            owner_id: &self.id,
            credits: self.quota.credits.as_ref(),
            ratelimits: &self.quota.ratelimits,
            updated_date: Rfc3339(self.updated),
        }
    }
}
