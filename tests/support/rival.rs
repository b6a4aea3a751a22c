//! A store in which another writer changes a key between each read of it for a write and
//! that write: the race a write without `If-Match` loses, made deterministic. Each
//! [`KeyWriter::key_for_write`](apikeys::store::KeyWriter::key_for_write) reads the key,
//! then renames it through the real store, as a PATCH arriving at that moment would, and
//! returns what it read: the write that follows commits on a version the key no longer has.
//! An owner's limits likewise: each read of an owner for a write is followed by another
//! writer's change of its credits. Everything else goes straight through.

use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::store::StoredKey;
use apikeys::store::dynamo::DynamoStore;

use crate::hooked::{Hooked, WriteHook};

/// A DynamoDB store with a rival writer (see the module header).
pub type Rival = Hooked<Renames>;

/// The hook of [`Rival`]: the renames it made.
pub struct Renames(AtomicUsize);

impl Rival {
    pub fn new(inner: DynamoStore) -> Self {
        Hooked::with(inner, Renames(AtomicUsize::new(0)))
    }

    /// The name the rival gave the key last, if it renamed it.
    pub fn last_name(&self) -> Option<String> {
        match self.hook.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Renames::name(n)),
        }
    }
}

impl Renames {
    fn name(n: usize) -> String {
        format!("renamed by a rival ({n})")
    }
}

impl WriteHook for Renames {
    async fn after_owner_read(&self, store: &DynamoStore, read: Option<&apikeys::owner::Owner>) {
        let Some(owner) = read else {
            return;
        };
        let mut quota = owner.quota.clone();
        let left = quota.credits.as_ref().map_or(0, |c| c.remaining);
        quota.credits = Some(apikeys::quota::Credits {
            remaining: left + 1,
            refill: None,
            low_at: None,
        });
        let (policy, ctx) = (crate::policy(), crate::ctx());
        let at = (&owner.org, &owner.id);
        apikeys::write::set_owner(store, &policy, &ctx, at, &quota, None)
            .await
            .expect("the rival's change of the owner");
    }

    async fn after_read(&self, store: &DynamoStore, read: Option<&StoredKey>) {
        let Some(stored) = read else {
            return;
        };
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let renamed = apikeys::write::KeyChange::name(Self::name(n));
        let (policy, ctx) = (crate::policy(), crate::ctx());
        let (org, id) = (&stored.key.org, stored.key.id);
        apikeys::write::update_key(store, &policy, &ctx, org, id, &renamed, None)
            .await
            .expect("the rival's rename");
    }
}
