//! A key's IP allow-list (`allowed_cidrs`): the addresses its secret may be used from, on
//! verify (the `client_ip` the calling service passes) and on this API itself (the
//! gateway's source address). No list (`null`) allows any address.
//!
//! An [`AllowList`] holds 1 to [`MAX_CIDRS`] IPv4 or IPv6 networks, parsed by `ipnet`:
//! - a bare address is its own network (`10.0.0.1` is `10.0.0.1/32`, `2001:db8::1` is
//!   `2001:db8::1/128`), and is shown so;
//! - a network with host bits set (`10.0.0.1/8`) is refused, naming its network
//!   (`10.0.0.0/8`): the writer meant one of the two, and only they know which;
//! - a network listed twice is refused.
//!
//! An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is checked as the IPv4 address.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

/// The most networks one list holds.
pub const MAX_CIDRS: usize = 50;

/// A key's allow-list: 1 to [`MAX_CIDRS`] distinct networks, in the order given.
#[derive(Clone, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

/// Why a list cannot be an allow-list; its text is the 422's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAllowList {
    #[error(
        "must hold 1 to {MAX_CIDRS} CIDRs; null allows any address (to stop a key, disable it)"
    )]
    Empty,
    #[error("must hold at most {MAX_CIDRS} CIDRs, got {0}")]
    TooMany(usize),
    #[error("entry {0}: {1}")]
    Entry(usize, String),
}

impl AllowList {
    /// The list of these networks, as written.
    pub fn parse<T: AsRef<str>>(items: &[T]) -> Result<AllowList, InvalidAllowList> {
        if items.is_empty() {
            return Err(InvalidAllowList::Empty);
        }
        if items.len() > MAX_CIDRS {
            return Err(InvalidAllowList::TooMany(items.len()));
        }
        let mut nets: Vec<IpNet> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let net = network(item.as_ref()).map_err(|why| InvalidAllowList::Entry(i, why))?;
            if nets.contains(&net) {
                return Err(InvalidAllowList::Entry(i, format!("{net} is listed twice")));
            }
            nets.push(net);
        }
        Ok(AllowList(nets))
    }

    /// A list the store kept; `None` if it no longer parses.
    pub fn from_stored(items: &[String]) -> Option<AllowList> {
        AllowList::parse(items).ok()
    }

    /// Whether `ip` is in one of the networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether every address of this list is in `outer` (a network may be covered by
    /// several of `outer`'s together).
    pub fn within(&self, outer: &AllowList) -> bool {
        let cover = IpNet::aggregate(&outer.0);
        self.0
            .iter()
            .all(|net| cover.iter().any(|c| c.contains(net)))
    }

    /// The networks as the API shows them: `10.0.0.0/8`, `2001:db8::1/128`.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// Whether a key that allowed `before` reaches an address it did not once it allows
/// `after` (`None`: any address). Removing a list widens it; so does adding a network.
pub fn widens(before: Option<&AllowList>, after: Option<&AllowList>) -> bool {
    !within(after, before)
}

/// Whether every address `inner` allows, `outer` allows too (`None`: any address).
pub fn within(inner: Option<&AllowList>, outer: Option<&AllowList>) -> bool {
    match (inner, outer) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(i), Some(o)) => i.within(o),
    }
}

/// Whether `ip` may use a key with this list (`None`: any address; no address at all: only
/// a key without a list).
pub fn admits(list: Option<&AllowList>, ip: Option<IpAddr>) -> bool {
    match (list, ip) {
        (None, _) => true,
        (Some(list), Some(ip)) => list.allows(ip),
        (Some(_), None) => false,
    }
}

/// One entry: a CIDR, or a bare address (a network of one).
fn network(text: &str) -> Result<IpNet, String> {
    let shown: String = text.chars().take(64).collect();
    if let Ok(net) = text.parse::<IpNet>() {
        let exact = net.trunc();
        return if exact == net {
            Ok(net)
        } else {
            Err(format!(
                "{shown:?} has host bits set: its network is {exact} (send that, or the \
                 address alone for just it)"
            ))
        };
    }
    match text.parse::<IpAddr>() {
        Ok(addr) => Ok(IpNet::from(addr)),
        Err(_) => Err(format!(
            "{shown:?} is not an IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32"
        )),
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.to_strings()).finish()
    }
}

impl Serialize for AllowList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> AllowList {
        AllowList::parse(items).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_and_v6_networks_and_bare_addresses_parse() {
        let l = list(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "2001:db8:1::1"]);
        assert_eq!(
            l.to_strings(),
            [
                "10.0.0.0/8",
                "2001:db8::/32",
                "192.0.2.7/32",
                "2001:db8:1::1/128"
            ]
        );
        assert!(l.allows(ip("10.255.255.255")) && l.allows(ip("10.0.0.0")));
        assert!(!l.allows(ip("11.0.0.0")) && !l.allows(ip("9.255.255.255")));
        assert!(l.allows(ip("2001:db8:ffff::1")) && !l.allows(ip("2001:db9::")));
        assert!(l.allows(ip("192.0.2.7")) && !l.allows(ip("192.0.2.8")));
        assert!(
            l.allows(ip("::ffff:10.1.2.3")),
            "an IPv4 address written as IPv6"
        );
    }

    #[test]
    fn bad_lists_are_refused_with_the_entry_at_fault() {
        assert_eq!(AllowList::parse::<&str>(&[]), Err(InvalidAllowList::Empty));
        let many: Vec<String> = (0..51).map(|i| format!("10.0.0.{i}")).collect();
        assert_eq!(AllowList::parse(&many), Err(InvalidAllowList::TooMany(51)));
        let fifty: Vec<String> = (0..50).map(|i| format!("10.0.0.{i}")).collect();
        assert!(AllowList::parse(&fifty).is_ok());
        for (items, why) in [
            (
                vec!["10.0.0.1/8"],
                "entry 0: \"10.0.0.1/8\" has host bits set: its network is 10.0.0.0/8",
            ),
            (
                vec!["10.0.0.0/8", "10.0.0.0/8"],
                "entry 1: 10.0.0.0/8 is listed twice",
            ),
            (
                vec!["10.0.0.0/33"],
                "entry 0: \"10.0.0.0/33\" is not an IPv4 or IPv6 CIDR",
            ),
            (vec!["example.com"], "entry 0: \"example.com\" is not"),
            (
                vec!["10.0.0.0/8", "010.0.0.1"],
                "entry 1: \"010.0.0.1\" is not",
            ),
        ] {
            let err = AllowList::parse(&items).unwrap_err().to_string();
            assert!(err.starts_with(why), "{items:?}: {err}");
        }
    }

    #[test]
    fn widening_is_reaching_an_address_the_old_list_did_not() {
        let a = list(&["10.0.0.0/25", "10.0.0.128/25"]);
        let whole = list(&["10.0.0.0/24"]);
        let part = list(&["10.0.0.0/26"]);
        assert!(whole.within(&a), "covered by two networks together");
        assert!(!widens(Some(&a), Some(&whole)) && !widens(Some(&a), Some(&part)));
        assert!(widens(Some(&part), Some(&whole)));
        assert!(
            widens(Some(&a), None),
            "removing the list allows any address"
        );
        assert!(!widens(None, Some(&a)) && !widens(None, None));
        assert!(widens(Some(&a), Some(&list(&["2001:db8::/32"]))));
    }

    #[test]
    fn a_key_with_a_list_admits_no_missing_address() {
        let l = list(&["10.0.0.0/8"]);
        assert!(admits(None, None) && admits(None, Some(ip("1.2.3.4"))));
        assert!(!admits(Some(&l), None));
        assert!(admits(Some(&l), Some(ip("10.0.0.1"))));
        assert!(!admits(Some(&l), Some(ip("11.0.0.1"))));
    }
}
