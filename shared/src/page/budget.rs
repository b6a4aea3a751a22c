//! What one list request may read, whatever its parameters: at most [`MAX_ITEMS_READ`]
//! key items, in at most [`MAX_QUERIES`] Queries, plus one GetItem of the key count for a
//! numbered page.
//!
//! A key item is under 1.1 KB (see `store::MAX_NAME_BYTES`), so [`MAX_ITEMS_READ`] of them
//! are at most about 1 MB: a plain or numbered page is one Query, and a request reads at
//! most about 130 read units (eventually consistent: 0.5 per 4 KB), the cost of one full
//! page of the largest keys. DynamoDB charges a Query for every item it reads, whatever
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
    use super::*;

    #[test]
    fn a_filtered_page_makes_at_most_four_queries() {
        assert_eq!(MAX_QUERIES, 4);
    }
}
