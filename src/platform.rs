//! What the core needs from the runtime, as small traits.
//!
//! The edge module implements them on the Workers runtime (Cache API, fetch,
//! `wait_until`, console); tests implement them in memory. Nothing here is
//! `Send`: a Worker isolate runs one thread.

use std::future::Future;
use std::task::Poll;

/// A failure reported by the runtime (storage, origin, body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError(pub String);

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message body the core moves around without looking inside, except to
/// cut a byte range out of it.
pub trait Body: Sized + 'static {
    fn empty() -> Self;
    fn from_bytes(bytes: Vec<u8>) -> Self;
    /// Two bodies that each yield the whole stream (one for the client, one for storage).
    fn tee(self) -> (Self, Self);
    /// Reads the whole body where it lives (JS memory at the edge, not
    /// wasm's), unless it grows past `limit.bytes` or is still arriving
    /// after `limit.ms` milliseconds: then it is handed back whole, to pass
    /// on unstored. An error when it did not arrive whole: the connection
    /// closed early, or the framing was broken.
    fn buffered(
        self,
        limit: ReadLimit,
    ) -> impl Future<Output = Result<Buffered<Self>, PlatformError>>;
    /// Bytes `start..=end` of the body, read no further than `end` and
    /// holding no more than the range: a range of a large stored body must
    /// not cost its whole size in memory. An error when the body ends first.
    fn range(self, start: u64, end: u64) -> impl Future<Output = Result<Self, PlatformError>>;
    /// The whole body in wasm memory, for the few bodies the worker reads
    /// itself (admin requests, ESI templates and fragments); `None` when it
    /// is longer than `limit` bytes.
    fn bytes(self, limit: u64) -> impl Future<Output = Result<Option<Vec<u8>>, PlatformError>>;
    /// A body made while it is sent (a composed page): each chunk goes out
    /// as soon as `chunks` yields it; an error breaks the body off, so the
    /// client never takes what it got for the whole.
    /// The work of making it belongs to the request (`background`), so the
    /// runtime keeps it, and its I/O, in that request.
    fn streamed(
        chunks: Box<dyn Chunks>,
        background: &impl Background,
    ) -> impl Future<Output = Self>;
}

/// Where a streamed body's bytes come from.
pub trait Chunks: 'static {
    /// The next bytes, `None` at the end, an error where the body breaks off.
    #[allow(clippy::type_complexity)]
    fn next_chunk(
        &mut self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<Result<Vec<u8>, String>>> + '_>>;
}

/// How much of a body, and for how long, `Body::buffered` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimit {
    pub bytes: u64,
    pub ms: u64,
}

impl ReadLimit {
    /// Read it all, however long it takes (a body already stored).
    pub const NONE: ReadLimit = ReadLimit {
        bytes: u64::MAX,
        ms: u64::MAX,
    };
}

/// A body read for storing.
pub enum Buffered<B> {
    /// All of it, replayable, and its length in bytes.
    Whole(B, u64),
    /// Past a limit: not stored, but still the whole body, to pass on.
    PassOn(B, Exceeded),
}

/// Which limit a body went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Bytes,
    Time,
}

/// Response storage addressed by URL, as the Cache API is.
pub trait Storage<B>: Clone + 'static {
    fn get(
        &self,
        url: &str,
    ) -> impl Future<Output = Result<Option<http::Response<B>>, PlatformError>>;
    fn put(
        &self,
        url: &str,
        response: http::Response<B>,
    ) -> impl Future<Output = Result<(), PlatformError>>;
    fn delete(&self, url: &str) -> impl Future<Output = Result<bool, PlatformError>>;
}

/// Why the origin gave no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    /// Refused, reset, DNS failure, or an invalid request (answered with 502).
    Unreachable(String),
    /// No response within `ORIGIN_TIMEOUT` (answered with 504).
    TimedOut,
    /// A status outside 200–599: no final response to relay (answered with 502).
    InvalidStatus(u16),
    /// The body broke off before its end (answered with 502 when nothing
    /// was sent yet).
    Incomplete(String),
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginError::Unreachable(why) => write!(f, "origin unreachable: {why}"),
            OriginError::TimedOut => f.write_str("origin timed out"),
            OriginError::InvalidStatus(code) => write!(f, "origin answered status {code}"),
            OriginError::Incomplete(why) => write!(f, "origin body incomplete: {why}"),
        }
    }
}

/// The origin server. Requests arrive with the client's URI; the
/// implementation decides where that URI points. Cloned into background
/// revalidations.
pub trait Origin<B>: Clone + 'static {
    fn fetch(
        &self,
        request: http::Request<B>,
    ) -> impl Future<Output = Result<http::Response<B>, OriginError>>;
}

/// Work that finishes after the response is sent, timers, and the log.
pub trait Background: Clone + 'static {
    fn spawn(&self, task: impl Future<Output = ()> + 'static);
    /// Work only the client needs (writing its streamed body): dropped if
    /// the client goes away, whose I/O the runtime then never settles.
    fn spawn_for_client(&self, task: impl Future<Output = ()> + 'static) {
        self.spawn(task);
    }
    fn warn(&self, message: &str);
    /// Completes `ms` milliseconds after it is first polled.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> + 'static;
    /// A one-shot wake-up: calling the first half completes the second.
    /// The request that will wait makes it, and resumes in its own
    /// request's context whoever calls it (in workerd another request's
    /// I/O is refused).
    fn signal(&self) -> (Box<dyn FnOnce()>, impl Future<Output = ()> + 'static);
}

/// One key of a KV listing, with its metadata as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvKey {
    pub name: String,
    pub metadata: Option<String>,
}

/// A page of a KV listing, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvList {
    pub keys: Vec<KvKey>,
    /// False when more keys matched than the listing returned.
    pub complete: bool,
}

/// Workers KV, for the state every location shares (purge records). Each
/// call is one KV operation, of the bounded number a request may make.
pub trait Kv: Clone + 'static {
    /// Up to `limit` keys under `prefix`, in key order, with their metadata.
    fn list(&self, prefix: &str, limit: u32)
        -> impl Future<Output = Result<KvList, PlatformError>>;
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, PlatformError>>;
    /// Writes `value` with `metadata` (JSON, at most 1,024 bytes), kept for
    /// `ttl_secs` (at least 60).
    fn put(
        &self,
        key: &str,
        value: &str,
        metadata: &str,
        ttl_secs: u64,
    ) -> impl Future<Output = Result<(), PlatformError>>;
}

/// `future`'s output, or `None` when `ms` milliseconds pass first (the
/// future is then dropped).
pub async fn within<T>(
    future: impl Future<Output = T>,
    background: &impl Background,
    ms: u64,
) -> Option<T> {
    let mut future = std::pin::pin!(future);
    let mut timer = std::pin::pin!(background.sleep(ms));
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Runs `futures` together on this thread; their outputs in order.
pub async fn join_all<T>(futures: Vec<std::pin::Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                if let Poll::Ready(out) = future.as_mut().poll(cx) {
                    *output = Some(out);
                    *slot = None;
                }
            }
        }
        match futures.iter().all(Option::is_none) {
            true => Poll::Ready(outputs.iter_mut().filter_map(Option::take).collect()),
            false => Poll::Pending,
        }
    })
    .await
}

/// Whether the Cache API does nothing for requests to `host`: Cloudflare
/// documents that its operations have no effect on `*.workers.dev` (also
/// in dashboard previews and behind Cloudflare Access, which a request does
/// not show). Such a deployment sees every request miss, without an error.
pub fn cache_api_inert(host: &str) -> bool {
    // Asked on every request: no allocation.
    let host = host.trim_end_matches('.').as_bytes();
    let suffix = b"workers.dev";
    host.len() >= suffix.len()
        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        && (host.len() == suffix.len() || host[host.len() - suffix.len() - 1] == b'.')
}

#[cfg(test)]
mod tests {
    use super::cache_api_inert;

    #[test]
    fn workers_dev_hosts_are_where_the_cache_api_does_nothing() {
        for host in [
            "edge-cache.me.workers.dev",
            "A.B.WORKERS.DEV.",
            "workers.dev",
        ] {
            assert!(cache_api_inert(host), "{host}");
        }
        for host in [
            "shop.test",
            "workers.dev.shop.test",
            "myworkers.dev",
            "127.0.0.1",
        ] {
            assert!(!cache_api_inert(host), "{host}");
        }
    }
}
