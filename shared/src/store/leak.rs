//! What handling a secret scanning report needs from storage: the credentials of many
//! secrets at once, and for the disabled ones, whether a report marked that secret before.
//! Revoking a key is a write, through the writer role.

use std::collections::HashMap;
use std::future::Future;

use crate::secret::SecretHash;
use crate::store::{Credential, StoreError};

/// What the store knows about one reported secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub credential: Credential,
    /// The key is disabled, and this secret is among those a report marked leaked on it
    /// (by a revocation, which records the secret's hash on the key).
    pub marked: bool,
}

/// Looking up every secret of a report in one call, so that DynamoDB answers with
/// `BatchGetItem` (100 items a request) rather than one `GetItem` per token.
pub trait LeakLookup: Send + Sync {
    /// The hashes a credential exists for, with what is known of it. Hashes of no
    /// credential are absent from the map.
    fn find_candidates(
        &self,
        hashes: &[SecretHash],
    ) -> impl Future<Output = Result<HashMap<SecretHash, Candidate>, StoreError>> + Send;
}
