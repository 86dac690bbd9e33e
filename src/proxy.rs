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
//! an argument (`now`), read once per request by the edge. This file holds
//! the state machine; `store` writes entries, `respond` answers the client,
//! `forward` passes requests by the cache.

use crate::admin;
use crate::cache_control::Directives;
use crate::client::{Client, RuntimeCountry};
use crate::conditional;
use crate::config::Config;
use crate::cookies;
use crate::flight::{Flights, Join, Lead, Outcome};
use crate::headers::{
    strip_hop_by_hop, strip_never_forwarded, strip_targeted_fields, strip_unkeyed_inputs,
};
use crate::hot_tier::{FromMemory, ReadRecord};
use crate::key::{CacheKey, UserAgentKey};
use crate::meta::{self, EntryMeta, Freshness, Record, VaryMarker};
use crate::normalize::{normalize, origin_uri, NormalizedUri, OriginUrl};
use crate::platform::{
    Background, Body, Buffered, Exceeded, Kv, Origin, OriginError, PlatformError, ReadLimit,
    Storage,
};
use crate::policy::{storability, NoStoreReason, Storable};
use crate::purge::Coverage;
use crate::range::{self, RangeResponse};
use crate::stale::{self, StaleUse};
use crate::status::{CacheStatus, Phase};
use crate::variance::vary_names;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::response::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

/// Cloudflare's cache's note on a response: the Cache API's on every copy
/// it returns, and a Cloudflare-fronted origin's on its answers.
const CF_CACHE_STATUS: HeaderName = HeaderName::from_static("cf-cache-status");

/// A stored response as read back, with where it was read from.
struct Entry<B> {
    meta: EntryMeta,
    response: Response<B>,
    /// The vary marker it was found through, if it is a variant.
    marker: Option<VaryMarker>,
    /// Its storage URL: the key of its revalidation's flight.
    url: String,
}

impl<B> Entry<B> {
    /// The stored copy is always a 200 (see [`EntryMeta::status`]); the
    /// origin's status comes back from the record.
    fn new(
        meta: EntryMeta,
        mut response: Response<B>,
        marker: Option<VaryMarker>,
        url: String,
    ) -> Self {
        *response.status_mut() = StatusCode::from_u16(meta.status).unwrap_or(StatusCode::OK);
        Entry {
            meta,
            response,
            marker,
            url,
        }
    }
}

/// A response handed to storage: the client's half of the body, and its record.
struct Stored<B> {
    client_body: B,
    meta: EntryMeta,
}

/// What the lookup found for a request. One lives per request, briefly: not
/// worth a heap allocation on every hit to shrink the miss variants.
#[allow(clippy::large_enum_variant)]
enum Lookup<B> {
    Found(Entry<B>),
    UriMiss,
    /// The marker, and the URL this request's variant would be stored at.
    VaryMiss(VaryMarker, String),
}

/// The cache in front of one origin.
pub struct Proxy<B, S, O, W, K> {
    pub storage: S,
    pub origin: O,
    pub background: W,
    /// Shared, not copied: one per isolate at the edge, and every
    /// background task of a request holds it too.
    pub config: Rc<Config>,
    /// Origin fetches in progress in this isolate, shared by every request.
    pub flights: Flights,
    /// Purge records, in KV and as this isolate last read them.
    pub purges: Purges<K>,
    _body: PhantomData<B>,
}

/// A copy shares storage, origin and background with the original: what a
/// background revalidation owns.
impl<B, S: Clone, O: Clone, W: Clone, K: Clone> Clone for Proxy<B, S, O, W, K> {
    fn clone(&self) -> Self {
        Proxy {
            storage: self.storage.clone(),
            origin: self.origin.clone(),
            background: self.background.clone(),
            config: self.config.clone(),
            flights: self.flights.clone(),
            purges: self.purges.clone(),
            _body: PhantomData,
        }
    }
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    pub fn new(
        storage: S,
        origin: O,
        background: W,
        config: Rc<Config>,
        flights: Flights,
        purges: Purges<K>,
    ) -> Self {
        Proxy {
            storage,
            origin,
            background,
            config,
            flights,
            purges,
            _body: PhantomData,
        }
    }

    /// Answers one client request; `country` is the runtime's (`request.cf.country`).
    pub async fn handle(
        &self,
        request: Request<B>,
        country: &RuntimeCountry,
        now: SystemTime,
    ) -> Response<B> {
        if admin::is_admin_path(request.uri().path(), &self.config.admin_path) {
            // Ours in every spelling: never forwarded, never cached.
            return self.admin(request, country, now).await;
        }
        self.proxied(request, country, now).await
    }

    /// A request for the origin's site, through the cache.
    async fn proxied(
        &self,
        mut request: Request<B>,
        country: &RuntimeCountry,
        now: SystemTime,
    ) -> Response<B> {
        // Fields the client's `Connection` names are gone before anything
        // reads the request: removed only on the way out, they were keyed
        // as sent but never reached the origin (`Connection: X-Edge-Country`
        // stored an answer without a country in a country's variant).
        strip_hop_by_hop(request.headers_mut());
        let client = Client::observe(request.headers(), country, &self.config.client);
        let method = request.method().clone();
        let cacheable = matches!(method, Method::GET | Method::HEAD);
        // What composing needs of the request, before the pipeline changes
        // it. A few small copies: the response says whether it is a
        // template only after the pipeline has had the request.
        let page = self.config.esi.then(|| compose::PageRequest {
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            client: client.clone(),
            context: request.extensions().get::<compose::EsiContext>().cloned(),
        });
        // The country is set where it is first needed (`stamp_country`): a
        // hit on an entry that does not vary by it needs none.
        client.stamp_device(request.headers_mut(), &self.config.client);
        let response = match cacheable {
            true => self.cacheable(request, &client, now).await,
            false => {
                self.stamp_country(&mut request, &client);
                self.forward(request, CacheStatus::new(Phase::Method), now)
                    .await
            }
        };
        match (page, response.extensions().get::<compose::EsiTemplate>()) {
            (Some(page), Some(_)) => self.compose(response, page, &method, country, now).await,
            _ => response,
        }
    }

    /// GET and HEAD: look up, then serve, revalidate or fill.
    async fn cacheable(
        &self,
        mut request: Request<B>,
        client: &Client,
        now: SystemTime,
    ) -> Response<B> {
        if self.config.bypass_cookies.matches(request.headers()) {
            self.stamp_country(&mut request, client);
            let status = CacheStatus::new(Phase::Bypass).with_detail("cookie");
            return self.forward(request, status, now).await;
        }
        strip_unkeyed_inputs(request.headers_mut());
        if self.config.user_agent == UserAgentKey::Device {
            // The key holds the class; so must everything the origin sees.
            client.stamp_device_class(request.headers_mut());
        }
        let Some(uri) = normalize(request.uri(), &self.config.tracking) else {
            self.stamp_country(&mut request, client);
            let status = CacheStatus::new(Phase::Bypass).with_detail("no-host");
            return self.forward(request, status, now).await;
        };
        let key = self.key(&uri, client);
        let client_uri = std::mem::replace(request.uri_mut(), uri.into_uri());
        if self.config.origin_url == OriginUrl::Client && client_uri.query().is_some() {
            // The parameters' order, for the origin only: a hit never needs it.
            request.extensions_mut().insert(ClientOrder(client_uri));
        }
        let only_if_cached = Directives::from_headers(request.headers(), header::CACHE_CONTROL)
            .is_some_and(|d| d.has("only-if-cached"));
        let found = self.lookup(&key, &mut request, Some(client)).await;
        let entry = match found {
            Lookup::Found(entry) => entry,
            _ if only_if_cached => return self.not_cached("nothing is cached", now),
            Lookup::UriMiss => {
                self.stamp_country(&mut request, client);
                let (flight, status) = (key.primary_url(), CacheStatus::new(Phase::UriMiss));
                return self.miss(request, &key, None, &flight, status, now).await;
            }
            Lookup::VaryMiss(marker, flight) => {
                let status = CacheStatus::new(Phase::VaryMiss);
                return self
                    .miss(request, &key, Some(marker), &flight, status, now)
                    .await;
            }
        };
        if request.headers().contains_key(header::AUTHORIZATION) && !entry.meta.shared_with_auth {
            // §3.5: this entry was not shared for authenticated requests.
            self.stamp_country(&mut request, client);
            let status = CacheStatus::new(Phase::Bypass).with_detail("authorization");
            let target = Target::new(&key, entry.marker, None);
            return self.fill(request, target, status, now).await;
        }
        let coverage = self.coverage(&entry, now).await;
        let fresh = matches!(entry.meta.freshness(now), Freshness::Fresh(_));
        if coverage != Coverage::Current || !fresh {
            // Every way on but a fresh hit may reach the origin.
            self.stamp_country(&mut request, client);
        }
        match coverage {
            Coverage::Current => {}
            _ if only_if_cached => return self.not_cached("only a purged response is cached", now),
            Coverage::Hard => {
                // The next request after a hard purge is a miss.
                let phase = match entry.marker {
                    Some(_) => Phase::VaryMiss,
                    None => Phase::UriMiss,
                };
                let status = CacheStatus::new(phase).with_detail("purged");
                return self
                    .miss(request, &key, entry.marker, &entry.url, status, now)
                    .await;
            }
            Coverage::Soft
                if stale::may_serve_stale(&entry.meta)
                    && matches!(entry.meta.freshness(now), Freshness::Fresh(_)) =>
            {
                // Served at once, revalidated in the background.
                self.revalidate_in_background(&request, &key, &entry.url, now);
                let mut status = CacheStatus::new(Phase::Hit).with_detail("soft-purged");
                status.ttl = Some(entry.meta.ttl(now));
                let (parts, body) = entry.response.into_parts();
                let (headers, method) = (request.headers(), request.method());
                return self
                    .serve_stored(parts, body, &entry.meta, headers, method, status, now)
                    .await;
            }
            // An entry the memo cannot vouch for is revalidated first.
            Coverage::Unknown => return self.stale(request, &key, entry, now).await,
            // Soft on a fresh entry that may not be served stale:
            // revalidate first. On a stale one: as any stale entry.
            Coverage::Soft => {
                if matches!(entry.meta.freshness(now), Freshness::Fresh(_)) {
                    return self.stale(request, &key, entry, now).await;
                }
            }
        }
        match entry.meta.freshness(now) {
            Freshness::Fresh(ttl) => {
                let mut status = CacheStatus::new(Phase::Hit);
                if entry.response.extensions().get::<FromMemory>().is_some() {
                    status = status.with_detail("memory");
                }
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
                self.not_cached("only a stale response is cached", now)
            }
            Freshness::Stale(_) => {
                let swr = stale::servable(
                    &entry.meta,
                    now,
                    StaleUse::WhileRevalidate,
                    &self.config.stale,
                    self.config.retain_stale,
                );
                match swr {
                    Some(_) => {
                        self.revalidate_in_background(&request, &key, &entry.url, now);
                        let usage = StaleUse::WhileRevalidate;
                        self.serve_stale(
                            entry,
                            usage,
                            None,
                            request.headers(),
                            request.method(),
                            now,
                        )
                        .await
                    }
                    None => self.stale(request, &key, entry, now).await,
                }
            }
        }
    }

    /// §5.2.1.7: `only-if-cached` is answered from storage or with a 504,
    /// never forwarded.
    fn not_cached(&self, what: &str, now: SystemTime) -> Response<B> {
        let status = CacheStatus::new(Phase::Local).with_detail("only-if-cached");
        let text = format!("edge-cache: {what}\n");
        self.local(StatusCode::GATEWAY_TIMEOUT, &text, status, now)
    }

    /// Sets the client's country on `request` (see [`Client::stamp_country`]).
    fn stamp_country(&self, request: &mut Request<B>, client: &Client) {
        client.stamp_country(request.headers_mut(), &self.config.client);
    }

    /// The request's key: its normalised URL, and how its variants are chosen.
    fn key(&self, uri: &NormalizedUri, client: &Client) -> CacheKey {
        let user_agent =
            (self.config.user_agent == UserAgentKey::Device).then_some(client.device.as_str());
        let implicit = self.config.path_rules.for_path(uri.uri().path());
        CacheKey::new(uri).with_variance(user_agent, implicit)
    }

    /// Reads the primary URL, and the variant URL when the primary holds a
    /// marker. The variant may be chosen by the country: with `client`, it
    /// is stamped on `request` first; without, `request` carries it already.
    async fn lookup(
        &self,
        key: &CacheKey,
        request: &mut Request<B>,
        client: Option<&Client>,
    ) -> Lookup<B> {
        let primary = key.primary_url();
        let Some((record, response)) = self.read(&primary).await else {
            return Lookup::UriMiss;
        };
        let marker = match record {
            Record::Response(meta) => {
                return Lookup::Found(Entry::new(meta, response, None, primary))
            }
            Record::Vary(marker) => marker,
        };
        if let Some(client) = client {
            self.stamp_country(request, client);
        }
        let request = request.headers();
        let variance = key.variance(marker.names.iter().map(String::as_str), request);
        let url = key.variant_url(&marker.generation, &variance);
        match self.read(&url).await {
            Some((Record::Response(meta), response)) => {
                Lookup::Found(Entry::new(meta, response, Some(marker), url))
            }
            _ => Lookup::VaryMiss(marker, url),
        }
    }

    /// The only way to the origin. Every request it sends descends from one
    /// that `proxied` took in, whose hop-by-hop fields went as it arrived;
    /// the response's go here. An origin's own `x-edge-cache-meta` never
    /// gets in: stored, it would be read back as our record. Nor does its
    /// `CF-Cache-Status` (an origin behind Cloudflare's own cache): a hit
    /// removes the Cache API's field of that name, so a miss that kept the
    /// origin's would look unlike the hits after it.
    /// A response without `Date` gets one, the time it was received (RFC
    /// 9110 §6.6.1: a recipient with a clock MUST, when it caches or
    /// forwards); a 304 without one would otherwise freshen an entry with
    /// its old `Date` and leave it as stale as before.
    async fn fetch_origin(
        &self,
        mut request: Request<B>,
        now: SystemTime,
    ) -> Result<Response<B>, OriginError> {
        strip_never_forwarded(request.headers_mut());
        if let Some(ClientOrder(client)) = request.extensions_mut().remove::<ClientOrder>() {
            *request.uri_mut() = origin_uri(&client, request.uri(), &self.config.tracking);
        }
        let mut response = self.origin.fetch(request).await?;
        // A final response is 200–599 (RFC 9110 §15); anything else cannot
        // be answered to the client, let alone stored.
        if !(200..=599).contains(&response.status().as_u16()) {
            return Err(OriginError::InvalidStatus(response.status().as_u16()));
        }
        let headers = response.headers_mut();
        strip_hop_by_hop(headers);
        headers.remove(meta::META_HEADER);
        headers.remove(CF_CACHE_STATUS);
        if !headers.contains_key(header::DATE) {
            let date = HeaderValue::from_str(&httpdate::fmt_http_date(now)).expect("ASCII");
            headers.insert(header::DATE, date);
        }
        Ok(response)
    }

    /// One storage read; failures and unreadable records count as misses
    /// (fail open to the origin).
    async fn read(&self, url: &str) -> Option<(Record, Response<B>)> {
        match self.storage.get(url).await {
            Ok(Some(mut response)) => {
                // The Cache API's own note on the copy.
                response.headers_mut().remove(CF_CACHE_STATUS);
                let extensions = response.extensions_mut();
                let record = match extensions.remove::<ReadRecord>() {
                    Some(ReadRecord(record)) => Arc::unwrap_or_clone(record),
                    None => {
                        let parsed = extensions.remove::<meta::ParsedRecord>();
                        meta::from_stored(response.headers_mut(), parsed)?
                    }
                };
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

    /// Fetches from the origin for a cache-eligible request and stores what may be stored.
    async fn fill(
        &self,
        request: Request<B>,
        target: Target<'_>,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let client_headers = request.headers().clone();
        let method = request.method().clone();
        let client = (&client_headers, &method);
        match self.fetch_origin(origin_request(request), now).await {
            Ok(response) => match self
                .store_and_respond(response, client, target, status, now)
                .await
            {
                Ok(answer) => answer,
                Err((status, e)) => self.origin_failed(status, e, now),
            },
            Err(e) => {
                target.failed(&e);
                self.origin_failed(status, e, now)
            }
        }
    }

    /// Stores what may be stored and answers the client. A response about
    /// to be stored is read whole first (up to `MAX_STORED_BODY`), then sent:
    /// its stored copy does not wait on how fast its client reads (a tee
    /// would: workerd paces both halves), waiters are released as soon as it
    /// is stored, and a body that breaks off is an error, not a short page
    /// that looks complete (workerd ends a chunked response cleanly even when
    /// its source failed). That error comes back, with the status so far, so
    /// a revalidation can still answer from its stale entry; the target's
    /// waiters have been told.
    async fn store_and_respond(
        &self,
        response: Response<B>,
        (client_headers, method): (&HeaderMap, &Method),
        target: Target<'_>,
        mut status: CacheStatus,
        now: SystemTime,
    ) -> Result<Response<B>, (CacheStatus, OriginError)> {
        let (mut parts, body) = response.into_parts();
        status.fwd_status = Some(parts.status.as_u16());
        // What is not stored is the origin's answer, not the cache's: the
        // client's preconditions pass on unanswered (see `Preconditions`).
        let not_stored = |parts: Parts, body: B, status: CacheStatus| {
            let pass_on = Preconditions::PassOn;
            self.deliver(parts, body, client_headers, method, status, pass_on)
        };
        let plan = match self.plan(client_headers, (parts.status, &parts.headers), now) {
            Ok(plan) => plan,
            Err(reason) => {
                if stale::is_error_status(parts.status) {
                    target.error_status(parts.status.as_u16());
                }
                // A bypass keeps its own reason; otherwise say why it was not stored.
                status.detail.get_or_insert(reason.as_str());
                return Ok(not_stored(parts, body, status));
            }
        };
        let body = match body.buffered(self.storing_limit()).await {
            Ok(Buffered::Whole(whole, _)) => whole,
            Ok(Buffered::PassOn(body, exceeded)) => {
                // Streamed on, not stored; the lead, dropped, frees its waiters.
                let reason = match exceeded {
                    Exceeded::Bytes => NoStoreReason::TooLarge,
                    Exceeded::Time => NoStoreReason::TooSlow,
                };
                status.detail = Some(reason.as_str());
                return Ok(not_stored(parts, body, status));
            }
            Err(e) => {
                let error = OriginError::Incomplete(e.0);
                target.failed(&error);
                return Err((status, error));
            }
        };
        let stored = self.store(
            target,
            &plan,
            &mut parts,
            body,
            (client_headers, method),
            now,
        );
        status.stored = true;
        status.ttl = Some(stored.meta.ttl(now));
        Ok(self.deliver(
            parts,
            stored.client_body,
            client_headers,
            method,
            status,
            Preconditions::Answer,
        ))
    }
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// How much of a body storing reads, and for how long: `MAX_STORED_BODY`
    /// bytes, within `ORIGIN_TIMEOUT` (a body still arriving then is passed
    /// on as it comes, so a trickling or hanging body holds neither its
    /// client nor its key's waiters).
    fn storing_limit(&self) -> ReadLimit {
        ReadLimit {
            bytes: self.config.policy.max_stored_body,
            ms: u64::from(self.config.origin_timeout_secs) * 1000,
        }
    }

    /// Whether, and how, a response to `request` may be stored (RFC 9111 §3).
    fn plan(
        &self,
        request: &HeaderMap,
        (status, headers): (StatusCode, &HeaderMap),
        now: SystemTime,
    ) -> Result<Storable, NoStoreReason> {
        storability(request, status, headers, now, self.config.policy)
    }
}

/// The URL a cache-eligible request came with, when the origin is to be
/// asked for the key's URL in its parameters' order (`ORIGIN_URL=client`,
/// see [`origin_uri`]); the request itself carries the key's URL.
#[derive(Debug, Clone)]
struct ClientOrder(Uri);

/// The request sent to the origin to fill the cache: GET (a HEAD miss fills
/// the entry too), and none of the client's preconditions, so a full
/// response comes back; the cache answers them.
///
/// A range request is passed through whole, preconditions included: its 206
/// is not stored, and a `Range` without its `If-Range` / `If-Match` would
/// get the client bytes of a newer representation to splice into its older
/// copy (RFC 9110 §13.1.5). A failed `If-Range` makes the origin send the
/// full 200, which is stored.
fn origin_request<B: Body>(request: Request<B>) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    parts.method = Method::GET;
    if !parts.headers.contains_key(header::RANGE) {
        conditional::strip_preconditions(&mut parts.headers);
    }
    Request::from_parts(parts, body)
}

mod admin_routes;
mod budget;
mod coalesce;
mod compose;
mod forward;
mod purging;
mod respond;
mod revalidate;

pub use purging::Purges;

pub use respond::local_response;
use respond::Preconditions;
mod store;
use store::Target;

#[cfg(test)]
mod tests;
