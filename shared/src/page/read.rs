//! Reading one page of keys: a plain or filtered page (the budgeted read loop of
//! [`super::runs`], over the organization's keys or one creator's), or a numbered page (the
//! keys before it too, and the key count). Each ends the same way: a cursor sealed where
//! reading stopped, and a backward page turned round into the requested order.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::cursor::{CursorKeys, CursorState, KeyPosition, Purpose};
use super::params::ListRequest;
use super::runs::{Read, Runs, cut, read_runs};
use super::{Direction, Order};
use crate::key::{ApiKey, KeyId, OrgId};
use crate::page::filter::Filters;
use crate::store::{KeyReader, StoreError};

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

/// Reads one page for `org`. It reads at most [`super::MAX_ITEMS_READ`] keys (see `budget`).
pub async fn list_keys<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    cursors: &CursorKeys,
) -> Result<Page, StoreError> {
    let (read, numbers) = match request.page {
        Some(page) if request.filters.is_empty() => {
            let (read, numbers) = numbered(store, org, request, page).await?;
            (read, Some(numbers))
        }
        _ => (filtered(store, org, request).await?, None),
    };
    let filtered = !request.filters.is_empty();
    let budget_exhausted = filtered.then_some(read.budget_exhausted);
    let has_more = read.has_more;
    let (keys, next_cursor) = read.finish(request.direction, |id| {
        let state = CursorState {
            order: request.order,
            direction: request.direction,
            position: KeyPosition { id },
            filters: request.filters.digest(),
        };
        cursors.seal_for(Purpose::KEYS, org, &state)
    });
    Ok(Page {
        keys,
        has_more,
        next_cursor,
        numbers,
        budget_exhausted,
    })
}

/// Whether the page reads the table in ascending id order.
fn ascending(request: &ListRequest) -> bool {
    (request.order == Order::Asc) == (request.direction == Direction::Forward)
}

/// The organization's keys, or one creator's (from the index by creator: only they are
/// read), in the page's reading direction, kept if they pass the filters.
struct KeyRuns<'a, S> {
    store: &'a S,
    org: &'a OrgId,
    ascending: bool,
    filters: &'a Filters,
    now: DateTime<Utc>,
}

impl<S: KeyReader> Runs for KeyRuns<'_, S> {
    type Item = ApiKey;
    type Id = KeyId;

    fn id(key: &ApiKey) -> KeyId {
        key.id
    }

    fn run(
        &self,
        after: Option<KeyId>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send {
        let (store, org, ascending) = (self.store, self.org, self.ascending);
        let index = self.filters.index();
        async move {
            match index {
                Some(i) => store.read_run_in(org, &i, after, ascending, max).await,
                None => store.read_run(org, after, ascending, max).await,
            }
        }
    }

    fn keeps(&self, key: &ApiKey) -> bool {
        self.filters.matches(key, self.now)
    }
}

/// A plain page (one run of `limit + 1` keys from the position) or a filtered one (runs
/// until the page fills, the keys end, or the budget is spent); keys read from an index
/// get their last use and owner.
async fn filtered<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
) -> Result<Read<ApiKey, KeyId>, StoreError> {
    let runs = KeyRuns {
        store,
        org,
        ascending: ascending(request),
        filters: &request.filters,
        now: Utc::now(),
    };
    let filtered = !request.filters.is_empty();
    let mut read = read_runs(&runs, request.from, request.limit, filtered).await?;
    if request.filters.index().is_some() {
        with_unprojected(store, org, &mut read.items).await?;
    }
    Ok(read)
}

/// DynamoDB cannot skip: page `n` reads the `(n - 1) * limit` keys before it, in the same
/// run, and the organization's key count at the same time.
async fn numbered<S: KeyReader>(
    store: &S,
    org: &OrgId,
    request: &ListRequest,
    page: usize,
) -> Result<(Read<ApiKey, KeyId>, PageNumbers), StoreError> {
    let offset = (page - 1) * request.limit;
    let (run, count) = tokio::join!(
        store.read_run(org, None, ascending(request), offset + request.limit + 1),
        store.key_count(org),
    );
    let mut run = run?;
    run.drain(..offset.min(run.len()));
    let numbers = PageNumbers {
        current_page: page,
        total_pages: count?.div_ceil(request.limit as u64),
    };
    Ok((cut(run, request.limit, None, true, |k| k.id), numbers))
}

/// Fills in the last use and owner of keys read from an index, which does not carry them
/// (see `KeyReader::read_run_in`): one read for the page's keys only.
async fn with_unprojected<S: KeyReader>(
    store: &S,
    org: &OrgId,
    keys: &mut [ApiKey],
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
    let mut found = store.unprojected(org, &ids).await?;
    for key in keys {
        // A key deleted since the index was read is shown as the index had it.
        if let Some(u) = found.remove(&key.id) {
            u.fill(key);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::budget::MAX_ITEMS_READ;
    use super::super::cursor::tests::{keys, org};
    use super::super::params::RawListParams;
    use super::*;
    use crate::page::filter::Filters;
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
                quota: Default::default(),
                owner_id: None,
                meta: None,
                allowed_cidrs: None,
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
            name: Some("MATCH"),
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
