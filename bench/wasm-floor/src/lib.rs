//! The least a Rust/wasm worker can do for a Cache API hit: the bare JS
//! worker's `caches.default.match`, and the rebuild a cache must do (a new
//! `Response` around the stored body, `Age` and `Cache-Status` set), called
//! through wasm-bindgen and awaited with `wasm-bindgen-futures`. No key
//! normalisation, record, freshness or purge check: it measures what
//! crossing into wasm and back costs on this path, so that edge-cache's
//! Cache API hit can be told apart from it (see `../README.md`).
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    type Caches;
    #[wasm_bindgen(thread_local_v2, js_name = caches)]
    static CACHES: Caches;
    #[wasm_bindgen(method, getter, js_name = default)]
    fn default_cache(this: &Caches) -> web_sys::Cache;
}

/// The fetch handler: the bare worker's key scheme (`/__bare` + path).
#[wasm_bindgen]
pub fn fetch(request: web_sys::Request, env: JsValue, _ctx: JsValue) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let url = request.url();
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let path_at = url[after_scheme..]
            .find('/')
            .map_or(url.len(), |i| after_scheme + i);
        let key = format!("{}/__bare{}", &url[..path_at], &url[path_at..]);
        let cache = CACHES.with(|c| c.default_cache());
        let hit = JsFuture::from(cache.match_with_str(&key)).await?;
        if let Ok(hit) = hit.dyn_into::<web_sys::Response>() {
            let init = web_sys::ResponseInit::new();
            init.set_status(hit.status());
            init.set_headers(&hit.headers());
            let body = hit.body();
            let out =
                web_sys::Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init)?;
            out.headers().set("age", "1")?;
            out.headers().set("cache-status", "wasm-floor; hit")?;
            out.headers().delete("cache-tag")?;
            return Ok(out.into());
        }
        // A miss (the benchmark's warm-up): fetch, store, answer.
        let origin = js_sys::Reflect::get(&env, &"ORIGIN".into())?
            .as_string()
            .unwrap_or_default();
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let fetched = global.fetch_with_str(&format!("{origin}{}", &url[path_at..]));
        let response: web_sys::Response = JsFuture::from(fetched).await?.unchecked_into();
        JsFuture::from(cache.put_with_str(&key, &response.clone()?)).await?;
        Ok(response.into())
    })
}
