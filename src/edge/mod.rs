//! The thin edge: binds the core's traits to the Workers runtime.
//!
//! This is the only module that touches `worker`, `js_sys` or `web_sys`.
//! Per request it reads the configuration, takes the time once, converts the
//! request to `http` types, runs [`crate::proxy::Proxy`], and converts back.

mod body;
mod convert;
mod runtime;
mod task;

use crate::client::RuntimeCountry;
use crate::config::{Config, OriginConfig};
use crate::flight::Flights;
use crate::hot_tier::{HotTier, Tiered};
use crate::proxy::Purges;
use crate::proxy::{local_response, Proxy};
use crate::purge::Memo;
use crate::status::{CacheStatus, Phase};
use body::EdgeBody;
use http::StatusCode;
use runtime::{EdgeBackground, EdgeKv, EdgeOrigin, EdgeStorage, OriginTarget};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use wasm_bindgen::JsCast;
use worker::Env;
use worker_sys::ext::RequestExt;

thread_local! {
    /// Origin fetches in flight in this isolate (plain data: keys and
    /// wake-ups), shared by the requests it serves at once.
    static FLIGHTS: Flights = Flights::default();
    /// The configuration, read from `env` once per isolate: an isolate runs
    /// one version of the worker, whose vars and secrets do not change, and
    /// reading them costs a JS crossing each on every hit otherwise.
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    /// The purge records as this isolate last read them (plain data).
    static PURGES: Rc<RefCell<Memo>> = Rc::default();
    /// The in-isolate hot tier, made at the first request with its bound.
    static HOT: RefCell<Option<Rc<RefCell<HotTier<EdgeBody>>>>> = const { RefCell::new(None) };
    /// Whether this isolate has said that the Cache API does nothing here.
    static WARNED_INERT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The KV namespace binding that holds purge records.
const KV_BINDING: &str = "CACHE_KV";

/// The isolate's configuration; an invalid one is read (and reported) again
/// on every request, never kept.
fn config(env: &Env) -> Result<Rc<Config>, crate::config::ConfigError> {
    if let Some(config) = CONFIG.with_borrow(Option::clone) {
        return Ok(config);
    }
    let config = Rc::new(Config::from_lookup(|name| lookup(env, name))?);
    CONFIG.set(Some(config.clone()));
    Ok(config)
}

/// Handles one fetch event: a promise of its response. A failure to build
/// one is logged and answered with a 500.
pub fn fetch(request: web_sys::Request, env: Env, ctx: worker_sys::Context) -> js_sys::Promise {
    let signal = request.signal();
    let client_gone = signal.clone();
    let handled = async move {
        match handle(request, client_gone, env, ctx).await {
            Ok(response) => Ok(response.into()),
            Err(e) => {
                worker::console_error!("edge-cache: {e}");
                let init = web_sys::ResponseInit::new();
                init.set_status(500);
                let text = Some("edge-cache: internal error\n");
                let response = web_sys::Response::new_with_opt_str_and_init(text, &init)?;
                Ok(response.into())
            }
        }
    };
    // A client that goes away drops the work done for it (see `task`).
    task::promise_until_aborted(handled, &signal)
}

async fn handle(
    request: web_sys::Request,
    client_gone: web_sys::AbortSignal,
    env: Env,
    ctx: worker_sys::Context,
) -> worker::Result<web_sys::Response> {
    console_error_panic_hook::set_once();
    let now = UNIX_EPOCH + Duration::from_millis(js_sys::Date::now() as u64);
    let config = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!("edge-cache: {e}");
            // The configured cache name may be what is wrong: use the default.
            let text = format!("edge-cache: {e}\n");
            let status = CacheStatus::new(Phase::Local).with_detail("config-error");
            let code = StatusCode::INTERNAL_SERVER_ERROR;
            return convert::response_to_js(local_response(
                code,
                &text,
                &status,
                "edge-cache",
                now,
            ));
        }
    };
    let target = match &config.origin {
        OriginConfig::Url(base) => OriginTarget::Url(base.clone()),
        OriginConfig::DemoAssets => OriginTarget::Assets(env.assets("ASSETS")?.into_rpc()),
    };
    let origin = EdgeOrigin {
        target,
        timeout_ms: config.origin_timeout_secs * 1000,
    };
    let background = EdgeBackground {
        ctx: Rc::new(ctx),
        client_gone,
    };
    let flights = FLIGHTS.with(Flights::clone);
    let purges = Purges {
        // Without the binding nothing is ever purged (and the admin API says so).
        kv: kv_binding(&env),
        memo: PURGES.with(Rc::clone),
    };
    let hot = HOT.with_borrow_mut(|hot| {
        hot.get_or_insert_with(|| Rc::new(RefCell::new(HotTier::new(config.hot_tier_bytes))))
            .clone()
    });
    let storage = Tiered {
        hot,
        inner: EdgeStorage,
        now: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    let proxy =
        Proxy::<EdgeBody, _, _, _, _>::new(storage, origin, background, config, flights, purges);
    let Ok(http_request) = convert::request_from_js(&request) else {
        // Only a URL past `http::Uri`'s 64 KB gets here (Cloudflare stops at ~16 KB).
        let status = CacheStatus::new(Phase::Local).with_detail("uri-too-long");
        let text = "edge-cache: the request URL is too long\n";
        let code = StatusCode::URI_TOO_LONG;
        let name = &proxy.config.cache_name;
        return convert::response_to_js(local_response(code, text, &status, name, now));
    };
    let host = http_request.uri().host().unwrap_or("");
    if !WARNED_INERT.get() && crate::platform::cache_api_inert(host) {
        WARNED_INERT.set(true);
        worker::console_warn!(
            "edge-cache: nothing is cached on {host}: the Cache API does nothing on *.workers.dev \
             (nor in dashboard previews or behind Cloudflare Access). Serve the worker from a \
             route or a custom domain (see README, Deploying)."
        );
    }
    // Read only if the core asks (see `RuntimeCountry`). The handle, not
    // the Fetch `clone()` of the request.
    let cf: web_sys::Request = Clone::clone(&request);
    let country = RuntimeCountry::new(move || cf.cf().and_then(|cf| cf.country().ok().flatten()));
    let response = proxy.handle(http_request, &country, now).await;
    convert::response_to_js(response)
}

/// The purge records' KV binding, found once per isolate (an isolate's
/// `env` does not change): two crossings a request otherwise.
fn kv_binding(env: &Env) -> Option<EdgeKv> {
    thread_local! {
        static KV: std::cell::OnceCell<Option<js_sys::Object>> = const { std::cell::OnceCell::new() };
    }
    KV.with(|kv| {
        kv.get_or_init(|| {
            js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(KV_BINDING))
                .ok()
                .and_then(|binding| binding.dyn_into::<js_sys::Object>().ok())
        })
        .clone()
        .map(EdgeKv)
    })
}

/// A `[vars]` value or a secret, by name: both are string properties of
/// `env`. One property read each; `env.var()` / `env.secret()` would build a
/// formatted error for every variable left at its default.
fn lookup(env: &Env, name: &str) -> Option<String> {
    js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name))
        .ok()?
        .as_string()
}
