//! The one loop of the writes that change a stored key (update, roll, delete): read the key
//! once, strongly consistently; check the versions the caller named; decide and commit on
//! condition that the key is still as read. When it changed in between and the caller named
//! no version, start again on the fresh key: one read per attempt, never a decision on a key
//! that was not read.

use super::{CHANGED_RETRIES, Expected, WriteError, meets};
use crate::key::{KeyId, OrgId};
use crate::store::{KeyWriter, StoredKey, WriteFailure};

/// How often a write that lost a race starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retries {
    /// Never: the caller learns of the race at once (a PATCH).
    None,
    /// Up to [`CHANGED_RETRIES`] times, when the caller named no version.
    Changed,
}

/// The attempts of one write on one key. A use case loops: [`Attempts::read`] the key,
/// decide, commit; on a failed commit, [`Attempts::lost`] says whether to go again.
pub(super) struct Attempts<'a> {
    org: &'a OrgId,
    id: KeyId,
    expected: Expected<'a>,
    retries: Retries,
    made: usize,
    /// The version the last attempt read.
    read_version: Option<u64>,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(org: &'a OrgId, id: KeyId, expected: Expected<'a>, retries: Retries) -> Self {
        Attempts {
            org,
            id,
            expected,
            retries,
            made: 0,
            read_version: None,
        }
    }

    /// The key for this attempt, read strongly consistently: [`WriteError::NotFound`] if it
    /// is gone, [`WriteError::VersionMismatch`] if it is at a version `expected` does not
    /// name.
    pub(super) async fn read<S: KeyWriter>(&mut self, store: &S) -> Result<StoredKey, WriteError> {
        let stored = store
            .key_for_write(self.org, self.id)
            .await?
            .ok_or(WriteError::NotFound)?;
        if !meets(self.expected, stored.key.version) {
            return Err(WriteError::VersionMismatch);
        }
        self.read_version = Some(stored.key.version);
        Ok(stored)
    }

    /// After a commit failed: `Ok` to go again (the key changed, no version was named, and
    /// `retries` allows), else why the write gives up: [`WriteError::VersionMismatch`] (a
    /// version was named) or [`WriteError::Conflict`], [`WriteError::NotFound`] if the key
    /// is gone.
    pub(super) async fn lost<S: KeyWriter>(
        &mut self,
        store: &S,
        failure: WriteFailure,
    ) -> Result<(), WriteError> {
        let again = self.retries == Retries::Changed && self.expected.is_none();
        match failure {
            WriteFailure::Key if again && self.made < CHANGED_RETRIES => {
                self.made += 1;
                Ok(())
            }
            WriteFailure::Key => match store.key_for_write(self.org, self.id).await? {
                None => Err(WriteError::NotFound),
                // Still at the version read: only a verify's spend moved the credits the
                // write was conditioned on, so it reads them again.
                Some(now)
                    if Some(now.key.version) == self.read_version
                        && self.made < CHANGED_RETRIES =>
                {
                    self.made += 1;
                    Ok(())
                }
                Some(_) => Err(changed_error(self.expected)),
            },
            WriteFailure::Credential | WriteFailure::Idempotency => {
                Err(changed_error(self.expected))
            }
            WriteFailure::Store(e) => Err(e.into()),
        }
    }
}

/// What a write that found the key at another version reports: a precondition failure if
/// the caller named a version, else a conflict.
pub(super) fn changed_error(expected: Expected<'_>) -> WriteError {
    if expected.is_some() {
        WriteError::VersionMismatch
    } else {
        WriteError::Conflict
    }
}
