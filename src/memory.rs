//! In-memory implementations of the platform traits, for native tests.
//!
//! `Storage` is a map, `Origin` a scripted handler that records every request
//! it sees, and `Background` queues tasks until the test runs them (the way
//! `wait_until` work finishes after the response).

use crate::platform::{
    Background, Body, Buffered, Exceeded, Origin, OriginError, PlatformError, ReadLimit, Storage,
};
use http::{Request, Response};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

impl Body for Vec<u8> {
    fn empty() -> Self {
        Vec::new()
    }
    fn from_bytes(bytes: Vec<u8>) -> Self {
        bytes
    }
    fn tee(self) -> (Self, Self) {
        (self.clone(), self)
    }
    /// A body that ends in [`TRUNCATED`] stands for one whose connection
    /// closed early: it fails here, as a broken stream does at the edge.
    /// Arrives at once, so only the byte limit applies.
    async fn buffered(self, limit: ReadLimit) -> Result<Buffered<Self>, PlatformError> {
        let length = self.len() as u64;
        match self.ends_with(TRUNCATED) {
            true => Err(PlatformError("connection closed before the end".into())),
            false if length > limit.bytes => Ok(Buffered::PassOn(self, Exceeded::Bytes)),
            false => Ok(Buffered::Whole(self, length)),
        }
    }
    async fn range(self, start: u64, end: u64) -> Result<Self, PlatformError> {
        self.get(start as usize..=end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| PlatformError("the body ended before the range".into()))
    }
    async fn bytes(self, limit: u64) -> Result<Option<Vec<u8>>, PlatformError> {
        match self.ends_with(TRUNCATED) {
            true => Err(PlatformError("connection closed before the end".into())),
            false => Ok((self.len() as u64 <= limit).then_some(self)),
        }
    }
    /// All of it at once; a body that breaks off ends in [`TRUNCATED`].
    async fn streamed(
        mut chunks: Box<dyn crate::platform::Chunks>,
        _: &impl crate::platform::Background,
    ) -> Self {
        let mut out = Vec::new();
        while let Some(chunk) = chunks.next_chunk().await {
            match chunk {
                Ok(bytes) => out.extend(bytes),
                Err(_) => {
                    out.extend_from_slice(TRUNCATED);
                    break;
                }
            }
        }
        out
    }
}

/// The marker of a truncated body in tests (see `buffered`).
pub const TRUNCATED: &[u8] = b"\0<truncated>";

fn copy(r: &Response<Vec<u8>>) -> Response<Vec<u8>> {
    let mut out = Response::new(r.body().clone());
    *out.status_mut() = r.status();
    *out.headers_mut() = r.headers().clone();
    out
}

/// A map from URL to response; `failing` makes every call fail.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    pub entries: Rc<RefCell<HashMap<String, Response<Vec<u8>>>>>,
    pub failing: Rc<RefCell<bool>>,
}

impl MemoryStorage {
    fn check(&self) -> Result<(), PlatformError> {
        match *self.failing.borrow() {
            true => Err(PlatformError("storage is down".into())),
            false => Ok(()),
        }
    }
}

impl Storage<Vec<u8>> for MemoryStorage {
    async fn get(&self, url: &str) -> Result<Option<Response<Vec<u8>>>, PlatformError> {
        self.check()?;
        Ok(self.entries.borrow().get(url).map(copy))
    }
    /// Refuses what the Cache API refuses or silently drops (Miniflare's drops
    /// statuses it does not know, empty bodies, cookies, and entries without a
    /// lifetime), so tests catch a stored copy the real storage would not keep.
    async fn put(&self, url: &str, response: Response<Vec<u8>>) -> Result<(), PlatformError> {
        self.check()?;
        let headers = response.headers();
        let cc = headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let keeps = crate::cache_control::Directives::parse(cc)
            .seconds("max-age")
            .is_some_and(|s| s > 0);
        if response.status() != 200
            || headers.contains_key("set-cookie")
            || response.body().is_empty()
            || !keeps
        {
            return Err(PlatformError(format!(
                "the Cache API would not store {url}"
            )));
        }
        self.entries.borrow_mut().insert(url.to_string(), response);
        Ok(())
    }
    async fn delete(&self, url: &str) -> Result<bool, PlatformError> {
        self.check()?;
        Ok(self.entries.borrow_mut().remove(url).is_some())
    }
}

type Handler = Box<dyn Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError>>;

/// An origin answering with `handler` and recording what it was sent.
/// After `hold`, every call is recorded at once but answered only when
/// `release` is called: requests in flight together, as a slow origin makes them.
#[derive(Clone)]
pub struct ScriptedOrigin {
    pub handler: Rc<RefCell<Handler>>,
    pub seen: Rc<RefCell<Vec<Request<Vec<u8>>>>>,
    gate: Rc<RefCell<Option<Rc<RefCell<Latch>>>>>,
}

impl ScriptedOrigin {
    pub fn new(
        handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
    ) -> Self {
        ScriptedOrigin {
            handler: Rc::new(RefCell::new(Box::new(handler))),
            seen: Rc::default(),
            gate: Rc::default(),
        }
    }
    pub fn calls(&self) -> usize {
        self.seen.borrow().len()
    }
    /// Holds every answer from now until `release`.
    pub fn hold(&self) {
        *self.gate.borrow_mut() = Some(Rc::default());
    }
    /// Answers every held call, and the next ones at once.
    pub fn release(&self) {
        if let Some(gate) = self.gate.borrow_mut().take() {
            Latch::set(&gate);
        }
    }
}

impl Origin<Vec<u8>> for ScriptedOrigin {
    async fn fetch(&self, request: Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
        let gate = self.gate.borrow().clone();
        let result = (self.handler.borrow())(&request);
        self.seen.borrow_mut().push(request);
        if let Some(gate) = gate {
            Latch::wait(gate).await;
        }
        result
    }
}

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Queues background tasks; `run` completes them, as `wait_until` would.
/// Timers never fire on their own: `fire_timers` ends every pending sleep.
#[derive(Clone, Default)]
pub struct QueuedBackground {
    pub tasks: Rc<RefCell<Vec<Task>>>,
    pub warnings: Rc<RefCell<Vec<String>>>,
    timers: Rc<RefCell<Vec<Rc<RefCell<Latch>>>>>,
}

/// A flag and whoever waits for it.
#[derive(Default)]
struct Latch {
    set: bool,
    wakers: Vec<Waker>,
}

impl Latch {
    fn set(latch: &Rc<RefCell<Latch>>) {
        let wakers = {
            let mut latch = latch.borrow_mut();
            latch.set = true;
            std::mem::take(&mut latch.wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    fn wait(latch: Rc<RefCell<Latch>>) -> impl Future<Output = ()> {
        std::future::poll_fn(move |cx| {
            let mut latch = latch.borrow_mut();
            match latch.set {
                true => Poll::Ready(()),
                false => {
                    if !latch.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        latch.wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
    }
}

impl QueuedBackground {
    /// Runs the queue until it is empty, tasks spawned by tasks included.
    pub fn run(&self) {
        loop {
            let tasks: Vec<Task> = self.tasks.borrow_mut().drain(..).collect();
            if tasks.is_empty() {
                return;
            }
            for task in tasks {
                futures::executor::block_on(task);
            }
        }
    }
}

impl Background for QueuedBackground {
    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.tasks.borrow_mut().push(Box::pin(task));
    }
    fn warn(&self, message: &str) {
        self.warnings.borrow_mut().push(message.to_string());
    }
    fn sleep(&self, _ms: u64) -> impl Future<Output = ()> + 'static {
        let latch = Rc::new(RefCell::new(Latch::default()));
        self.timers.borrow_mut().push(latch.clone());
        Latch::wait(latch)
    }
    fn signal(&self) -> (Box<dyn FnOnce()>, impl Future<Output = ()> + 'static) {
        let latch = Rc::new(RefCell::new(Latch::default()));
        let fire = latch.clone();
        (Box::new(move || Latch::set(&fire)), Latch::wait(latch))
    }
}

impl QueuedBackground {
    /// Ends every sleep begun so far, as if their time had come.
    pub fn fire_timers(&self) {
        for timer in self.timers.borrow_mut().drain(..) {
            Latch::set(&timer);
        }
    }
}

/// A header map from `(name, value)` pairs, for decision tables.
pub fn header_map(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}

/// Workers KV as a sorted map; `failing` makes every call fail, and `ops`
/// counts the calls made.
#[derive(Clone, Default)]
pub struct MemoryKv {
    pub entries: Rc<RefCell<std::collections::BTreeMap<String, (String, String)>>>,
    pub failing: Rc<RefCell<bool>>,
    pub ops: Rc<RefCell<usize>>,
}

impl MemoryKv {
    fn check(&self) -> Result<(), PlatformError> {
        *self.ops.borrow_mut() += 1;
        match *self.failing.borrow() {
            true => Err(PlatformError("KV is down".into())),
            false => Ok(()),
        }
    }
}

impl crate::platform::Kv for MemoryKv {
    async fn list(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<crate::platform::KvList, PlatformError> {
        self.check()?;
        let entries = self.entries.borrow();
        let matching: Vec<_> = entries
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        Ok(crate::platform::KvList {
            complete: matching.len() <= limit as usize,
            keys: matching
                .into_iter()
                .take(limit as usize)
                .map(|(name, (_, metadata))| crate::platform::KvKey {
                    name: name.clone(),
                    metadata: Some(metadata.clone()),
                })
                .collect(),
        })
    }
    async fn get(&self, key: &str) -> Result<Option<String>, PlatformError> {
        self.check()?;
        Ok(self.entries.borrow().get(key).map(|(v, _)| v.clone()))
    }
    async fn put(
        &self,
        key: &str,
        value: &str,
        metadata: &str,
        ttl: u64,
    ) -> Result<(), PlatformError> {
        self.check()?;
        assert!(
            metadata.len() <= 1024,
            "KV refuses metadata over 1,024 bytes"
        );
        assert!(ttl >= 60, "KV refuses an expiration TTL under 60 s");
        self.entries
            .borrow_mut()
            .insert(key.to_string(), (value.to_string(), metadata.to_string()));
        Ok(())
    }
}
