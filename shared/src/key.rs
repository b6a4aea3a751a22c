//! Key metadata: ids, organizations, permissions and status, parsed once at the edge.
//!
//! `ApiKey` is the stored record; what the API shows of it is `http::views`'s.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

/// The id of an API key: a UUID. New ids are UUIDv7, so id order is creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(Uuid);

impl KeyId {
    /// A new id whose embedded timestamp is `at`, truncated to the millisecond.
    pub fn new_at(at: DateTime<Utc>) -> Self {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            ms / 1000,
            u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
        );
        KeyId(Uuid::new_v7(ts))
    }

    /// A new id for a key created now.
    pub fn generate() -> Self {
        KeyId(Uuid::now_v7())
    }

    /// The creation time a UUIDv7 id carries (millisecond precision); `None` for other versions.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        if self.0.get_version_num() != 7 {
            return None;
        }
        let (secs, nanos) = self.0.get_timestamp()?.to_unix();
        Utc.timestamp_opt(i64::try_from(secs).ok()?, nanos).single()
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for KeyId {
    fn from(value: Uuid) -> Self {
        KeyId(value)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case: the canonical form, and the one the store sorts by.
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Why a string is not a key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID such as 0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11")]
pub struct InvalidUuid;

impl FromStr for KeyId {
    type Err = InvalidUuid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(KeyId).map_err(|_| InvalidUuid)
    }
}

/// An organization: the tenant that owns keys. It always comes from the caller's own key,
/// never from a request parameter or a cursor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgId(String);

/// Why a string is not an organization id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an organization id is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
pub struct InvalidOrgId;

impl OrgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OrgId {
    type Err = InvalidOrgId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(OrgId(s.to_owned()))
        } else {
            Err(InvalidOrgId)
        }
    }
}

impl TryFrom<String> for OrgId {
    type Error = InvalidOrgId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<OrgId> for String {
    fn from(value: OrgId) -> Self {
        value.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! permissions {
    ($($variant:ident => $name:literal,)+) => {
        /// What a restricted key may do: the application's permission strings.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission { $($variant,)+ }

        impl Permission {
            /// Every permission, in the reference order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)+ }
            }

            /// Its bit in a stored permission set: its position in [`Permission::ALL`].
            /// The list is append-only, so stored sets keep their meaning.
            pub fn bit(self) -> u64 {
                1 << (self as u32)
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(Permission::$variant),)+
                    _ => Err(UnknownPermission(s.to_owned())),
                }
            }
        }
    };
}

permissions! {
    CompaniesDelete => "companies.delete",
    CompaniesUpdate => "companies.update",
    CallsCreate => "calls.create",
    CallsDelete => "calls.delete",
    CallsUpdate => "calls.update",
    CallsView => "calls.view",
    MessagesView => "messages.view",
    AgentsView => "agents.view",
    AgentsCreate => "agents.create",
    AgentsUpdate => "agents.update",
    AgentsDelete => "agents.delete",
    PhonesView => "phones.view",
    PhonesPurchase => "phones.purchase",
    PhonesDelete => "phones.delete",
    PhonesUpdate => "phones.update",
    PhonesImport => "phones.import",
    ToolsView => "tools.view",
    ToolsCreate => "tools.create",
    ToolsDelete => "tools.delete",
    ToolsUpdate => "tools.update",
    ContactsView => "contacts.view",
    ContactsDelete => "contacts.delete",
    ConversationalPathsView => "conversational_paths.view",
    ConversationalPathsCreate => "conversational_paths.create",
    ConversationalPathsDelete => "conversational_paths.delete",
    ConversationalPathsUpdate => "conversational_paths.update",
    KnowledgeBasesView => "knowledge_bases.view",
    KnowledgeBasesCreate => "knowledge_bases.create",
    KnowledgeBasesDelete => "knowledge_bases.delete",
    KnowledgeBasesUpdate => "knowledge_bases.update",
    WebhooksView => "webhooks.view",
    WebhooksCreate => "webhooks.create",
    WebhooksDelete => "webhooks.delete",
    WebhooksUpdate => "webhooks.update",
    MembersView => "members.view",
    MembersCreate => "members.create",
    MembersDelete => "members.delete",
    MembersUpdate => "members.update",
    BillingView => "billing.view",
    BillingUpdate => "billing.update",
    ApiKeysView => "api_keys.view",
    ApiKeysCreate => "api_keys.create",
    ApiKeysDelete => "api_keys.delete",
    ApiKeysUpdate => "api_keys.update",
    VoicesView => "voices.view",
    TranscriptionsView => "transcriptions.view",
    RecordingsView => "recordings.view",
    StatsView => "stats.view",
    VerificationsCreate => "verifications.create",
    VerificationsView => "verifications.view",
    NotificationsView => "notifications.view",
    NotificationsUpdate => "notifications.update",
    IntegrationsView => "integrations.view",
    IntegrationsCreate => "integrations.create",
    IntegrationsUpdate => "integrations.update",
    IntegrationsDelete => "integrations.delete",
}

/// A set of permissions as stored: one bit per permission.
pub fn permission_bits(list: &[Permission]) -> u64 {
    list.iter().fold(0, |bits, p| bits | p.bit())
}

/// Decodes a stored permission set, in reference order; `None` if it holds a bit that
/// names no permission (written by a newer version, or corrupt).
pub fn permissions_from_bits(bits: u64) -> Option<Vec<Permission>> {
    let list: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| bits & p.bit() != 0)
        .collect();
    (permission_bits(&list) == bits).then_some(list)
}

/// A string that is not one of [`Permission::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What an administrator set on a key. Expiry is not stored here: it is computed at read time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Active,
    Disabled,
}

/// Why a key is disabled, when the service disabled it on its own rather than someone
/// through the API or the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Its secret was reported found in public code (GitHub secret scanning); the
    /// `key.leaked` audit event says where.
    Leaked,
}

/// The status the API reports: the stored state, with expiry applied at read time.
/// A disabled key reads as `disabled` even after it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Disabled,
    Expired,
}

/// What a key may do: everything, or exactly a set of permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Unrestricted,
    Restricted(Vec<Permission>),
}

impl Access {
    pub fn grants(&self, permission: Permission) -> bool {
        match self {
            Access::Unrestricted => true,
            Access::Restricted(list) => list.contains(&permission),
        }
    }

    pub fn is_restricted(&self) -> bool {
        matches!(self, Access::Restricted(_))
    }

    /// The permission list as the API shows it: `None` for an unrestricted key.
    pub fn permissions(&self) -> Option<&[Permission]> {
        match self {
            Access::Unrestricted => None,
            Access::Restricted(list) => Some(list),
        }
    }

    /// Builds an access from a restricted flag and a list, sorted and without duplicates.
    pub fn new(restricted: bool, mut permissions: Vec<Permission>) -> Self {
        if restricted {
            permissions.sort();
            permissions.dedup();
            Access::Restricted(permissions)
        } else {
            Access::Unrestricted
        }
    }
}

/// The status a key with this state and expiry has at `now`.
pub fn status_at(state: KeyState, expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> KeyStatus {
    match (state, expires) {
        (KeyState::Disabled, _) => KeyStatus::Disabled,
        (KeyState::Active, Some(at)) if at <= now => KeyStatus::Expired,
        (KeyState::Active, _) => KeyStatus::Active,
    }
}

/// A stored API key's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub org: OrgId,
    pub name: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    pub creator_id: Uuid,
    pub access: Access,
    pub state: KeyState,
    /// The last four characters of the secret, shown to help people tell keys apart.
    pub last_four: String,
    /// Goes up by one with every change of the key (not with its use), so that a write
    /// can be made on condition that nobody changed the key since it was read. 0 for a key
    /// stored before versions were.
    pub version: u64,
    /// Why the service disabled the key, while it stays disabled: enabling it clears this.
    pub disabled_reason: Option<DisabledReason>,
    /// Its credits and rate limits ([`crate::quota`]); the default is unmetered.
    pub quota: crate::quota::Quota,
    /// Whom the organization says the key is for ([`crate::owner`]); `None` for nobody.
    pub owner_id: Option<crate::owner::OwnerId>,
    /// The organization's metadata for it ([`crate::meta`]), shown by every read and verify.
    pub meta: Option<crate::meta::Meta>,
    /// The addresses its secrets may be used from ([`crate::allow`]); `None`: any.
    pub allowed_cidrs: Option<crate::allow::AllowList>,
}

impl ApiKey {
    pub fn status_at(&self, now: DateTime<Utc>) -> KeyStatus {
        status_at(self.state, self.expires, now)
    }
}

impl Permission {
    /// The resource this permission is about: `calls` for `calls.view`.
    pub fn resource(self) -> &'static str {
        self.as_str().split_once('.').map_or("", |(r, _)| r)
    }

    /// Whether it changes its resource: any create, update, delete, purchase or import.
    pub fn writes(self) -> bool {
        matches!(
            self.as_str().split_once('.').map(|(_, a)| a),
            Some("create" | "update" | "delete" | "purchase" | "import")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_56_reference_permissions_parse_and_round_trip() {
        assert_eq!(Permission::ALL.len(), 56);
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert!("api_keys.read".parse::<Permission>().is_err());
    }

    #[test]
    fn permission_sets_round_trip_through_their_bits() {
        assert_eq!(permissions_from_bits(0), Some(vec![]));
        let all = permission_bits(Permission::ALL);
        assert_eq!(all.count_ones(), 56);
        assert_eq!(permissions_from_bits(all).as_deref(), Some(Permission::ALL));
        let some = [Permission::CompaniesDelete, Permission::IntegrationsDelete];
        assert_eq!(
            permissions_from_bits(permission_bits(&some)),
            Some(some.to_vec())
        );
        assert_eq!(permissions_from_bits(1 << 60), None);
    }

    #[test]
    fn a_v7_id_carries_its_creation_time() {
        let at = Utc.with_ymd_and_hms(2023, 11, 7, 5, 31, 56).unwrap();
        let id = KeyId::new_at(at);
        assert_eq!(id.created_at(), Some(at));
    }

    #[test]
    fn id_order_is_creation_order_in_text_form_too() {
        let a = KeyId::new_at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
        let b = KeyId::new_at(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 1).unwrap());
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn key_ids_accept_any_uuid_spelling_and_render_canonically() {
        let id: KeyId = "3C90C3CC0D444B5088888DD25736052A".parse().unwrap();
        assert_eq!(id.to_string(), "3c90c3cc-0d44-4b50-8888-8dd25736052a");
        assert!("3c90c3cc".parse::<KeyId>().is_err());
        assert!("".parse::<KeyId>().is_err());
    }

    #[test]
    fn org_ids_are_validated() {
        assert!("acme-corp_1.eu".parse::<OrgId>().is_ok());
        assert!("".parse::<OrgId>().is_err());
        assert!("ORG#x".parse::<OrgId>().is_err());
        assert!("a".repeat(65).parse::<OrgId>().is_err());
    }

    #[test]
    fn expiry_is_computed_at_read_time_and_disabled_wins() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let past = Some(now - chrono::Duration::seconds(1));
        let future = Some(now + chrono::Duration::seconds(1));
        assert_eq!(status_at(KeyState::Active, None, now), KeyStatus::Active);
        assert_eq!(status_at(KeyState::Active, future, now), KeyStatus::Active);
        assert_eq!(status_at(KeyState::Active, past, now), KeyStatus::Expired);
        assert_eq!(
            status_at(KeyState::Active, Some(now), now),
            KeyStatus::Expired
        );
        assert_eq!(
            status_at(KeyState::Disabled, past, now),
            KeyStatus::Disabled
        );
    }
}
