//! The list query parameters, validated once: the ones every list shares (`limit`, `order`,
//! `after`, `before`, `cursor`: [`Shared`]), and the key list's own ([`ListRequest`]: `page`
//! and the filters). At most one of `page`, `cursor`, `after` and `before` says where the
//! page starts; each bad value or clash is a [`ParamError`] naming the parameter.

use std::fmt::Display;
use std::str::FromStr;

use serde::Deserialize;

use super::budget::{DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE_END};
use super::cursor::{CursorKeys, CursorState, KeyPosition, Purpose};
use super::{Direction, Order};
use crate::error::ParamError;
use crate::key::{KeyId, OrgId};
use crate::page::filter::{Filters, RawFilters};
use crate::store::Position;

/// The key list's query parameters as they arrived, each given at most once, before
/// validation: deserialized from the query string (by the edge), which may hold no other.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListParams<'a> {
    #[serde(borrow)]
    pub limit: Option<&'a str>,
    #[serde(borrow)]
    pub order: Option<&'a str>,
    #[serde(borrow)]
    pub after: Option<&'a str>,
    #[serde(borrow)]
    pub before: Option<&'a str>,
    #[serde(borrow)]
    pub cursor: Option<&'a str>,
    #[serde(borrow)]
    pub page: Option<&'a str>,
    /// How the answer is laid out, which the edge reads for every endpoint; named here so
    /// that it is a known parameter of the list.
    #[serde(borrow)]
    pub pretty: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
    #[serde(borrow)]
    pub creator_id: Option<&'a str>,
    #[serde(borrow)]
    pub restricted: Option<&'a str>,
    #[serde(borrow)]
    pub permission: Option<&'a str>,
    #[serde(borrow)]
    pub name: Option<&'a str>,
    #[serde(borrow)]
    pub owner_id: Option<&'a str>,
}

impl<'a> RawListParams<'a> {
    /// Every parameter of the key list, in the order of the fields (and so of validation).
    pub const PARAMETERS: &'static [&'static str] = &[
        "limit",
        "order",
        "after",
        "before",
        "cursor",
        "page",
        "pretty",
        "status",
        "creator_id",
        "restricted",
        "permission",
        "name",
        "owner_id",
    ];

    /// The filters among the parameters.
    pub fn filters(&self) -> RawFilters<'a> {
        RawFilters {
            status: self.status,
            creator_id: self.creator_id,
            restricted: self.restricted,
            permission: self.permission,
            name: self.name,
            owner_id: self.owner_id,
        }
    }
}

/// The parameters every list shares, validated: the page size, the order if one was asked
/// for, and the position to read after or before (an id of what is listed, which need not
/// exist any more).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shared<P> {
    pub limit: usize,
    pub order: Option<Order>,
    pub after: Option<P>,
    pub before: Option<P>,
}

impl<P: FromStr<Err: Display> + Copy> Shared<P> {
    /// Validates `limit`, `order`, `after` and `before`, in that order.
    pub(crate) fn parse(
        limit: Option<&str>,
        order: Option<&str>,
        after: Option<&str>,
        before: Option<&str>,
    ) -> Result<Self, ParamError> {
        Ok(Shared {
            limit: parse_limit(limit)?,
            order: parse_order(order)?,
            after: parse_position("after", after)?,
            before: parse_position("before", before)?,
        })
    }

    /// The order and direction the page reads in, and the position it starts past: the
    /// cursor's (`resumed`: its order, direction and position), else `before` (backward) or
    /// `after` (forward), newest first unless `order` says otherwise.
    pub(crate) fn start(&self, resumed: Option<(Order, Direction, P)>) -> Start<P> {
        let order = self.order.unwrap_or(Order::Desc);
        match (resumed, self.before) {
            (Some((order, direction, at)), _) => Start {
                order,
                direction,
                from: Some(at),
            },
            (None, Some(before)) => Start {
                order,
                direction: Direction::Backward,
                from: Some(before),
            },
            (None, None) => Start {
                order,
                direction: Direction::Forward,
                from: self.after,
            },
        }
    }
}

/// Where a page starts and which way it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Start<P> {
    pub order: Order,
    pub direction: Direction,
    /// Exclusive start position; `None` starts at the beginning of the order.
    pub from: Option<P>,
}

/// A validated list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    pub limit: usize,
    pub order: Order,
    pub direction: Direction,
    /// Exclusive start position; `None` starts at the beginning of the order.
    pub from: Option<Position>,
    /// A page number (from 1), instead of a position: the page starts after
    /// `(page - 1) * limit` keys.
    pub page: Option<usize>,
    /// Filters applied to the keys as they are read; empty for none.
    pub filters: Filters,
}

impl ListRequest {
    /// Validates the parameters. The organization and cursor keys are needed to check a
    /// cursor, which is only valid for the organization it was issued to.
    pub fn parse(
        raw: RawListParams<'_>,
        org: &OrgId,
        cursors: &CursorKeys,
    ) -> Result<Self, ParamError> {
        let shared = Shared::<KeyId>::parse(raw.limit, raw.order, raw.after, raw.before)?;
        let filters = Filters::parse(raw.filters())?;
        check_one_start(&[
            ("page", raw.page),
            ("cursor", raw.cursor),
            ("after", raw.after),
            ("before", raw.before),
        ])?;
        let page = raw
            .page
            .map(|page| parse_page(page, shared.limit, &filters))
            .transpose()?;
        let resumed = match raw.cursor {
            Some(token) => {
                let digest = filters.digest();
                let state: CursorState<KeyPosition> =
                    cursors.resume(Purpose::KEYS, org, token, shared.order, digest.as_deref())?;
                Some((state.order, state.direction, state.position.id))
            }
            None => None,
        };
        let start = shared.start(resumed);
        Ok(ListRequest {
            limit: shared.limit,
            order: start.order,
            direction: start.direction,
            from: start.from,
            page,
            filters,
        })
    }
}

/// `limit`: from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub(crate) fn parse_limit(value: Option<&str>) -> Result<usize, ParamError> {
    let Some(s) = value else {
        return Ok(DEFAULT_LIMIT);
    };
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ParamError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}, got {s:?}"),
            )
        })
}

/// `order`: `asc` or `desc`, if given.
pub(crate) fn parse_order(value: Option<&str>) -> Result<Option<Order>, ParamError> {
    value
        .map(|s| match s {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            _ => Err(ParamError::new(
                "order",
                format!("must be \"asc\" or \"desc\", got {s:?}"),
            )),
        })
        .transpose()
}

/// A position parameter (`after`, `before`): an id of what is listed, if given.
pub(crate) fn parse_position<P: FromStr<Err: Display>>(
    name: &'static str,
    value: Option<&str>,
) -> Result<Option<P>, ParamError> {
    value
        .map(|s| {
            s.parse::<P>()
                .map_err(|e| ParamError::new(name, e.to_string()))
        })
        .transpose()
}

/// A flag (`restricted`, `settled`, `pretty`): `true` or `false`.
pub fn parse_flag(name: &'static str, s: &str) -> Result<bool, ParamError> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ParamError::new(
            name,
            format!("must be \"true\" or \"false\", got {s:?}"),
        )),
    }
}

/// A page number, from 1 to `MAX_PAGE_END / limit`; numbers count all of the
/// organization's keys, so they do not combine with filters.
fn parse_page(s: &str, limit: usize, filters: &Filters) -> Result<usize, ParamError> {
    let max_page = MAX_PAGE_END / limit;
    let page = s
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max_page).contains(n))
        .ok_or_else(|| {
            ParamError::new(
                "page",
                format!(
                    "must be an integer from 1 to {max_page} (page * limit at most {MAX_PAGE_END} at limit {limit}; walk further with cursors), got {s:?}"
                ),
            )
        })?;
    if !filters.is_empty() {
        return Err(ParamError::new(
            "page",
            "cannot be combined with filters: page numbers count all of the organization's keys; page filtered lists with cursors",
        ));
    }
    Ok(page)
}

/// Refuses two of the parameters that say where a page starts (`page`, `cursor`, `after`,
/// `before`, those a list has, in that order) together, naming the first given, or
/// `before` against `after`.
pub(crate) fn check_one_start(given: &[(&'static str, Option<&str>)]) -> Result<(), ParamError> {
    let mut names = given.iter().filter(|(_, v)| v.is_some()).map(|(n, _)| *n);
    let (Some(first), Some(second)) = (names.next(), names.next()) else {
        return Ok(());
    };
    Err(match first {
        "page" => ParamError::new(
            "page",
            format!("cannot be combined with {second:?}: a page number is a position"),
        ),
        "cursor" => ParamError::new(
            "cursor",
            format!("cannot be combined with {second:?}: the cursor already holds a position"),
        ),
        _ => ParamError::new(
            second,
            format!("cannot be combined with {first:?}: choose one direction"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::cursor::tests::{ID, keys, org, sealed};
    use super::*;

    fn raw<'a>(pairs: &[(&str, &'a str)]) -> RawListParams<'a> {
        let mut r = RawListParams::default();
        for (k, v) in pairs {
            match *k {
                "limit" => r.limit = Some(v),
                "order" => r.order = Some(v),
                "after" => r.after = Some(v),
                "before" => r.before = Some(v),
                "cursor" => r.cursor = Some(v),
                "page" => r.page = Some(v),
                "name" => r.name = Some(v),
                _ => unreachable!(),
            }
        }
        r
    }

    #[test]
    fn defaults_are_50_newest_first_from_the_start() {
        let r = ListRequest::parse(raw(&[]), &org("a"), &keys()).unwrap();
        assert_eq!(
            r,
            ListRequest {
                limit: 50,
                order: Order::Desc,
                direction: Direction::Forward,
                from: None,
                page: None,
                filters: Filters::default(),
            }
        );
    }

    #[test]
    fn each_position_parameter_sets_where_and_which_way_the_page_reads() {
        let id: KeyId = ID.parse().unwrap();
        let parse = |pairs| ListRequest::parse(raw(pairs), &org("a"), &keys()).unwrap();
        let r = parse(&[("after", ID), ("order", "asc")]);
        assert_eq!(
            (r.order, r.direction, r.from, r.page),
            (Order::Asc, Direction::Forward, Some(id), None)
        );
        let r = parse(&[("before", ID)]);
        assert_eq!(
            (r.order, r.direction, r.from, r.page),
            (Order::Desc, Direction::Backward, Some(id), None)
        );
        let r = parse(&[("page", "3"), ("limit", "10")]);
        assert_eq!(
            (r.order, r.direction, r.from, r.page),
            (Order::Desc, Direction::Forward, None, Some(3))
        );
    }

    #[test]
    fn each_bad_parameter_is_named_with_its_reason() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("limit", "0")], "limit", "from 1 to 1000"),
            (&[("limit", "1001")], "limit", "from 1 to 1000"),
            (&[("limit", "ten")], "limit", "integer"),
            (&[("limit", "")], "limit", "integer"),
            (&[("order", "up")], "order", "\"asc\" or \"desc\""),
            (&[("after", "42")], "after", "UUID"),
            (&[("before", "x")], "before", "UUID"),
            (&[("after", ID), ("before", ID)], "before", "\"after\""),
            (&[("cursor", "abc")], "cursor", "not a cursor"),
            (&[("page", "0")], "page", "from 1 to 20"),
            (&[("page", "21")], "page", "from 1 to 20"),
            (&[("page", "2"), ("limit", "1000")], "page", "from 1 to 1 "),
            (&[("page", "x")], "page", "integer"),
            (&[("page", "1"), ("after", ID)], "page", "\"after\""),
            (&[("page", "1"), ("before", ID)], "page", "\"before\""),
            (&[("page", "1"), ("cursor", "abc")], "page", "\"cursor\""),
            (&[("page", "1"), ("name", "ci")], "page", "filters"),
            (&[("cursor", ""), ("after", ID)], "cursor", "\"after\""),
        ];
        for (pairs, param, reason) in cases {
            let err = ListRequest::parse(raw(pairs), &org("a"), &keys()).unwrap_err();
            assert_eq!(err.param, *param, "{pairs:?}");
            assert!(err.reason.contains(reason), "{pairs:?}: {}", err.reason);
        }
    }

    #[test]
    fn limit_and_page_bounds_are_inclusive() {
        for (s, n) in [("1", 1), ("1000", 1000)] {
            let r = ListRequest::parse(raw(&[("limit", s)]), &org("a"), &keys()).unwrap();
            assert_eq!(r.limit, n);
        }
        for (limit, last) in [("50", "20"), ("1000", "1"), ("1", "1000"), ("7", "142")] {
            let r =
                ListRequest::parse(raw(&[("limit", limit), ("page", last)]), &org("a"), &keys());
            assert_eq!(r.unwrap().page, last.parse().ok(), "limit {limit}");
        }
    }

    #[test]
    fn a_cursor_round_trips_and_restores_order_and_direction() {
        let token = sealed("a", Order::Asc);
        let r = ListRequest::parse(raw(&[("cursor", &token)]), &org("a"), &keys()).unwrap();
        assert_eq!(r.order, Order::Asc);
        assert_eq!(r.direction, Direction::Backward);
        assert_eq!(r.from, Some(ID.parse().unwrap()));
        let same = ListRequest::parse(
            raw(&[("cursor", &token), ("order", "asc")]),
            &org("a"),
            &keys(),
        );
        assert!(same.is_ok());
    }

    #[test]
    fn a_cursor_is_refused_under_another_order_filters_or_organization() {
        let token = sealed("a", Order::Asc);
        for (pairs, org_id) in [
            (&[("cursor", token.as_str()), ("order", "desc")][..], "a"),
            (&[("cursor", token.as_str()), ("name", "ci")], "a"),
            (&[("cursor", token.as_str())], "b"),
        ] {
            let err = ListRequest::parse(raw(pairs), &org(org_id), &keys()).unwrap_err();
            assert_eq!(err.param, "cursor", "{pairs:?} in {org_id}");
        }
    }
}
