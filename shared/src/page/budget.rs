//! What one list request may read, whatever its parameters: at most [`MAX_ITEMS_READ`]
//! key items, in at most [`MAX_QUERIES`] Queries, plus one GetItem of the key count for a
//! numbered page.
//!
//! A key item without `meta` is under 1.1 KB (see `store::MAX_NAME_BYTES`), so
//! [`MAX_ITEMS_READ`] of them are at most about 1 MB: a plain or numbered page is one Query,
//! and a request reads at most about 130 read units (eventually consistent: 0.5 per 4 KB),
//! the cost of one full page of the largest such keys. A key's `meta` adds up to 4 KiB
//! (`crate::meta`): a page of keys with large metadata costs up to about five times that,
//! in as many Queries (the store follows `LastEvaluatedKey`); the items read stay bounded. DynamoDB charges a Query for every item it reads, whatever
//! a projection returns, so skipping keys costs as much as returning them: page numbers
//! are bounded instead ([`MAX_PAGE_END`]).

/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// The most key items one request reads: a full page and the one that tells `has_more`.
pub const MAX_ITEMS_READ: usize = MAX_LIMIT + 1;
/// The last key a numbered page may reach: `page * limit` at most this, so that a numbered
/// page, which reads every key before it, reads at most [`MAX_ITEMS_READ`] items. Walk
/// further with cursors, which cost the same at any depth.
pub const MAX_PAGE_END: usize = MAX_LIMIT;
/// The least a filtered page reads per Query, so that sparse matches take few round trips.
pub const MIN_CHUNK: usize = 256;
/// The most Queries one request makes: a filtered page reads its [`MAX_ITEMS_READ`] items in
/// runs of at least [`MIN_CHUNK`].
pub const MAX_QUERIES: usize = MAX_ITEMS_READ.div_ceil(MIN_CHUNK);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use uuid::Uuid;

    use super::super::cursor::tests::{keys, org};
    use super::super::read::tests::seed;
    use super::super::{ListRequest, RawListParams, list_keys};
    use super::*;
    use crate::key::{ApiKey, KeyId, OrgId};
    use crate::page::filter::RawFilters;
    use crate::store::memory::MemoryStore;
    use crate::store::{KeyReader, Position, StoreError};

    /// A store that counts what a request reads: each run of keys is one DynamoDB Query (see
    /// `store::dynamo::read`), the key items those runs return, and the key count's GetItem.
    #[derive(Default)]
    struct Metered {
        store: MemoryStore,
        queries: AtomicUsize,
        items: AtomicUsize,
        counts: AtomicUsize,
    }

    /// What one request read.
    #[derive(Debug, PartialEq, Eq)]
    struct Reads {
        queries: usize,
        items: usize,
        counts: usize,
    }

    impl Metered {
        /// What was read since the last take.
        fn take(&self) -> Reads {
            Reads {
                queries: self.queries.swap(0, Ordering::SeqCst),
                items: self.items.swap(0, Ordering::SeqCst),
                counts: self.counts.swap(0, Ordering::SeqCst),
            }
        }

        fn run(&self, run: Result<Vec<ApiKey>, StoreError>) -> Result<Vec<ApiKey>, StoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            if let Ok(keys) = &run {
                self.items.fetch_add(keys.len(), Ordering::SeqCst);
            }
            run
        }
    }

    impl KeyReader for Metered {
        async fn get_key(&self, org: &OrgId, id: KeyId) -> Result<Option<ApiKey>, StoreError> {
            self.store.get_key(org, id).await
        }

        async fn read_run(
            &self,
            org: &OrgId,
            from: Option<Position>,
            ascending: bool,
            max: usize,
        ) -> Result<Vec<ApiKey>, StoreError> {
            self.run(self.store.read_run(org, from, ascending, max).await)
        }

        async fn read_run_in(
            &self,
            org: &OrgId,
            index: &crate::store::KeyIndex,
            from: Option<Position>,
            ascending: bool,
            max: usize,
        ) -> Result<Vec<ApiKey>, StoreError> {
            let run = self
                .store
                .read_run_in(org, index, from, ascending, max)
                .await;
            self.run(run)
        }

        async fn key_count(&self, org: &OrgId) -> Result<u64, StoreError> {
            self.counts.fetch_add(1, Ordering::SeqCst);
            self.store.key_count(org).await
        }

        async fn unprojected(
            &self,
            org: &OrgId,
            ids: &[KeyId],
        ) -> Result<std::collections::HashMap<KeyId, crate::store::Unprojected>, StoreError>
        {
            self.store.unprojected(org, ids).await
        }
    }

    #[tokio::test]
    async fn no_list_request_makes_more_than_four_queries_whatever_its_parameters() {
        let store = Metered::default();
        let o = org("a");
        // Two budgets' worth of keys, none of them matching the name filter below: a filtered
        // page reads until its budget is spent. Every key has the nil creator.
        seed(&store.store, &o, 2 * MAX_ITEMS_READ, |i| format!("key {i}")).await;
        store.take();
        let nil = Uuid::nil().to_string();
        let mut most = 0;
        for limit in [1, 5, MIN_CHUNK - 1, MIN_CHUNK, 500, MAX_LIMIT] {
            let (limit, page) = (limit.to_string(), (MAX_PAGE_END / limit).to_string());
            let filters = [
                RawFilters::default(),
                RawFilters {
                    name: Some("no such name"),
                    ..Default::default()
                },
                RawFilters {
                    creator_id: Some(&nil),
                    name: Some("no such name"),
                    ..Default::default()
                },
            ];
            for (i, filters) in filters.into_iter().enumerate() {
                // The deepest numbered page, where there are no filters.
                let page = (i == 0).then_some(page.as_str());
                for page in [None, page] {
                    let params = RawListParams {
                        limit: Some(&limit),
                        page,
                        status: filters.status,
                        creator_id: filters.creator_id,
                        restricted: filters.restricted,
                        permission: filters.permission,
                        name: filters.name,
                        ..Default::default()
                    };
                    let request = ListRequest::parse(params, &o, &keys()).unwrap();
                    list_keys(&store, &o, &request, &keys()).await.unwrap();
                    let reads = store.take();
                    let what = format!("limit {limit}, page {page:?}, {filters:?}: {reads:?}");
                    assert!(reads.queries >= 1, "{what}");
                    assert!(reads.queries <= MAX_QUERIES, "{what}");
                    assert!(reads.items <= MAX_ITEMS_READ, "{what}");
                    assert_eq!(reads.counts, usize::from(page.is_some()), "{what}");
                    most = most.max(reads.queries);
                }
            }
        }
        // The bound is met, not only kept: a filtered page of one key spends all four.
        assert_eq!((most, MAX_QUERIES), (4, 4));
    }
}
