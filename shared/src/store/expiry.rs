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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_key_is_listed_under_the_notice_it_has_not_had_for_its_expiry() {
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let other = at + chrono::Duration::days(1);
        let none = Notified::default();
        assert_eq!(none.next(at), Some(Phase::Expiring));
        let warned = Notified {
            expiring: Some(at),
            expired: None,
        };
        assert_eq!(warned.next(at), Some(Phase::Expired));
        // A new date: both notices again.
        assert_eq!(warned.next(other), Some(Phase::Expiring));
        let done = Notified {
            expiring: Some(at),
            expired: Some(at),
        };
        assert_eq!(done.next(at), None);
        assert_eq!(done.next(other), Some(Phase::Expiring));
        // Expired without the warning (found already past): nothing more either.
        let late = Notified {
            expiring: None,
            expired: Some(at),
        };
        assert_eq!(late.next(at), None);
    }
}
