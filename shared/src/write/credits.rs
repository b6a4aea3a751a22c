//! Adjusting a key's credits (`POST /v1/api_key/{id}/credits`): one transaction adds to or
//! takes from the credits left, with its `key.credits_adjusted` event. It is not made on
//! condition of the key's version: verifies spend from the same count at any moment, and an
//! increment adds to whatever is left when it lands. A decrement takes only what is left.

use super::retry::{Attempts, Retries};
use super::{InvalidWrite, WriteContext, WriteError, WritePolicy};
use crate::audit::{Action, Adjustment, Changes};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::quota::InvalidQuota;
use crate::store::{KeyWriter, WriteFailure};

/// Adjusts the credits of the key: [`WriteError::NoCredits`] for a key without credits,
/// [`WriteError::TooFewCredits`] for a decrement of more than are left. The authority rule
/// decides as for an update: an increment loosens the key. Returns the key as read after.
#[tracing::instrument(skip_all, fields(%org, key = %id), err(Display))]
pub async fn adjust_credits<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    org: &OrgId,
    id: KeyId,
    adjustment: Adjustment,
) -> Result<ApiKey, WriteError> {
    let mut attempts = Attempts::new(org, id, None, Retries::Changed);
    loop {
        let stored = attempts.read(store).await?;
        let after = adjusted(&stored.key, adjustment)?;
        ctx.authority.may_update(&stored.key, &after)?;
        let mut event = ctx.event(policy, org, id, Action::CreditsAdjusted, Changes::new());
        event.credits = Some(adjustment);
        match store.adjust_credits(&stored.key, &event).await {
            Ok(()) => {
                let now = store.key_for_write(org, id).await?;
                return now.map(|s| s.key).ok_or(WriteError::NotFound);
            }
            // Gone, credits removed, or spent below the decrement: the next read tells.
            Err(WriteFailure::Key) => attempts.lost(store, WriteFailure::Key).await?,
            Err(other) => attempts.lost(store, other).await?,
        }
    }
}

/// The key as the adjustment would leave it, by the credits read.
fn adjusted(key: &ApiKey, adjustment: Adjustment) -> Result<ApiKey, WriteError> {
    let Some(credits) = &key.quota.credits else {
        return Err(WriteError::NoCredits);
    };
    let next = i128::from(credits.remaining) + adjustment.delta();
    let remaining =
        u64::try_from(next).map_err(|_| WriteError::TooFewCredits(credits.remaining))?;
    if remaining > crate::quota::MAX_CREDITS {
        return Err(InvalidWrite::Quota("increment", InvalidQuota::Overflow).into());
    }
    let mut after = key.clone();
    if let Some(c) = after.quota.credits.as_mut() {
        c.remaining = remaining;
    }
    Ok(after)
}
