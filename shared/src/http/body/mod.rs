//! Request bodies: reading them ([`read`]: media type, size, JSON) and each endpoint's body
//! (create, update as a merge patch, roll, verify, and GitHub's report). Pure code:
//! nothing here touches the store; whether the caller may make the write is the write
//! domain's to decide ([`crate::authority`]).
//!
//! A handler calls, after authenticating the caller and checking its permission:
//! - create: [`CreateKey::from_request`] then [`CreateKey::new_key`], giving the
//!   [`crate::write::NewKey`] to store;
//! - update: [`KeyPatch::from_request`], giving the [`crate::write::KeyChange`] the write
//!   applies to the key as it reads it;
//! - roll: [`RollKey::from_request`].
//!
//! Every refusal is an [`ApiError`](crate::http::problem::ApiError): 415, 413, 400 or 422
//! for the body (a 422 names the field in `parameter`).

pub mod create;
pub mod fields;
pub mod owner;
pub mod patch;
pub mod quota;
pub mod read;
pub mod report;
pub mod roll;
pub mod verify;

pub use create::CreateKey;
pub use patch::KeyPatch;
pub use read::MAX_BODY_BYTES;
pub use roll::{MAX_GRACE_SECS, RollKey};
