//! The request's path through the cache.
//!
//! ```text
//!  GET/HEAD ──lookup──▶ Found ──fresh──▶ Hit
//!     │                   │ stale / no-cache
//!     │                   ▼
//!     │               Stale ──validators──▶ conditional fetch ──304──▶ refreshed, served
//!     │                   │                       └── 200/other ──▶ fill
//!     │                   └── none ─────────────────────────────────▶ fill
//!     ├──────────▶ UriMiss / VaryMiss ──────────────────────────────▶ fill
//!     └── Authorization on an entry that may not answer it ─▶ Bypass ▶ fill
//!  other methods ──▶ Method: forward; unsafe + success invalidates (§4.4)
//! ```
//! Each end state is a [`Phase`] and is reported in `Cache-Status`. Time is
//! an argument (`now`), read once per request by the edge.

use crate::cache_control::Directives;
use crate::client::{Client, ClientOptions};
use crate::conditional;
use crate::config::Config;
use crate::cookies;
use crate::cookies::BypassCookies;
use crate::headers::{prepare_response, strip_hop_by_hop, strip_unkeyed_inputs};
use crate::key::{CacheKey, PathRules, UserAgentKey};
use crate::meta::{self, EntryMeta, Freshness, Record, VaryMarker};
use crate::normalize::{normalize, TrackingParams};
use crate::platform::{Background, Body, Origin, OriginError, PlatformError, Storage};
use crate::policy::{storability, PolicyOptions, Storable};
use crate::range::{self, RangeResponse};
use crate::status::{CacheStatus, Phase};
use crate::variance::vary_names;
use http::header::{self, HeaderMap, HeaderValue};
use http::response::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use std::marker::PhantomData;
use std::time::SystemTime;

/// What the pipeline needs from configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub cache_name: String,
    pub admin_path: String,
    pub policy: PolicyOptions,
    pub retain_stale: u64,
    pub tracking: TrackingParams,
    pub client: ClientOptions,
    pub bypass_cookies: BypassCookies,
    pub user_agent: UserAgentKey,
    pub path_rules: PathRules,
}

impl From<&Config> for Options {
    fn from(c: &Config) -> Self {
        Options {
            cache_name: c.cache_name.clone(),
            admin_path: c.admin_path.clone(),
            policy: c.policy,
            retain_stale: c.retain_stale,
            tracking: c.tracking.clone(),
            client: c.client.clone(),
            bypass_cookies: c.bypass_cookies.clone(),
            user_agent: c.user_agent,
            path_rules: c.path_rules.clone(),
        }
    }
}

/// A stored response as read back, with where it was read from.
struct Entry<B> {
    meta: EntryMeta,
    response: Response<B>,
    /// The vary marker it was found through, if it is a variant.
    marker: Option<VaryMarker>,
}

impl<B> Entry<B> {
    /// The stored copy is always a 200 (see [`EntryMeta::status`]); the
    /// origin's status comes back from the record.
    fn new(meta: EntryMeta, mut response: Response<B>, marker: Option<VaryMarker>) -> Self {
        *response.status_mut() = StatusCode::from_u16(meta.status).unwrap_or(StatusCode::OK);
        Entry {
            meta,
            response,
            marker,
        }
    }
}

/// A response handed to storage: the client's half of the body, and its record.
struct Stored<B> {
    client_body: B,
    meta: EntryMeta,
}

/// What the lookup found for a request.
enum Lookup<B> {
    Found(Entry<B>),
    UriMiss,
    VaryMiss(VaryMarker),
}

/// The cache in front of one origin.
pub struct Proxy<B, S, O, W> {
    pub storage: S,
    pub origin: O,
    pub background: W,
    pub options: Options,
    _body: PhantomData<B>,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background> Proxy<B, S, O, W> {
    pub fn new(storage: S, origin: O, background: W, options: Options) -> Self {
        Proxy {
            storage,
            origin,
            background,
            options,
            _body: PhantomData,
        }
    }

    /// Answers one client request; `cf_country` is the runtime's `request.cf.country`.
    pub async fn handle(
        &self,
        mut request: Request<B>,
        cf_country: Option<&str>,
        now: SystemTime,
    ) -> Response<B> {
        if self.is_admin(request.uri()) {
            // Reserved for the purge API; never forwarded, never cached.
            let status = CacheStatus::new(Phase::Local).with_detail("admin");
            return self.local(
                StatusCode::NOT_FOUND,
                "edge-cache: no admin API in this version\n",
                status,
                now,
            );
        }
        let client = Client::observe(request.headers(), cf_country, &self.options.client);
        client.stamp(request.headers_mut());
        match *request.method() {
            Method::GET | Method::HEAD => self.cacheable(request, &client, now).await,
            _ => {
                self.forward(request, CacheStatus::new(Phase::Method), now)
                    .await
            }
        }
    }

    fn is_admin(&self, uri: &Uri) -> bool {
        let path = uri.path();
        let admin = self.options.admin_path.as_str();
        path == admin
            || path
                .strip_prefix(admin)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// GET and HEAD: look up, then serve, revalidate or fill.
    async fn cacheable(
        &self,
        mut request: Request<B>,
        client: &Client,
        now: SystemTime,
    ) -> Response<B> {
        if self.options.bypass_cookies.matches(request.headers()) {
            let status = CacheStatus::new(Phase::Bypass).with_detail("cookie");
            return self.forward(request, status, now).await;
        }
        strip_unkeyed_inputs(request.headers_mut());
        if let Some(uri) = normalize(request.uri(), &self.options.tracking) {
            *request.uri_mut() = uri;
        }
        let Some(key) = self.key(&request, client) else {
            return self
                .fill(
                    request,
                    None,
                    None,
                    CacheStatus::new(Phase::Bypass).with_detail("no-host"),
                    now,
                )
                .await;
        };
        let only_if_cached = Directives::from_headers(request.headers(), header::CACHE_CONTROL)
            .is_some_and(|d| d.has("only-if-cached"));
        let entry = match self.lookup(&key).await {
            Lookup::Found(entry) => entry,
            _ if only_if_cached => {
                // §5.2.1.7: answer from storage or with 504, never forward.
                let status = CacheStatus::new(Phase::Local).with_detail("only-if-cached");
                return self.local(
                    StatusCode::GATEWAY_TIMEOUT,
                    "edge-cache: not in cache\n",
                    status,
                    now,
                );
            }
            Lookup::UriMiss => {
                return self
                    .fill(
                        request,
                        Some(&key),
                        None,
                        CacheStatus::new(Phase::UriMiss),
                        now,
                    )
                    .await;
            }
            Lookup::VaryMiss(marker) => {
                let status = CacheStatus::new(Phase::VaryMiss);
                return self
                    .fill(request, Some(&key), Some(marker), status, now)
                    .await;
            }
        };
        if request.headers().contains_key(header::AUTHORIZATION) && !entry.meta.shared_with_auth {
            // §3.5: this entry was not shared for authenticated requests.
            let status = CacheStatus::new(Phase::Bypass).with_detail("authorization");
            return self
                .fill(request, Some(&key), entry.marker, status, now)
                .await;
        }
        match entry.meta.freshness(now) {
            Freshness::Fresh(ttl) => {
                let mut status = CacheStatus::new(Phase::Hit);
                status.ttl = Some(ttl as i64);
                let (parts, body) = entry.response.into_parts();
                self.serve_stored(
                    parts,
                    body,
                    &entry.meta,
                    request.headers(),
                    request.method(),
                    status,
                    now,
                )
                .await
            }
            Freshness::Stale(_) if only_if_cached => {
                let status = CacheStatus::new(Phase::Local).with_detail("only-if-cached");
                self.local(
                    StatusCode::GATEWAY_TIMEOUT,
                    "edge-cache: only a stale response is cached\n",
                    status,
                    now,
                )
            }
            Freshness::Stale(_) => self.revalidate(request, &key, entry, now).await,
        }
    }

    /// The request's key: its normalised URL, and the inputs its variants are chosen by.
    fn key(&self, request: &Request<B>, client: &Client) -> Option<CacheKey> {
        let mut inputs = request.headers().clone();
        if self.options.user_agent == UserAgentKey::Device {
            inputs.insert(
                header::USER_AGENT,
                HeaderValue::from_static(client.device.as_str()),
            );
        }
        let implicit = self.options.path_rules.for_path(request.uri().path());
        Some(CacheKey::for_uri(request.uri())?.with_inputs(inputs, implicit))
    }

    /// Reads the primary URL, and the variant URL when the primary holds a marker.
    async fn lookup(&self, key: &CacheKey) -> Lookup<B> {
        let Some((record, response)) = self.read(&key.primary_url()).await else {
            return Lookup::UriMiss;
        };
        let marker = match record {
            Record::Response(meta) => return Lookup::Found(Entry::new(meta, response, None)),
            Record::Vary(marker) => marker,
        };
        let variance = key.variance(marker.names.iter().map(String::as_str));
        match self
            .read(&key.variant_url(&marker.generation, &variance))
            .await
        {
            Some((Record::Response(meta), response)) => {
                Lookup::Found(Entry::new(meta, response, Some(marker)))
            }
            _ => Lookup::VaryMiss(marker),
        }
    }

    /// One storage read; failures and unreadable records count as misses
    /// (fail open to the origin).
    async fn read(&self, url: &str) -> Option<(Record, Response<B>)> {
        match self.storage.get(url).await {
            Ok(Some(mut response)) => {
                let record = meta::from_stored(response.headers_mut())?;
                Some((record, response))
            }
            Ok(None) => None,
            Err(e) => {
                self.background
                    .warn(&format!("cache read failed for {url}: {e}"));
                None
            }
        }
    }

    /// A stale (or always-revalidate) entry: ask the origin with its validators.
    async fn revalidate(
        &self,
        request: Request<B>,
        key: &CacheKey,
        entry: Entry<B>,
        now: SystemTime,
    ) -> Response<B> {
        let Some(validators) = conditional::validators(entry.response.headers()) else {
            return self
                .fill(
                    request,
                    Some(key),
                    entry.marker,
                    CacheStatus::new(Phase::Stale),
                    now,
                )
                .await;
        };
        let client_headers = request.headers().clone();
        let method = request.method().clone();
        let mut origin_request = origin_request(request);
        for (name, value) in validators {
            origin_request.headers_mut().insert(name, value);
        }
        let response = match self.origin.fetch(origin_request).await {
            Ok(r) => r,
            Err(e) => return self.origin_failed(CacheStatus::new(Phase::Stale), e, now),
        };
        if response.status() != StatusCode::NOT_MODIFIED {
            let status = CacheStatus::new(Phase::Stale);
            return self
                .store_and_respond(
                    response,
                    &client_headers,
                    &method,
                    Some(key),
                    entry.marker,
                    status,
                    now,
                )
                .await;
        }
        // §4.3.4: freshen the stored response with the 304's fields.
        let mut status = CacheStatus::new(Phase::Stale);
        status.fwd_status = Some(304);
        let (mut not_modified, _) = response.into_parts();
        strip_hop_by_hop(&mut not_modified.headers);
        not_modified.headers.remove(meta::META_HEADER);
        let (mut parts, body) = entry.response.into_parts();
        conditional::freshen(&mut parts.headers, &not_modified.headers);
        match storability(
            &client_headers,
            parts.status,
            &parts.headers,
            now,
            self.options.policy,
        ) {
            Ok(plan) => {
                let stored = self.store(key, entry.marker, &plan, &mut parts, body, &method, now);
                status.stored = true;
                status.ttl = Some(stored.meta.ttl(now));
                self.serve_stored(
                    parts,
                    stored.client_body,
                    &stored.meta,
                    &client_headers,
                    &method,
                    status,
                    now,
                )
                .await
            }
            Err(reason) => {
                status.detail = Some(reason.as_str());
                self.deliver(parts, body, &client_headers, &method, status)
            }
        }
    }

    /// Fetches from the origin for a cache-eligible request and stores what may be stored.
    async fn fill(
        &self,
        request: Request<B>,
        key: Option<&CacheKey>,
        marker: Option<VaryMarker>,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let client_headers = request.headers().clone();
        let method = request.method().clone();
        match self.origin.fetch(origin_request(request)).await {
            Ok(response) => {
                self.store_and_respond(response, &client_headers, &method, key, marker, status, now)
                    .await
            }
            Err(e) => self.origin_failed(status, e, now),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_and_respond(
        &self,
        response: Response<B>,
        client_headers: &HeaderMap,
        method: &Method,
        key: Option<&CacheKey>,
        marker: Option<VaryMarker>,
        mut status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let (mut parts, body) = response.into_parts();
        status.fwd_status = Some(parts.status.as_u16());
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(meta::META_HEADER);
        let decision = key.map(|key| {
            let plan = storability(
                client_headers,
                parts.status,
                &parts.headers,
                now,
                self.options.policy,
            );
            (key, plan)
        });
        match decision {
            Some((key, Ok(plan))) => {
                let stored = self.store(key, marker, &plan, &mut parts, body, method, now);
                status.stored = true;
                status.ttl = Some(stored.meta.ttl(now));
                self.deliver(parts, stored.client_body, client_headers, method, status)
            }
            Some((_, Err(reason))) => {
                // A bypass keeps its own reason; otherwise say why it was not stored.
                status.detail.get_or_insert(reason.as_str());
                self.deliver(parts, body, client_headers, method, status)
            }
            None => self.deliver(parts, body, client_headers, method, status),
        }
    }

    /// Writes a response in the background, per `plan`: cookies and
    /// `private="…"` fields stay out of storage, the record goes in, and the
    /// body is split between storage and the client.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        plan: &Storable,
        parts: &mut Parts,
        body: B,
        method: &Method,
        now: SystemTime,
    ) -> Stored<B> {
        let meta = EntryMeta::new(key.primary(), plan, parts.status, &parts.headers, now, now);
        let stored_headers = cookies::split_for_storage(&mut parts.headers, &plan.strip_fields);
        let url = self.placement(key, marker, &stored_headers, now);
        let stored = stored_copy(
            parts,
            stored_headers,
            meta.clone(),
            self.options.retain_stale,
        );
        let (client_body, stored_body) = if method == Method::HEAD {
            (B::empty(), body)
        } else {
            body.tee()
        };
        self.put_in_background(url, Response::from_parts(stored, stored_body));
        Stored { client_body, meta }
    }

    /// Chooses the storage URL for a response to `request`, writing a new vary
    /// marker when the response varies and the known marker does not fit.
    fn placement(
        &self,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        response: &HeaderMap,
        now: SystemTime,
    ) -> String {
        let mut names: Vec<String> = vary_names(response)
            .chain(key.implicit_vary().iter().cloned())
            .collect();
        if names.is_empty() {
            return key.primary_url();
        }
        names.sort();
        names.dedup();
        let variance = key.variance(names.iter().map(String::as_str));
        let marker = match marker {
            Some(m) if m.names == names => m,
            _ => {
                let digest = variance.digest();
                let nanos = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let generation = format!(
                    "{nanos:x}-{:02x}{:02x}{:02x}{:02x}",
                    digest[0], digest[1], digest[2], digest[3]
                );
                let marker = VaryMarker { names, generation };
                let mut headers = HeaderMap::new();
                headers.insert(
                    meta::META_HEADER,
                    meta::encode(Record::Vary(marker.clone())),
                );
                let retention = meta::retention_directive(self.options.retain_stale.max(60));
                headers.insert(header::CACHE_CONTROL, retention);
                // A body, because some Cache API implementations (Miniflare's)
                // drop an entry whose body is empty.
                let mut response = Response::new(B::from_bytes(b"vary marker\n".to_vec()));
                *response.headers_mut() = headers;
                self.put_in_background(key.primary_url(), response);
                marker
            }
        };
        key.variant_url(&marker.generation, &variance)
    }

    fn put_in_background(&self, url: String, response: Response<B>) {
        let storage = self.storage.clone();
        let log = self.background.clone();
        self.background.spawn(async move {
            if let Err(e) = storage.put(&url, response).await {
                log.warn(&format!("cache write failed for {url}: {e}"));
            }
        });
    }

    /// Serves a stored response: `Age`, and the client's preconditions, range and method applied.
    #[allow(clippy::too_many_arguments)]
    async fn serve_stored(
        &self,
        mut parts: Parts,
        body: B,
        meta: &EntryMeta,
        request: &HeaderMap,
        method: &Method,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        parts
            .headers
            .insert(header::AGE, HeaderValue::from(meta.current_age(now)));
        let wants_range = request.contains_key(header::RANGE)
            && parts.status == StatusCode::OK
            && method == Method::GET
            && !conditional::is_not_modified(request, &parts.headers);
        if !wants_range {
            return self.deliver(parts, body, request, method, status);
        }
        let bytes = match body.into_bytes().await {
            Ok(b) => b,
            Err(e) => return self.storage_failed(status, e, now),
        };
        match range::evaluate(request, &parts.headers, bytes.len() as u64) {
            RangeResponse::Full => {
                self.deliver(parts, B::from_bytes(bytes), request, method, status)
            }
            RangeResponse::Partial { start, end } => {
                let range = format!("bytes {start}-{end}/{}", bytes.len());
                let slice = bytes[start as usize..=end as usize].to_vec();
                let (parts, body) = partial(parts, StatusCode::PARTIAL_CONTENT, &range, slice);
                self.deliver(parts, body, request, method, status)
            }
            RangeResponse::Unsatisfiable => {
                let range = format!("bytes */{}", bytes.len());
                let (parts, body) =
                    partial(parts, StatusCode::RANGE_NOT_SATISFIABLE, &range, Vec::new());
                self.deliver(parts, body, request, method, status)
            }
        }
    }

    /// The last step for every proxied response: answer preconditions with a
    /// 304, drop the body for HEAD, clean the headers, add `Cache-Status`.
    fn deliver(
        &self,
        mut parts: Parts,
        body: B,
        request: &HeaderMap,
        method: &Method,
        status: CacheStatus,
    ) -> Response<B> {
        let mut body = if method == Method::HEAD {
            B::empty()
        } else {
            body
        };
        let cacheable_method = matches!(*method, Method::GET | Method::HEAD);
        if cacheable_method
            && parts.status == StatusCode::OK
            && conditional::is_not_modified(request, &parts.headers)
        {
            let mut headers = conditional::not_modified_headers(&parts.headers);
            if let Some(age) = parts.headers.get(header::AGE) {
                headers.insert(header::AGE, age.clone());
            }
            parts.headers = headers;
            parts.status = StatusCode::NOT_MODIFIED;
            body = B::empty();
        }
        prepare_response(&mut parts.headers);
        status.append_to(&mut parts.headers, &self.options.cache_name);
        Response::from_parts(parts, body)
    }

    /// Goes to the origin without the cache: methods other than GET and HEAD
    /// (`status` says `fwd=method`), and bypassed requests (`fwd=bypass`).
    async fn forward(
        &self,
        request: Request<B>,
        mut status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let uri = request.uri().clone();
        let method = request.method().clone();
        let client_headers = request.headers().clone();
        let (mut parts, body) = request.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let response = match self.origin.fetch(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => return self.origin_failed(status, e, now),
        };
        status.fwd_status = Some(response.status().as_u16());
        // RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe.
        let unsafe_method = !matches!(
            method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if unsafe_method && (response.status().is_success() || response.status().is_redirection()) {
            self.invalidate(&uri, response.headers()).await;
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        self.deliver(parts, body, &client_headers, &method, status)
    }

    /// §4.4: a successful unsafe request invalidates the target URI and the
    /// same-origin `Location` / `Content-Location`. Deleting the primary URL
    /// is enough: variants are only reachable through it.
    async fn invalidate(&self, uri: &Uri, response: &HeaderMap) {
        let mut targets = vec![uri.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(target) = response
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| same_origin(uri, v))
            {
                targets.push(target);
            }
        }
        for target in targets {
            let normalized = normalize(&target, &self.options.tracking);
            if let Some(key) = normalized.as_ref().and_then(CacheKey::for_uri) {
                if let Err(e) = self.storage.delete(&key.primary_url()).await {
                    self.background
                        .warn(&format!("invalidation of {target} failed: {e}"));
                }
            }
        }
    }

    fn origin_failed(
        &self,
        status: CacheStatus,
        error: OriginError,
        now: SystemTime,
    ) -> Response<B> {
        self.background.warn(&error.to_string());
        let (code, detail, text) = match error {
            OriginError::TimedOut => (
                StatusCode::GATEWAY_TIMEOUT,
                "origin-timeout",
                "edge-cache: the origin did not answer in time\n",
            ),
            OriginError::Unreachable(_) => (
                StatusCode::BAD_GATEWAY,
                "origin-unreachable",
                "edge-cache: the origin could not be reached\n",
            ),
        };
        self.local(code, text, status.with_detail(detail), now)
    }

    /// A stored body that cannot be read is the storage failing: say so with a 502.
    fn storage_failed(
        &self,
        status: CacheStatus,
        error: PlatformError,
        now: SystemTime,
    ) -> Response<B> {
        self.background
            .warn(&format!("reading a stored body failed: {error}"));
        let text = "edge-cache: a stored response could not be read\n";
        self.local(
            StatusCode::BAD_GATEWAY,
            text,
            status.with_detail("storage-error"),
            now,
        )
    }

    /// A response the worker makes itself.
    fn local(
        &self,
        code: StatusCode,
        text: &str,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let mut response = Response::new(B::from_bytes(text.as_bytes().to_vec()));
        *response.status_mut() = code;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::DATE,
            HeaderValue::from_str(&httpdate::fmt_http_date(now)).expect("ASCII"),
        );
        status.append_to(headers, &self.options.cache_name);
        response
    }
}

/// The request sent to the origin to fill the cache: GET (a HEAD miss fills
/// the entry too), no hop-by-hop fields, and none of the client's
/// preconditions, so a full response comes back; the cache answers them.
/// `Range` is kept: a range miss is passed through and its 206 not stored.
fn origin_request<B: Body>(request: Request<B>) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    parts.method = Method::GET;
    strip_hop_by_hop(&mut parts.headers);
    conditional::strip_preconditions(&mut parts.headers);
    Request::from_parts(parts, body)
}

/// A 206 or 416 cut from a stored 200: status, `Content-Range`, and the body's length.
fn partial<B: Body>(mut parts: Parts, code: StatusCode, range: &str, body: Vec<u8>) -> (Parts, B) {
    parts.status = code;
    parts.headers.insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(range).expect("ASCII"),
    );
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    (parts, B::from_bytes(body))
}

/// The head of the stored copy: the client-safe headers, the record, and the retention.
fn stored_copy(parts: &Parts, mut headers: HeaderMap, meta: EntryMeta, retain_stale: u64) -> Parts {
    let retention = meta.retention(retain_stale);
    meta::to_stored(&mut headers, meta, retention);
    let (mut stored, ()) = Response::new(()).into_parts();
    stored.version = parts.version;
    stored.headers = headers;
    stored
}

/// Resolves `Location`-style `value` against `base`; `Some` only when it
/// points at the same scheme and authority (§4.4 forbids invalidating others).
fn same_origin(base: &Uri, value: &str) -> Option<Uri> {
    let value = value.trim();
    let resolved: Uri = if value.starts_with('/') && !value.starts_with("//") {
        format!("{}://{}{}", base.scheme_str()?, base.authority()?, value)
            .parse()
            .ok()?
    } else {
        value.parse().ok()?
    };
    let same = resolved.scheme() == base.scheme()
        && resolved
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase())
            == base.authority().map(|a| a.as_str().to_ascii_lowercase());
    same.then_some(resolved)
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
