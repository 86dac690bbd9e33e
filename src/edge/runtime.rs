//! The platform traits on Workers: the Cache API, `fetch` (or the static-assets
//! binding for the demo origin), and `wait_until` with the console.

use super::body::EdgeBody;
use super::convert::{headers_to_js, response_from_js, response_to_js};
use crate::config::OriginBase;
use crate::platform::{Background, Origin, OriginError, PlatformError, Storage};
use http::{Method, Request, Response};
use std::future::Future;
use std::rc::Rc;
use worker::{Cache, Context, Fetcher};

fn js_error(what: &str) -> impl Fn(worker::Error) -> PlatformError + '_ {
    move |e| PlatformError(format!("{what}: {e}"))
}

/// `caches.default`. Keys are the storage URLs from [`crate::key`].
#[derive(Clone, Copy)]
pub struct EdgeStorage;

impl Storage<EdgeBody> for EdgeStorage {
    async fn get(&self, url: &str) -> Result<Option<Response<EdgeBody>>, PlatformError> {
        let found = Cache::default()
            .get(url, false)
            .await
            .map_err(js_error("cache match"))?;
        Ok(found.map(|r| response_from_js(&web_sys::Response::from(r))))
    }

    async fn put(&self, url: &str, response: Response<EdgeBody>) -> Result<(), PlatformError> {
        let js = response_to_js(response).map_err(js_error("cache put"))?;
        Cache::default()
            .put(url, worker::Response::from(js))
            .await
            .map_err(js_error("cache put"))
    }

    async fn delete(&self, url: &str) -> Result<bool, PlatformError> {
        let outcome = Cache::default()
            .delete(url, false)
            .await
            .map_err(js_error("cache delete"))?;
        Ok(matches!(outcome, worker::CacheDeletionOutcome::Success))
    }
}

/// Where misses go.
pub enum OriginTarget {
    /// `ORIGIN`: a URL the request path is appended to.
    Url(OriginBase),
    /// The bundled demo site, through the static-assets binding.
    Assets(Fetcher),
}

/// The origin, with the time it gets to answer.
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
        init.set_headers_headers(&headers);
        // A proxy passes redirects on; it does not follow them.
        init.set_redirect(web_sys::RequestRedirect::Manual);
        let deadline = web_sys::AbortSignal::timeout_with_u32(self.timeout_ms);
        init.set_signal(Some(&deadline));
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            match body {
                EdgeBody::Empty => {}
                EdgeBody::Bytes(mut b) => init.set_body_opt_u8_slice(Some(&mut b)),
                EdgeBody::Stream(s) => init.set_body_opt_readable_stream(Some(&s)),
            }
        }
        let js_request = web_sys::Request::new_with_str_and_init(&url, &init)
            .map_err(|e| unreachable(format!("origin request for {url}: {e:?}")))?;
        let request = worker::Request::from(js_request);
        let response = match &self.target {
            OriginTarget::Url(_) => worker::Fetch::Request(request).send().await,
            OriginTarget::Assets(assets) => assets.fetch_request(request).await,
        };
        match response {
            Ok(r) => Ok(response_from_js(&web_sys::Response::from(r))),
            Err(_) if deadline.aborted() => Err(OriginError::TimedOut),
            Err(e) => Err(unreachable(format!("fetching {url}: {e}"))),
        }
    }
}

/// `ctx.wait_until` for background work; the console for warnings.
#[derive(Clone)]
pub struct EdgeBackground(pub Rc<Context>);

impl Background for EdgeBackground {
    fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.0.wait_until(task);
    }

    fn warn(&self, message: &str) {
        worker::console_warn!("edge-cache: {message}");
    }
}
