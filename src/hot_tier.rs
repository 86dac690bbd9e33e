//! The in-isolate hot tier: small entries read from the Cache API, kept in
//! the isolate's memory, so that a repeat hit skips `cache.match` (a round
//! trip out of the isolate) altogether.
//!
//! It is a [`Storage`] in front of the Cache API and holds stored copies
//! as the Cache API returned them, with their records read once (handed
//! out as [`ReadRecord`], so a hit from memory parses no JSON): freshness,
//! `Vary`, stale-while-revalidate, stale-if-error and purge records are
//! decided on them by the same pipeline as on a Cache API read. It never
//! holds what the Cache API would not:
//! - an entry enters only when the Cache API has just returned it;
//! - it leaves when the Cache API would drop it: at its record's time plus
//!   the lifetime it was stored with (it was put no earlier, so the Cache
//!   API keeps it at least that long; a Vary marker's `keep_until`);
//! - a `put` or `delete` of its URL (a refill, a revalidation, an
//!   invalidation, a URL purge) forgets it before reaching the Cache API.
//!
//! Bounded by `HOT_TIER_BYTES`, least recently used out first; an entry
//! above an eighth of the bound (at most 256 KiB) never enters. The bytes
//! counted are each body's length, its fields' names and values, its URL
//! and a fixed overhead per entry. Bodies stay where the runtime buffered
//! them (JS memory at the edge), handed out as cheap copies (`Body::tee`).

use crate::headers::fields_size;
use crate::lru::Lru;
use crate::meta::{self, ParsedRecord, Record};
use crate::platform::{Body, Buffered, PlatformError, ReadLimit, Storage};
use http::response::Parts;
use http::{HeaderMap, Response, StatusCode};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The largest entry the tier takes, whatever its bound.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Bookkeeping per entry beyond its bytes (map slots, strings' headers).
const ENTRY_OVERHEAD: usize = 160;

/// Marks a response the tier served (for `Cache-Status`: `detail=memory`).
#[derive(Debug, Clone, Copy)]
pub struct FromMemory;

/// The record of a response the tier served, already read from its fields
/// (which no longer hold it): a hit from memory parses no JSON.
#[derive(Debug, Clone)]
pub struct ReadRecord(pub Arc<Record>);

struct Slot<B> {
    status: StatusCode,
    /// The stored copy's fields as [`meta::from_stored`] leaves them.
    headers: HeaderMap,
    record: Arc<Record>,
    /// Taken out only while a copy is made.
    body: Option<B>,
    /// Unix seconds after which the Cache API may no longer hold it.
    until: u64,
}

/// The isolate's entries, by storage URL.
pub struct HotTier<B> {
    slots: Lru<Slot<B>>,
    /// Puts and deletes through the tier so far: a copy read from the
    /// Cache API while one happened may be older than it, and is not kept.
    writes: u64,
}

impl<B: Body> HotTier<B> {
    /// A tier of at most `limit` bytes; 0 keeps nothing.
    pub fn new(limit: usize) -> Self {
        HotTier {
            slots: Lru::new(limit),
            writes: 0,
        }
    }

    /// The largest entry this tier takes.
    pub fn max_entry(&self) -> usize {
        (self.slots.limit() / 8).min(MAX_ENTRY_BYTES)
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.slots.bytes()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A copy of the entry at `url`, unless it is gone from the Cache API
    /// by `now` (Unix seconds); it becomes the most recently used.
    pub fn get(&mut self, url: &str, now: u64) -> Option<Response<B>> {
        let slot = self.slots.get(url)?;
        if now >= slot.until {
            self.forget(url);
            return None;
        }
        let (kept, given) = slot.body.take()?.tee();
        slot.body = Some(kept);
        let mut response = Response::new(given);
        *response.status_mut() = slot.status;
        *response.headers_mut() = slot.headers.clone();
        response.extensions_mut().insert(FromMemory);
        response
            .extensions_mut()
            .insert(ReadRecord(slot.record.clone()));
        Some(response)
    }

    /// Keeps `body` (of `len` bytes) with its head (whose fields hold
    /// `record`, read already) until `until`, if it fits; gives back a copy
    /// for the caller.
    pub fn admit(
        &mut self,
        url: &str,
        head: &Parts,
        record: Arc<Record>,
        body: B,
        len: u64,
        until: u64,
    ) -> B {
        let size = len as usize + fields_size(&head.headers) + url.len() + ENTRY_OVERHEAD;
        if size > self.max_entry() {
            return body;
        }
        let mut headers = head.headers.clone();
        let Some(record) = meta::from_stored(&mut headers, Some(ParsedRecord(record))) else {
            return body;
        };
        let (kept, given) = body.tee();
        let slot = Slot {
            status: head.status,
            headers,
            record: Arc::new(record),
            body: Some(kept),
            until,
        };
        self.slots.insert(url, slot, size);
        given
    }

    /// A put or delete of `url` is under way or done: drops what is held,
    /// and keeps no copy read from the Cache API meanwhile.
    pub fn written(&mut self, url: &str) {
        self.writes += 1;
        self.forget(url);
    }

    /// Drops the entry at `url`, if held.
    pub fn forget(&mut self, url: &str) {
        self.slots.remove(url);
    }
}

/// The tier in front of `inner` (the Cache API), for one request at `now`
/// (Unix seconds).
pub struct Tiered<S, B> {
    pub hot: Rc<RefCell<HotTier<B>>>,
    pub inner: S,
    pub now: u64,
}

impl<S: Clone, B> Clone for Tiered<S, B> {
    fn clone(&self) -> Self {
        Tiered {
            hot: self.hot.clone(),
            inner: self.inner.clone(),
            now: self.now,
        }
    }
}

impl<S: Storage<B>, B: Body> Storage<B> for Tiered<S, B> {
    async fn get(&self, url: &str) -> Result<Option<Response<B>>, PlatformError> {
        let writes = {
            let mut hot = self.hot.borrow_mut();
            if let Some(response) = hot.get(url, self.now) {
                return Ok(Some(response));
            }
            hot.writes
        };
        let Some(response) = self.inner.get(url).await? else {
            return Ok(None);
        };
        if self.hot.borrow().writes != writes {
            return Ok(Some(response));
        }
        let max = self.hot.borrow().max_entry() as u64;
        let fits = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|length| length <= max);
        // The length first: reading the record costs more, and a tier of
        // no size admits nothing. Read once: the Cache API's layer may have
        // read it already.
        let record = fits.then(|| stored_record(&response)).flatten();
        let until = record
            .as_deref()
            .and_then(|record| meta::kept_until(response.headers(), record))
            .filter(|&until| until > self.now);
        let (Some(record), Some(until)) = (record, until) else {
            return Ok(Some(response));
        };
        let (parts, body) = response.into_parts();
        let limit = ReadLimit {
            bytes: max,
            ms: u64::MAX,
        };
        let body = match body.buffered(limit).await? {
            Buffered::Whole(body, len) => {
                let mut hot = self.hot.borrow_mut();
                hot.admit(url, &parts, record, body, len, until)
            }
            Buffered::PassOn(body, _) => body,
        };
        Ok(Some(Response::from_parts(parts, body)))
    }

    async fn put(&self, url: &str, response: Response<B>) -> Result<(), PlatformError> {
        self.hot.borrow_mut().written(url);
        let result = self.inner.put(url, response).await;
        // Reads that began while it was under way may hold the old copy.
        self.hot.borrow_mut().written(url);
        result
    }

    async fn delete(&self, url: &str) -> Result<bool, PlatformError> {
        self.hot.borrow_mut().written(url);
        let result = self.inner.delete(url).await;
        self.hot.borrow_mut().written(url);
        result
    }
}

/// The record a stored copy's fields hold: as its storage layer read it,
/// or read now.
fn stored_record<B>(response: &Response<B>) -> Option<Arc<Record>> {
    if let Some(ParsedRecord(record)) = response.extensions().get::<ParsedRecord>() {
        return Some(record.clone());
    }
    let value = response.headers().get(meta::META_HEADER)?;
    meta::read(value.as_bytes()).map(|(record, _)| Arc::new(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStorage;
    use crate::meta::{Record, VaryMarker};
    use futures::executor::block_on;
    use std::future::Future;
    use std::task::Poll;

    /// A stored copy's fields: just its record (a Vary marker).
    fn fields() -> HeaderMap {
        let marker = VaryMarker {
            names: vec!["accept".into()],
            generation: "g".into(),
            keep_until: 0,
        };
        let mut headers = HeaderMap::new();
        meta::seal(&mut headers, Record::Vary(marker));
        headers
    }

    /// A 200's head with `headers`.
    fn head(headers: HeaderMap) -> Parts {
        let (mut head, ()) = Response::new(()).into_parts();
        head.headers = headers;
        head
    }

    /// The record [`fields`] hold, read.
    fn record() -> Arc<Record> {
        Arc::new(
            meta::read(fields()[meta::META_HEADER].as_bytes())
                .unwrap()
                .0,
        )
    }

    /// Bookkeeping and fields: what an entry costs beyond its body and URL.
    fn overhead() -> usize {
        ENTRY_OVERHEAD + meta::META_HEADER.len() + fields()[meta::META_HEADER].len()
    }

    fn admit(tier: &mut HotTier<Vec<u8>>, url: &str, body: &str, until: u64) {
        let body = body.as_bytes().to_vec();
        let len = body.len() as u64;
        tier.admit(url, &head(fields()), record(), body, len, until);
    }

    fn body(tier: &mut HotTier<Vec<u8>>, url: &str, now: u64) -> Option<String> {
        let response = tier.get(url, now)?;
        assert!(response.extensions().get::<FromMemory>().is_some());
        Some(String::from_utf8(response.into_body()).unwrap())
    }

    #[test]
    fn the_least_recently_used_entry_goes_first_and_bytes_add_up() {
        // Room for three entries of 100 bytes (and their URLs).
        let entry = 100 + 2 + overhead();
        let mut tier = HotTier::new(entry * 8);
        for url in ["/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h"] {
            admit(&mut tier, url, &"x".repeat(100), 100);
        }
        assert_eq!((tier.len(), tier.bytes()), (8, entry * 8));
        assert!(body(&mut tier, "/a", 0).is_some());
        admit(&mut tier, "/i", &"y".repeat(100), 100);
        // `/b` was the least recently used once `/a` was read.
        assert!(tier.get("/b", 0).is_none());
        assert!(body(&mut tier, "/a", 0).is_some());
        assert_eq!((tier.len(), tier.bytes()), (8, entry * 8));
        tier.forget("/a");
        tier.forget("/a");
        assert_eq!((tier.len(), tier.bytes()), (7, entry * 7));
        // Replacing an entry counts it once.
        admit(&mut tier, "/c", "z", 100);
        assert_eq!(tier.bytes(), entry * 6 + 1 + 2 + overhead());
        assert_eq!(body(&mut tier, "/c", 0).unwrap(), "z");
    }

    #[test]
    fn an_entry_leaves_when_the_cache_api_would_drop_it_and_big_ones_never_enter() {
        let mut tier = HotTier::new(64 * 1024);
        admit(&mut tier, "/t", "body", 50);
        assert_eq!(body(&mut tier, "/t", 49).unwrap(), "body");
        assert!(tier.get("/t", 50).is_none());
        assert_eq!((tier.len(), tier.bytes()), (0, 0));
        // An eighth of the bound is the most one entry may take.
        admit(&mut tier, "/big", &"x".repeat(8 * 1024), 100);
        assert!(tier.get("/big", 0).is_none());
        let mut off = HotTier::new(0);
        admit(&mut off, "/t", "b", 100);
        assert!(off.is_empty());
        // A copy whose fields hold no record is never held.
        let mut tier = HotTier::new(64 * 1024);
        let (head, body) = (head(HeaderMap::new()), b"b".to_vec());
        tier.admit("/x", &head, record(), body, 1, 100);
        assert!(tier.is_empty());
    }

    /// A stored copy as the Cache API returns it: a record and a length.
    fn stored(keep_until: u64) -> Response<Vec<u8>> {
        let marker = VaryMarker {
            names: vec!["accept".into()],
            generation: "g".into(),
            keep_until,
        };
        let mut response = Response::new(b"marker".to_vec());
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_LENGTH, "6".parse().unwrap());
        meta::seal(headers, Record::Vary(marker));
        response
    }

    #[test]
    fn a_repeat_read_skips_the_cache_api_until_a_write_of_its_url() {
        let inner = MemoryStorage::default();
        let tiered = Tiered {
            hot: Rc::new(RefCell::new(HotTier::new(1 << 20))),
            inner: inner.clone(),
            now: 1000,
        };
        inner.entries.borrow_mut().insert("u".into(), stored(2000));
        inner
            .entries
            .borrow_mut()
            .insert("old".into(), stored(1000));
        let first = block_on(tiered.get("u")).unwrap().unwrap();
        assert!(first.extensions().get::<FromMemory>().is_none());
        assert!(first.headers().contains_key(meta::META_HEADER));
        assert_eq!(first.body(), b"marker");
        // Gone from the Cache API, still held: the repeat never asked it.
        inner.entries.borrow_mut().clear();
        let again = block_on(tiered.get("u")).unwrap().unwrap();
        assert!(again.extensions().get::<FromMemory>().is_some());
        // Its record comes read, not in its fields.
        assert!(!again.headers().contains_key(meta::META_HEADER));
        let ReadRecord(record) = again.extensions().get::<ReadRecord>().unwrap();
        assert!(matches!(**record, Record::Vary(ref m) if m.keep_until == 2000));
        assert_eq!(again.body(), b"marker");
        assert!(block_on(tiered.delete("u")).is_ok());
        assert!(block_on(tiered.get("u")).unwrap().is_none());
        // An entry the Cache API is about to drop does not enter.
        inner
            .entries
            .borrow_mut()
            .insert("old".into(), stored(1000));
        block_on(tiered.get("old")).unwrap().unwrap();
        assert!(tiered.hot.borrow().is_empty());
        // A put replaces what is held: the next read goes to the Cache API.
        inner.entries.borrow_mut().insert("p".into(), stored(2000));
        block_on(tiered.get("p")).unwrap().unwrap();
        assert_eq!(tiered.hot.borrow().len(), 1);
        let _ = block_on(tiered.put("p", Response::new(Vec::new())));
        assert!(tiered.hot.borrow().is_empty());
    }

    /// Storage whose reads wait until `open` is set.
    #[derive(Clone)]
    struct Gated(MemoryStorage, Rc<std::cell::Cell<bool>>);

    impl Storage<Vec<u8>> for Gated {
        async fn get(&self, url: &str) -> Result<Option<Response<Vec<u8>>>, PlatformError> {
            let open = self.1.clone();
            std::future::poll_fn(|_| match open.get() {
                true => Poll::Ready(()),
                false => Poll::Pending,
            })
            .await;
            self.0.get(url).await
        }
        async fn put(&self, url: &str, response: Response<Vec<u8>>) -> Result<(), PlatformError> {
            self.0.put(url, response).await
        }
        async fn delete(&self, url: &str) -> Result<bool, PlatformError> {
            self.0.delete(url).await
        }
    }

    #[test]
    fn a_copy_read_while_its_url_is_written_is_not_kept() {
        let inner = Gated(MemoryStorage::default(), Rc::default());
        inner
            .0
            .entries
            .borrow_mut()
            .insert("u".into(), stored(2000));
        let tiered = Tiered {
            hot: Rc::new(RefCell::new(HotTier::new(1 << 20))),
            inner: inner.clone(),
            now: 1000,
        };
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut read = Box::pin(tiered.get("u"));
        assert!(read.as_mut().poll(&mut cx).is_pending());
        // A delete of the URL while the read waits on the Cache API.
        assert!(block_on(tiered.delete("u")).is_ok());
        inner
            .0
            .entries
            .borrow_mut()
            .insert("u".into(), stored(2000));
        inner.1.set(true);
        let Poll::Ready(Ok(Some(_))) = read.as_mut().poll(&mut cx) else {
            panic!("the read completes once the gate opens")
        };
        assert!(tiered.hot.borrow().is_empty());
        // Without a write meanwhile, the copy is kept.
        block_on(tiered.get("u")).unwrap().unwrap();
        assert_eq!(tiered.hot.borrow().len(), 1);
    }
}
