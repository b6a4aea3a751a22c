//! Spending a verify's cost from a key and from its owner's own credits and rate limits at
//! once: one transaction per attempt, with the key's spend (when the key is metered) and
//! the owner's, each on the conditions of a key's own spend ([`crate::quota::plan`]). So the
//! owner's budget holds exactly across all of its keys, and a refusal by either spends
//! nothing on either.
//!
//! The owner's part is planned from the process's copy of the owner item
//! ([`super::VerifyCache::owner`]), the key's from what the verify knows of it; a failed
//! condition returns the items as they are, and the next attempt is planned from them. The
//! transaction is written on every verify, so leasing saves no write here: the key's and the
//! owner's limits are all counted exactly. What the answer says is left is computed from
//! the copies planned from, after this verify's spend: exact unless another verify spent
//! from the same item in between, when it overstates by what that one took.

use chrono::{DateTime, Utc};

use super::VerifyCode;
use super::meter::{ATTEMPTS, Basis, Left, LimitLeft, Metered};
use crate::key::{KeyId, OrgId};
use crate::quota::Quota;
use crate::quota::plan::{self, Ask, Counters, Decision, Spend};
use crate::store::quota::Spent;
use crate::store::{Joint, OwnerSpent, Part, QuotaStore, StoreError};

/// Spends `cost` from the key `id` of `org` and from `owner` (as the process last saw it).
/// `fresh` says whether `owner` was read by this verify: a refusal planned from an older
/// copy is checked against the item first. Returns the outcome, `None` when the owner item
/// is gone (deleted meanwhile: the key's own spend applies alone), and the owner as the
/// spend found or left it, for the process's copy.
pub async fn meter_jointly<S: QuotaStore>(
    store: &S,
    (org, id): (&OrgId, KeyId),
    basis: Basis<'_>,
    (owner, fresh): (OwnerSpent, bool),
    cost: u64,
    now: DateTime<Utc>,
) -> Result<(Option<Metered>, Option<OwnerSpent>), StoreError> {
    let op = uuid::Uuid::now_v7().to_string();
    let mut j = Joined {
        quota: basis.quota.clone(),
        version: basis.version,
        key: None,
        owner,
        fresh,
        ask: exact(basis.quota, cost, now),
    };
    for _ in 0..ATTEMPTS {
        let (key_spend, owner_spend) = match j.decide() {
            Ok(spends) => spends,
            Err(_) if !j.fresh => {
                match store.owner_spent(org, &j.owner.owner.id).await? {
                    Some(o) => j.saw_owner(o),
                    None => return Ok((None, None)),
                }
                continue;
            }
            Err(refused) => return Ok((j.refused(&refused), Some(j.owner))),
        };
        let key_part = key_spend.as_ref().map(|spend| Part {
            id,
            version: j.version,
            spend,
        });
        let owner_part = Part {
            id: &j.owner.owner.id,
            version: j.owner.owner.version,
            spend: &owner_spend,
        };
        match store.spend_jointly(org, key_part, owner_part, &op).await? {
            Joint::Applied => return Ok(j.applied(key_spend.as_ref(), &owner_spend)),
            Joint::Refused { key, owner } => {
                if let Some(k) = key {
                    j.saw_key(*k);
                }
                if let Some(o) = owner {
                    j.saw_owner(*o);
                }
            }
            Joint::KeyGone => return Ok((Some(gone()), Some(j.owner))),
            Joint::OwnerGone => return Ok((None, None)),
        }
    }
    Err(StoreError::Unavailable(
        "a key's or its owner's counters kept changing under its verify".into(),
    ))
}

/// What the spend plans from, between its attempts.
struct Joined {
    /// The key's rules and version as last known, and its item when a condition returned it.
    quota: Quota,
    version: u64,
    key: Option<Spent>,
    owner: OwnerSpent,
    fresh: bool,
    ask: Ask,
}

impl Joined {
    /// The key's write (`None` when it is not metered) and the owner's, or the refusal.
    fn decide(&self) -> Result<(Option<Spend>, Spend), Decision> {
        let key = match (&self.key, self.quota.is_metered()) {
            (_, false) => None,
            (None, true) => Some(plan::first(&self.quota, &self.ask)),
            (Some(s), true) => Some(plan::decide(&s.key.quota, &s.counters, &self.ask)),
        };
        let owner_ask = exact(&self.owner.owner.quota, self.ask.cost, self.ask.now);
        let owner = plan::decide(&self.owner.owner.quota, &self.owner.counters, &owner_ask);
        let mut refusals = [key.clone(), Some(owner.clone())].into_iter().flatten();
        if let Some(r) = refusals
            .clone()
            .find(|d| matches!(d, Decision::RateLimited(_)))
        {
            return Err(r);
        }
        if let Some(r) = refusals.find(|d| matches!(d, Decision::UsageExceeded)) {
            return Err(r);
        }
        match (key, owner) {
            (Some(Decision::Write(k)), Decision::Write(o)) => Ok((Some(k), o)),
            (_, Decision::Write(o)) => Ok((None, o)),
            (_, refused) => Err(refused),
        }
    }

    fn saw_key(&mut self, s: Spent) {
        self.quota = s.key.quota.clone();
        self.version = s.key.version;
        self.ask = exact(&self.quota, self.ask.cost, self.ask.now);
        self.key = Some(s);
    }

    fn saw_owner(&mut self, o: OwnerSpent) {
        self.owner = o;
        self.fresh = true;
    }

    /// What the key is known to hold: its item as returned, or its rules as planned from.
    fn key_known(&self) -> (Quota, Counters) {
        match &self.key {
            Some(s) => (s.key.quota.clone(), s.counters.clone()),
            None => (self.quota.clone(), Counters::default()),
        }
    }

    fn refused(&self, decision: &Decision) -> Option<Metered> {
        let code = match decision {
            Decision::RateLimited(_) => VerifyCode::RateLimited,
            _ => VerifyCode::UsageExceeded,
        };
        let now = self.ask.now;
        let (quota, counters) = self.key_known();
        Some(Metered {
            code,
            key: self.key.as_ref().map(|s| s.key.clone()),
            left: left(&quota, &counters, now),
            owner: Some(left(&self.owner.owner.quota, &self.owner.counters, now)),
        })
    }

    /// The spend applied: the owner as it left it (for the process's copy), and the answer.
    fn applied(&self, key: Option<&Spend>, owner: &Spend) -> (Option<Metered>, Option<OwnerSpent>) {
        let now = self.ask.now;
        let (quota, counters) = self.key_known();
        let (quota, counters) = match key {
            Some(spend) => plan::after(&quota, &counters, spend),
            None => (quota, counters),
        };
        let (oq, oc) = plan::after(&self.owner.owner.quota, &self.owner.counters, owner);
        let mut after = self.owner.clone();
        after.owner.quota = oq;
        after.counters = oc;
        let m = Metered {
            code: VerifyCode::Valid,
            key: None,
            left: left(&quota, &counters, now),
            owner: Some(left(&after.owner.quota, &after.counters, now)),
        };
        (Some(m), Some(after))
    }
}

fn gone() -> Metered {
    Metered {
        code: VerifyCode::NotFound,
        key: None,
        left: Left::default(),
        owner: None,
    }
}

/// An ask that takes `cost` from every limit of `quota` in the store.
fn exact(quota: &Quota, cost: u64, now: DateTime<Utc>) -> Ask {
    Ask {
        cost,
        now,
        takes: quota.ratelimits.iter().map(|_| Some(cost)).collect(),
    }
}

/// What `quota` has left by `counters`, every limit counted in the store.
pub fn left(quota: &Quota, counters: &Counters, now: DateTime<Utc>) -> Left {
    Left {
        credits: quota.credits.as_ref().map(|c| c.remaining),
        ratelimits: quota
            .ratelimits
            .iter()
            .map(|l| {
                let (remaining, reset) = plan::left(l, counters, now);
                LimitLeft {
                    name: l.name.clone(),
                    limit: l.limit,
                    remaining,
                    reset,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::owner::{Owner, OwnerId};
    use crate::quota::Credits;
    use crate::store::Spending;

    /// A store that holds one owner item and answers joint spends from a script.
    struct Scripted {
        owner: OwnerSpent,
        answers: Mutex<Vec<Joint>>,
        reads: Mutex<usize>,
        writes: Mutex<Vec<(bool, u64)>>,
    }

    impl QuotaStore for Scripted {
        async fn spend(
            &self,
            _: &OrgId,
            _: KeyId,
            _: u64,
            _: &str,
            _: &Spend,
        ) -> Result<Spending, StoreError> {
            Err(StoreError::Internal("not in this test".into()))
        }

        async fn spent(&self, _: &OrgId, _: KeyId) -> Result<Option<Spent>, StoreError> {
            Err(StoreError::Internal("not in this test".into()))
        }

        async fn owner_spent(
            &self,
            _: &OrgId,
            _: &OwnerId,
        ) -> Result<Option<OwnerSpent>, StoreError> {
            *self.reads.lock().unwrap() += 1;
            Ok(Some(self.owner.clone()))
        }

        async fn spend_jointly(
            &self,
            _: &OrgId,
            key: Option<Part<'_, KeyId>>,
            owner: Part<'_, &OwnerId>,
            _: &str,
        ) -> Result<Joint, StoreError> {
            self.writes
                .lock()
                .unwrap()
                .push((key.is_some(), owner.version));
            Ok(self.answers.lock().unwrap().remove(0))
        }
    }

    fn owner(remaining: u64, version: u64) -> OwnerSpent {
        OwnerSpent {
            owner: Owner {
                org: "acme".parse().unwrap(),
                id: "cus_1".parse().unwrap(),
                quota: Quota {
                    credits: Some(Credits {
                        remaining,
                        refill: None,
                        low_at: None,
                    }),
                    ratelimits: Vec::new(),
                },
                version,
                updated: Utc::now(),
            },
            counters: Counters::default(),
        }
    }

    fn store(item: OwnerSpent, answers: Vec<Joint>) -> Scripted {
        Scripted {
            owner: item,
            answers: Mutex::new(answers),
            reads: Mutex::new(0),
            writes: Mutex::new(Vec::new()),
        }
    }

    async fn run(s: &Scripted, copy: (OwnerSpent, bool)) -> (Option<Metered>, Option<OwnerSpent>) {
        let org: OrgId = "acme".parse().unwrap();
        let quota = Quota::default();
        let basis = Basis {
            version: 1,
            quota: &quota,
        };
        let key = (&org, KeyId::generate());
        meter_jointly(s, key, basis, copy, 1, Utc::now())
            .await
            .unwrap()
    }

    fn code(m: &Option<Metered>) -> Option<VerifyCode> {
        m.as_ref().map(|m| m.code)
    }

    #[tokio::test]
    async fn a_refusal_by_a_fresh_copy_writes_nothing() {
        let s = store(owner(0, 1), vec![]);
        let (m, _) = run(&s, (owner(0, 1), true)).await;
        assert_eq!(code(&m), Some(VerifyCode::UsageExceeded));
        assert_eq!(m.unwrap().owner.unwrap().credits, Some(0));
        assert!(s.writes.lock().unwrap().is_empty());
        assert_eq!(*s.reads.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_refusal_by_an_older_copy_reads_the_owner_first() {
        let s = store(owner(5, 2), vec![Joint::Applied]);
        let (m, copy) = run(&s, (owner(0, 1), false)).await;
        assert_eq!(code(&m), Some(VerifyCode::Valid));
        assert_eq!(*s.reads.lock().unwrap(), 1);
        // Planned from the item read: its version, and 4 left after the spend.
        assert_eq!(*s.writes.lock().unwrap(), [(false, 2)]);
        assert_eq!(m.unwrap().owner.unwrap().credits, Some(4));
        assert_eq!(copy.unwrap().owner.quota.credits.unwrap().remaining, 4);
    }

    #[tokio::test]
    async fn a_failed_condition_plans_again_from_the_item_returned() {
        let refused = Joint::Refused {
            key: None,
            owner: Some(Box::new(owner(1, 3))),
        };
        let s = store(owner(9, 9), vec![refused, Joint::Applied]);
        let (m, _) = run(&s, (owner(7, 1), true)).await;
        assert_eq!(code(&m), Some(VerifyCode::Valid));
        assert_eq!(*s.writes.lock().unwrap(), [(false, 1), (false, 3)]);
        assert_eq!(m.unwrap().owner.unwrap().credits, Some(0));
    }

    #[tokio::test]
    async fn an_owner_gone_or_a_key_gone_says_so() {
        let s = store(owner(1, 1), vec![Joint::OwnerGone]);
        assert_eq!(run(&s, (owner(1, 1), true)).await.0, None);
        let s = store(owner(1, 1), vec![Joint::KeyGone]);
        let (m, _) = run(&s, (owner(1, 1), true)).await;
        assert_eq!(code(&m), Some(VerifyCode::NotFound));
    }
}
