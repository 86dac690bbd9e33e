//! The thin edge: binds the core's traits to the Workers runtime.
//!
//! This is the only module that touches `worker`, `js_sys` or `web_sys`.
//! Per request it reads the configuration, takes the time once, converts the
//! request to `http` types, runs [`crate::proxy::Proxy`], and converts back.

mod body;
mod convert;
mod runtime;

use crate::config::{Config, OriginConfig};
use crate::proxy::{Options, Proxy};
use body::EdgeBody;
use runtime::{EdgeBackground, EdgeOrigin, EdgeStorage, OriginTarget};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use worker::{Context, Env, Request, Response};

/// Handles one fetch event.
pub async fn handle(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    console_error_panic_hook::set_once();
    let config = match Config::from_lookup(|name| lookup(&env, name)) {
        Ok(c) => c,
        Err(e) => {
            worker::console_error!("edge-cache: {e}");
            let body = format!("edge-cache: {e}\n");
            let mut response = Response::error(body, 500)?;
            response
                .headers_mut()
                .set("cache-status", "edge-cache; detail=config-error")?;
            return Ok(response);
        }
    };
    let target = match &config.origin {
        OriginConfig::Url(base) => OriginTarget::Url(base.clone()),
        OriginConfig::DemoAssets => OriginTarget::Assets(env.assets("ASSETS")?),
    };
    let origin = EdgeOrigin {
        target,
        timeout_ms: config.origin_timeout_secs * 1000,
    };
    let proxy = Proxy::<EdgeBody, _, _, _>::new(
        EdgeStorage,
        origin,
        EdgeBackground(Rc::new(ctx)),
        Options::from(&config),
    );
    let now = UNIX_EPOCH + Duration::from_millis(js_sys::Date::now() as u64);
    let http_request = convert::request_from_js(request.inner())?;
    let response = proxy.handle(http_request, now).await;
    Ok(Response::from(convert::response_to_js(response)?))
}

/// A `[vars]` value or a secret, by name.
fn lookup(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|s| s.to_string()))
        .ok()
}
