//! The request side of the writes (the transactions themselves are in [`crate::write`]): reading and validating the bodies of create, update
//! (merge patch) and roll, and the no-escalation rule. Pure code: nothing here touches the
//! store.
//!
//! A handler calls, after authenticating the caller and checking its permission:
//! - create: [`CreateKey::from_request`] then [`CreateKey::new_key`], giving the
//!   [`crate::write::NewKey`] to store;
//! - update: [`KeyPatch::from_request`], then, with the current key, [`KeyPatch::apply_by`],
//!   giving the key to store;
//! - roll: [`RollKey::from_request`], then, with the current key, [`RollKey::authorize`].
//!
//! Every refusal is an [`crate::error::ApiError`]: 415, 413, 400 or 422 for the body (a 422
//! names the field in `parameter`), 403 ([`Escalation`]) for a grant the caller may not make.

pub mod body;
pub mod create;
pub mod fields;
pub mod grant;
pub mod patch;
pub mod roll;

pub use body::MAX_BODY_BYTES;
pub use create::CreateKey;
pub use grant::Escalation;
pub use patch::KeyPatch;
pub use roll::{MAX_GRACE_SECS, RollKey};
