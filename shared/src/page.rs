//! Listing an organization's keys a page at a time: the parameters, the cursor, the page.
//!
//! Keys are ordered by creation time, ties broken by id; with UUIDv7 ids that is id order,
//! which is the table's sort key. A page reads `limit + 1` keys in one Query so that
//! `has_more` is exact. `after`/`before` name a position (a key id, which need not exist
//! any more); a cursor is the page's last evaluated key, signed for the caller's
//! organization so it cannot be forged, altered, or replayed by another tenant.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ParamError;
use crate::filter::{Filters, MIN_CHUNK, READ_BUDGET, RawFilters};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::{KeyReader, Position, StoreError};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 1000;
/// The most keys a `page` may skip: `(page - 1) * limit` at most this. A page is read from
/// the start of the order, so deeper pages cost more; walk with cursors beyond.
pub const MAX_PAGE_OFFSET: usize = 10_000;

/// The requested order of a listing, by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    #[serde(rename = "a")]
    Asc,
    #[serde(rename = "d")]
    Desc,
}

/// Which way a page reads from its position: forward in the requested order (`after`,
/// or no position), or backward (`before`). Data is always returned in the requested order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "f")]
    Forward,
    #[serde(rename = "b")]
    Backward,
}

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
        let limit = match raw.limit {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ParamError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}, got {s:?}"),
                    ));
                }
            },
        };
        let order = raw
            .order
            .map(|s| match s {
                "asc" => Ok(Order::Asc),
                "desc" => Ok(Order::Desc),
                _ => Err(ParamError::new(
                    "order",
                    format!("must be \"asc\" or \"desc\", got {s:?}"),
                )),
            })
            .transpose()?;
        let position = |name: &'static str, value: Option<&str>| {
            value
                .map(|s| {
                    s.parse::<KeyId>()
                        .map_err(|e| ParamError::new(name, e.to_string()))
                })
                .transpose()
        };
        let after = position("after", raw.after)?;
        let before = position("before", raw.before)?;
        let filters = Filters::parse(raw.filters)?;

        if let Some(s) = raw.page {
            let max_page = MAX_PAGE_OFFSET / limit + 1;
            let page = match s.parse::<usize>() {
                Ok(n) if (1..=max_page).contains(&n) => n,
                _ => {
                    return Err(ParamError::new(
                        "page",
                        format!(
                            "must be an integer from 1 to {max_page} (at most {MAX_PAGE_OFFSET} keys before the page at limit {limit}; walk further with cursors), got {s:?}"
                        ),
                    ));
                }
            };
            let other = [
                ("after", raw.after.is_some()),
                ("before", raw.before.is_some()),
                ("cursor", raw.cursor.is_some()),
            ];
            if let Some((other, _)) = other.iter().find(|(_, given)| *given) {
                return Err(ParamError::new(
                    "page",
                    format!("cannot be combined with {other:?}: a page number is a position"),
                ));
            }
            if !filters.is_empty() {
                return Err(ParamError::new(
                    "page",
                    "cannot be combined with filters: page numbers count all of the organization's keys; page filtered lists with cursors",
                ));
            }
            return Ok(ListRequest {
                limit,
                order: order.unwrap_or(Order::Desc),
                direction: Direction::Forward,
                from: None,
                page: Some(page),
                filters,
            });
        }

        if let Some(token) = raw.cursor {
            if raw.after.is_some() || raw.before.is_some() {
                let other = if raw.after.is_some() {
                    "after"
                } else {
                    "before"
                };
                return Err(ParamError::new(
                    "cursor",
                    format!(
                        "cannot be combined with {other:?}: the cursor already holds a position"
                    ),
                ));
            }
            let state = cursors.open(org, token)?;
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
            return Ok(ListRequest {
                limit,
                order: state.order,
                direction: state.direction,
                from: Some(state.position),
                page: None,
                filters,
            });
        }

        let order = order.unwrap_or(Order::Desc);
        match (after, before) {
            (Some(_), Some(_)) => Err(ParamError::new(
                "before",
                "cannot be combined with \"after\": choose one direction",
            )),
            (Some(id), None) => Ok(ListRequest {
                limit,
                order,
                direction: Direction::Forward,
                from: Some(id),
                page: None,
                filters,
            }),
            (None, Some(id)) => Ok(ListRequest {
                limit,
                order,
                direction: Direction::Backward,
                from: Some(id),
                page: None,
                filters,
            }),
            (None, None) => Ok(ListRequest {
                limit,
                order,
                direction: Direction::Forward,
                from: None,
                page: None,
                filters,
            }),
        }
    }
}

/// One page of keys, in the requested order.
#[derive(Clone, Debug)]
pub struct Page {
    pub keys: Vec<ApiKey>,
    /// Whether more keys lie beyond this page in the direction it was read.
    pub has_more: bool,
    /// The opaque cursor for the next page in that direction; `None` when `has_more` is false.
    pub next_cursor: Option<String>,
    /// For a numbered page: its number and the number of pages, `ceil(keys / limit)`.
    pub numbers: Option<PageNumbers>,
    /// For a filtered list: whether the read budget ran out before the page was full, so
    /// that more matches may lie beyond a short (even empty) page.
    pub budget_exhausted: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageNumbers {
    pub current_page: usize,
    pub total_pages: u64,
}

/// Reads one page: one Query of `limit + 1` keys on the organization's partition. A
/// numbered page reads the `(page - 1) * limit` keys before it too (DynamoDB cannot skip),
/// and the organization's key count, at the same time.
pub async fn list_keys<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    cursors: &CursorKeys,
) -> Result<Page, StoreError> {
    let ascending = (request.order == Order::Asc) == (request.direction == Direction::Forward);
    if !request.filters.is_empty() {
        return filtered_page(store, org, request, cursors, ascending).await;
    }
    let (mut keys, numbers) = match request.page {
        None => (
            store
                .read_run(org, request.from, ascending, request.limit + 1)
                .await?,
            None,
        ),
        Some(page) => {
            let offset = (page - 1) * request.limit;
            let (keys, count) = tokio::join!(
                store.read_run(org, None, ascending, offset + request.limit + 1),
                store.key_count(org),
            );
            let mut keys = keys?;
            keys.drain(..offset.min(keys.len()));
            let numbers = PageNumbers {
                current_page: page,
                total_pages: count?.div_ceil(request.limit as u64),
            };
            (keys, Some(numbers))
        }
    };
    let has_more = keys.len() > request.limit;
    keys.truncate(request.limit);
    // The cursor holds the last key read, which is DynamoDB's LastEvaluatedKey for a
    // Query of `limit` items; the organization half of that key comes from the caller.
    let next_cursor = match keys.last() {
        Some(last) if has_more => Some(cursors.seal(
            org,
            &CursorState {
                order: request.order,
                direction: request.direction,
                position: last.id,
                filters: None,
            },
        )),
        _ => None,
    };
    if request.direction == Direction::Backward {
        keys.reverse();
    }
    Ok(Page {
        keys,
        has_more,
        next_cursor,
        numbers,
        budget_exhausted: None,
    })
}

/// A filtered page: reads runs of keys from the position, keeping those that match, until
/// it has `limit + 1` matches (so `has_more` is exact), reaches the end, or has read
/// [`READ_BUDGET`] keys. In the last case the cursor holds the last key read, which is
/// where DynamoDB's reading stopped, so the next page continues from there.
async fn filtered_page<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    cursors: &CursorKeys,
    ascending: bool,
) -> Result<Page, StoreError> {
    let now = chrono::Utc::now();
    let mut matches: Vec<ApiKey> = Vec::new();
    let mut read = 0;
    let mut last_read = request.from;
    let mut at_end = false;
    while matches.len() <= request.limit && read < READ_BUDGET {
        let chunk = (request.limit + 1).max(MIN_CHUNK).min(READ_BUDGET - read);
        // A creator's keys come from the index by creator: only they are read.
        let run = match request.filters.creator_id {
            Some(creator) => {
                store
                    .read_run_by_creator(org, creator, last_read, ascending, chunk)
                    .await?
            }
            None => store.read_run(org, last_read, ascending, chunk).await?,
        };
        at_end = run.len() < chunk;
        read += run.len();
        for key in run {
            last_read = Some(key.id);
            if request.filters.matches(&key, now) {
                matches.push(key);
                if matches.len() > request.limit {
                    break;
                }
            }
        }
        if at_end {
            break;
        }
    }
    let full = matches.len() > request.limit;
    matches.truncate(request.limit);
    let budget_exhausted = !full && !at_end;
    let has_more = full || budget_exhausted;
    let position = if full {
        matches.last().map(|k| k.id)
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
    Ok(Page {
        keys: matches,
        has_more,
        next_cursor,
        numbers: None,
        budget_exhausted: Some(budget_exhausted),
    })
}

/// What a cursor carries. Short field names keep the token short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CursorState {
    #[serde(rename = "o")]
    order: Order,
    #[serde(rename = "d")]
    direction: Direction,
    #[serde(rename = "k")]
    position: KeyId,
    /// The digest of the filters the cursor was made under; absent for none.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    filters: Option<String>,
}

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 32;
const MAC_CONTEXT: &[u8] = b"apikeys/cursor/v1\0";

/// The keys that sign and check cursors. The first signs; all of them verify, so a new
/// key can be put first while cursors signed with the old one keep working.
#[derive(Clone)]
pub struct CursorKeys {
    keys: Vec<Vec<u8>>,
}

/// Why the configured cursor secret cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("CURSOR_SECRET must hold one or more comma-separated secrets of at least 32 characters")]
pub struct WeakCursorSecret;

impl CursorKeys {
    pub const MIN_SECRET_LEN: usize = 32;

    /// Parses `CURSOR_SECRET`: comma-separated secrets, the signing one first.
    pub fn parse(config: &str) -> Result<Self, WeakCursorSecret> {
        let keys: Vec<Vec<u8>> = config
            .split(',')
            .map(|s| s.trim().as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() < Self::MIN_SECRET_LEN) {
            return Err(WeakCursorSecret);
        }
        Ok(CursorKeys { keys })
    }

    fn mac(key: &[u8], org: &OrgId, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        mac.update(MAC_CONTEXT);
        mac.update(org.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(payload);
        mac
    }

    fn seal(&self, org: &OrgId, state: &CursorState) -> String {
        let mut bytes = serde_json::to_vec(state).expect("a cursor state always serializes");
        let tag = Self::mac(&self.keys[0], org, &bytes)
            .finalize()
            .into_bytes();
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn open(&self, org: &OrgId, token: &str) -> Result<CursorState, ParamError> {
        let invalid = || {
            ParamError::new(
                "cursor",
                "is not a cursor this service issued for this organization; pass next_cursor unchanged",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if bytes.len() <= TAG_LEN {
            return Err(invalid());
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let authentic = self
            .keys
            .iter()
            .any(|key| Self::mac(key, org, payload).verify_slice(tag).is_ok());
        if !authentic {
            return Err(invalid());
        }
        serde_json::from_slice(payload).map_err(|_| invalid())
    }
}

impl std::fmt::Debug for CursorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CursorKeys({} keys)", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> CursorKeys {
        CursorKeys::parse("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn org(s: &str) -> OrgId {
        s.parse().unwrap()
    }

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
                _ => unreachable!(),
            }
        }
        r
    }

    const ID: &str = "0190f2d4-8c6e-7b1a-9a37-5f0c2b7d4e11";

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
            (&[("page", "0")], "page", "from 1 to 201"),
            (&[("page", "202")], "page", "from 1 to 201"),
            (&[("page", "12"), ("limit", "1000")], "page", "from 1 to 11"),
            (&[("page", "x")], "page", "integer"),
            (&[("page", "1"), ("after", ID)], "page", "\"after\""),
            (&[("page", "1"), ("before", ID)], "page", "\"before\""),
            (&[("page", "1"), ("cursor", "abc")], "page", "\"cursor\""),
            (&[("cursor", ""), ("after", ID)], "cursor", "\"after\""),
        ];
        for (pairs, param, reason) in cases {
            let err = ListRequest::parse(raw(pairs), &org("a"), &keys()).unwrap_err();
            assert_eq!(err.param, *param, "{pairs:?}");
            assert!(err.reason.contains(reason), "{pairs:?}: {}", err.reason);
        }
    }

    #[test]
    fn limit_bounds_are_inclusive() {
        for (s, n) in [("1", 1), ("1000", 1000)] {
            let r = ListRequest::parse(raw(&[("limit", s)]), &org("a"), &keys()).unwrap();
            assert_eq!(r.limit, n);
        }
    }

    fn sealed(org_id: &str, order: Order) -> String {
        keys().seal(
            &org(org_id),
            &CursorState {
                order,
                direction: Direction::Backward,
                position: ID.parse().unwrap(),
                filters: None,
            },
        )
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
    fn a_cursor_is_refused_under_another_order_or_organization() {
        let token = sealed("a", Order::Asc);
        let other_order = ListRequest::parse(
            raw(&[("cursor", &token), ("order", "desc")]),
            &org("a"),
            &keys(),
        );
        assert_eq!(other_order.unwrap_err().param, "cursor");
        let other_org = ListRequest::parse(raw(&[("cursor", &token)]), &org("b"), &keys());
        assert_eq!(other_org.unwrap_err().param, "cursor");
    }

    #[test]
    fn every_bit_flip_and_truncation_of_a_cursor_is_refused() {
        let token = sealed("a", Order::Desc);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            let t = URL_SAFE_NO_PAD.encode(b);
            assert!(keys().open(&org("a"), &t).is_err(), "bit {i}");
        }
        for n in 0..token.len() {
            assert!(keys().open(&org("a"), &token[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn rotation_keeps_cursors_signed_with_the_old_secret_valid() {
        let old = sealed("a", Order::Desc);
        let rotated =
            CursorKeys::parse("ffffffffffffffffffffffffffffffff,0123456789abcdef0123456789abcdef")
                .unwrap();
        assert!(rotated.open(&org("a"), &old).is_ok());
        let retired = CursorKeys::parse("ffffffffffffffffffffffffffffffff").unwrap();
        assert!(retired.open(&org("a"), &old).is_err());
    }

    #[tokio::test]
    async fn pages_read_one_extra_key_so_has_more_is_exact_in_both_directions() {
        use crate::memory::MemoryStore;
        use crate::store::{NewKey, create_key};
        use chrono::{TimeZone, Utc};

        let store = MemoryStore::default();
        let o = org("a");
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut ids = Vec::new();
        for i in 0..5 {
            let new = NewKey {
                org: o.clone(),
                name: format!("k{i}"),
                creator_id: uuid::Uuid::nil(),
                access: crate::key::Access::Unrestricted,
                expires: None,
                id: Some(KeyId::new_at(start + chrono::Duration::seconds(i))),
            };
            ids.push(create_key(&store, new).await.unwrap().0.id);
        }
        let page = |limit, order, direction, from| ListRequest {
            limit,
            order,
            direction,
            from,
            page: None,
            filters: Filters::default(),
        };
        let got = |p: &Page| p.keys.iter().map(|k| k.id).collect::<Vec<_>>();

        let p = list_keys(
            &store,
            &o,
            &page(5, Order::Asc, Direction::Forward, None),
            &keys(),
        )
        .await
        .unwrap();
        assert_eq!(
            (got(&p), p.has_more, p.next_cursor.is_none()),
            (ids.clone(), false, true)
        );

        let p = list_keys(
            &store,
            &o,
            &page(2, Order::Asc, Direction::Backward, Some(ids[3])),
            &keys(),
        )
        .await
        .unwrap();
        assert_eq!(
            got(&p),
            ids[1..3],
            "the page just before, in the requested order"
        );
        assert!(p.has_more);
        let next = ListRequest::parse(
            RawListParams {
                cursor: p.next_cursor.as_deref(),
                ..Default::default()
            },
            &o,
            &keys(),
        )
        .unwrap();
        let p = list_keys(&store, &o, &next, &keys()).await.unwrap();
        assert_eq!((got(&p), p.has_more), (vec![ids[0]], false));
    }

    #[tokio::test]
    async fn a_filtered_page_stops_at_the_read_budget_and_resumes_where_reading_stopped() {
        use crate::filter::RawFilters;
        use crate::memory::MemoryStore;
        use crate::store::{NewKey, create_key};
        use chrono::{TimeZone, Utc};

        let store = MemoryStore::default();
        let o = org("a");
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let total = READ_BUDGET + 10;
        // Matches at positions 1, 2 and READ_BUDGET + 5 in ascending order.
        let matching = [1, 2, READ_BUDGET + 5];
        for i in 0..total {
            let name = if matching.contains(&i) {
                "match"
            } else {
                "other"
            };
            let new = NewKey {
                org: o.clone(),
                name: format!("{name} {i}"),
                creator_id: uuid::Uuid::nil(),
                access: crate::key::Access::Unrestricted,
                expires: None,
                id: Some(KeyId::new_at(
                    start + chrono::Duration::milliseconds(i as i64),
                )),
            };
            create_key(&store, new).await.unwrap();
        }
        let params = |cursor: Option<&'static str>| RawListParams {
            limit: Some("5"),
            order: Some("asc"),
            cursor,
            filters: RawFilters {
                name: Some("MATCH"),
                ..Default::default()
            },
            ..Default::default()
        };
        let request = ListRequest::parse(params(None), &o, &keys()).unwrap();
        let first = list_keys(&store, &o, &request, &keys()).await.unwrap();
        let names = |p: &Page| p.keys.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&first), ["match 1", "match 2"]);
        assert_eq!(first.budget_exhausted, Some(true));
        assert!(first.has_more);
        let cursor: &'static str = first.next_cursor.clone().unwrap().leak();
        let request = ListRequest::parse(params(Some(cursor)), &o, &keys()).unwrap();
        let second = list_keys(&store, &o, &request, &keys()).await.unwrap();
        assert_eq!(names(&second), [format!("match {}", READ_BUDGET + 5)]);
        assert_eq!(second.budget_exhausted, Some(false));
        assert!(!second.has_more && second.next_cursor.is_none());
    }

    #[test]
    fn short_cursor_secrets_are_refused() {
        assert!(CursorKeys::parse("short").is_err());
        assert!(CursorKeys::parse("0123456789abcdef0123456789abcdef,").is_err());
    }
}
