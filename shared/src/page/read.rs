//! Reading one page within the request's budget: a plain page (one run from the
//! position), a numbered page (the keys before it too, and the key count), or a filtered
//! page (runs from the position until the page fills, the keys end, or the budget is spent).
//! Each ends the same way: a cursor sealed where reading stopped, and a backward page
//! turned round into the requested order.

use super::budget::{MAX_ITEMS_READ, MIN_CHUNK};
use super::cursor::{CursorKeys, CursorState};
use super::params::ListRequest;
use super::{Direction, Order};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::store::{KeyReader, Position, StoreError};

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

/// A page as read, in reading order, before its cursor is sealed.
struct Read {
    keys: Vec<ApiKey>,
    has_more: bool,
    /// Where the next page starts: the last key the page holds, or, for a filtered page
    /// cut short by the budget, the last key read.
    resume_at: Option<KeyId>,
    numbers: Option<PageNumbers>,
    budget_exhausted: Option<bool>,
}

/// Reads one page for `org`. It reads at most [`MAX_ITEMS_READ`] keys (see `budget`).
pub async fn list_keys<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    cursors: &CursorKeys,
) -> Result<Page, StoreError> {
    let read = if !request.filters.is_empty() {
        filtered(store, org, request).await?
    } else if let Some(page) = request.page {
        numbered(store, org, request, page).await?
    } else {
        plain(store, org, request).await?
    };
    Ok(finish(read, org, request, cursors))
}

/// Whether the page reads the table in ascending id order.
fn ascending(request: &ListRequest) -> bool {
    (request.order == Order::Asc) == (request.direction == Direction::Forward)
}

/// Keeps the first `limit` of `keys` (read `limit + 1` at most), and says whether there were
/// more.
fn cut(mut keys: Vec<ApiKey>, limit: usize) -> (Vec<ApiKey>, bool) {
    let has_more = keys.len() > limit;
    keys.truncate(limit);
    (keys, has_more)
}

/// One run of `limit + 1` keys from the position.
async fn plain<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
) -> Result<Read, StoreError> {
    let run = store
        .read_run(org, request.from, ascending(request), request.limit + 1)
        .await?;
    let (keys, has_more) = cut(run, request.limit);
    Ok(Read {
        resume_at: keys.last().map(|k| k.id),
        keys,
        has_more,
        numbers: None,
        budget_exhausted: None,
    })
}

/// DynamoDB cannot skip: page `n` reads the `(n - 1) * limit` keys before it, in the same
/// run, and the organization's key count at the same time.
async fn numbered<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    page: usize,
) -> Result<Read, StoreError> {
    let offset = (page - 1) * request.limit;
    let (run, count) = tokio::join!(
        store.read_run(org, None, ascending(request), offset + request.limit + 1),
        store.key_count(org),
    );
    let mut run = run?;
    run.drain(..offset.min(run.len()));
    let (keys, has_more) = cut(run, request.limit);
    Ok(Read {
        resume_at: keys.last().map(|k| k.id),
        keys,
        has_more,
        numbers: Some(PageNumbers {
            current_page: page,
            total_pages: count?.div_ceil(request.limit as u64),
        }),
        budget_exhausted: None,
    })
}

/// Runs of at least [`MIN_CHUNK`] keys from the position, keeping those that match, until
/// there are `limit + 1` matches (so `has_more` is exact), the keys end, or
/// [`MAX_ITEMS_READ`] keys have been read. In the last case the next page resumes after the
/// last key read, which is where reading stopped.
async fn filtered<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
) -> Result<Read, StoreError> {
    let now = chrono::Utc::now();
    let mut matches: Vec<ApiKey> = Vec::new();
    let mut read = 0;
    let mut last_read: Option<Position> = request.from;
    let mut at_end = false;
    while matches.len() <= request.limit && read < MAX_ITEMS_READ && !at_end {
        let chunk = (request.limit + 1)
            .max(MIN_CHUNK)
            .min(MAX_ITEMS_READ - read);
        // A creator's keys come from the index by creator: only they are read.
        let run = match request.filters.creator_id {
            Some(creator) => {
                store
                    .read_run_by_creator(org, creator, last_read, ascending(request), chunk)
                    .await?
            }
            None => {
                store
                    .read_run(org, last_read, ascending(request), chunk)
                    .await?
            }
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
    }
    let (mut keys, full) = cut(matches, request.limit);
    if request.filters.creator_id.is_some() {
        with_last_uses(store, org, &mut keys).await?;
    }
    let budget_exhausted = !full && !at_end;
    Ok(Read {
        resume_at: if full {
            keys.last().map(|k| k.id)
        } else {
            last_read
        },
        keys,
        has_more: full || budget_exhausted,
        numbers: None,
        budget_exhausted: Some(budget_exhausted),
    })
}

/// Fills in the last use of keys read from the index by creator, which does not carry it
/// (see `KeyReader::read_run_by_creator`): one read for the page's keys only.
async fn with_last_uses<S: KeyReader>(
    store: &S,
    org: &OrgId,
    keys: &mut [ApiKey],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
    let uses = store.last_uses(org, &ids).await?;
    for key in keys {
        key.last_used = uses.get(&key.id).copied();
    }
    Ok(())
}

/// Seals the cursor where the page stopped, and turns a backward page round so that it is
/// in the requested order.
fn finish(read: Read, org: &OrgId, request: &ListRequest, cursors: &CursorKeys) -> Page {
    let next_cursor = match read.resume_at {
        Some(position) if read.has_more => Some(cursors.seal(
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
    let mut keys = read.keys;
    if request.direction == Direction::Backward {
        keys.reverse();
    }
    Page {
        keys,
        has_more: read.has_more,
        next_cursor,
        numbers: read.numbers,
        budget_exhausted: read.budget_exhausted,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::cursor::tests::{keys, org};
    use super::super::params::RawListParams;
    use super::*;
    use crate::filter::{Filters, RawFilters};
    use crate::store::memory::MemoryStore;
    use crate::write::{NewKey, create_key};
    use chrono::{TimeZone, Utc};

    /// `n` keys in `org`, one millisecond apart, named by `name(i)`; their ids in order.
    pub async fn seed(
        store: &MemoryStore,
        o: &OrgId,
        n: usize,
        name: impl Fn(usize) -> String,
    ) -> Vec<KeyId> {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut ids = Vec::new();
        for i in 0..n {
            let new = NewKey {
                org: o.clone(),
                name: name(i),
                creator_id: uuid::Uuid::nil(),
                access: crate::key::Access::Unrestricted,
                expires: None,
                id: Some(KeyId::new_at(
                    start + chrono::Duration::milliseconds(i as i64),
                )),
            };
            ids.push(create_key(store, new).await.unwrap().0.id);
        }
        ids
    }

    #[tokio::test]
    async fn pages_read_one_extra_key_so_has_more_is_exact_in_both_directions() {
        let store = MemoryStore::default();
        let o = org("a");
        let ids = seed(&store, &o, 5, |i| format!("k{i}")).await;
        let page = |limit, order, direction, from| ListRequest {
            limit,
            order,
            direction,
            from,
            page: None,
            filters: Filters::default(),
        };
        let got = |p: &Page| p.keys.iter().map(|k| k.id).collect::<Vec<_>>();

        let request = page(5, Order::Asc, Direction::Forward, None);
        let p = list_keys(&store, &o, &request, &keys()).await.unwrap();
        assert_eq!(
            (got(&p), p.has_more, p.next_cursor.is_none()),
            (ids.clone(), false, true)
        );

        let request = page(2, Order::Asc, Direction::Backward, Some(ids[3]));
        let p = list_keys(&store, &o, &request, &keys()).await.unwrap();
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
        let store = MemoryStore::default();
        let o = org("a");
        // Matches at positions 1, 2 and MAX_ITEMS_READ + 5 in ascending order.
        let matching = [1, 2, MAX_ITEMS_READ + 5];
        let name = |i| {
            let kind = if matching.contains(&i) {
                "match"
            } else {
                "other"
            };
            format!("{kind} {i}")
        };
        seed(&store, &o, MAX_ITEMS_READ + 10, name).await;
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
        assert_eq!(names(&second), [format!("match {}", MAX_ITEMS_READ + 5)]);
        assert_eq!(second.budget_exhausted, Some(false));
        assert!(!second.has_more && second.next_cursor.is_none());
    }
}
