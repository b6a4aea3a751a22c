//! A store whose writes commit late: the gap real DynamoDB leaves between the time an
//! event's id carries (its request's start) and the moment its transaction commits, made
//! deterministic. Each replacing write reads as usual, then waits until the test releases
//! it, and only then commits through the real store. Everything else goes straight through.

use apikeys::store::StoredKey;
use apikeys::store::dynamo::DynamoStore;
use tokio::sync::Notify;

use crate::hooked::{Hooked, WriteHook};

/// A DynamoDB store whose replacing writes wait for [`LateCommit::release`].
pub type LateCommit = Hooked<Late>;

/// The hook of [`LateCommit`].
pub struct Late {
    holding: Notify,
    released: Notify,
}

impl LateCommit {
    pub fn new(inner: DynamoStore) -> Self {
        Hooked::with(
            inner,
            Late {
                holding: Notify::new(),
                released: Notify::new(),
            },
        )
    }

    /// Returns once a write is waiting to commit: its event's id is made.
    pub async fn holding(&self) {
        self.hook.holding.notified().await
    }

    /// Lets the waiting write commit.
    pub fn release(&self) {
        self.hook.released.notify_one()
    }
}

impl WriteHook for Late {
    async fn before_replace(&self, _: &DynamoStore, _: &StoredKey) {
        self.holding.notify_one();
        self.released.notified().await;
    }
}
