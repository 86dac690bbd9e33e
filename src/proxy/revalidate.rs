//! Stale entries: revalidation with the origin (RFC 9111 §4.3), in the
//! foreground or in the background, and serving stale where
//! [`crate::stale`] allows it.

use super::*;

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// A stale (or always-revalidate) entry: ask the origin, conditionally
    /// when the entry has validators. A 304 that selects the entry freshens
    /// it; any other answer replaces it. When the origin fails and the entry
    /// is inside its `stale-if-error` window, the entry answers instead.
    /// `lead` is the flight this revalidation leads, if any.
    pub(super) async fn revalidate(
        &self,
        request: Request<B>,
        key: &CacheKey,
        entry: Entry<B>,
        lead: Option<Lead>,
        now: SystemTime,
    ) -> Response<B> {
        let validators = conditional::validators(entry.response.headers());
        let client_headers = request.headers().clone();
        let method = request.method().clone();
        let (request_parts, body) = request.into_parts();
        let mut origin_request = origin_request(Request::from_parts(request_parts.clone(), body));
        // The origin's 304 must answer the cache's validators, not the
        // client's: a client's `If-None-Match: *` riding on a range
        // request would make any 304 look like one that selects the stale
        // copy, and keep it fresh for everyone (RFC 9111 §4.3.4). Its
        // range goes too: the entry is revalidated whole, as in the
        // background.
        conditional::strip_preconditions(origin_request.headers_mut());
        origin_request.headers_mut().remove(header::RANGE);
        for (name, value) in validators.iter().flatten() {
            origin_request
                .headers_mut()
                .insert(name.clone(), value.clone());
        }
        let if_error = stale::servable(
            &entry.meta,
            now,
            StaleUse::IfError,
            &self.config.stale,
            self.config.retain_stale,
        );
        let status = CacheStatus::new(Phase::Stale);
        let target = Target::new(key, entry.marker.clone(), lead);
        let (client, method) = (&client_headers, &method);
        let response = match (self.fetch_origin(origin_request, now).await, if_error) {
            (Err(e), Some(_)) => {
                self.background.warn(&e.to_string());
                target.failed(&e);
                let usage = StaleUse::IfError;
                return self
                    .serve_stale(entry, usage, None, client, method, now)
                    .await;
            }
            (Err(e), None) => {
                target.failed(&e);
                return self.origin_failed(status, e, now);
            }
            (Ok(r), Some(_)) if stale::is_error_status(r.status()) => {
                // Waiters get their own stale entry too, not a retry each.
                let code = r.status().as_u16();
                target.error_status(code);
                let usage = StaleUse::IfError;
                return self
                    .serve_stale(entry, usage, Some(code), client, method, now)
                    .await;
            }
            (Ok(r), _) => r,
        };
        if response.status() != StatusCode::NOT_MODIFIED || validators.is_none() {
            let head = (response.status(), response.headers());
            if let (true, Err(reason)) = (head.0.is_success(), self.plan(client, head, now)) {
                self.retire_if_forbidden(&entry.url, reason, client);
            }
            return match self
                .store_and_respond(response, (client, method), target, status, now)
                .await
            {
                Ok(answer) => answer,
                Err((_, e)) if if_error.is_some() => {
                    self.background.warn(&e.to_string());
                    let usage = StaleUse::IfError;
                    self.serve_stale(entry, usage, None, client, method, now)
                        .await
                }
                Err((status, e)) => self.origin_failed(status, e, now),
            };
        }
        if !conditional::selects(entry.response.headers(), response.headers()) {
            // §4.3.4: a 304 naming another representation updates nothing;
            // fetch the current one in full.
            let request = Request::from_parts(request_parts, B::empty());
            return self.fill(request, target, status, now).await;
        }
        // §4.3.4: freshen the stored response with the 304's fields.
        let mut status = status;
        status.fwd_status = Some(304);
        let (not_modified, _) = response.into_parts();
        let (mut parts, body) = entry.response.into_parts();
        conditional::freshen(&mut parts.headers, &not_modified.headers);
        let plan = match self.plan(client, (parts.status, &parts.headers), now) {
            Ok(plan) => plan,
            Err(reason) => {
                status.detail = Some(reason.as_str());
                return self.deliver(parts, body, client, method, status, Preconditions::PassOn);
            }
        };
        // Read whole before it is stored again, as a fetched body is.
        let body = match body.buffered(self.storing_limit()).await {
            Ok(Buffered::Whole(body, _)) => body,
            Ok(Buffered::PassOn(body, _)) => {
                return self.deliver(parts, body, client, method, status, Preconditions::PassOn)
            }
            Err(e) => return self.storage_failed(status, e, now),
        };
        let stored = self.store(target, &plan, &mut parts, body, (client, method), now);
        status.stored = true;
        status.ttl = Some(stored.meta.ttl(now));
        let body = stored.client_body;
        self.serve_stored(parts, body, &stored.meta, client, method, status, now)
            .await
    }

    /// Deletes the entry at `url` when the origin's successful, full answer
    /// to an anonymous revalidation says the resource may no longer be
    /// stored (`no-store`, `private`): the stale copy must not go on
    /// answering within its windows. Only a 2xx with the response's own
    /// reason counts: an error page or a 304 with `no-store` (Spring's
    /// default on a 406, say) speaks of that answer, not of the resource,
    /// and a request's own `no-store` or `Range` of nothing at all. Never
    /// for a request with `Authorization` or `Cookie`, whose private answer
    /// may speak for that user alone. Otherwise any client could retire
    /// shared entries, and with them the stale-if-error cover.
    fn retire_if_forbidden(&self, url: &str, reason: NoStoreReason, request: &HeaderMap) {
        let forbidden = matches!(
            reason,
            NoStoreReason::ResponseNoStore | NoStoreReason::Private
        );
        let personal =
            request.contains_key(header::AUTHORIZATION) || request.contains_key(header::COOKIE);
        if forbidden && !personal {
            self.forget(url);
        }
    }

    /// Deletes a stored entry in the background (failures are logged).
    fn forget(&self, url: &str) {
        let (storage, log, url) = (
            self.storage.clone(),
            self.background.clone(),
            url.to_string(),
        );
        self.background.spawn(async move {
            if let Err(e) = storage.delete(&url).await {
                log.warn(&format!("deleting {url} failed: {e}"));
            }
        });
    }

    /// Serves a stale entry for `usage`: `hit` for stale-while-revalidate
    /// (the origin was not waited for), `fwd=stale` with the origin's
    /// status for stale-if-error; a negative `ttl` either way.
    pub(super) async fn serve_stale(
        &self,
        entry: Entry<B>,
        usage: StaleUse,
        fwd_status: Option<u16>,
        request: &HeaderMap,
        method: &Method,
        now: SystemTime,
    ) -> Response<B> {
        let mut status = match usage {
            StaleUse::WhileRevalidate => CacheStatus::new(Phase::Hit),
            StaleUse::IfError => CacheStatus::new(Phase::Stale),
        };
        status.fwd_status = fwd_status;
        status.ttl = Some(entry.meta.ttl(now));
        status.detail = Some(usage.detail());
        let (parts, body) = entry.response.into_parts();
        self.serve_stored(parts, body, &entry.meta, request, method, status, now)
            .await
    }

    /// Revalidates the entry for `request` after the response is sent
    /// (`wait_until`), when it is still stale or purged. It reads the entry again in its own task, so the
    /// client's copy of the body is not shared; an error leaves the stale
    /// entry as it is.
    pub(super) fn revalidate_in_background(
        &self,
        request: &Request<B>,
        key: &CacheKey,
        url: &str,
        now: SystemTime,
    ) {
        // At most one per entry in this isolate.
        let Join::Leader(lead) = self.flights.join(url, now, self.flight_bound()) else {
            return;
        };
        let proxy = self.clone();
        let key = key.clone();
        let mut background = Request::new(B::empty());
        *background.uri_mut() = request.uri().clone();
        if let Some(order) = request.extensions().get::<ClientOrder>() {
            background.extensions_mut().insert(order.clone());
        }
        *background.headers_mut() = request.headers().clone();
        // Only what selects the variant matters; the client's range and
        // preconditions are for its own answer. So are its own directives
        // and credentials: a client's `no-store` riding on this shared
        // revalidation would keep the stale (or soft-purged) copy in place
        // for everyone, one revalidation per request, for as long as that
        // client kept asking.
        for name in [
            header::RANGE,
            header::CACHE_CONTROL,
            header::PRAGMA,
            header::AUTHORIZATION,
        ] {
            background.headers_mut().remove(name);
        }
        conditional::strip_preconditions(background.headers_mut());
        self.background.spawn(async move {
            // A copy of a request that was stamped (it was not a fresh hit).
            if let Lookup::Found(entry) = proxy.lookup(&key, &mut background, None).await {
                let stale = matches!(entry.meta.freshness(now), Freshness::Stale(_));
                if stale || proxy.coverage(&entry, now).await != Coverage::Current {
                    drop(
                        proxy
                            .revalidate(background, &key, entry, Some(lead), now)
                            .await,
                    );
                }
            }
        });
    }
}
