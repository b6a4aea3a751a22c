//! The steps of the run, in order (see the header of `main.rs`): each measures one thing
//! and puts its figures into the report.

pub mod capacity;
pub mod inits;
pub mod scaling;
pub mod tls_cold;
pub mod verify_cold;
pub mod verify_metered;
pub mod warm;
