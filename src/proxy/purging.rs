//! Purges as the request path sees them: keeping the isolate's memo of the
//! purge records fresh ([`crate::purge::Memo`]), and deciding whether a
//! stored entry may be used as it is.

use super::*;
use crate::platform::{within, Kv};
use crate::purge::{Coverage, Memo, Refresh, Subject, KEY_PREFIX};
use std::cell::RefCell;

/// How long a request waits for the purge records before deciding without them.
const READ_BOUND_MS: u64 = 2_000;

/// How often a request waiting for another's read looks again.
const POLL_MS: u64 = 10;

/// Records read per listing: KV's maximum for one `list`.
const LIST_LIMIT: u32 = 1_000;

/// Purge state: KV (absent without a `CACHE_KV` binding: then nothing is
/// ever purged and hits are never checked) and the isolate's memo.
pub struct Purges<K> {
    pub kv: Option<K>,
    pub memo: Rc<RefCell<Memo>>,
}

impl<K: Clone> Clone for Purges<K> {
    fn clone(&self) -> Self {
        Purges {
            kv: self.kv.clone(),
            memo: self.memo.clone(),
        }
    }
}

/// Unix milliseconds.
pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Whether purges let `entry` be used as it is. Reads KV at most once
    /// per request, and only when the memo is old (see [`Memo::refresh`]).
    pub(super) async fn coverage(&self, entry: &Entry<B>, now: SystemTime) -> Coverage {
        let Some(kv) = &self.purges.kv else {
            return Coverage::Current;
        };
        let now_ms = unix_ms(now);
        let every_ms = self.config.purge_refresh_secs * 1000;
        let refresh = self.purges.memo.borrow().refresh(now_ms, every_ms);
        match refresh {
            Refresh::Use => {}
            Refresh::UseAndRefresh => {
                self.purges.memo.borrow_mut().begin_read(now_ms);
                let (proxy, kv) = (self.clone(), kv.clone());
                self.background
                    .spawn(async move { proxy.read_purges(&kv, now_ms).await });
            }
            Refresh::ReadFirst => {
                self.purges.memo.borrow_mut().begin_read(now_ms);
                let read = self.read_purges(kv, now_ms);
                if within(read, &self.background, READ_BOUND_MS)
                    .await
                    .is_none()
                {
                    self.purges.memo.borrow_mut().end_read(None, now_ms);
                    self.background.warn("reading purge records timed out");
                }
            }
            Refresh::WaitForRead => {
                let mut waited = 0;
                while self.purges.memo.borrow().refresh(now_ms, every_ms) == Refresh::WaitForRead
                    && waited < READ_BOUND_MS
                {
                    self.background.sleep(POLL_MS).await;
                    waited += POLL_MS;
                }
            }
        }
        let subject = Subject {
            fetched_ms: entry.meta.fetched_ms,
            host: &entry.meta.host,
            path_and_query: &entry.meta.path,
            headers: entry.response.headers(),
        };
        let window_ms = self.config.purge_window_secs() * 1000;
        self.purges
            .memo
            .borrow_mut()
            .coverage(&subject, now_ms, window_ms, every_ms)
    }

    /// One KV listing into the memo; a failure keeps the old records.
    async fn read_purges(&self, kv: &K, now_ms: u64) {
        let listing = match kv.list(KEY_PREFIX, LIST_LIMIT).await {
            Ok(listing) => Some(listing),
            Err(e) => {
                self.background
                    .warn(&format!("reading purge records failed: {e}"));
                None
            }
        };
        self.purges.memo.borrow_mut().end_read(listing, now_ms);
    }
}
