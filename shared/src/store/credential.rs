//! The credential lookup: what authentication needs from storage, and the record of a
//! key's last use. The caller cache (`crate::cache`) wraps this role and only this one.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::key::{Access, KeyId, KeyState, OrgId, status_at};
use crate::secret::SecretHash;
use crate::store::StoreError;

/// What authentication learns from a secret's hash, in one read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub org: OrgId,
    pub key_id: KeyId,
    pub access: Access,
    pub state: KeyState,
    pub expires: Option<DateTime<Utc>>,
    /// When the key was last used, as far as its credential knows (to the minute).
    pub last_used: Option<DateTime<Utc>>,
    /// The secret is the key's previous one, kept by a roll for its grace period.
    pub previous: bool,
    /// The key's credits and rate limits as of its last change (the credits left are
    /// the key item's to know), and the key's version then: what verify needs to plan its
    /// spend without reading the key first.
    pub quota: crate::quota::Quota,
    pub version: u64,
    /// The key's owner, copied by every write that refreshes the credential.
    pub owner_id: Option<crate::owner::OwnerId>,
    /// The key's metadata and IP allow-list, copied as of its last change: authentication
    /// and verify check the list, and verify answers with the metadata, without reading the
    /// key item for them.
    pub meta: Option<crate::meta::Meta>,
    pub allowed_cidrs: Option<crate::allow::AllowList>,
}

impl Credential {
    pub fn status_at(&self, now: DateTime<Utc>) -> crate::key::KeyStatus {
        status_at(self.state, self.expires, now)
    }
}

/// Authenticating a secret, and recording that its key was used.
pub trait CredentialStore: Send + Sync {
    /// Who holds the secret with this hash, if anyone. A secret whose key was created
    /// a moment ago is found: a miss is never only a replica that has not caught up.
    fn find_credential(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<Credential>, StoreError>> + Send;

    /// Spends what a miss of [`Self::find_credential`] spends beyond a hit, and learns
    /// nothing: a secret of another organization is then answered at the cost and pace of
    /// a missing one (the DynamoDB store reads the credential again, consistently).
    fn spend_as_a_miss(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = hash;
        async { Ok(()) }
    }

    /// Records that the key was used `at`, unless the record is already at or after
    /// `stale_before` (a conditional write, so concurrent requests write it once). Returns
    /// whether it wrote. The credential and the key item are both stamped.
    fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
