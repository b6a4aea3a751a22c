//! Owners: the organization's own name for whom a key is for (its customer, a team), set on
//! a key as `owner_id`. An owner id is opaque to us and scoped to its organization: two
//! organizations that use the same owner id name two different owners.
//!
//! An owner may carry credits and rate limits of its own ([`Owner`]), shared by all of its
//! keys: each verify of one of its keys spends from the key's and the owner's at once
//! (`crate::verify::meter`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::key::OrgId;
use crate::quota::Quota;

/// The most characters an owner id may have.
pub const MAX_OWNER_CHARS: usize = 128;

/// An owner id: 1 to [`MAX_OWNER_CHARS`] characters, none of them a control character.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OwnerId(String);

/// Why a string is not an owner id; the text is a 422's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {MAX_OWNER_CHARS} characters, none of them a control character")]
pub struct InvalidOwnerId;

impl OwnerId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for OwnerId {
    type Err = InvalidOwnerId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let chars = s.chars().count();
        if (1..=MAX_OWNER_CHARS).contains(&chars) && !s.chars().any(char::is_control) {
            Ok(OwnerId(s.to_owned()))
        } else {
            Err(InvalidOwnerId)
        }
    }
}

impl TryFrom<String> for OwnerId {
    type Error = InvalidOwnerId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<OwnerId> for String {
    fn from(value: OwnerId) -> Self {
        value.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An owner's own credits and rate limits, shared by its keys. Its rate limits are counted
/// exactly: a lease held by one process would be taken from every key of the owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub org: OrgId,
    pub id: OwnerId,
    /// Its credits (with what is left) and rate limits; unmetered when it has none.
    pub quota: Quota,
    /// One more with every change of its rules; not with a verify's spend.
    pub version: u64,
    pub updated: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_ids_are_1_to_128_characters_without_control_characters() {
        assert!("cus_8f2K".parse::<OwnerId>().is_ok());
        assert!("ORG#a#OWNER#b é".parse::<OwnerId>().is_ok());
        assert!("é".repeat(128).parse::<OwnerId>().is_ok());
        assert!("é".repeat(129).parse::<OwnerId>().is_err());
        assert!("".parse::<OwnerId>().is_err());
        assert!("a\nb".parse::<OwnerId>().is_err());
        assert!("a\u{0}".parse::<OwnerId>().is_err());
    }
}
