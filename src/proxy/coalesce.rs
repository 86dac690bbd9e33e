//! One origin fetch per key: a miss or a stale entry that must be
//! revalidated joins the key's flight ([`crate::flight`]). The leader goes
//! to the origin; each waiter acts on how the flight ended:
//!
//! - `Stored`: it reads the entry the leader stored, in its own request, and
//!   serves it if it is this request's variant and fresh (`collapsed`);
//!   otherwise (another variant) it asks the origin itself.
//! - `NotShared` (private, no-store, a cookie for the leader's client, not
//!   storable, the leader gone) or no outcome within `ORIGIN_TIMEOUT`: it
//!   asks the origin itself, at once and outside any flight, so waiters are
//!   never served one after another (Varnish's waiting list does that).
//! - `Failed`: the same error, or its stale entry where stale-if-error
//!   allows: a dead origin does not see one retry per waiter.
//!
//! Requests with `Authorization` never join: what they may share is decided
//! per response (§3.5). Bypassed requests never reach this far.

use super::*;
use crate::flight::Wait;

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background> Proxy<B, S, O, W> {
    /// Nothing stored for this request: fill, as the leader of `flight`
    /// (the storage URL the response would take) or after its leader.
    pub(super) async fn miss(
        &self,
        request: Request<B>,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        flight: &str,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let wait = match self.join(&request, flight) {
            Some(Join::Waiter(wait)) => wait,
            lead => {
                let lead = lead.and_then(|join| match join {
                    Join::Leader(lead) => Some(lead),
                    Join::Waiter(_) => None,
                });
                let target = Target::new(key, marker, lead);
                return self.fill(request, target, status, now).await;
            }
        };
        match self.outcome(wait).await {
            Some(Outcome::Stored) => {
                if let Some(served) = self.collapsed(&request, key, status.phase, now).await {
                    return served;
                }
            }
            Some(Outcome::Failed(e)) => return self.origin_failed(status, e, now),
            Some(Outcome::NotShared) | None => {}
        }
        let target = Target::new(key, marker, None);
        self.fill(request, target, status, now).await
    }

    /// A stale entry that must be revalidated before use: revalidate as the
    /// leader of the entry's flight, or after its leader.
    pub(super) async fn stale(
        &self,
        request: Request<B>,
        key: &CacheKey,
        entry: Entry<B>,
        now: SystemTime,
    ) -> Response<B> {
        let wait = match self.join(&request, &entry.url) {
            Some(Join::Waiter(wait)) => wait,
            Some(Join::Leader(lead)) => {
                return self.revalidate(request, key, entry, Some(lead), now).await
            }
            None => return self.revalidate(request, key, entry, None, now).await,
        };
        match self.outcome(wait).await {
            Some(Outcome::Stored) => {
                if let Some(served) = self.collapsed(&request, key, Phase::Stale, now).await {
                    return served;
                }
            }
            Some(Outcome::Failed(e)) => {
                let (config, usage) = (&self.config, StaleUse::IfError);
                let stale =
                    stale::servable(&entry.meta, now, usage, &config.stale, config.retain_stale);
                if stale.is_some() {
                    let (headers, method) = (request.headers(), request.method());
                    return self
                        .serve_stale(entry, usage, None, headers, method, now)
                        .await;
                }
                return self.origin_failed(CacheStatus::new(Phase::Stale), e, now);
            }
            Some(Outcome::NotShared) | None => {}
        }
        self.revalidate(request, key, entry, None, now).await
    }

    /// Joins the flight for `url`, unless the request may not share a fetch.
    fn join(&self, request: &Request<B>, url: &str) -> Option<Join> {
        let personal = request.headers().contains_key(header::AUTHORIZATION);
        (!personal).then(|| self.flights.join(url))
    }

    /// The flight's outcome, or `None` after `ORIGIN_TIMEOUT`.
    async fn outcome(&self, wait: Wait) -> Option<Outcome> {
        let ms = u64::from(self.config.origin_timeout_secs) * 1000;
        wait.outcome_within(&self.background, ms).await
    }

    /// Serves what the leader stored, if it is this request's variant and fresh.
    async fn collapsed(
        &self,
        request: &Request<B>,
        key: &CacheKey,
        phase: Phase,
        now: SystemTime,
    ) -> Option<Response<B>> {
        let Lookup::Found(entry) = self.lookup(key, request.headers()).await else {
            return None;
        };
        let Freshness::Fresh(ttl) = entry.meta.freshness(now) else {
            return None;
        };
        let mut status = CacheStatus::new(phase);
        status.collapsed = true;
        status.fwd_status = Some(entry.meta.status);
        status.ttl = Some(ttl as i64);
        let (parts, body) = entry.response.into_parts();
        let (headers, method) = (request.headers(), request.method());
        Some(
            self.serve_stored(parts, body, &entry.meta, headers, method, status, now)
                .await,
        )
    }
}
