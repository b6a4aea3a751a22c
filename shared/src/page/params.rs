//! The list query parameters, validated once into a [`ListRequest`]. At most one of `page`,
//! `cursor`, `after` and `before` says where the page starts; each bad value or clash is a
//! [`ParamError`] naming the parameter.

use super::budget::{DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE_END};
use super::cursor::{CursorKeys, CursorState};
use super::{Direction, Order};
use crate::error::ParamError;
use crate::filter::{Filters, RawFilters};
use crate::key::{KeyId, OrgId};
use crate::store::Position;

/// The list query parameters as they arrived, before validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawListParams<'a> {
    pub limit: Option<&'a str>,
    pub order: Option<&'a str>,
    pub after: Option<&'a str>,
    pub before: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub page: Option<&'a str>,
    pub filters: RawFilters<'a>,
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
        let limit = parse_limit(raw.limit)?;
        let order = parse_order(raw.order)?;
        let after = parse_position("after", raw.after)?;
        let before = parse_position("before", raw.before)?;
        let filters = Filters::parse(raw.filters)?;
        let mut request = ListRequest {
            limit,
            order: order.unwrap_or(Order::Desc),
            direction: Direction::Forward,
            from: None,
            page: None,
            filters,
        };
        check_one_start(&raw)?;
        if let Some(page) = raw.page {
            request.page = Some(parse_page(page, limit, &request.filters)?);
        } else if let Some(token) = raw.cursor {
            let state = cursors.open(org, token)?;
            check_cursor(&state, order, &request.filters)?;
            request.order = state.order;
            request.direction = state.direction;
            request.from = Some(state.position);
        } else if let Some(id) = before {
            request.direction = Direction::Backward;
            request.from = Some(id);
        } else {
            request.from = after;
        }
        Ok(request)
    }
}

fn parse_limit(value: Option<&str>) -> Result<usize, ParamError> {
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

fn parse_order(value: Option<&str>) -> Result<Option<Order>, ParamError> {
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

fn parse_position(name: &'static str, value: Option<&str>) -> Result<Option<KeyId>, ParamError> {
    value
        .map(|s| {
            s.parse::<KeyId>()
                .map_err(|e| ParamError::new(name, e.to_string()))
        })
        .transpose()
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

/// Refuses two of `page`, `cursor`, `after` and `before` together, naming the first given
/// (in that order), or `before` against `after`.
fn check_one_start(raw: &RawListParams<'_>) -> Result<(), ParamError> {
    let given = [
        ("page", raw.page),
        ("cursor", raw.cursor),
        ("after", raw.after),
        ("before", raw.before),
    ];
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

/// A cursor is followed only in the order and under the filters it was made with.
fn check_cursor(
    state: &CursorState,
    order: Option<Order>,
    filters: &Filters,
) -> Result<(), ParamError> {
    if order.is_some_and(|o| o != state.order) {
        return Err(ParamError::new(
            "cursor",
            "was issued for the other order; repeat the order of the first page or omit it",
        ));
    }
    if state.filters != filters.digest() {
        return Err(ParamError::new(
            "cursor",
            "was issued under other filters; repeat the filters of the first page exactly",
        ));
    }
    Ok(())
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
                "name" => r.filters.name = Some(v),
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
