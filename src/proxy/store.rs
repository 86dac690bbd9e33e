//! Writing to storage: where a response goes (the primary URL, or a variant
//! behind a vary marker), and the stored copy itself, written in the background.

use super::*;

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background> Proxy<B, S, O, W> {
    /// Writes a response in the background, per `plan`: cookies and
    /// `private="…"` fields stay out of storage, the record goes in, and the
    /// body is split between storage and the client (its headers and method).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &self,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        plan: &Storable,
        parts: &mut Parts,
        body: B,
        (request, method): (&HeaderMap, &Method),
        now: SystemTime,
    ) -> Stored<B> {
        let meta = EntryMeta::new(key.primary(), plan, parts.status, &parts.headers, now, now);
        let stored_headers = cookies::split_for_storage(&mut parts.headers, &plan.strip_fields);
        let retention = meta.retention(self.config.retain_stale);
        let url = self.placement(key, marker, &stored_headers, request, retention, now);
        let stored = stored_copy(stored_headers, meta.clone(), retention);
        let (client_body, stored_body) = if method == Method::HEAD {
            (B::empty(), body)
        } else {
            body.tee()
        };
        self.put_in_background(url, Response::from_parts(stored, stored_body));
        Stored { client_body, meta }
    }

    /// Chooses the storage URL for a response kept for `retention` seconds,
    /// writing the vary marker when the response varies and the known marker
    /// does not fit or would expire before this variant.
    pub(super) fn placement(
        &self,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        response: &HeaderMap,
        request: &HeaderMap,
        retention: u64,
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
        let variance = key.variance(names.iter().map(String::as_str), request);
        let keep_until = meta::unix_secs(now) + retention;
        let marker = match marker {
            Some(m) if m.names == names && m.keep_until >= keep_until => m,
            Some(m) if m.names == names => {
                self.put_marker(key, VaryMarker { keep_until, ..m }, now)
            }
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
                self.put_marker(
                    key,
                    VaryMarker {
                        names,
                        generation,
                        keep_until,
                    },
                    now,
                )
            }
        };
        key.variant_url(&marker.generation, &variance)
    }

    /// Writes `marker` at the primary URL, kept until `marker.keep_until`.
    fn put_marker(&self, key: &CacheKey, marker: VaryMarker, now: SystemTime) -> VaryMarker {
        let mut headers = HeaderMap::new();
        headers.insert(
            meta::META_HEADER,
            meta::encode(Record::Vary(marker.clone())),
        );
        let lifetime = marker
            .keep_until
            .saturating_sub(meta::unix_secs(now))
            .max(1);
        headers.insert(header::CACHE_CONTROL, meta::retention_directive(lifetime));
        // A body, because some Cache API implementations (Miniflare's) drop
        // an entry whose body is empty.
        let mut response = Response::new(B::from_bytes(b"vary marker\n".to_vec()));
        *response.headers_mut() = headers;
        self.put_in_background(key.primary_url(), response);
        marker
    }

    /// Stores `response` once its whole body has arrived. A body cut short
    /// (the origin closed early, a chunked body lost its end) or shorter or
    /// longer than its `Content-Length` is never stored: served from cache
    /// it would look complete to every later client.
    pub(super) fn put_in_background(&self, url: String, response: Response<B>) {
        let storage = self.storage.clone();
        let log = self.background.clone();
        self.background.spawn(async move {
            let (parts, body) = response.into_parts();
            let (body, length) = match body.buffered().await {
                Ok(whole) => whole,
                Err(e) => return log.warn(&format!("not stored, body incomplete: {url}: {e}")),
            };
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(declared) = declared.filter(|declared| *declared != length) {
                return log.warn(&format!(
                    "not stored, {length} bytes of a {declared}-byte body: {url}"
                ));
            }
            if let Err(e) = storage.put(&url, Response::from_parts(parts, body)).await {
                log.warn(&format!("cache write failed for {url}: {e}"));
            }
        });
    }
}

/// The head of the stored copy: the client-safe headers, the record, and
/// the retention the Cache API is told.
fn stored_copy(mut headers: HeaderMap, meta: EntryMeta, retention: u64) -> Parts {
    meta::to_stored(&mut headers, meta, retention);
    let (mut stored, ()) = Response::new(()).into_parts();
    stored.headers = headers;
    stored
}
