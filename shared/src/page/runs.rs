//! The one budgeted read loop of every list, keys and events alike: runs of items in id
//! order from a position, keeping those a filter lets through, until the page is full (one
//! item more than `limit`, so that `has_more` is exact), the items end, or, for a filtered
//! page, [`MAX_ITEMS_READ`] items have been read. Then the page ends the same way for all:
//! a cursor sealed where reading stopped, and a backward page turned round.

use std::future::Future;

use super::Direction;
use super::budget::{MAX_ITEMS_READ, MIN_CHUNK};
use crate::store::StoreError;

/// What a list reads, in its reading direction: runs of items strictly past a position.
pub(crate) trait Runs: Sync {
    type Item: Send;
    /// An item's position: its id.
    type Id: Copy + Send;

    fn id(item: &Self::Item) -> Self::Id;

    /// Up to `max` items strictly past `after` (or from the start).
    fn run(
        &self,
        after: Option<Self::Id>,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Self::Item>, StoreError>> + Send;

    /// Whether nothing can lie past `after`, without reading (a bounded range has ended).
    fn ended(&self, _after: Option<Self::Id>) -> bool {
        false
    }

    /// Whether the page keeps `item` (every filter holds).
    fn keeps(&self, item: &Self::Item) -> bool;
}

/// A page as read, in reading order, before its cursor is sealed.
pub(crate) struct Read<T, P> {
    pub items: Vec<T>,
    /// Whether more items lie beyond the page in the direction it was read.
    pub has_more: bool,
    /// Where the next page starts: the last item the page holds, or, for a filtered page cut
    /// short by the budget, the last item read.
    pub resume_at: Option<P>,
    /// Whether the read budget ran out before the page was full.
    pub budget_exhausted: bool,
}

/// Reads one page of `limit` items past `from`. Unfiltered, that is one run of `limit + 1`;
/// `filtered`, runs of at least [`MIN_CHUNK`] until `limit + 1` items are kept, the items
/// end, or [`MAX_ITEMS_READ`] have been read, in which case the next page resumes after the
/// last item read, which is where reading stopped.
pub(crate) async fn read_runs<R: Runs>(
    runs: &R,
    from: Option<R::Id>,
    limit: usize,
    filtered: bool,
) -> Result<Read<R::Item, R::Id>, StoreError> {
    let want = limit + 1;
    let mut kept: Vec<R::Item> = Vec::new();
    let (mut read, mut last_read, mut at_end) = (0, from, false);
    while kept.len() < want && read < MAX_ITEMS_READ && !at_end && !runs.ended(last_read) {
        let chunk = if filtered {
            want.max(MIN_CHUNK).min(MAX_ITEMS_READ - read)
        } else {
            want - kept.len()
        };
        let run = runs.run(last_read, chunk).await?;
        at_end = run.len() < chunk;
        read += run.len();
        for item in run {
            last_read = Some(R::id(&item));
            if runs.keeps(&item) {
                kept.push(item);
                if kept.len() == want {
                    break;
                }
            }
        }
    }
    at_end = at_end || runs.ended(last_read);
    Ok(cut(kept, limit, last_read, at_end, R::id))
}

/// Keeps the first `limit` of `items` (read `limit + 1` at most), and says whether there were
/// more, and where the next page starts.
pub(crate) fn cut<T, P>(
    mut items: Vec<T>,
    limit: usize,
    last_read: Option<P>,
    at_end: bool,
    id: impl Fn(&T) -> P,
) -> Read<T, P> {
    let full = items.len() > limit;
    items.truncate(limit);
    let budget_exhausted = !full && !at_end;
    Read {
        resume_at: if full {
            items.last().map(id)
        } else {
            last_read
        },
        items,
        has_more: full || budget_exhausted,
        budget_exhausted,
    }
}

impl<T, P> Read<T, P> {
    /// The page's items in the requested order (a backward page turned round), and the
    /// cursor for the next page, sealed by `seal` where reading stopped; `None` when there is
    /// no more.
    pub(crate) fn finish(
        self,
        direction: Direction,
        seal: impl FnOnce(P) -> String,
    ) -> (Vec<T>, Option<String>) {
        let next_cursor = self.resume_at.filter(|_| self.has_more).map(seal);
        let mut items = self.items;
        if direction == Direction::Backward {
            items.reverse();
        }
        (items, next_cursor)
    }
}
