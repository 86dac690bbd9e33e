//! One origin fetch per key: a miss or a stale entry that must be
//! revalidated joins the key's flight ([`crate::flight`]). The leader goes
//! to the origin; each waiter acts on how the flight ended:
//!
//! - `Stored`: it reads the entry the leader stored, in its own request, and
//!   serves it if it is this request's variant and fresh (`collapsed`);
//!   otherwise (another variant) it asks the origin itself. When a purge
//!   issued after the waiter arrived covers what the flight stored (it began
//!   before the purge), the waiters share one new fetch.
//! - `NotShared` (private, no-store, a cookie for the leader's client, not
//!   storable, the leader gone) or no outcome within `ORIGIN_TIMEOUT`: it
//!   asks the origin itself, at once and outside any flight, so waiters are
//!   never served one after another (Varnish's waiting list does that).
//! - `Failed` (unreachable, reset, timed out, body broken off): the same
//!   error, or its stale entry where stale-if-error allows: a dead origin
//!   does not see one retry per waiter.
//! - `ErrorStatus` (a 5xx answer): its stale entry where stale-if-error
//!   allows, else it asks the origin itself. A 5xx can be the leader's own
//!   doing (a header the origin chokes on, which the key does not hold), so
//!   it is never served to anyone else.
//!
//! Requests with `Authorization`, `Range` or a request `no-store` never
//! join (see `join`). Bypassed requests never reach this far.

use super::*;
use crate::flight::Wait;

/// What a waiter found after its leader stored an entry.
enum Collapsed<B> {
    /// Its own variant, fresh or the one just stored: the answer.
    Served(Response<B>),
    /// Another variant was stored; this one's URL under the marker.
    OtherVariant(VaryMarker, String),
    /// A purge issued after this request arrived covers what was stored
    /// (the flight began before it).
    Purged,
    /// Nothing it may use.
    Nothing,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Nothing stored for this request: fill, as the leader of `flight`
    /// (the storage URL the response would take) or after its leader. A
    /// waiter whose leader stored another `Vary` variant joins the flight of
    /// its own variant's URL, once: then the waiters of each variant share
    /// one fetch, every variant at once.
    pub(super) async fn miss(
        &self,
        mut request: Request<B>,
        key: &CacheKey,
        mut marker: Option<VaryMarker>,
        flight: &str,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let mut flight = flight.to_string();
        for round in 0..2 {
            let wait = match self.join(&request, &flight, now) {
                Some(Join::Waiter(wait)) => wait,
                Some(Join::Leader(lead)) => {
                    let target = Target::new(key, marker, Some(lead));
                    return self.fill(request, target, status, now).await;
                }
                None => break,
            };
            match self.outcome(wait).await {
                Some(Outcome::Stored(url)) => {
                    match self
                        .collapsed(&mut request, key, &url, status.phase, now)
                        .await
                    {
                        Collapsed::Served(answer) => return answer,
                        Collapsed::OtherVariant(m, variant) if round == 0 => {
                            (marker, flight) = (Some(m), variant);
                            continue;
                        }
                        Collapsed::OtherVariant(m, _) => marker = Some(m),
                        // Waiters turned away by a purge share the next
                        // fetch: one joins the key's flight again and
                        // leads, the others wait for it.
                        Collapsed::Purged if round == 0 => continue,
                        Collapsed::Purged | Collapsed::Nothing => {}
                    }
                }
                Some(Outcome::Failed(e)) => return self.origin_failed(status, e, now),
                // The leader's 5xx may be its own doing (a header the origin
                // chokes on): without a stale entry, ask for yourself.
                Some(Outcome::ErrorStatus(_) | Outcome::NotShared) | None => {}
            }
            break;
        }
        let target = Target::new(key, marker, None);
        self.fill(request, target, status, now).await
    }

    /// A stale entry that must be revalidated before use: revalidate as the
    /// leader of the entry's flight, or after its leader.
    pub(super) async fn stale(
        &self,
        mut request: Request<B>,
        key: &CacheKey,
        entry: Entry<B>,
        now: SystemTime,
    ) -> Response<B> {
        let wait = match self.join(&request, &entry.url, now) {
            Some(Join::Waiter(wait)) => wait,
            Some(Join::Leader(lead)) => {
                return self.revalidate(request, key, entry, Some(lead), now).await
            }
            None => return self.revalidate(request, key, entry, None, now).await,
        };
        let phase = Phase::Stale;
        let failure = match self.outcome(wait).await {
            Some(Outcome::Stored(url)) => {
                match self.collapsed(&mut request, key, &url, phase, now).await {
                    Collapsed::Served(answer) => return answer,
                    // Purged while this request waited: a miss, shared.
                    Collapsed::Purged => {
                        let status = CacheStatus::new(Phase::UriMiss).with_detail("purged");
                        let (marker, url) = (entry.marker, entry.url);
                        return self.miss(request, key, marker, &url, status, now).await;
                    }
                    _ => None,
                }
            }
            Some(Outcome::Failed(e)) => Some((None, Some(e))),
            Some(Outcome::ErrorStatus(code)) => Some((Some(code), None)),
            Some(Outcome::NotShared) | None => None,
        };
        let Some((code, error)) = failure else {
            return self.revalidate(request, key, entry, None, now).await;
        };
        let (config, usage) = (&self.config, StaleUse::IfError);
        if stale::servable(&entry.meta, now, usage, &config.stale, config.retain_stale).is_some() {
            let (headers, method) = (request.headers(), request.method());
            return self
                .serve_stale(entry, usage, code, headers, method, now)
                .await;
        }
        match error {
            Some(e) => self.origin_failed(CacheStatus::new(phase), e, now),
            // A 5xx answer may be the leader's own doing: ask for yourself.
            None => self.revalidate(request, key, entry, None, now).await,
        }
    }

    /// Joins the flight for `url`, unless the request cannot share a fetch:
    /// `Authorization` (what it may share is decided per response), and
    /// requests whose own answer is not the URL's (`Range`, a request
    /// `no-store`): leading, they would leave every waiter to ask the
    /// origin itself; one client could time that to spoil a key for all.
    fn join(&self, request: &Request<B>, url: &str, now: SystemTime) -> Option<Join> {
        let headers = request.headers();
        let no_store = Directives::from_headers(headers, header::CACHE_CONTROL)
            .is_some_and(|d| d.has("no-store"));
        let alone = headers.contains_key(header::AUTHORIZATION)
            || headers.contains_key(header::RANGE)
            || no_store;
        (!alone).then(|| self.flights.join(url, now, self.flight_bound()))
    }

    /// How long a request waits for another's fetch, and how long a flight
    /// takes waiters: `ORIGIN_TIMEOUT`.
    pub(super) fn flight_bound(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.config.origin_timeout_secs))
    }

    /// The flight's outcome, or `None` after `ORIGIN_TIMEOUT`.
    async fn outcome(&self, wait: Wait) -> Option<Outcome> {
        let ms = self.flight_bound().as_millis() as u64;
        wait.outcome_within(&self.background, ms).await
    }

    /// What the leader stored at `stored`, as this request sees it: its own
    /// variant is served if fresh, or if it is the very entry the flight
    /// stored (written after this request joined, so collapsing onto it is
    /// as good as having forwarded the request: a `no-cache` entry just
    /// validated serves its waiters too).
    async fn collapsed(
        &self,
        request: &mut Request<B>,
        key: &CacheKey,
        stored: &str,
        phase: Phase,
        now: SystemTime,
    ) -> Collapsed<B> {
        // A waiter's request carries its country already (it missed).
        let entry = match self.lookup(key, request, None).await {
            Lookup::Found(entry) => entry,
            Lookup::VaryMiss(marker, url) => return Collapsed::OtherVariant(marker, url),
            Lookup::UriMiss => return Collapsed::Nothing,
        };
        let fresh = matches!(entry.meta.freshness(now), Freshness::Fresh(_));
        if !fresh && entry.url != stored {
            return Collapsed::Nothing;
        }
        // A fill that began before a purge stored what the purge covers.
        // Purges issued after this request arrived do not apply to it. An
        // entry the purge records cannot vouch for (KV unreadable) is
        // served when it is the very one this flight just fetched or
        // revalidated: the origin vouched for it a moment ago.
        match self.coverage(&entry, now).await {
            Coverage::Current => {}
            Coverage::Unknown if entry.url == stored => {}
            _ => return Collapsed::Purged,
        }
        let mut status = CacheStatus::new(phase);
        status.collapsed = true;
        status.fwd_status = Some(entry.meta.status);
        status.ttl = Some(entry.meta.ttl(now));
        let (parts, body) = entry.response.into_parts();
        let (headers, method) = (request.headers(), request.method());
        let answer = self.serve_stored(parts, body, &entry.meta, headers, method, status, now);
        Collapsed::Served(answer.await)
    }
}
