//! Setting an owner's own credits and rate limits (`PUT /v1/owner/{owner_id}`): the owner
//! item's change and its `owner.updated` event in one transaction, on condition that the
//! owner is still as read. Its keys' verifies spend from it at any moment; they plan from
//! its version, so a change applies to the next verify of every key of the owner.

use serde_json::{Value, json};

use super::{CHANGED_RETRIES, Expected, InvalidWrite, WriteContext, WriteError, WritePolicy};
use super::{check_quota, meets};
use crate::audit::{Action, Change, Changes, Event};
use crate::key::OrgId;
use crate::owner::{Owner, OwnerId};
use crate::quota::{InvalidQuota, Mode, Quota};
use crate::store::{OwnerStore, WriteFailure};

/// An owner as a `PUT` left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerSet {
    pub owner: Owner,
    /// Whether the owner had no limits set before (a 201).
    pub created: bool,
}

/// Sets the owner `id`'s credits and limits to `quota`, read once per attempt: with
/// `expected` (the versions `If-Match` names; an owner never set is at version 0), it must
/// be at one of them.
///
/// - `quota`'s bounds are a key's, and its rate limits are counted exactly: an owner's
///   limits are shared by all of its keys, so a lease held by one process would be taken
///   from every other ([`InvalidWrite::Quota`] for a `leased` one, or a `low_at`).
/// - The authority rule decides on the owner as read
///   ([`crate::authority::Authority::may_set_owner`]).
/// - Should the owner change between the read and the write (another `PUT`, or a verify's
///   spend of credits the write changes), the write reads again, up to a few times, then
///   answers [`WriteError::Conflict`]; with `expected`, a version that moved is
///   [`WriteError::VersionMismatch`].
/// - When nothing changes, nothing is written and no event recorded: an owner never set
///   and set to no limits stays unset (a `GET` of it is a 404).
#[tracing::instrument(skip_all, fields(%org, owner = %id), err(Display))]
pub async fn set_owner<S: OwnerStore>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    (org, id): (&OrgId, &OwnerId),
    quota: &Quota,
    expected: Expected<'_>,
) -> Result<OwnerSet, WriteError> {
    check_owner_quota(quota)?;
    for _ in 0..=CHANGED_RETRIES {
        let before = store.owner(org, id).await?;
        let version = before.as_ref().map_or(0, |o| o.version);
        if !meets(expected, version) {
            return Err(WriteError::VersionMismatch);
        }
        let none = Quota::default();
        let was = before.as_ref().map_or(&none, |o| &o.quota);
        ctx.authority.may_set_owner(id, was, quota)?;
        let changes = changes(was, quota);
        let after = Owner {
            org: org.clone(),
            id: id.clone(),
            quota: quota.clone(),
            version: version + 1,
            updated: ctx.now,
        };
        if changes.is_empty() {
            // Nothing changes (an owner never set, set to nothing, included): no write.
            let owner = before.unwrap_or(Owner { version, ..after });
            let created = false;
            return Ok(OwnerSet { owner, created });
        }
        let event = owner_event(ctx, policy, &after, changes);
        match store.set_owner(before.as_ref(), &after, &event).await {
            Ok(()) => {
                let created = before.is_none();
                return Ok(OwnerSet {
                    owner: after,
                    created,
                });
            }
            Err(WriteFailure::Key) => continue,
            Err(WriteFailure::Store(e)) => return Err(e.into()),
            Err(other) => return Err(crate::store::StoreError::Internal(other.into()).into()),
        }
    }
    Err(WriteError::Conflict)
}

/// An owner's limits: a key's bounds, rate limits counted exactly, no `low_at`. What
/// [`set_owner`] accepts, before it reads anything.
pub fn check_owner_quota(quota: &Quota) -> Result<(), InvalidWrite> {
    check_quota(quota)?;
    if quota.ratelimits.iter().any(|l| l.mode == Mode::Leased) {
        return Err(InvalidWrite::Quota("ratelimits", InvalidQuota::OwnerLeased));
    }
    if quota.credits.as_ref().is_some_and(|c| c.low_at.is_some()) {
        return Err(InvalidWrite::Quota("credits", InvalidQuota::OwnerLowAt));
    }
    Ok(())
}

/// The limits as an owner's view and its event show them.
fn fields(quota: &Quota) -> [(&'static str, Value); 2] {
    let limits = match quota.ratelimits.as_slice() {
        [] => Value::Null,
        list => json!(list),
    };
    [("credits", json!(quota.credits)), ("ratelimits", limits)]
}

/// The fields that differ, from and to.
fn changes(before: &Quota, after: &Quota) -> Changes {
    fields(before)
        .into_iter()
        .zip(fields(after))
        .filter(|((_, from), (_, to))| from != to)
        .map(|((name, from), (_, to))| (name.to_owned(), Change { from, to }))
        .collect()
}

/// The `owner.updated` event of a write that leaves the owner as `after`.
fn owner_event(ctx: &WriteContext, policy: &WritePolicy, after: &Owner, changes: Changes) -> Event {
    let mut event = ctx.key_event(policy, &after.org, None, Action::OwnerUpdated, changes);
    event.owner_id = Some(after.id.clone());
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Credits, RateLimit};

    fn limit(mode: Mode) -> RateLimit {
        RateLimit {
            name: "requests".into(),
            limit: 10,
            duration_ms: 1000,
            mode,
        }
    }

    #[test]
    fn an_owners_limits_are_exact_and_have_no_threshold() {
        let exact = Quota {
            credits: None,
            ratelimits: vec![limit(Mode::Exact)],
        };
        assert_eq!(check_owner_quota(&exact), Ok(()));
        let leased = Quota {
            ratelimits: vec![limit(Mode::Leased)],
            ..exact.clone()
        };
        let err = check_owner_quota(&leased).unwrap_err();
        assert!(err.to_string().starts_with("ratelimits "), "{err}");
        let low = Quota {
            credits: Some(Credits {
                remaining: 5,
                refill: None,
                low_at: Some(1),
            }),
            ratelimits: vec![],
        };
        assert!(
            check_owner_quota(&low)
                .unwrap_err()
                .to_string()
                .starts_with("credits ")
        );
    }

    #[test]
    fn changes_name_only_what_differs_with_null_for_none() {
        let credits = |n| Quota {
            credits: Some(Credits {
                remaining: n,
                refill: None,
                low_at: None,
            }),
            ratelimits: vec![],
        };
        assert!(changes(&credits(5), &credits(5)).is_empty());
        let c = changes(&Quota::default(), &credits(5));
        assert_eq!(c.keys().collect::<Vec<_>>(), ["credits"]);
        assert_eq!(c["credits"].from, Value::Null);
        assert_eq!(c["credits"].to, json!({"remaining": 5, "refill": null}));
        let limited = Quota {
            ratelimits: vec![limit(Mode::Exact)],
            ..credits(5)
        };
        let c = changes(&limited, &credits(5));
        assert_eq!(c.keys().collect::<Vec<_>>(), ["ratelimits"]);
        assert_eq!(c["ratelimits"].to, Value::Null);
    }
}
