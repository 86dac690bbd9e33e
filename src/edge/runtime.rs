//! The platform traits on Workers: the Cache API, `fetch` (or the static-assets
//! binding for the demo origin), and `wait_until` with the console.

use super::body::EdgeBody;
use super::convert::{
    forget_head, headers_to_js, response_from_js, response_to_js, stored_from_js,
};
use super::task::settled;
use crate::config::OriginBase;
use crate::platform::{Background, Origin, OriginError, PlatformError, Storage};
use http::{Method, Request, Response};
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use worker_sys::ext::CacheStorageExt;

/// `caches.default`, called through `web_sys` so that a hit's response
/// object is used as it is. Keys are the storage URLs from [`crate::key`].
#[derive(Clone, Copy)]
pub struct EdgeStorage;

thread_local! {
    /// `caches.default`, found once per isolate: the same object for every
    /// request, which saved three crossings a lookup.
    static DEFAULT_CACHE: std::cell::OnceCell<web_sys::Cache> = const { std::cell::OnceCell::new() };
}

fn default_cache() -> Result<web_sys::Cache, PlatformError> {
    DEFAULT_CACHE.with(|found| {
        if let Some(cache) = found.get() {
            return Ok(cache.clone());
        }
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let caches = global
            .caches()
            .map_err(|e| PlatformError(format!("no Cache API: {e:?}")))?;
        Ok(found.get_or_init(|| caches.default()).clone())
    })
}

async fn settle(promise: js_sys::Promise, what: &str) -> Result<JsValue, PlatformError> {
    settled(promise)
        .await
        .map_err(|e| PlatformError(format!("{what}: {e:?}")))
}

impl Storage<EdgeBody> for EdgeStorage {
    async fn get(&self, url: &str) -> Result<Option<Response<EdgeBody>>, PlatformError> {
        let found = settle(default_cache()?.match_with_str(url), "cache match").await?;
        Ok(found
            .dyn_into::<web_sys::Response>()
            .ok()
            .map(|stored| stored_from_js(url, stored)))
    }

    async fn put(&self, url: &str, response: Response<EdgeBody>) -> Result<(), PlatformError> {
        forget_head(url);
        let js = response_to_js(response).map_err(|e| PlatformError(format!("cache put: {e}")))?;
        settle(default_cache()?.put_with_str(url, &js), "cache put")
            .await
            .map(drop)
    }

    async fn delete(&self, url: &str) -> Result<bool, PlatformError> {
        forget_head(url);
        let deleted = settle(default_cache()?.delete_with_str(url), "cache delete").await?;
        Ok(deleted.as_bool().unwrap_or(false))
    }
}

/// Where misses go.
#[derive(Clone)]
pub enum OriginTarget {
    /// `ORIGIN`: a URL the request path is appended to.
    Url(OriginBase),
    /// The bundled demo site, through the static-assets binding.
    Assets(worker_sys::Fetcher),
}

/// The origin, with the time it gets to answer.
#[derive(Clone)]
pub struct EdgeOrigin {
    pub target: OriginTarget,
    pub timeout_ms: u32,
}

impl Origin<EdgeBody> for EdgeOrigin {
    async fn fetch(&self, request: Request<EdgeBody>) -> Result<Response<EdgeBody>, OriginError> {
        let unreachable = |what: String| OriginError::Unreachable(what);
        let url = match &self.target {
            OriginTarget::Url(base) => base.url_for(request.uri()),
            OriginTarget::Assets(_) => request.uri().to_string(),
        };
        let (mut parts, body) = request.into_parts();
        // The URL says which host to reach; the client's Host is not the origin's.
        parts.headers.remove(http::header::HOST);
        let init = web_sys::RequestInit::new();
        init.set_method(parts.method.as_str());
        let headers = headers_to_js(&parts.headers)
            .map_err(|e| unreachable(format!("request headers: {e}")))?;
        init.set_headers(&headers);
        // A proxy passes redirects on; it does not follow them.
        init.set_redirect(web_sys::RequestRedirect::Manual);
        // ORIGIN_TIMEOUT is for the response's head: a signal with a timeout
        // would also cut a body still streaming when it fires.
        let abort = web_sys::AbortController::new()
            .map_err(|e| unreachable(format!("abort controller: {e:?}")))?;
        init.set_signal(Some(&abort.signal()));
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            match body.unstored() {
                EdgeBody::Empty => {}
                EdgeBody::Stored(_) => unreachable!("unstored above"),
                EdgeBody::Bytes(mut b) => init.set_body_opt_u8_slice(Some(&mut b)),
                EdgeBody::Stream(s) => init.set_body_opt_readable_stream(Some(&s)),
                EdgeBody::Buffer(b) => init.set_body(&b),
            }
        }
        // The origin's bytes as they are, not decoded: `Content-Length`
        // then counts what arrives, the stored body is the one its `ETag`
        // names, and ranges cut the same bytes the origin would. (By default
        // fetch decodes gzip and br but keeps the encoded length.) workerd
        // reads this option from fetch's init only, not from a Request's.
        set_manual(&init, Manual::EncodeResponseBody);
        let promise = match &self.target {
            OriginTarget::Url(_) => js_sys::global()
                .unchecked_into::<web_sys::WorkerGlobalScope>()
                .fetch_with_str_and_init(&url, &init),
            OriginTarget::Assets(assets) => assets
                .fetch_with_str_and_init(&url, &init)
                .map_err(|e| unreachable(format!("assets binding: {e:?}")))?,
        };
        let deadline = timer(self.timeout_ms);
        let first = js_sys::Promise::race(&js_sys::Array::of2(&promise, &deadline));
        match settled(first).await {
            // The timer resolves with `undefined`; fetch with a Response.
            Ok(r) if r.is_undefined() => {
                abort.abort();
                Err(OriginError::TimedOut)
            }
            Ok(r) => Ok(response_from_js(&r.unchecked_into())),
            Err(e) => Err(unreachable(format!("fetching {url}: {e:?}"))),
        }
    }
}

/// A promise resolved with `undefined` after `ms` milliseconds.
pub fn timer(ms: u32) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| {
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        // Fails only without a global setTimeout, which workerd always has.
        let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    })
}

/// The init options `web_sys` has no setters for, each set to `"manual"`.
#[derive(Clone, Copy)]
pub enum Manual {
    /// `Response` init: send the body as it is (`encodeBody`).
    EncodeBody,
    /// `fetch` init: hand back the body as the origin sent it (`encodeResponseBody`).
    EncodeResponseBody,
}

thread_local! {
    /// The strings, made once per isolate: every response sets one.
    static MANUAL: [JsValue; 3] = [
        JsValue::from_str("encodeBody"),
        JsValue::from_str("encodeResponseBody"),
        JsValue::from_str("manual"),
    ];
}

/// Sets `option: "manual"` on an init object.
pub fn set_manual(init: &JsValue, option: Manual) {
    MANUAL.with(|[body, response_body, manual]| {
        let name = match option {
            Manual::EncodeBody => body,
            Manual::EncodeResponseBody => response_body,
        };
        // Only fails on a frozen object or a throwing setter, neither of which an init is.
        let _ = js_sys::Reflect::set(init, name, manual);
    });
}

/// The longest a fired signal goes unnoticed by its waiter.
const SIGNAL_POLL_MAX_MS: u64 = 16;

/// `ctx.wait_until` for background work; the console for warnings.
#[derive(Clone)]
pub struct EdgeBackground {
    pub ctx: Rc<worker_sys::Context>,
    /// The incoming request's: aborted when its client goes away.
    pub client_gone: web_sys::AbortSignal,
}

impl Background for EdgeBackground {
    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        let promise = super::task::promise(async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        });
        // Fails only on a context that is not a fetch event's.
        let _ = self.ctx.wait_until(&promise);
    }

    fn spawn_for_client(&self, task: impl Future<Output = ()> + 'static) {
        let task = async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        };
        let promise = super::task::promise_until_aborted(task, &self.client_gone);
        let _ = self.ctx.wait_until(&promise);
    }

    fn warn(&self, message: &str) {
        worker::console_warn!("edge-cache: {message}");
    }

    /// The timer is set at the first poll: a bound `within` never reaches
    /// (a fragment served from memory at once) costs no `setTimeout`.
    // Not `async fn`: the future must not borrow `self`.
    #[allow(clippy::manual_async_fn)]
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> + 'static {
        async move {
            let promise = timer(u32::try_from(ms).unwrap_or(u32::MAX));
            let _ = settled(promise).await;
        }
    }

    /// A flag the waiting request polls on timers of its own, 1 ms after
    /// it starts waiting, then at doubling intervals up to
    /// [`SIGNAL_POLL_MAX_MS`]. A promise resolved by whoever fires it would
    /// wake the waiter sooner, but workerd runs that continuation with the
    /// resolving request's async context: under load (a stampede after a
    /// minute of composed pages) every waiter's cache read or fetch then
    /// failed with "Cannot perform I/O on behalf of a different request
    /// (I/O type: SpanParent)". A timer's continuation is always its
    /// maker's.
    fn signal(&self) -> (Box<dyn FnOnce()>, impl Future<Output = ()> + 'static) {
        let fired = Rc::new(std::cell::Cell::new(false));
        let fire = fired.clone();
        let background = self.clone();
        (Box::new(move || fire.set(true)), async move {
            let mut interval = 1;
            while !fired.get() {
                background.sleep(interval).await;
                interval = (interval * 2).min(SIGNAL_POLL_MAX_MS);
            }
        })
    }
}

/// Workers KV (`CACHE_KV`): the binding's own methods, called directly.
/// `worker::kv` goes through `serde_wasm_bindgen` and `serde_json::Value`,
/// which cost more wasm than the rest of purge, and six property reads to
/// bind a store on every request; a listing here crosses once, as JSON.
#[derive(Clone)]
pub struct EdgeKv(pub js_sys::Object);

/// A KV listing as `JSON.stringify` renders it.
#[derive(serde::Deserialize)]
struct Listing {
    keys: Vec<ListedKey>,
    list_complete: bool,
}

#[derive(serde::Deserialize)]
struct ListedKey {
    name: String,
    #[serde(default)]
    metadata: Option<Box<serde_json::value::RawValue>>,
}

impl EdgeKv {
    /// Calls `method` on the binding and waits for its promise.
    async fn call(&self, method: &str, args: &[JsValue]) -> Result<JsValue, PlatformError> {
        let err = |e: JsValue| PlatformError(format!("KV {method}: {e:?}"));
        let function: js_sys::Function = js_sys::Reflect::get(&self.0, &JsValue::from_str(method))
            .map_err(err)?
            .dyn_into()
            .map_err(err)?;
        let args: js_sys::Array = args.iter().collect();
        let promise: js_sys::Promise = function
            .apply(&self.0, &args)
            .map_err(err)?
            .dyn_into()
            .map_err(err)?;
        settled(promise).await.map_err(err)
    }
}

/// An object with these properties.
fn object(properties: &[(&str, JsValue)]) -> js_sys::Object {
    let object = js_sys::Object::new();
    for (name, value) in properties {
        // Only fails on a frozen object, which a new one is not.
        let _ = js_sys::Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object
}

impl crate::platform::Kv for EdgeKv {
    async fn list(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<crate::platform::KvList, PlatformError> {
        let options = object(&[("prefix", prefix.into()), ("limit", limit.into())]);
        let listing = self.call("list", &[options.into()]).await?;
        let json = js_sys::JSON::stringify(&listing)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        let listing: Listing =
            serde_json::from_str(&json).map_err(|e| PlatformError(format!("KV list: {e}")))?;
        Ok(crate::platform::KvList {
            complete: listing.list_complete,
            keys: listing
                .keys
                .into_iter()
                .map(|k| crate::platform::KvKey {
                    name: k.name,
                    metadata: k.metadata.map(|m| m.get().to_string()),
                })
                .collect(),
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>, PlatformError> {
        Ok(self.call("get", &[key.into()]).await?.as_string())
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        metadata: &str,
        ttl_secs: u64,
    ) -> Result<(), PlatformError> {
        let metadata = js_sys::JSON::parse(metadata)
            .map_err(|e| PlatformError(format!("KV metadata: {e:?}")))?;
        let options = object(&[
            ("metadata", metadata),
            ("expirationTtl", JsValue::from_f64(ttl_secs as f64)),
        ]);
        self.call("put", &[key.into(), value.into(), options.into()])
            .await
            .map(drop)
    }
}
