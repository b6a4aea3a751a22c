//! The one authority rule every write obeys (SECURITY.md, "The authority rule"):
//!
//! **A restricted caller may change a key only if it holds everything the key holds, and no
//! caller may leave a key able to do more, or live longer, than itself.**
//!
//! - *Holds* means the caller's permissions are a superset of the key's; an unrestricted key
//!   is held only by an unrestricted caller. Update (rename, restrict, disable, enable,
//!   expiry), roll and delete all need it.
//! - *Do more*: a key created or changed by a restricted caller holds nothing the caller
//!   lacks, and is never unrestricted.
//! - *Live longer*: a caller whose own secret expires cannot create a key that expires
//!   later (or never), remove or extend a key's expiry past its own, or roll or enable a key
//!   that outlives it. This binds an unrestricted caller too: a temporary admin key cannot
//!   mint a permanent one. Renaming, restricting, disabling and shortening grant nothing
//!   and stay open to any caller that holds the key.
//!
//! - *Use more*: a caller whose own key carries credits or rate limits cannot create a key,
//!   or loosen one (more credits, a larger refill, credits removed, a limit raised or
//!   removed), so that it could use more than the caller itself ([`Quota::no_looser_than`]):
//!   it cannot lift its own limits, nor add credits to its own key. Tightening stays open
//!   to any caller that holds the key.
//!
//! - *Reach further*: a caller whose own key has an IP allow-list cannot create a key whose
//!   list reaches an address outside its own (no list at all included), nor widen a key's
//!   list so (add a network, or remove the list) ([`crate::allow::within`]). Widening is
//!   granting: it also needs the key not to outlive the caller. Narrowing stays open to any
//!   caller that holds the key.
//!
//! - *Stay within its owner*: a caller whose own key names an owner can create keys only
//!   for that owner, and cannot move a key to another owner or remove its owner; a caller
//!   whose own key carries credits or rate limits cannot move a key out of its owner either
//!   (the key would escape the owner's shared credits and limits: that is loosening).
//!
//! - *Owners*: an owner's own credits and rate limits bind every key of the owner, which a
//!   restricted caller may not hold, so only an unrestricted caller may set them. Loosening
//!   them (as for a key: more credits, a larger refill, a limit raised or removed) is
//!   granting: a caller with credits or limits of its own cannot loosen them past its own,
//!   and a caller cannot loosen its own owner's.
//!
//! The operator (the admin CLI, the fixtures) and GitHub's revocations act with
//! [`Authority::operator`]: unrestricted, never expiring.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::allow::{self, AllowList};
use crate::key::{Access, ApiKey, KeyState, Permission};
use crate::owner::OwnerId;
use crate::quota::{Looser, Quota};

/// What a write's caller may do: its access, and when its secret stops working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    pub access: Access,
    /// When the caller's secret expires: its key's expiry, or for a rolled-out secret in its
    /// grace period, the earlier of that and the grace's end. `None`: never.
    pub expires: Option<DateTime<Utc>>,
    /// The caller's own credits (live, where it has any) and rate limits.
    pub quota: Quota,
    /// The addresses the caller's own key may be used from; `None`: any.
    pub allowed_cidrs: Option<AllowList>,
    /// The caller's own key's owner, if it names one.
    pub owner: Option<OwnerId>,
}

/// The grant a lifetime check is about: what the refusal names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Create,
    Extend,
    Enable,
    Roll,
    Widen,
    /// Widening a key's IP allow-list.
    Reach,
}

/// Why the rule refuses a write; its text is the 403's `detail`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The key holds a permission the caller lacks. The text does not name it: a caller
    /// may hold `api_keys.update` without `api_keys.view`.
    #[error(
        "this API key is restricted and does not hold every permission the key holds; a key \
         may be changed, rolled or deleted only by a caller that holds all it holds"
    )]
    NotHeld,
    /// The key is unrestricted and the caller is not.
    #[error(
        "this API key is restricted and the key is unrestricted; only an unrestricted key may \
         change, roll or delete an unrestricted key"
    )]
    NotHeldUnrestricted,
    /// The write would give the key a permission the caller lacks.
    #[error(
        "this API key is restricted and does not hold the {0} permission, so it cannot grant it"
    )]
    Grant(Permission),
    /// The write would make a restricted caller's key unrestricted.
    #[error(
        "this API key is restricted, so it cannot create an unrestricted key (every permission) \
         nor make a key unrestricted"
    )]
    Unrestricted,
    /// The key would outlive the caller.
    #[error("{}", outlives(*.grant, *.caller_expires))]
    Outlives {
        grant: Grant,
        caller_expires: DateTime<Utc>,
    },
    /// The key could use more than the caller.
    #[error(transparent)]
    Looser(#[from] Looser),
    /// The key could be used from an address the caller's own allow-list does not hold.
    /// The text does not show the caller's list.
    #[error(
        "this API key may be used only from the addresses of its own allow-list, so it cannot \
         create a key, or widen a key's allowed_cidrs, that reaches an address outside it (null \
         reaches every address)"
    )]
    Reach,
    /// The caller's key names an owner, and the key would name another or none. The text
    /// does not show the caller's owner.
    #[error(
        "this API key belongs to an owner, so it can create keys only for that owner and \
         cannot give a key another owner_id or remove it"
    )]
    OtherOwner,
    /// A metered caller would move a key out of its owner.
    #[error(
        "this API key has credits or rate limits, so it cannot move a key out of its owner \
         (another owner_id, or null): the key would escape the owner's shared credits and rate \
         limits"
    )]
    Escape,
    /// A restricted caller would set an owner's limits.
    #[error(
        "this API key is restricted; only an unrestricted key may set an owner's credits and \
         rate limits, which bind every key of the owner"
    )]
    OwnerNotHeld,
    /// The caller would loosen the limits of its own key's owner.
    #[error(
        "this API key belongs to this owner, so it cannot loosen the owner's credits or rate \
         limits (it cannot lift its own limits)"
    )]
    OwnOwner,
}

fn outlives(grant: Grant, at: DateTime<Utc>) -> String {
    let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let what = match grant {
        Grant::Create => "create a key that never expires or expires later",
        Grant::Extend => "remove a key's expiry or move it past its own",
        Grant::Enable => "enable a key that never expires or expires later",
        Grant::Roll => "roll a key that never expires or expires later",
        Grant::Widen => "widen the access of a key that never expires or expires later",
        Grant::Reach => "widen the allow-list of a key that never expires or expires later",
    };
    format!(
        "this API key expires at {at}, so it cannot {what}: a key may not outlive the caller \
         that grants it"
    )
}

impl Refusal {
    /// The body field at fault, where one is.
    pub fn parameter(&self) -> Option<&'static str> {
        match self {
            Refusal::Grant(_) => Some("permissions"),
            Refusal::Unrestricted => Some("restricted"),
            Refusal::Outlives { grant, .. } => match grant {
                Grant::Create | Grant::Extend => Some("expires_date"),
                Grant::Enable => Some("status"),
                Grant::Widen => Some("permissions"),
                Grant::Reach => Some("allowed_cidrs"),
                Grant::Roll => None,
            },
            Refusal::Looser(l) => Some(l.parameter()),
            Refusal::Reach => Some("allowed_cidrs"),
            Refusal::OtherOwner | Refusal::Escape => Some("owner_id"),
            Refusal::OwnOwner => Some("credits"),
            Refusal::NotHeld | Refusal::NotHeldUnrestricted | Refusal::OwnerNotHeld => None,
        }
    }
}

impl Authority {
    /// The operator: the admin CLI, fixtures, GitHub's revocations. Unrestricted, never
    /// expiring.
    pub fn operator() -> Self {
        Authority {
            access: Access::Unrestricted,
            expires: None,
            quota: Quota::default(),
            allowed_cidrs: None,
            owner: None,
        }
    }

    /// Creating a key with `access` that expires at `expires`.
    pub fn may_create(
        &self,
        access: &Access,
        expires: Option<DateTime<Utc>>,
    ) -> Result<(), Refusal> {
        self.grants_within(access)?;
        self.lives_within(expires, Grant::Create)
    }

    /// Giving a new key `quota`: no looser than the caller's own.
    pub fn may_meter(&self, quota: &Quota) -> Result<(), Refusal> {
        Ok(quota.no_looser_than(&self.quota)?)
    }

    /// Giving a key the allow-list `list`: within the caller's own.
    pub fn may_reach(&self, list: Option<&AllowList>) -> Result<(), Refusal> {
        if allow::within(list, self.allowed_cidrs.as_ref()) {
            Ok(())
        } else {
            Err(Refusal::Reach)
        }
    }

    /// Giving a new key the owner `owner`: the caller's own, if it has one.
    pub fn may_own(&self, owner: Option<&OwnerId>) -> Result<(), Refusal> {
        match &self.owner {
            Some(mine) if owner != Some(mine) => Err(Refusal::OtherOwner),
            _ => Ok(()),
        }
    }

    /// Moving a key from the owner `from` to `to` (either `None`: no owner).
    fn may_move(&self, from: Option<&OwnerId>, to: Option<&OwnerId>) -> Result<(), Refusal> {
        self.may_own(to)?;
        if from.is_some() && self.quota.is_metered() {
            return Err(Refusal::Escape);
        }
        Ok(())
    }

    /// Setting the owner `owner`'s own credits and limits from `before` to `after`.
    pub fn may_set_owner(
        &self,
        owner: &OwnerId,
        before: &Quota,
        after: &Quota,
    ) -> Result<(), Refusal> {
        if self.access != Access::Unrestricted {
            return Err(Refusal::OwnerNotHeld);
        }
        if after.loosens(before) {
            if self.owner.as_ref() == Some(owner) {
                return Err(Refusal::OwnOwner);
            }
            self.may_meter(after)?;
        }
        Ok(())
    }

    /// Changing `before` into `after` (name, access, expiry, state).
    pub fn may_update(&self, before: &ApiKey, after: &ApiKey) -> Result<(), Refusal> {
        self.holds(&before.access)?;
        self.grants_within(&after.access)?;
        if later(after.expires, before.expires) {
            self.lives_within(after.expires, Grant::Extend)?;
        }
        if before.state == KeyState::Disabled && after.state == KeyState::Active {
            self.lives_within(after.expires, Grant::Enable)?;
        }
        if widens(&before.access, &after.access) {
            self.lives_within(after.expires, Grant::Widen)?;
        }
        if after.quota.loosens(&before.quota) {
            self.may_meter(&after.quota)?;
        }
        let (was, next) = (before.allowed_cidrs.as_ref(), after.allowed_cidrs.as_ref());
        if allow::widens(was, next) {
            self.may_reach(next)?;
            self.lives_within(after.expires, Grant::Reach)?;
        }
        if before.owner_id != after.owner_id {
            self.may_move(before.owner_id.as_ref(), after.owner_id.as_ref())?;
        }
        Ok(())
    }

    /// Rolling `key`: the caller receives a secret with the key's whole access.
    pub fn may_roll(&self, key: &ApiKey) -> Result<(), Refusal> {
        self.holds(&key.access)?;
        self.lives_within(key.expires, Grant::Roll)
    }

    /// Deleting `key` (a weak key that deletes every admin key is a denial of service).
    pub fn may_delete(&self, key: &ApiKey) -> Result<(), Refusal> {
        self.holds(&key.access)
    }

    /// Whether the caller holds every permission of `access`.
    fn holds(&self, access: &Access) -> Result<(), Refusal> {
        let Access::Restricted(held) = &self.access else {
            return Ok(());
        };
        match access {
            Access::Unrestricted => Err(Refusal::NotHeldUnrestricted),
            Access::Restricted(list) => match first_lacking(held, list) {
                Some(_) => Err(Refusal::NotHeld),
                None => Ok(()),
            },
        }
    }

    /// Whether a key with `access` would hold nothing the caller lacks.
    fn grants_within(&self, access: &Access) -> Result<(), Refusal> {
        let Access::Restricted(held) = &self.access else {
            return Ok(());
        };
        match access {
            Access::Unrestricted => Err(Refusal::Unrestricted),
            Access::Restricted(list) => {
                first_lacking(held, list).map_or(Ok(()), |p| Err(Refusal::Grant(p)))
            }
        }
    }

    /// Whether a key expiring at `expires` would die no later than the caller.
    fn lives_within(&self, expires: Option<DateTime<Utc>>, grant: Grant) -> Result<(), Refusal> {
        match self.expires {
            Some(caller_expires) if later(expires, Some(caller_expires)) => {
                Err(Refusal::Outlives {
                    grant,
                    caller_expires,
                })
            }
            _ => Ok(()),
        }
    }
}

/// The first permission of `list`, in reference order, that `held` lacks.
fn first_lacking(held: &[Permission], list: &[Permission]) -> Option<Permission> {
    list.iter().copied().filter(|p| !held.contains(p)).min()
}

/// Whether going from `before` to `after` grants a permission `before` lacked.
fn widens(before: &Access, after: &Access) -> bool {
    match (before, after) {
        (Access::Unrestricted, _) => false,
        (Access::Restricted(_), Access::Unrestricted) => true,
        (Access::Restricted(b), Access::Restricted(a)) => a.iter().any(|p| !b.contains(p)),
    }
}

/// Whether expiry `a` is later than `b` (`None` is never, the latest of all).
fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> bool {
    match (a, b) {
        (None, None) => false,
        (None, Some(_)) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a > b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;
    use chrono::{Duration, TimeZone};

    fn r(list: &[Permission]) -> Access {
        Access::new(true, list.to_vec())
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn caller(access: Access, expires: Option<DateTime<Utc>>) -> Authority {
        Authority {
            access,
            expires,
            quota: Default::default(),
            allowed_cidrs: None,
            owner: None,
        }
    }

    fn key(access: Access, state: KeyState, expires: Option<DateTime<Utc>>) -> ApiKey {
        ApiKey {
            id: "01900000-0001-7000-8000-000000000001".parse().unwrap(),
            org: "acme".parse().unwrap(),
            name: "k".into(),
            created: now(),
            updated: now(),
            last_used: None,
            expires,
            creator_id: uuid::Uuid::nil(),
            access,
            state,
            last_four: "abcd".into(),
            version: 1,
            disabled_reason: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        }
    }

    const U: Access = Access::Unrestricted;

    #[test]
    fn the_operator_and_a_permanent_admin_may_do_anything() {
        for a in [Authority::operator(), caller(U, None)] {
            let k = key(U, KeyState::Disabled, None);
            let enabled = ApiKey {
                state: KeyState::Active,
                ..k.clone()
            };
            assert_eq!(a.may_create(&U, None), Ok(()));
            assert_eq!(a.may_update(&k, &enabled), Ok(()));
            assert_eq!(a.may_roll(&k), Ok(()));
            assert_eq!(a.may_delete(&k), Ok(()));
        }
    }

    #[test]
    fn a_restricted_caller_changes_only_keys_it_holds() {
        let me = caller(r(&[ApiKeysUpdate, CallsView]), None);
        let admin = key(U, KeyState::Disabled, None);
        let wider = key(r(&[CallsView, BillingUpdate]), KeyState::Active, None);
        let within = key(r(&[CallsView]), KeyState::Active, None);
        // Enabling, renaming, disabling an unrestricted key: all refused.
        let enabled = ApiKey {
            state: KeyState::Active,
            ..admin.clone()
        };
        assert_eq!(
            me.may_update(&admin, &enabled),
            Err(Refusal::NotHeldUnrestricted)
        );
        let renamed = ApiKey {
            name: "x".into(),
            ..wider.clone()
        };
        assert_eq!(me.may_update(&wider, &renamed), Err(Refusal::NotHeld));
        assert_eq!(me.may_roll(&wider), Err(Refusal::NotHeld));
        assert_eq!(me.may_delete(&admin), Err(Refusal::NotHeldUnrestricted));
        assert_eq!(me.may_roll(&admin), Err(Refusal::NotHeldUnrestricted));
        // A key within its access: every change that stays within is open.
        let disabled = ApiKey {
            state: KeyState::Disabled,
            ..within.clone()
        };
        assert_eq!(me.may_update(&within, &disabled), Ok(()));
        assert_eq!(me.may_roll(&within), Ok(()));
        assert_eq!(me.may_delete(&within), Ok(()));
        // Widening it past the caller, or making it unrestricted, is not.
        let widened = ApiKey {
            access: r(&[CallsView, MembersView]),
            ..within.clone()
        };
        assert_eq!(
            me.may_update(&within, &widened),
            Err(Refusal::Grant(MembersView))
        );
        let unrestricted = ApiKey {
            access: U,
            ..within.clone()
        };
        assert_eq!(
            me.may_update(&within, &unrestricted),
            Err(Refusal::Unrestricted)
        );
        // Even every permission does not hold an unrestricted key.
        let all = caller(r(Permission::ALL), None);
        assert_eq!(all.may_delete(&admin), Err(Refusal::NotHeldUnrestricted));
        assert_eq!(all.may_create(&U, None), Err(Refusal::Unrestricted));
    }

    #[test]
    fn the_first_lacking_permission_in_reference_order_is_named() {
        let me = caller(r(&[ApiKeysCreate, CallsView]), None);
        assert_eq!(
            me.may_create(&r(&[CallsView, BillingUpdate, AgentsView]), None),
            Err(Refusal::Grant(AgentsView))
        );
    }

    #[test]
    fn an_expiring_caller_grants_no_longer_life_than_its_own() {
        let end = now() + Duration::hours(1);
        for access in [U, r(&[ApiKeysCreate, ApiKeysUpdate, CallsView])] {
            let me = caller(access.clone(), Some(end));
            let outlives = |grant| {
                Err(Refusal::Outlives {
                    grant,
                    caller_expires: end,
                })
            };
            let calls = r(&[CallsView]);
            // Create: never, or later, is refused; no later is allowed.
            assert_eq!(me.may_create(&calls, None), outlives(Grant::Create));
            assert_eq!(
                me.may_create(&calls, Some(end + Duration::seconds(1))),
                outlives(Grant::Create)
            );
            assert_eq!(me.may_create(&calls, Some(end)), Ok(()));
            // Its own key, one hour ahead: removing the expiry or extending it is refused.
            let own = key(access.clone(), KeyState::Active, Some(end));
            let forever = ApiKey {
                expires: None,
                ..own.clone()
            };
            assert_eq!(me.may_update(&own, &forever), outlives(Grant::Extend));
            let sooner = ApiKey {
                expires: Some(end - Duration::minutes(5)),
                ..own.clone()
            };
            assert_eq!(me.may_update(&own, &sooner), Ok(()));
            // A permanent key: renaming, disabling and shortening are open; enabling and
            // rolling it are not.
            let permanent = key(calls.clone(), KeyState::Active, None);
            let renamed = ApiKey {
                name: "n".into(),
                ..permanent.clone()
            };
            assert_eq!(me.may_update(&permanent, &renamed), Ok(()));
            let off = ApiKey {
                state: KeyState::Disabled,
                ..permanent.clone()
            };
            assert_eq!(me.may_update(&permanent, &off), Ok(()));
            assert_eq!(me.may_update(&off, &permanent), outlives(Grant::Enable));
            assert_eq!(me.may_roll(&permanent), outlives(Grant::Roll));
            let capped = ApiKey {
                expires: Some(end),
                ..permanent.clone()
            };
            assert_eq!(me.may_update(&permanent, &capped), Ok(()));
            assert_eq!(me.may_roll(&capped), Ok(()));
        }
    }

    #[test]
    fn an_expiring_caller_cannot_widen_a_key_that_outlives_it() {
        let end = now() + Duration::hours(1);
        let refusal = Refusal::Outlives {
            grant: Grant::Widen,
            caller_expires: end,
        };
        let outlives = Err(refusal.clone());
        let calls = r(&[CallsView]);
        for me in [
            caller(U, Some(end)),
            caller(r(&[ApiKeysUpdate, CallsView, BillingView]), Some(end)),
        ] {
            let permanent = key(calls.clone(), KeyState::Active, None);
            let wider = ApiKey {
                access: r(&[CallsView, BillingView]),
                ..permanent.clone()
            };
            assert_eq!(me.may_update(&permanent, &wider), outlives);
            // Narrowing it grants nothing.
            assert_eq!(me.may_update(&wider, &permanent), Ok(()));
            // Within its own life, it may widen.
            let capped = ApiKey {
                expires: Some(end),
                ..permanent.clone()
            };
            let capped_wider = ApiKey {
                expires: Some(end),
                ..wider.clone()
            };
            assert_eq!(me.may_update(&capped, &capped_wider), Ok(()));
        }
        let admin = caller(U, Some(end));
        let permanent = key(calls, KeyState::Active, None);
        let unrestricted = ApiKey {
            access: U,
            ..permanent.clone()
        };
        assert_eq!(admin.may_update(&permanent, &unrestricted), outlives);
        assert_eq!(
            refusal.parameter(),
            Some("permissions"),
            "the field that widens"
        );
    }

    #[test]
    fn every_refusal_names_what_it_would_give_and_where() {
        let end = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let o = Refusal::Outlives {
            grant: Grant::Enable,
            caller_expires: end,
        };
        assert!(o.to_string().contains("2026-06-01T13:00:00Z"), "{o}");
        assert_eq!(o.parameter(), Some("status"));
        assert!(
            Refusal::Grant(BillingUpdate)
                .to_string()
                .contains("billing.update")
        );
        // Which permission the key holds is not told: the caller may not be able to view it.
        assert!(
            !Refusal::NotHeld.to_string().contains('.'),
            "{}",
            Refusal::NotHeld
        );
        assert_eq!(
            Refusal::Grant(BillingUpdate).parameter(),
            Some("permissions")
        );
        assert_eq!(Refusal::NotHeldUnrestricted.parameter(), None);
    }

    fn cidrs(list: &[&str]) -> Option<AllowList> {
        Some(AllowList::parse(list).unwrap())
    }

    #[test]
    fn a_caller_with_an_allow_list_reaches_no_further_and_narrowing_is_open() {
        let me = Authority {
            allowed_cidrs: cidrs(&["10.0.0.0/8"]),
            ..caller(U, None)
        };
        assert_eq!(me.may_reach(cidrs(&["10.1.0.0/16"]).as_ref()), Ok(()));
        assert_eq!(me.may_reach(None), Err(Refusal::Reach));
        assert_eq!(
            me.may_reach(cidrs(&["10.0.0.0/7"]).as_ref()),
            Err(Refusal::Reach)
        );
        let outside = ApiKey {
            allowed_cidrs: cidrs(&["192.0.2.0/24"]),
            ..key(U, KeyState::Active, None)
        };
        let narrowed = ApiKey {
            allowed_cidrs: cidrs(&["192.0.2.0/25"]),
            ..outside.clone()
        };
        assert_eq!(
            me.may_update(&outside, &narrowed),
            Ok(()),
            "narrowing is open"
        );
        assert_eq!(me.may_update(&narrowed, &outside), Err(Refusal::Reach));
        let renamed = ApiKey {
            name: "x".into(),
            ..outside.clone()
        };
        assert_eq!(me.may_update(&outside, &renamed), Ok(()), "nothing widened");
        let freed = ApiKey {
            allowed_cidrs: None,
            ..outside.clone()
        };
        assert_eq!(me.may_update(&outside, &freed), Err(Refusal::Reach));
        // Without a list of its own, any caller may widen; an expiring one not on a key
        // that outlives it.
        assert_eq!(caller(U, None).may_update(&outside, &freed), Ok(()));
        let mortal = caller(U, Some(now()));
        assert_eq!(
            mortal.may_update(&outside, &freed),
            Err(Refusal::Outlives {
                grant: Grant::Reach,
                caller_expires: now()
            })
        );
        assert_eq!(Refusal::Reach.parameter(), Some("allowed_cidrs"));
        assert!(!Refusal::Reach.to_string().contains("10.0.0.0"));
    }

    #[test]
    fn a_caller_of_an_owner_stays_within_it_and_a_metered_caller_cannot_move_keys_out() {
        let cus: OwnerId = "cus_1".parse().unwrap();
        let other: OwnerId = "cus_2".parse().unwrap();
        let mine = Authority {
            owner: Some(cus.clone()),
            ..caller(U, None)
        };
        assert_eq!(mine.may_own(Some(&cus)), Ok(()));
        assert_eq!(mine.may_own(Some(&other)), Err(Refusal::OtherOwner));
        assert_eq!(mine.may_own(None), Err(Refusal::OtherOwner));
        let of = |owner: Option<&OwnerId>| ApiKey {
            owner_id: owner.cloned(),
            ..key(r(&[]), KeyState::Active, None)
        };
        let out = mine.may_update(&of(Some(&cus)), &of(None));
        assert_eq!(out, Err(Refusal::OtherOwner));
        assert_eq!(mine.may_update(&of(None), &of(Some(&cus))), Ok(()));
        let metered = Authority {
            quota: Quota {
                credits: None,
                ratelimits: vec![crate::quota::RateLimit {
                    name: "r".into(),
                    limit: 5,
                    duration_ms: 1000,
                    mode: crate::quota::Mode::Exact,
                }],
            },
            ..caller(U, None)
        };
        let escape = metered.may_update(&of(Some(&cus)), &of(Some(&other)));
        assert_eq!(escape, Err(Refusal::Escape));
        assert_eq!(metered.may_update(&of(None), &of(Some(&cus))), Ok(()));
        assert_eq!(
            caller(U, None).may_update(&of(Some(&cus)), &of(None)),
            Ok(())
        );
    }

    #[test]
    fn only_an_unrestricted_caller_sets_an_owners_limits_and_none_loosens_its_own() {
        let cus: OwnerId = "cus_1".parse().unwrap();
        let credits = |n| Quota {
            credits: Some(crate::quota::Credits {
                remaining: n,
                refill: None,
                low_at: None,
            }),
            ratelimits: vec![],
        };
        let restricted = caller(r(&[ApiKeysUpdate]), None);
        let set = restricted.may_set_owner(&cus, &Quota::default(), &credits(10));
        assert_eq!(set, Err(Refusal::OwnerNotHeld));
        assert_eq!(
            caller(U, None).may_set_owner(&cus, &credits(5), &credits(10)),
            Ok(())
        );
        let member = Authority {
            owner: Some(cus.clone()),
            ..caller(U, None)
        };
        assert_eq!(
            member.may_set_owner(&cus, &credits(10), &credits(5)),
            Ok(())
        );
        let lift = member.may_set_owner(&cus, &credits(5), &credits(10));
        assert_eq!(lift, Err(Refusal::OwnOwner));
        let metered = Authority {
            quota: credits(3),
            ..caller(U, None)
        };
        let more = metered.may_set_owner(&cus, &credits(1), &credits(10));
        assert!(matches!(more, Err(Refusal::Looser(_))), "{more:?}");
        assert_eq!(
            metered.may_set_owner(&cus, &credits(1), &credits(2)),
            Ok(())
        );
    }
}
