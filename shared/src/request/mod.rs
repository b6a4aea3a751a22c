//! The request side of the writes (the transactions themselves are in [`crate::write`]):
//! reading and validating the bodies of create, update (merge patch) and roll. Pure code:
//! nothing here touches the store; whether the caller may make the write is the write
//! domain's to decide ([`crate::authority`]).
//!
//! A handler calls, after authenticating the caller and checking its permission:
//! - create: [`CreateKey::from_request`] then [`CreateKey::new_key`], giving the
//!   [`crate::write::NewKey`] to store;
//! - update: [`KeyPatch::from_request`], then, with the current key, [`KeyPatch::apply`],
//!   giving the key to store;
//! - roll: [`RollKey::from_request`].
//!
//! Every refusal is an [`crate::error::ApiError`]: 415, 413, 400 or 422 for the body (a 422
//! names the field in `parameter`).

pub mod body;
pub mod create;
pub mod fields;
pub mod patch;
pub mod roll;

pub use body::MAX_BODY_BYTES;
pub use create::CreateKey;
pub use patch::KeyPatch;
pub use roll::{MAX_GRACE_SECS, RollKey};
