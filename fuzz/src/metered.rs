//! The memory store with a key's counters, for the verify target: [`Metered`] answers every
//! read from the world's [`MemoryStore`] and applies a verify's spend as the DynamoDB store's
//! one conditional UpdateItem does (`store/dynamo/spend.rs`): all of it, on condition that
//! the key is at the version planned from, that the spend's id is not the last one applied,
//! and that every counter is as planned; or none of it, answering the item as it is.
//!
//! The credits left live here (the memory store's copy of the key keeps the credits it was
//! created with), so [`Metered::credits`] is the oracle of what a verify left.

use std::collections::HashMap;
use std::sync::Mutex;

use apikeys::key::{ApiKey, KeyId, OrgId};
use apikeys::quota::plan::{Counters, CreditOp, LimitOp, Slot, Spend, Window};
use apikeys::secret::SecretHash;
use apikeys::store::memory::MemoryStore;
use apikeys::store::quota::Spent;
use apikeys::store::{
    Credential, CredentialStore, KeyReader, Position, QuotaStore, Spending, StoreError,
};
use chrono::{DateTime, Utc};

/// One key's counters: credits left (when it has credits), windows, the last spend's id.
#[derive(Clone, Debug, Default)]
struct State {
    remaining: Option<u64>,
    counters: Counters,
    last_spend: Option<String>,
}

/// The world's store, with counters.
pub struct Metered<'a> {
    pub inner: &'a MemoryStore,
    state: Mutex<HashMap<(OrgId, KeyId), State>>,
}

impl<'a> Metered<'a> {
    pub fn new(inner: &'a MemoryStore) -> Self {
        Metered {
            inner,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(OrgId, KeyId), State>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The credits the key has left (`None`: no credits) and its counters, as they are now.
    pub fn now(&self, key: &ApiKey) -> (Option<u64>, Counters) {
        let at = (key.org.clone(), key.id);
        let state = self.lock().get(&at).cloned().unwrap_or_else(|| start(key));
        (state.remaining, state.counters)
    }
}

/// A key's counters as its creation writes them: its credits, in the refill period of its
/// last change (`store/dynamo/items.rs`), and no window yet.
fn start(key: &ApiKey) -> State {
    let credits = key.quota.credits.as_ref();
    State {
        remaining: credits.map(|c| c.remaining),
        counters: Counters {
            period_ms: credits
                .and_then(|c| c.refill)
                .map(|r| r.period_start(key.updated)),
            windows: Default::default(),
        },
        last_spend: None,
    }
}

/// Whether `spend`'s conditions hold for `state`.
fn holds(state: &State, spend: &Spend) -> bool {
    let credits = match spend.credits {
        None => true,
        Some(CreditOp::Take { need, period, .. }) => {
            state.remaining.is_some_and(|r| r >= need)
                && period.is_none_or(|p| state.counters.period_ms == Some(p))
        }
        Some(CreditOp::Refill { from, .. }) => {
            state.remaining.is_some() && state.counters.period_ms == from
        }
    };
    credits
        && spend.limits.iter().all(|(_, op)| {
            let seen = state.counters.windows.get(&op.name);
            match op.slot {
                Slot::Current { max } => seen.is_some_and(|s| s.w == op.window && s.n <= max),
                Slot::Fresh { from: None } => seen.is_none(),
                Slot::Fresh { from: Some(w) } => seen.is_some_and(|s| s.w == w),
            }
        })
}

fn apply(state: &mut State, spend: &Spend, op: &str) {
    match spend.credits {
        None => {}
        Some(CreditOp::Take { cost, .. }) => {
            state.remaining = state.remaining.map(|r| r - cost);
        }
        Some(CreditOp::Refill {
            to, amount, cost, ..
        }) => {
            state.remaining = Some(amount.saturating_sub(cost));
            state.counters.period_ms = Some(to);
        }
    }
    for (
        _,
        LimitOp {
            name,
            take,
            window,
            slot,
        },
    ) in &spend.limits
    {
        let entry = state.counters.windows.entry(name.clone());
        match slot {
            Slot::Current { .. } => entry.or_insert(Window { w: *window, n: 0 }).n += take,
            Slot::Fresh { .. } => {
                entry.insert_entry(Window {
                    w: *window,
                    n: *take,
                });
            }
        }
    }
    state.last_spend = Some(op.to_owned());
}

impl QuotaStore for Metered<'_> {
    async fn spend(
        &self,
        org: &OrgId,
        id: KeyId,
        version: u64,
        op: &str,
        spend: &Spend,
    ) -> Result<Spending, StoreError> {
        let Some(mut key) = self.inner.get_key(org, id).await? else {
            return Ok(Spending::Gone);
        };
        let mut all = self.lock();
        let state = all.entry((org.clone(), id)).or_insert_with(|| start(&key));
        let applied = key.version == version
            && state.last_spend.as_deref() != Some(op)
            && holds(state, spend);
        if applied {
            apply(state, spend, op);
        }
        let spent = as_spent(&mut key, state);
        Ok(if applied || spent.last_spend.as_deref() == Some(op) {
            Spending::Applied(spent)
        } else {
            Spending::Refused(spent)
        })
    }

    async fn spent(&self, org: &OrgId, id: KeyId) -> Result<Option<Spent>, StoreError> {
        let Some(mut key) = self.inner.get_key(org, id).await? else {
            return Ok(None);
        };
        let mut all = self.lock();
        let state = all.entry((org.clone(), id)).or_insert_with(|| start(&key));
        Ok(Some(as_spent(&mut key, state)))
    }
}

/// The key item as a spend answers it: the key with the credits left, and its counters.
fn as_spent(key: &mut ApiKey, state: &State) -> Spent {
    if let (Some(c), Some(r)) = (key.quota.credits.as_mut(), state.remaining) {
        c.remaining = r;
    }
    Spent {
        key: key.clone(),
        counters: state.counters.clone(),
        last_spend: state.last_spend.clone(),
    }
}

impl CredentialStore for Metered<'_> {
    async fn find_credential(&self, hash: &SecretHash) -> Result<Option<Credential>, StoreError> {
        self.inner.find_credential(hash).await
    }

    async fn spend_as_a_miss(&self, hash: &SecretHash) -> Result<(), StoreError> {
        self.inner.spend_as_a_miss(hash).await
    }

    async fn record_use(
        &self,
        org: &OrgId,
        id: KeyId,
        hash: &SecretHash,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.record_use(org, id, hash, at, stale_before).await
    }
}

impl KeyReader for Metered<'_> {
    async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
        self.inner.get_key(org, id).await
    }

    async fn read_run(
        &self,
        org: &OrgId,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner.read_run(org, from, ascending, max).await
    }

    async fn read_run_in(
        &self,
        org: &OrgId,
        index: &apikeys::store::KeyIndex,
        from: Option<Position>,
        ascending: bool,
        max: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.inner
            .read_run_in(org, index, from, ascending, max)
            .await
    }

    async fn unprojected(
        &self,
        org: &OrgId,
        ids: &[KeyId],
    ) -> Result<HashMap<KeyId, apikeys::store::Unprojected>, StoreError> {
        self.inner.unprojected(org, ids).await
    }

    async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.inner.key_count(org).await
    }
}
