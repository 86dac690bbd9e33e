//! edge-cache: an RFC 9111 shared HTTP cache that runs as a Cloudflare Worker.
//!
//! The core (every module but `edge`) knows HTTP through the `http` crate,
//! takes time as a value, and reaches storage, the origin and background
//! work through the traits in [`platform`]; it builds and is tested natively.
//! `edge` binds those traits to the Workers runtime and is the only code that
//! touches `worker` or JS types. This file only wires the two together.

pub mod admin;
pub mod cache_control;
pub mod client;
pub mod conditional;
pub mod config;
pub mod cookies;
pub mod device;
pub mod esi;
pub mod flight;
pub mod headers;
pub mod heads;
pub mod hot_tier;
pub mod key;
pub mod lru;
pub mod meta;
pub mod normalize;
pub mod platform;
pub mod policy;
pub mod proxy;
pub mod purge;
pub mod range;
pub mod stale;
pub mod status;
pub mod variance;

#[cfg(test)]
mod memory;

#[cfg(target_arch = "wasm32")]
mod edge;

/// The fetch handler, exported by hand rather than through
/// `#[worker::event(fetch)]`, whose `future_to_promise` runs every request on
/// one queue (see `edge::task` for why that breaks coalesced requests). It
/// takes and returns `web_sys` types: with `worker::Request`/`Response` the
/// glue would rebuild every response once more, which costs the hit path ~15%.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fetch(
    request: web_sys::Request,
    env: worker::Env,
    ctx: worker_sys::Context,
) -> js_sys::Promise {
    edge::fetch(request, env, ctx)
}
