//! What the expiry notices need from storage: the keys whose next notice is due, and the
//! notice written once. A key with an expiry, while it is active, is listed under the notice
//! it has still to get (`key.expiring`, then `key.expired`), by the day it expires; writing a
//! notice moves it to the next one, or off the list, in the notice's own transaction.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use crate::audit::Event;
use crate::key::{KeyId, OrgId};
use crate::store::StoreError;

/// Which notice a listed key has still to get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Neither notice yet: `key.expiring` is next.
    Expiring,
    /// `key.expiring` written for this expiry: `key.expired` is next.
    Expired,
}

/// Which notices a key has had: the expiry each was written for. A notice is written only
/// for an expiry other than the one recorded here, so never twice for the same date; a key
/// whose expiry changes is listed again for the new date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notified {
    pub expiring: Option<DateTime<Utc>>,
    pub expired: Option<DateTime<Utc>>,
}

impl Notified {
    /// The notice a key expiring at `expires` has still to get, if any.
    pub fn next(&self, expires: DateTime<Utc>) -> Option<Phase> {
        if self.expired == Some(expires) {
            None
        } else if self.expiring == Some(expires) {
            Some(Phase::Expired)
        } else {
            Some(Phase::Expiring)
        }
    }
}

/// A key listed under a notice, as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub org: OrgId,
    pub key_id: KeyId,
    pub expires: DateTime<Utc>,
    pub phase: Phase,
    /// Where it was listed: the notice is written only if the key is still listed there.
    pub(crate) listed: String,
}

/// Listing and writing expiry notices.
pub trait ExpiryStore: Send + Sync {
    /// How many parts each day's list is split into ([`Self::listed`]'s `shard`).
    fn shards(&self) -> u32;

    /// Up to `max` keys listed under `phase` that expire on `day`, at or before `until`, in
    /// `shard` of that day's list.
    fn listed(
        &self,
        phase: Phase,
        day: NaiveDate,
        shard: u32,
        until: DateTime<Utc>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Due>, StoreError>> + Send;

    /// Writes `event` (`key.expiring` or `key.expired`, for `due`'s expiry), and moves the
    /// key on (`key.expiring`: to the `key.expired` list; `key.expired`: off the lists), in
    /// one transaction, on condition that the key is still active, still expires then, is
    /// still listed where `due` was found, and has not had this notice for this expiry.
    /// `Ok(false)` when the condition fails: nothing was written.
    fn notify(
        &self,
        due: &Due,
        event: &Event,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
