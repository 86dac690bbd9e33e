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

    /// Tells waiters the origin answered an error status, not stored.
    pub fn error_status(self, code: u16) {
        if let Some(lead) = self.lead {
            lead.finish(Outcome::ErrorStatus(code));
        }
    }
}

/// A storage write: URL and stored copy.
type Write<B> = (String, Response<B>);

/// What placing an entry needs: where the response's variants live, and
/// this request's values for them.
struct Placement {
    key: CacheKey,
    /// The vary marker the lookup went through, if any.
    marker: Option<VaryMarker>,
    /// Fields the entry varies on (its `Vary` and `VARY_BY_PATH`), sorted.
    names: Vec<String>,
    request: HeaderMap,
    retention: u64,
    now: SystemTime,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Writes a response in the background, per `plan`: cookies and
    /// `private="…"` fields stay out of storage, the record goes in, and the
    /// body (whole, see `store_and_respond`) is shared between storage and
    /// the client (its headers and method).
    pub(super) fn store(
        &self,
        target: Target,
        plan: &Storable,
        parts: &mut Parts,
        body: B,
        (request, method): (&HeaderMap, &Method),
        now: SystemTime,
    ) -> Stored<B> {
        let key = target.key;
        let dropped = crate::purge::tags::sanitise(&mut parts.headers);
        if dropped > 0 {
            self.background.warn(&format!(
                "{dropped} tags past the limits dropped (see README)"
            ));
        }
        let mut meta = EntryMeta::new(key.primary(), plan, parts.status, &parts.headers, now, now);
        meta.host = key.authority().to_string();
        meta.path = key.path_and_query().to_string();
        let stored_headers = cookies::split_for_storage(&mut parts.headers, &plan.strip_fields);
        let retention = meta.retention(self.config.retain_stale);
        let mut names: Vec<String> = vary_names(&stored_headers)
            .chain(key.implicit_vary().iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        let placement = Placement {
            key: key.clone(),
            marker: target.marker,
            names,
            request: request.clone(),
            retention,
            now,
        };
        let (stored, record) = stored_copy(stored_headers, meta.clone(), retention);
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
        let entry = Response::from_parts(stored, stored_body);
        self.put_in_background(placement, (entry, record), lead);
        Stored { client_body, meta }
    }

    /// The storage URL for an entry, and the vary marker to write first
    /// when it varies and the known marker does not fit or would expire
    /// before it.
    fn placement(&self, place: Placement) -> (String, Option<Write<B>>) {
        let Placement {
            key,
            marker,
            names,
            request,
            retention,
            now,
        } = place;
        if names.is_empty() {
            return (key.primary_url(), None);
        }
        let variance = key.variance(names.iter().map(String::as_str), &request);
        let keep_until = meta::unix_secs(now) + retention;
        let (marker, write) = match marker {
            Some(m) if m.names == names && m.keep_until >= keep_until => (m, None),
            Some(m) if m.names == names => {
                let m = VaryMarker { keep_until, ..m };
                let write = self.marker_write(&key, &m, now);
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
                let write = self.marker_write(&key, &m, now);
                (m, Some(write))
            }
        };
        (key.variant_url(&marker.generation, &variance), write)
    }

    /// `marker` at the primary URL, kept until `marker.keep_until`.
    fn marker_write(&self, key: &CacheKey, marker: &VaryMarker, now: SystemTime) -> Write<B> {
        let mut headers = HeaderMap::new();
        let lifetime = marker
            .keep_until
            .saturating_sub(meta::unix_secs(now))
            .max(1);
        headers.insert(header::CACHE_CONTROL, meta::retention_directive(lifetime));
        meta::seal(&mut headers, Record::Vary(marker.clone()));
        // A body, because some Cache API implementations (Miniflare's) drop
        // an entry whose body is empty.
        let mut response = Response::new(B::from_bytes(b"vary marker\n".to_vec()));
        *response.headers_mut() = headers;
        (key.primary_url(), response)
    }

    /// Stores `entry` once its whole body is at hand, after its vary marker
    /// if it needs one, then tells the flight it leads where it is stored.
    /// A body cut short or shorter or longer than its `Content-Length` is
    /// never stored: served from cache it would look complete to every
    /// later client. An entry that varies, found by a miss that saw no
    /// marker, takes the marker a concurrent fill may have written since,
    /// rather than a new generation that would orphan that fill's variants.
    /// The record is sealed into the copy once the body's length is known.
    fn put_in_background(
        &self,
        mut place: Placement,
        (entry, record): (Response<B>, Record),
        lead: Option<Lead>,
    ) {
        let proxy = self.clone();
        self.background.spawn(async move {
            let log = &proxy.background;
            // Already whole (see `store_and_respond`); read again only to
            // check it is still so, with the same limits.
            let (mut parts, body) = entry.into_parts();
            let (body, length) = match body.buffered(proxy.storing_limit()).await {
                Ok(Buffered::Whole(body, length)) => (body, length),
                Ok(Buffered::PassOn(..)) => return log.warn("not stored, past the storing limits"),
                Err(e) => return log.warn(&format!("not stored, body incomplete: {e}")),
            };
            let declared = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(declared) = declared.filter(|declared| *declared != length) {
                return log.warn(&format!(
                    "not stored, {length} bytes of a {declared}-byte body"
                ));
            }
            // Stated whether or not the origin did (the Cache API adds it
            // anyway): sealed with the other fields, two copies of different
            // lengths never share a record.
            parts.headers.insert(header::CONTENT_LENGTH, length.into());
            meta::seal(&mut parts.headers, record);
            if place.marker.is_none() && !place.names.is_empty() {
                if let Some((Record::Vary(m), _)) = proxy.read(&place.key.primary_url()).await {
                    place.marker = Some(m);
                }
            }
            let (url, marker) = proxy.placement(place);
            for (url, response) in marker
                .into_iter()
                .chain([(url.clone(), Response::from_parts(parts, body))])
            {
                if let Err(e) = proxy.storage.put(&url, response).await {
                    // The lead, dropped, tells waiters nothing was shared.
                    return log.warn(&format!("cache write failed for {url}: {e}"));
                }
            }
            if let Some(lead) = lead {
                lead.finish(Outcome::Stored(url));
            }
        });
    }
}

/// The head of the stored copy (the client-safe headers and the retention
/// the Cache API is told), and the record to seal into it.
fn stored_copy(mut headers: HeaderMap, meta: EntryMeta, retention: u64) -> (Parts, Record) {
    let record = meta::to_stored(&mut headers, meta, retention);
    let (mut stored, ()) = Response::new(()).into_parts();
    stored.headers = headers;
    (stored, record)
}
