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
//! events older than [`SETTLE`], all of which have committed: the way to tail (docs/api.md,
//! "Tailing the audit trail"). The organization's events are read consistently; one key's
//! come from an index, which lags the table by its propagation delay (usually well under a
//! second), which `settled` covers in practice but DynamoDB does not bound.

use std::time::Duration;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::event_cursor::{EventCursors, EventPosition};
use crate::audit::{Action, Event, EventId};
use crate::error::ParamError;
use crate::key::{KeyId, OrgId};
use crate::page::{
    CursorState, Direction, Order, Runs, Shared, check_one_start, parse_flag, read_runs,
};
use crate::store::{AuditReader, EventRange, StoreError};

/// How long after its id's time an event may still commit: the longest a request runs
/// (revoke-leaked's timeout, `deadline::REPORT_TIMEOUT`; its events all carry the report's
/// start) and 5 s for a transaction in flight when its function stopped and for clocks that
/// disagree. Events older than this have all committed (see `settled`).
pub const SETTLE: Duration = crate::deadline::REPORT_TIMEOUT.saturating_add(Duration::from_secs(5));

/// The event lists' query parameters as they arrived, each given at most once, before
/// validation: deserialized from the query string (by the edge), which may hold no other.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventParams<'a> {
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
    pub action: Option<&'a str>,
    #[serde(borrow)]
    pub key_id: Option<&'a str>,
    #[serde(borrow)]
    pub since: Option<&'a str>,
    #[serde(borrow)]
    pub until: Option<&'a str>,
    #[serde(borrow)]
    pub settled: Option<&'a str>,
    /// How the answer is laid out, which the edge reads for every endpoint; named here so
    /// that it is a known parameter of the lists.
    #[serde(borrow)]
    pub pretty: Option<&'a str>,
}

impl RawEventParams<'_> {
    /// Every parameter of the event lists, in the order of the fields.
    pub const PARAMETERS: &'static [&'static str] = &[
        "limit", "order", "after", "before", "cursor", "action", "key_id", "since", "until",
        "settled", "pretty",
    ];
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

impl EventFilters {
    /// The filters of a request: `action`, the key (`path_key` or `key_id`), `settled`,
    /// `since` and `until`, validated in that order.
    fn parse(raw: &RawEventParams<'_>, path_key: Option<KeyId>) -> Result<Self, ParamError> {
        let action = parse_action(raw.action)?;
        let key = parse_key(path_key, raw.key_id)?;
        let settled = raw.settled.map(|s| parse_flag("settled", s)).transpose()?;
        let settled = settled.unwrap_or(false);
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
    /// organization it must have been issued to, and the order and filters it was made with.
    pub fn parse(
        raw: RawEventParams<'_>,
        org: &OrgId,
        path_key: Option<KeyId>,
        cursors: &EventCursors,
    ) -> Result<Self, ParamError> {
        let shared = Shared::<EventId>::parse(raw.limit, raw.order, raw.after, raw.before)?;
        let filters = EventFilters::parse(&raw, path_key)?;
        check_one_start(&[
            ("cursor", raw.cursor),
            ("after", raw.after),
            ("before", raw.before),
        ])?;
        let resumed = match raw.cursor {
            Some(token) => {
                let state = cursors.resume(org, token, shared.order, &filters.digest())?;
                Some((state.order, state.direction, state.position.id))
            }
            None => None,
        };
        let start = shared.start(resumed);
        Ok(EventListRequest {
            limit: shared.limit,
            order: start.order,
            direction: start.direction,
            from: start.from,
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

/// Reads one page at `now` with the key lists' read loop (`page::read_runs`): `limit + 1`
/// events in one Query when no `action` is asked for, else runs of events until `limit + 1`
/// match, the range ends, or `page::MAX_ITEMS_READ` events have been read.
pub async fn list_events<S: AuditReader>(
    store: &S,
    org: &OrgId,
    request: &EventListRequest,
    cursors: &EventCursors,
    now: DateTime<Utc>,
) -> Result<EventPage, StoreError> {
    let ascending = (request.order == Order::Asc) == (request.direction == Direction::Forward);
    let runs = EventRuns {
        store,
        org,
        key: request.filters.key,
        range: request.filters.range(now),
        ascending,
        action: request.filters.action,
    };
    let filtered = runs.action.is_some();
    let read = read_runs(&runs, request.from, request.limit, filtered).await?;
    let budget_exhausted = filtered.then_some(read.budget_exhausted);
    let has_more = read.has_more;
    let (events, next_cursor) = read.finish(request.direction, |id| {
        let state = CursorState {
            order: request.order,
            direction: request.direction,
            position: EventPosition { id },
            filters: Some(request.filters.digest()),
        };
        cursors.seal(org, &state)
    });
    Ok(EventPage {
        events,
        has_more,
        next_cursor,
        budget_exhausted,
    })
}

/// The organization's events, or one key's, within the range the time filters allow, in
/// the page's reading direction, kept if they have the `action` asked for.
struct EventRuns<'a, S> {
    store: &'a S,
    org: &'a OrgId,
    key: Option<KeyId>,
    range: EventRange,
    ascending: bool,
    action: Option<Action>,
}

impl<S> EventRuns<'_, S> {
    /// What is left of the range past `after`.
    fn rest(&self, after: Option<EventId>) -> EventRange {
        after.map_or(self.range, |id| past(self.range, id, self.ascending))
    }
}

impl<S: AuditReader> Runs for EventRuns<'_, S> {
    type Item = Event;
    type Id = EventId;

    fn id(event: &Event) -> EventId {
        event.id
    }

    fn run(
        &self,
        after: Option<EventId>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send {
        let range = self.rest(after);
        self.store
            .read_events(self.org, self.key, range, self.ascending, max)
    }

    fn ended(&self, after: Option<EventId>) -> bool {
        self.rest(after).is_empty()
    }

    fn keeps(&self, event: &Event) -> bool {
        self.action.is_none_or(|a| a == event.action)
    }
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
