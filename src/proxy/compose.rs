//! ESI on the request path: a response marked for processing
//! (`Surrogate-Control: content="ESI/1.0"`) is stored as the template it
//! is, and composed for each request from its fragments, each of which goes
//! through the whole cache pipeline as a request of its own: its own key,
//! this client's device and country, freshness, stale content, coalescing,
//! tags and purges. Only a fragment's body reaches the page: its
//! `Set-Cookie` and other fields never reach the client.
//!
//! Bounds, each with its outcome: fragments nest [`MAX_DEPTH`] deep (a
//! deeper template fails its include); a fragment that includes a page it
//! is part of is refused (a loop); a page tree holds at most
//! [`MAX_INCLUDES`] include elements (the rest are refused); a fragment is
//! at most [`MAX_FRAGMENT_BYTES`], a template [`MAX_TEMPLATE_BYTES`]; each
//! fetch takes at most `ORIGIN_TIMEOUT`. Templates and fragments are read
//! into wasm memory, which never shrinks, so the compositions of an isolate
//! hold at most [`super::budget::MAX_COMPOSING_BYTES`] at once: a page that would pass it
//! is a 503 before its fragments are fetched, a fragment that would is an
//! include error. A refused or failed include takes
//! its `alt`, then `onerror`, then its `esi:try`, as [`crate::esi::compose`]
//! says.

use super::budget::Held;
use super::*;
use crate::esi::compose::{Composer, Fetch, Fetched, Fragment, Lifetime, Resolve};
use crate::esi::parse::{parse, Include};
use crate::esi::vars::Variables;
use crate::platform::within;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const MAX_DEPTH: u8 = 3;
pub const MAX_INCLUDES: usize = 256;
pub const MAX_FRAGMENT_BYTES: u64 = 512 * 1024;
pub const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;
/// A composition and what it holds, released together.
struct Composing {
    composer: Composer,
    _held: Rc<Held>,
}

impl crate::platform::Chunks for Composing {
    fn next_chunk(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Result<Vec<u8>, String>>> + '_>>
    {
        crate::platform::Chunks::next_chunk(&mut self.composer)
    }
}

/// How long the page's head waits for its fragments' heads: what is known
/// by then decides the client's `Cache-Control`, and a fragment not yet
/// known counts as `no-store`, so a slow fragment delays nothing.
const HEAD_WAIT_MS: u64 = 50;

/// Marks a delivered response as an ESI template to compose.
#[derive(Debug, Clone, Copy)]
pub(super) struct EsiTemplate;

/// Where a fragment request stands in its page's composition (a request
/// extension, hence `Arc`: extensions must be `Send`).
#[derive(Debug, Clone)]
pub(super) struct EsiContext {
    depth: u8,
    /// The pages and fragments above it (normalised URLs): a loop guard.
    ancestors: Arc<Vec<String>>,
    /// Include elements the page tree may still hold.
    budget: Arc<AtomicUsize>,
}

/// What composition needs of the page request, taken before the pipeline
/// changes it.
pub(super) struct PageRequest {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub client: Client,
    pub context: Option<EsiContext>,
}

/// Whether a response is an ESI template to compose: its `Surrogate-Control`
/// asks for `ESI/1.0` processing, and its status has a whole body (an error
/// page may be a template too; a 206 is a piece of one, see
/// [`marks_template`]).
pub(super) fn is_template(status: StatusCode, headers: &HeaderMap) -> bool {
    !matches!(status.as_u16(), 100..=199 | 204 | 205 | 206 | 304) && marks_template(headers)
}

/// Whether `Surrogate-Control` asks for `ESI/1.0` processing.
pub(super) fn marks_template(headers: &HeaderMap) -> bool {
    Directives::from_headers(headers, crate::policy::SURROGATE_CONTROL)
        .and_then(|d| {
            d.argument("content")
                .map(|c| c.to_ascii_uppercase().contains("ESI/1.0"))
        })
        .unwrap_or(false)
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Composes the template `response` for `page`.
    pub(super) async fn compose(
        &self,
        response: Response<B>,
        page: PageRequest,
        method: &Method,
        country: &RuntimeCountry,
        now: SystemTime,
    ) -> Response<B> {
        let (mut parts, body) = response.into_parts();
        let depth = page.context.as_ref().map_or(0, |c| c.depth);
        let fail = |why: &str| {
            self.background.warn(&format!("ESI: {why}"));
            let status = CacheStatus::new(Phase::Local).with_detail("esi-error");
            let text = format!("edge-cache: the page could not be composed: {why}\n");
            self.local(StatusCode::BAD_GATEWAY, &text, status, now)
        };
        if depth >= MAX_DEPTH {
            return fail(&format!("fragments nest deeper than {MAX_DEPTH}"));
        }
        let encoded = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return fail("the template is content-encoded; ESI templates must be sent unencoded");
        }
        for name in [
            header::CONTENT_LENGTH,
            header::ETAG,
            header::LAST_MODIFIED,
            header::ACCEPT_RANGES,
            header::AGE,
        ] {
            // The template's, not the page's (RFC 9110 §8.8: validators
            // name a representation; this one is made per request).
            parts.headers.remove(name);
        }
        let page_lifetime =
            Lifetime::of(Directives::from_headers(&parts.headers, header::CACHE_CONTROL).as_ref());
        if *method == Method::HEAD {
            // Nothing is fetched for a HEAD: its fragments are unknown.
            let lifetime = page_lifetime.and(Lifetime::UNKNOWN);
            let value = HeaderValue::from_str(&lifetime.header()).expect("ASCII");
            parts.headers.insert(header::CACHE_CONTROL, value);
            return Response::from_parts(parts, B::empty());
        }
        let template = match body.bytes(MAX_TEMPLATE_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return fail(&format!("the template is over {MAX_TEMPLATE_BYTES} bytes")),
            Err(e) => return fail(&format!("the template could not be read: {e}")),
        };
        // Longer than the fetches of three nested levels may take.
        let expires_ms = 4 * 1000 * u64::from(self.config.origin_timeout_secs);
        let held = Rc::new(Held::new(now, expires_ms));
        if !held.take(2 * template.len() as u64, now) {
            self.background
                .warn("ESI: the isolate is composing as much as it may hold; a page was refused");
            let status = CacheStatus::new(Phase::Local).with_detail("esi-busy");
            let text = "edge-cache: too many pages are being composed at once; try again\n";
            return self.local(StatusCode::SERVICE_UNAVAILABLE, text, status, now);
        }
        let nodes = parse(&template);
        let variables = Variables {
            host: page
                .uri
                .authority()
                .map_or(String::new(), |a| a.as_str().to_string()),
            query: page.uri.query().unwrap_or("").to_string(),
            cookie: page
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join("; "),
            device: page.client.device.as_str(),
            country: page.client.country(&self.config.client),
        };
        let page_url = normalize(&page.uri, &self.config.tracking).map(|u| u.uri().to_string());
        let context = match page.context {
            Some(parent) => parent,
            None => EsiContext {
                depth: 0,
                ancestors: Arc::new(page_url.into_iter().collect()),
                budget: Arc::new(AtomicUsize::new(MAX_INCLUDES)),
            },
        };
        let mut resolver = Resolver {
            proxy: self,
            page: &page.uri,
            headers: fragment_headers(&page.headers),
            context: &context,
            country: country.clone(),
            now,
            seen: HashMap::new(),
            fetches: Vec::new(),
            held: held.clone(),
        };
        let mut composer = Composer::new(&template, &nodes, &variables, &mut resolver);
        composer.set_fetches(std::mem::take(&mut resolver.fetches));
        composer
            .settle_within(self.background.sleep(HEAD_WAIT_MS))
            .await;
        if let Some(why) = composer.failed() {
            return fail(&why);
        }
        let (known, fragments, hits) = composer.known();
        // Made for this request (its variables, its device's and country's
        // fragments, its cookies): a cache downstream may keep it for this
        // client only, never share it.
        let lifetime = Lifetime {
            private: true,
            ..page_lifetime.and(known)
        };
        let value = HeaderValue::from_str(&lifetime.header()).expect("ASCII");
        parts.headers.insert(header::CACHE_CONTROL, value);
        describe(&mut parts.headers, fragments, hits);
        let composing = Composing {
            composer,
            _held: held,
        };
        let body = B::streamed(Box::new(composing), &self.background).await;
        Response::from_parts(parts, body)
    }
}

/// Adds how the page was built to this cache's `Cache-Status` member:
/// `esi-fragments` (distinct fragments) and `esi-hits` (served from cache
/// by the time the head was sent).
fn describe(headers: &mut HeaderMap, fragments: usize, hits: usize) {
    let members: Vec<HeaderValue> = headers
        .get_all(crate::status::CACHE_STATUS)
        .iter()
        .cloned()
        .collect();
    let Some((last, earlier)) = members.split_last() else {
        return;
    };
    let text = format!(
        "{}; esi-fragments={fragments}; esi-hits={hits}",
        last.to_str().unwrap_or("")
    );
    headers.remove(crate::status::CACHE_STATUS);
    for member in earlier {
        headers.append(crate::status::CACHE_STATUS, member.clone());
    }
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.append(crate::status::CACHE_STATUS, value);
    }
}

/// The page request's fields a fragment request carries: the client's
/// own (agent, cookies, language, country), without those that only make
/// sense for the page (its range, preconditions, body framing) or would
/// change how a shared fragment is stored (its cache directives).
fn fragment_headers(page: &HeaderMap) -> HeaderMap {
    let mut headers = page.clone();
    conditional::strip_preconditions(&mut headers);
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        header::TRANSFER_ENCODING,
        header::CACHE_CONTROL,
        header::PRAGMA,
    ] {
        headers.remove(name);
    }
    // A fragment's bytes go into the page as they are: they must not be
    // compressed (the page is encoded, if at all, as a whole).
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    headers
}

/// Turns includes into fetches: relative URLs resolved against the page,
/// other hosts refused, loops refused, the page tree's budget spent, and
/// each distinct include fetched once.
struct Resolver<'a, B, S, O, W, K> {
    proxy: &'a Proxy<B, S, O, W, K>,
    page: &'a Uri,
    headers: HeaderMap,
    context: &'a EsiContext,
    /// The page's runtime country, read once for all its fragments.
    country: RuntimeCountry,
    now: SystemTime,
    seen: HashMap<(String, Option<String>), usize>,
    fetches: Vec<Fetch>,
    held: Rc<Held>,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Resolver<'_, B, S, O, W, K> {
    /// An include's URL, absolute, on a host it may name.
    fn target(&self, url: &str) -> Result<Uri, String> {
        let page = self.page;
        let (scheme, authority) = (
            page.scheme_str().unwrap_or("https"),
            page.authority().map_or("", |a| a.as_str()),
        );
        let absolute = if url.starts_with("//") {
            format!("{scheme}:{url}")
        } else if url.starts_with('/') {
            format!("{scheme}://{authority}{url}")
        } else if url.contains("://") {
            url.to_string()
        } else {
            // Relative to the page's directory.
            let path = page.path();
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{scheme}://{authority}{dir}{url}")
        };
        let uri: Uri = absolute
            .parse()
            .map_err(|_| format!("include {url:?} is not a URL"))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let origin_host = match &self.proxy.config.origin {
            crate::config::OriginConfig::Url(base) => base.authority().to_ascii_lowercase(),
            crate::config::OriginConfig::DemoAssets => String::new(),
        };
        let allowed = host == authority.to_ascii_lowercase()
            || host == origin_host
            || self.proxy.config.esi_allowed_hosts.contains(&host);
        if !matches!(uri.scheme_str(), Some("http" | "https")) || !allowed {
            return Err(format!(
                "include of {url:?} refused: not this site's host (see ESI_ALLOWED_HOSTS)"
            ));
        }
        // The admin routes are never the origin's, in any spelling: an
        // include of them would carry the client's credentials there.
        if crate::admin::is_admin_path(uri.path(), &self.proxy.config.admin_path) {
            return Err(format!("include of {url:?} refused: an admin route"));
        }
        let key = normalize(&uri, &self.proxy.config.tracking).map(|u| u.uri().to_string());
        if key
            .as_ref()
            .is_some_and(|k| self.context.ancestors.contains(k))
        {
            return Err(format!("include of {url:?} refused: it includes itself"));
        }
        Ok(uri)
    }
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Resolve
    for Resolver<'_, B, S, O, W, K>
{
    fn resolve(&mut self, include: &Include) -> Result<usize, String> {
        let left = self.context.budget.load(Ordering::Relaxed);
        if left == 0 {
            return Err(format!("more than {MAX_INCLUDES} includes in one page"));
        }
        self.context.budget.store(left - 1, Ordering::Relaxed);
        let id = (include.src.clone(), include.alt.clone());
        if let Some(index) = self.seen.get(&id) {
            return Ok(*index);
        }
        let src = self.target(&include.src);
        let alt = include.alt.as_deref().map(|alt| self.target(alt));
        let targets: Vec<Uri> = [Some(src.clone()), alt.clone()]
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .collect();
        if targets.is_empty() {
            return Err(src.err().or(alt.and_then(Result::err)).unwrap_or_default());
        }
        let proxy = self.proxy.clone();
        let headers = self.headers.clone();
        let country = self.country.clone();
        let (now, context, held) = (self.now, self.context.clone(), self.held.clone());
        let fetch = async move {
            proxy
                .fragment(targets, headers, country, context, held, now)
                .await
        };
        self.fetches.push(Box::pin(fetch));
        let index = self.fetches.len() - 1;
        self.seen.insert(id, index);
        Ok(index)
    }
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Fetches one fragment through the pipeline: `targets` is its `src`,
    /// then its `alt`; the first 2xx answers.
    async fn fragment(
        &self,
        targets: Vec<Uri>,
        headers: HeaderMap,
        country: RuntimeCountry,
        context: EsiContext,
        held: Rc<Held>,
        now: SystemTime,
    ) -> Fetched {
        let mut failure = String::new();
        for target in targets {
            let mut request = Request::new(B::empty());
            *request.uri_mut() = target.clone();
            *request.headers_mut() = headers.clone();
            let mut ancestors = (*context.ancestors).clone();
            if let Some(key) = normalize(&target, &self.config.tracking) {
                ancestors.push(key.uri().to_string());
            }
            request.extensions_mut().insert(EsiContext {
                depth: context.depth + 1,
                ancestors: Arc::new(ancestors),
                budget: context.budget.clone(),
            });
            let ms = u64::from(self.config.origin_timeout_secs) * 1000;
            let fetch = Box::pin(self.proxied(request, &country, now));
            let Some(response) = within(fetch, &self.background, ms).await else {
                failure = format!("{target} did not answer in time");
                continue;
            };
            if !response.status().is_success() {
                failure = format!("{target} answered {}", response.status().as_u16());
                continue;
            }
            if response
                .headers()
                .get(header::CONTENT_ENCODING)
                .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
            {
                failure = format!("{target} came back content-encoded");
                continue;
            }
            let lifetime = Lifetime::of(
                Directives::from_headers(response.headers(), header::CACHE_CONTROL).as_ref(),
            );
            let hit =
                crate::status::last_member(response.headers()).is_some_and(|v| v.contains("; hit"));
            match response.into_body().bytes(MAX_FRAGMENT_BYTES).await {
                Ok(Some(body)) if !held.take(body.len() as u64, now) => {
                    failure = "the isolate is composing as much as it may hold".into();
                }
                Ok(Some(body)) => {
                    return Ok(Fragment {
                        body: Rc::new(body),
                        lifetime,
                        hit,
                    })
                }
                Ok(None) => failure = format!("{target} is over {MAX_FRAGMENT_BYTES} bytes"),
                Err(e) => failure = format!("{target} broke off: {e}"),
            }
        }
        Err(failure)
    }
}
