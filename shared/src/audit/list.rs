//! Listing events a page at a time, with the key list's rules: `limit` (1 to 1000, default
//! 50), `order` (`desc` by default: newest first), `after`/`before` (an event id, which need
//! not exist), and `cursor` (opaque, sealed for the organization, valid only under the
//! filters it was issued with). Filters: `action`, `key_id`, `since` (inclusive) and
//! `until` (exclusive), RFC 3339.
//!
//! Event ids are UUIDv7, so id order is time order: `since`, `until` and the page's
//! position narrow the range of ids read, and only `action` is applied to events as they
//! are read, within a read budget as the key filters are.
//!
//! An event's id carries the time its request started, but the event commits with its
//! change, up to [`SETTLE`] later. So an event may appear behind one listed before it, and a
//! client that tails with `after=<last id>` would skip it forever. `settled=true` lists only
//! events older than [`SETTLE`], all of which have committed: the way to tail (README,
//! "Tailing the audit trail"). The organization's events are read consistently; one key's
//! come from an index, which lags the table by its propagation delay (usually well under a
//! second), which `settled` covers in practice but DynamoDB does not bound.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cursor::EventCursors;
use super::event::{Action, Event, EventId};
use crate::error::ParamError;
use crate::key::{KeyId, OrgId};
use crate::page::{DEFAULT_LIMIT, Direction, MAX_LIMIT, Order};
use crate::page::{MAX_ITEMS_READ as READ_BUDGET, MIN_CHUNK};
use crate::store::{AuditReader, EventRange, StoreError};

/// How long after its id's time an event may still commit: the longest a request runs
/// (revoke-leaked's timeout, `deadline::REPORT_TIMEOUT`; its events all carry the report's
/// start) and 5 s for a transaction in flight when its function stopped and for clocks that
/// disagree. Events older than this have all committed (see `settled`).
pub const SETTLE: Duration = crate::deadline::REPORT_TIMEOUT.saturating_add(Duration::from_secs(5));

/// The list parameters as they arrived, before validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEventParams<'a> {
    pub limit: Option<&'a str>,
    pub order: Option<&'a str>,
    pub after: Option<&'a str>,
    pub before: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub action: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub settled: Option<&'a str>,
}

/// Validated filters; all given ones must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilters {
    pub action: Option<Action>,
    /// One key's events: the `key_id` parameter, or the key of `/v1/api_key/{id}/events`.
    pub key: Option<KeyId>,
    /// Events at or after.
    pub since: Option<DateTime<Utc>>,
    /// Events before.
    pub until: Option<DateTime<Utc>>,
    /// Only events older than [`SETTLE`] when the page is read, all of them committed.
    pub settled: bool,
}

impl EventFilters {
    /// A digest of the filters, carried by cursors so that a cursor is only followed under
    /// the filters it was made with.
    fn digest(&self) -> String {
        let mut canonical = format!(
            "a={:?}\0k={:?}\0s={:?}\0u={:?}",
            self.action.map(Action::as_str),
            self.key,
            self.since.map(|t| t.timestamp_nanos_opt()),
            self.until.map(|t| t.timestamp_nanos_opt()),
        );
        // Appended only when set, so that the cursors issued before it existed still open.
        if self.settled {
            canonical.push_str("\0settled");
        }
        let digest = Sha256::digest(canonical.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The ids the time filters allow at `now`.
    fn range(&self, now: DateTime<Utc>) -> EventRange {
        let settled = self.settled.then(|| settle_line(now));
        let until = match (self.until, settled) {
            (Some(u), Some(s)) => Some(u.min(s)),
            (u, s) => u.or(s),
        };
        EventRange {
            first: self.since.map_or(EventId::MIN, EventId::floor),
            last: until.map_or(EventId::MAX, EventId::ceiling_before),
        }
    }
}

/// The time before which every event has committed, at `now`: `now` less [`SETTLE`].
pub fn settle_line(now: DateTime<Utc>) -> DateTime<Utc> {
    let settle = chrono::TimeDelta::from_std(SETTLE).unwrap_or(chrono::TimeDelta::MAX);
    now - settle
}

/// A validated event list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventListRequest {
    pub limit: usize,
    pub order: Order,
    pub direction: Direction,
    /// Exclusive start position; `None` starts at the beginning of the order.
    pub from: Option<EventId>,
    pub filters: EventFilters,
}

/// What an event cursor carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CursorState {
    #[serde(rename = "o")]
    order: Order,
    #[serde(rename = "d")]
    direction: Direction,
    #[serde(rename = "e")]
    position: EventId,
    #[serde(rename = "f")]
    filters: String,
}

fn time(name: &'static str, value: &str) -> Result<DateTime<Utc>, ParamError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ParamError::new(
                name,
                format!("must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got {value:?}"),
            )
        })
}

fn parse_limit(value: Option<&str>) -> Result<usize, ParamError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ParamError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}, got {s:?}"),
            )),
        },
    }
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

fn parse_position(name: &'static str, value: Option<&str>) -> Result<Option<EventId>, ParamError> {
    value
        .map(|s| {
            s.parse::<EventId>()
                .map_err(|e| ParamError::new(name, e.to_string()))
        })
        .transpose()
}

fn parse_action(value: Option<&str>) -> Result<Option<Action>, ParamError> {
    value
        .map(|s| {
            s.parse::<Action>().map_err(|_| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                ParamError::new(
                    "action",
                    format!("must be one of {}, got {s:?}", names.join(", ")),
                )
            })
        })
        .transpose()
}

/// The key of the path, or of `key_id`; both only if they agree.
fn parse_key(path_key: Option<KeyId>, value: Option<&str>) -> Result<Option<KeyId>, ParamError> {
    let query_key = value
        .map(|s| {
            s.parse::<KeyId>()
                .map_err(|e| ParamError::new("key_id", e.to_string()))
        })
        .transpose()?;
    match (path_key, query_key) {
        (Some(p), Some(q)) if p != q => Err(ParamError::new(
            "key_id",
            "must be the key of the path, or be left out",
        )),
        (p, q) => Ok(p.or(q)),
    }
}

fn parse_settled(value: Option<&str>) -> Result<bool, ParamError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ParamError::new(
            "settled",
            format!("must be \"true\" or \"false\", got {other:?}"),
        )),
    }
}

impl EventFilters {
    /// The filters of a request: `action`, the key (`path_key` or `key_id`), `settled`,
    /// `since` and `until`, validated in that order.
    fn parse(raw: &RawEventParams<'_>, path_key: Option<KeyId>) -> Result<Self, ParamError> {
        let action = parse_action(raw.action)?;
        let key = parse_key(path_key, raw.key_id)?;
        let settled = parse_settled(raw.settled)?;
        let since = raw.since.map(|s| time("since", s)).transpose()?;
        let until = raw.until.map(|s| time("until", s)).transpose()?;
        if let (Some(s), Some(u)) = (since, until)
            && u <= s
        {
            return Err(ParamError::new("until", "must be later than \"since\""));
        }
        Ok(EventFilters {
            action,
            key,
            since,
            until,
            settled,
        })
    }
}

impl EventListRequest {
    /// Validates the parameters of `GET /v1/api_key_events/` (`path_key` `None`) or
    /// `GET /v1/api_key/{id}/events` (`path_key` the id). A cursor is checked against the
    /// organization it must have been issued to.
    pub fn parse(
        raw: RawEventParams<'_>,
        org: &OrgId,
        path_key: Option<KeyId>,
        cursors: &EventCursors,
    ) -> Result<Self, ParamError> {
        let limit = parse_limit(raw.limit)?;
        let order = parse_order(raw.order)?;
        let after = parse_position("after", raw.after)?;
        let before = parse_position("before", raw.before)?;
        let filters = EventFilters::parse(&raw, path_key)?;
        if let Some(token) = raw.cursor {
            return Self::resume(&raw, token, org, cursors, (limit, order), filters);
        }
        let (direction, from) = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(ParamError::new(
                    "before",
                    "cannot be combined with \"after\": choose one direction",
                ));
            }
            (Some(id), None) => (Direction::Forward, Some(id)),
            (None, Some(id)) => (Direction::Backward, Some(id)),
            (None, None) => (Direction::Forward, None),
        };
        Ok(EventListRequest {
            limit,
            order: order.unwrap_or(Order::Desc),
            direction,
            from,
            filters,
        })
    }

    /// The request that goes on from `token`, which must have been issued to `org` for the
    /// same order (if given) and the same filters, and stands without `after` or `before`.
    fn resume(
        raw: &RawEventParams<'_>,
        token: &str,
        org: &OrgId,
        cursors: &EventCursors,
        (limit, order): (usize, Option<Order>),
        filters: EventFilters,
    ) -> Result<Self, ParamError> {
        if let Some(other) = [("after", raw.after), ("before", raw.before)]
            .iter()
            .find_map(|(n, v)| v.map(|_| *n))
        {
            return Err(ParamError::new(
                "cursor",
                format!("cannot be combined with {other:?}: the cursor already holds a position"),
            ));
        }
        let state: CursorState = cursors.open(org, token).ok_or_else(|| {
            ParamError::new(
                "cursor",
                "is not a cursor this service issued for this organization; pass next_cursor unchanged",
            )
        })?;
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
        Ok(EventListRequest {
            limit,
            order: state.order,
            direction: state.direction,
            from: Some(state.position),
            filters,
        })
    }
}

/// One page of events, in the requested order.
#[derive(Clone, Debug)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Whether more events lie beyond this page in the direction it was read.
    pub has_more: bool,
    /// The opaque cursor for the next page in that direction; `None` when `has_more` is
    /// false.
    pub next_cursor: Option<String>,
    /// With an `action` filter: whether the read budget ran out before the page was full,
    /// so that more matches may lie beyond a short (even empty) page.
    pub budget_exhausted: Option<bool>,
}

/// Reads one page at `now`: `limit + 1` events in one Query when no `action` is asked for,
/// else runs of events until `limit + 1` match, the range ends, or [`READ_BUDGET`] events
/// have been read: the same bound as a key list's, `page::MAX_ITEMS_READ`.
pub async fn list_events<S: AuditReader>(
    store: &S,
    org: &OrgId,
    request: &EventListRequest,
    cursors: &EventCursors,
    now: DateTime<Utc>,
) -> Result<EventPage, StoreError> {
    let ascending = (request.order == Order::Asc) == (request.direction == Direction::Forward);
    let mut range = request.filters.range(now);
    if let Some(p) = request.from {
        range = past(range, p, ascending);
    }
    let action = request.filters.action;
    let want = request.limit + 1;
    let mut matches: Vec<Event> = Vec::new();
    let mut read = 0;
    let mut last_read = None;
    let mut at_end = false;
    while !range.is_empty() && matches.len() < want && (action.is_none() || read < READ_BUDGET) {
        let chunk = match action {
            None => want - matches.len(),
            Some(_) => want.max(MIN_CHUNK).min(READ_BUDGET - read),
        };
        let run = store
            .read_events(org, request.filters.key, range, ascending, chunk)
            .await?;
        at_end = run.len() < chunk;
        read += run.len();
        for event in run {
            last_read = Some(event.id);
            range = past(range, event.id, ascending);
            if action.is_none_or(|a| a == event.action) {
                matches.push(event);
                if matches.len() == want {
                    break;
                }
            }
        }
        if at_end {
            break;
        }
    }
    if range.is_empty() {
        at_end = true;
    }
    let full = matches.len() > request.limit;
    matches.truncate(request.limit);
    let budget_exhausted = !full && !at_end;
    let has_more = full || budget_exhausted;
    let position = if full {
        matches.last().map(|e| e.id)
    } else {
        last_read
    };
    let next_cursor = match position {
        Some(position) if has_more => Some(cursors.seal(
            org,
            &CursorState {
                order: request.order,
                direction: request.direction,
                position,
                filters: request.filters.digest(),
            },
        )),
        _ => None,
    };
    if request.direction == Direction::Backward {
        matches.reverse();
    }
    Ok(EventPage {
        events: matches,
        has_more,
        next_cursor,
        budget_exhausted: action.map(|_| budget_exhausted),
    })
}

/// What is left of `range` strictly past `id` in the reading direction.
fn past(range: EventRange, id: EventId, ascending: bool) -> EventRange {
    const EMPTY: EventRange = EventRange {
        first: EventId::MAX,
        last: EventId::MIN,
    };
    match (ascending, id.next(), id.prev()) {
        (true, Some(next), _) => EventRange {
            first: range.first.max(next),
            ..range
        },
        (false, _, Some(prev)) => EventRange {
            last: range.last.min(prev),
            ..range
        },
        _ => EMPTY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> EventCursors {
        EventCursors::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn org() -> OrgId {
        "a".parse().unwrap()
    }

    const ID: &str = "0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11";

    #[test]
    fn each_bad_parameter_is_named_with_its_reason() {
        type Case<'a> = (RawEventParams<'a>, &'a str, &'a str);
        let p = RawEventParams::default;
        let cases: Vec<Case> = vec![
            (
                RawEventParams {
                    limit: Some("0"),
                    ..p()
                },
                "limit",
                "from 1 to 1000",
            ),
            (
                RawEventParams {
                    order: Some("up"),
                    ..p()
                },
                "order",
                "\"asc\"",
            ),
            (
                RawEventParams {
                    after: Some("x"),
                    ..p()
                },
                "after",
                "UUID",
            ),
            (
                RawEventParams {
                    after: Some(ID),
                    before: Some(ID),
                    ..p()
                },
                "before",
                "\"after\"",
            ),
            (
                RawEventParams {
                    action: Some("key.read"),
                    ..p()
                },
                "action",
                "key.rolled",
            ),
            (
                RawEventParams {
                    key_id: Some("1"),
                    ..p()
                },
                "key_id",
                "UUID",
            ),
            (
                RawEventParams {
                    since: Some("yesterday"),
                    ..p()
                },
                "since",
                "RFC 3339",
            ),
            (
                RawEventParams {
                    since: Some("2026-01-02T00:00:00Z"),
                    until: Some("2026-01-01T00:00:00Z"),
                    ..p()
                },
                "until",
                "later",
            ),
            (
                RawEventParams {
                    cursor: Some("abc"),
                    ..p()
                },
                "cursor",
                "not a cursor",
            ),
        ];
        for (raw, param, reason) in cases {
            let err = EventListRequest::parse(raw, &org(), None, &keys()).unwrap_err();
            assert_eq!(err.param, param, "{raw:?}");
            assert!(err.reason.contains(reason), "{raw:?}: {}", err.reason);
        }
        let path: KeyId = ID.parse().unwrap();
        let other = "0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e12";
        let err = EventListRequest::parse(
            RawEventParams {
                key_id: Some(other),
                ..p()
            },
            &org(),
            Some(path),
            &keys(),
        )
        .unwrap_err();
        assert_eq!(err.param, "key_id");
    }

    #[test]
    fn defaults_are_50_newest_first() {
        let r = EventListRequest::parse(RawEventParams::default(), &org(), None, &keys()).unwrap();
        assert_eq!(
            (r.limit, r.order, r.direction, r.from),
            (50, Order::Desc, Direction::Forward, None)
        );
    }
}
