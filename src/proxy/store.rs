//! Writing to storage: where a response goes (the primary URL, or a variant
//! behind a vary marker), and the stored copy itself, written in the
//! background once its whole body has arrived.

use super::*;

/// Where a response fetched for a cache-eligible request goes.
pub(super) struct Target<'a> {
    pub key: &'a CacheKey,
    /// The vary marker the lookup went through, if any.
    pub marker: Option<VaryMarker>,
    /// The flight this fetch leads, if it leads one: told how it ended.
    pub lead: Option<Lead>,
}

impl<'a> Target<'a> {
    pub fn new(key: &'a CacheKey, marker: Option<VaryMarker>, lead: Option<Lead>) -> Self {
        Target { key, marker, lead }
    }

    /// Tells waiters the origin failed, and that this target is spent.
    pub fn failed(self, error: &OriginError) {
        if let Some(lead) = self.lead {
            lead.finish(Outcome::Failed(error.clone()));
        }
    }
}

/// A storage write: URL and stored copy.
type Write<B> = (String, Response<B>);

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background> Proxy<B, S, O, W> {
    /// Writes a response in the background, per `plan`: cookies and
    /// `private="…"` fields stay out of storage, the record goes in, and the
    /// body is split between storage and the client (its headers and method).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &self,
        target: Target,
        plan: &Storable,
        parts: &mut Parts,
        body: B,
        (request, method): (&HeaderMap, &Method),
        now: SystemTime,
    ) -> Stored<B> {
        let meta = EntryMeta::new(
            target.key.primary(),
            plan,
            parts.status,
            &parts.headers,
            now,
            now,
        );
        let stored_headers = cookies::split_for_storage(&mut parts.headers, &plan.strip_fields);
        let retention = meta.retention(self.config.retain_stale);
        let (url, marker) = self.placement(
            target.key,
            target.marker,
            &stored_headers,
            request,
            retention,
            now,
        );
        let stored = stored_copy(stored_headers, meta.clone(), retention);
        let (client_body, stored_body) = if method == Method::HEAD {
            (B::empty(), body)
        } else {
            body.tee()
        };
        // A cookie kept for this client (`private="Set-Cookie"`) means the
        // entry is not what this client got: waiters ask the origin themselves.
        let lead = match parts.headers.contains_key(header::SET_COOKIE) {
            true => None,
            false => target.lead,
        };
        let entry = (url, Response::from_parts(stored, stored_body));
        self.put_in_background(marker, entry, lead);
        Stored { client_body, meta }
    }

    /// Chooses the storage URL for a response kept for `retention` seconds,
    /// and the vary marker to write first when the response varies and the
    /// known marker does not fit or would expire before this variant.
    pub(super) fn placement(
        &self,
        key: &CacheKey,
        marker: Option<VaryMarker>,
        response: &HeaderMap,
        request: &HeaderMap,
        retention: u64,
        now: SystemTime,
    ) -> (String, Option<Write<B>>) {
        let mut names: Vec<String> = vary_names(response)
            .chain(key.implicit_vary().iter().cloned())
            .collect();
        if names.is_empty() {
            return (key.primary_url(), None);
        }
        names.sort();
        names.dedup();
        let variance = key.variance(names.iter().map(String::as_str), request);
        let keep_until = meta::unix_secs(now) + retention;
        let (marker, write) = match marker {
            Some(m) if m.names == names && m.keep_until >= keep_until => (m, None),
            Some(m) if m.names == names => {
                let m = VaryMarker { keep_until, ..m };
                let write = self.marker_write(key, &m, now);
                (m, Some(write))
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
                let m = VaryMarker {
                    names,
                    generation,
                    keep_until,
                };
                let write = self.marker_write(key, &m, now);
                (m, Some(write))
            }
        };
        (key.variant_url(&marker.generation, &variance), write)
    }

    /// `marker` at the primary URL, kept until `marker.keep_until`.
    fn marker_write(&self, key: &CacheKey, marker: &VaryMarker, now: SystemTime) -> Write<B> {
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
        (key.primary_url(), response)
    }

    /// Stores `entry` once its whole body has arrived, after its vary marker
    /// if it has one, then tells the flight it leads that it is stored. A
    /// body cut short (the origin closed early, a chunked body lost its end)
    /// or shorter or longer than its `Content-Length` is never stored: served
    /// from cache it would look complete to every later client.
    pub(super) fn put_in_background(
        &self,
        marker: Option<Write<B>>,
        (url, response): Write<B>,
        lead: Option<Lead>,
    ) {
        let storage = self.storage.clone();
        let log = self.background.clone();
        let limit = self.config.policy.max_stored_body;
        self.background.spawn(async move {
            let (parts, body) = response.into_parts();
            let (body, length) = match body.buffered(limit).await {
                Ok(Buffered::Whole(body, length)) => (body, length),
                Ok(Buffered::TooLarge(_)) => {
                    return log.warn(&format!("not stored, longer than {limit} bytes: {url}"))
                }
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
            for (url, response) in marker
                .into_iter()
                .chain([(url, Response::from_parts(parts, body))])
            {
                if let Err(e) = storage.put(&url, response).await {
                    // The lead, dropped, tells waiters nothing was shared.
                    return log.warn(&format!("cache write failed for {url}: {e}"));
                }
            }
            if let Some(lead) = lead {
                lead.finish(Outcome::Stored);
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
