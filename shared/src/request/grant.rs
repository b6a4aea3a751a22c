//! No escalation: a write never leaves a restricted caller able to do more than it could.
//!
//! A restricted caller may only grant permissions it holds itself, may never create an
//! unrestricted key nor make one unrestricted, and may not roll a key that holds more than
//! it does (a roll hands the caller the key's new secret, and with it the key's
//! permissions). An unrestricted caller may do all of these.
//!
//! On update, only what the change adds counts: a patch that keeps a permission the caller
//! lacks (renaming the key, say, or removing another permission) grants nothing, and is
//! allowed; so is restricting or disabling a key that holds more than the caller.

use crate::key::{Access, Permission};

/// What a refused write would have given away; its text is the 403's detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Escalation {
    #[error(
        "this API key is restricted and does not hold the {0} permission, so it cannot grant it"
    )]
    Grant(Permission),
    #[error(
        "this API key is restricted, so it cannot create an unrestricted key (every permission) \
         nor make a key unrestricted"
    )]
    Unrestricted,
    #[error(
        "this API key is restricted and does not hold the {0} permission, which the key to roll \
         holds: its new secret would grant it"
    )]
    RollGrant(Permission),
    #[error(
        "this API key is restricted and cannot roll an unrestricted key: its new secret would \
         grant every permission"
    )]
    RollUnrestricted,
}

/// A caller with `caller` access creates a key with `new` access.
pub fn check_create(caller: &Access, new: &Access) -> Result<(), Escalation> {
    grants_nothing_more(caller, None, new)
}

/// A caller with `caller` access changes a key's access from `before` to `after`.
pub fn check_update(caller: &Access, before: &Access, after: &Access) -> Result<(), Escalation> {
    grants_nothing_more(caller, Some(before), after)
}

/// A caller with `caller` access rolls a key with `target` access, and so receives a
/// secret with that access.
pub fn check_roll(caller: &Access, target: &Access) -> Result<(), Escalation> {
    grants_nothing_more(caller, None, target).map_err(|e| match e {
        Escalation::Grant(p) => Escalation::RollGrant(p),
        _ => Escalation::RollUnrestricted,
    })
}

/// Whether going from `before` (nothing, for a new key) to `after` adds only permissions the
/// caller holds. The first permission it lacks, in reference order, is named.
fn grants_nothing_more(
    caller: &Access,
    before: Option<&Access>,
    after: &Access,
) -> Result<(), Escalation> {
    let Access::Restricted(held) = caller else {
        return Ok(());
    };
    let had = |p: Permission| before.is_some_and(|b| b.grants(p));
    match after {
        Access::Unrestricted if matches!(before, Some(Access::Unrestricted)) => Ok(()),
        Access::Unrestricted => Err(Escalation::Unrestricted),
        Access::Restricted(list) => {
            let mut added: Vec<Permission> = list
                .iter()
                .copied()
                .filter(|p| !had(*p) && !held.contains(p))
                .collect();
            added.sort();
            added.first().map_or(Ok(()), |p| Err(Escalation::Grant(*p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn r(list: &[Permission]) -> Access {
        Access::new(true, list.to_vec())
    }

    const U: Access = Access::Unrestricted;

    #[test]
    fn an_unrestricted_caller_may_grant_anything() {
        assert_eq!(check_create(&U, &U), Ok(()));
        assert_eq!(check_create(&U, &r(Permission::ALL)), Ok(()));
        assert_eq!(check_update(&U, &r(&[]), &U), Ok(()));
        assert_eq!(check_roll(&U, &U), Ok(()));
    }

    #[test]
    fn a_restricted_caller_creates_only_within_what_it_holds() {
        let caller = r(&[ApiKeysCreate, CallsView, CallsUpdate]);
        assert_eq!(check_create(&caller, &r(&[])), Ok(()));
        assert_eq!(check_create(&caller, &r(&[CallsView, CallsUpdate])), Ok(()));
        assert_eq!(check_create(&caller, &caller), Ok(()));
        assert_eq!(
            check_create(&caller, &r(&[CallsView, BillingUpdate, AgentsView])),
            Err(Escalation::Grant(AgentsView)),
            "the first lacking permission in reference order is named"
        );
        assert_eq!(check_create(&caller, &U), Err(Escalation::Unrestricted));
        // Even a caller holding every permission cannot make an unrestricted key, which
        // would also hold the permissions added later.
        assert_eq!(
            check_create(&r(Permission::ALL), &U),
            Err(Escalation::Unrestricted)
        );
    }

    #[test]
    fn on_update_only_newly_granted_permissions_count() {
        let caller = r(&[ApiKeysUpdate, CallsView]);
        let before = r(&[BillingUpdate, CallsView]);
        // Keeping a permission the caller lacks is allowed; so is removing one.
        assert_eq!(check_update(&caller, &before, &before), Ok(()));
        assert_eq!(check_update(&caller, &before, &r(&[BillingUpdate])), Ok(()));
        assert_eq!(check_update(&caller, &before, &r(&[])), Ok(()));
        // Adding one it holds is allowed; adding one it lacks is not.
        assert_eq!(check_update(&caller, &r(&[BillingUpdate]), &before), Ok(()));
        assert_eq!(
            check_update(
                &caller,
                &before,
                &r(&[BillingUpdate, CallsView, MembersCreate])
            ),
            Err(Escalation::Grant(MembersCreate))
        );
    }

    #[test]
    fn a_restricted_caller_never_makes_a_key_unrestricted() {
        let caller = r(&[ApiKeysUpdate]);
        assert_eq!(
            check_update(&caller, &r(&[]), &U),
            Err(Escalation::Unrestricted)
        );
        assert_eq!(
            check_update(&r(Permission::ALL), &r(Permission::ALL), &U),
            Err(Escalation::Unrestricted)
        );
        // A key that is already unrestricted and stays so gains nothing (a rename, say).
        assert_eq!(check_update(&caller, &U, &U), Ok(()));
        // Restricting an unrestricted key takes away, so it grants nothing.
        assert_eq!(check_update(&caller, &U, &r(&[BillingUpdate])), Ok(()));
    }

    #[test]
    fn a_restricted_caller_rolls_only_keys_within_what_it_holds() {
        let caller = r(&[ApiKeysUpdate, CallsView]);
        assert_eq!(check_roll(&caller, &r(&[CallsView])), Ok(()));
        assert_eq!(check_roll(&caller, &caller), Ok(()));
        assert_eq!(
            check_roll(&caller, &r(&[CallsView, MembersDelete])),
            Err(Escalation::RollGrant(MembersDelete))
        );
        assert_eq!(check_roll(&caller, &U), Err(Escalation::RollUnrestricted));
    }

    #[test]
    fn every_refusal_names_what_it_would_give() {
        let grant = Escalation::Grant(BillingUpdate).to_string();
        assert!(grant.contains("billing.update"), "{grant}");
        assert!(
            Escalation::Unrestricted
                .to_string()
                .contains("unrestricted")
        );
        assert!(
            Escalation::RollGrant(MembersDelete)
                .to_string()
                .contains("members.delete")
        );
        assert!(
            Escalation::RollUnrestricted
                .to_string()
                .contains("unrestricted")
        );
        let problem =
            crate::error::ApiError::Escalation(Escalation::Grant(BillingUpdate)).problem("r");
        assert_eq!((problem.status, problem.title), (403, "Forbidden"));
        assert_eq!(problem.detail, grant);
        assert_eq!(problem.parameter, None);
    }
}
