//! The versioned record stored beside each body, in the `x-edge-cache-meta`
//! header of the Cache API entry.
//!
//! Freshness is decided from this record, never from the Cache API's own
//! expiry: the Cache API evicts at its own pace (and locally not at all), and
//! entries are kept past their freshness for revalidation and stale serving.
//! New fields must arrive with `#[serde(default)]` so older records still read;
//! a change that old readers would misread bumps [`RECORD_VERSION`].

use crate::policy::{Revalidate, Storable};
use http::header::{HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header that carries the record in storage. It is removed from every
/// origin response, so an origin cannot forge one.
pub const META_HEADER: &str = "x-edge-cache-meta";

/// Records of another version are ignored (treated as a miss). Version 2
/// added what purges match on (`fetched_ms`, `host`, `path`): an entry
/// without them could not be purged, so older entries are fetched again.
/// Version 3 nests the record under its kind (`{"v":3,"record":{"response":
/// {…}}}`) where version 2 put a `kind` tag beside the fields: serde reads
/// that shape without first buffering the whole object, which made reading
/// the record about 5% of a Cache API hit's CPU in a profile.
pub const RECORD_VERSION: u32 = 3;

/// Fields whose origin value is moved into the record while the stored copy
/// carries the cache's own or none. They come back when the entry is read,
/// so clients and revalidation see the origin's fields exactly:
/// - the Cache API must keep the entry past its freshness (`Cache-Control`,
///   `Expires`, and the targeted fields, which it may also read) and must not
///   apply `Vary` itself;
/// - Miniflare's Cache API replaces `Date` with the time of the `put`, while a
///   hit must carry the origin's (RFC 9110 §6.6.1);
/// - `Content-Encoding` makes Cache API implementations transform the body,
///   and differently: workerd's decodes gzip on `match` as `fetch` does,
///   Miniflare's returns the stored bytes. Without the field, both store and
///   return the origin's encoded bytes untouched.
/// - the tag fields are the cache's (see [`crate::purge::tags`]): kept for
///   purges and for 304s to freshen, never sent to clients.
const SHADOWED: [&str; 9] = [
    "cache-control",
    "content-encoding",
    "date",
    "expires",
    "vary",
    crate::policy::CDN_CACHE_CONTROL,
    crate::policy::SURROGATE_CONTROL,
    crate::purge::tags::CACHE_TAG,
    crate::purge::tags::SURROGATE_KEY,
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    record: Record,
    /// A digest of the stored copy's other fields (see [`seal`]); 0 in
    /// records written before it existed.
    #[serde(default)]
    head: u64,
}

/// A record its storage layer already read from the fields it came in
/// (which still hold it): [`from_stored`] then parses no JSON. Unlike the
/// hot tier's `ReadRecord`, whose fields were restored already.
#[derive(Debug, Clone)]
pub struct ParsedRecord(pub std::sync::Arc<Record>);

/// What a storage URL holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// A response, body included.
    Response(EntryMeta),
    /// The response varies: look up the variant (see [`crate::key`]).
    Vary(VaryMarker),
}

/// Says which request fields select the variant, and the generation that
/// variant URLs are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaryMarker {
    pub names: Vec<String>,
    pub generation: String,
    /// Unix seconds the Cache API keeps the marker until: at least as long as
    /// any variant stored through it, or those variants become unreachable.
    #[serde(default)]
    pub keep_until: u64,
}

/// Metadata of a stored response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// Digest of the primary key (for purge by URL).
    pub primary: String,
    /// When the response was received, in Unix seconds (`response_time`, §4.2.3).
    pub stored_at: u64,
    /// `corrected_initial_age` (§4.2.3), seconds.
    pub initial_age: u64,
    /// Freshness lifetime (§4.2.1), seconds.
    pub fresh_for: u64,
    pub revalidate: Revalidate,
    /// May answer requests that carry `Authorization` (§3.5).
    pub shared_with_auth: bool,
    /// The origin's status. The Cache API copy is always a 200, because
    /// Cache API implementations refuse statuses they do not know.
    pub status: u16,
    /// Origin values of the shadowed fields, restored when served.
    #[serde(default)]
    pub shadow: Vec<(String, String)>,
    /// The response's `stale-while-revalidate` (see [`crate::stale`]).
    #[serde(default)]
    pub stale_while_revalidate: Option<u64>,
    /// The response's `stale-if-error` (see [`crate::stale`]).
    #[serde(default)]
    pub stale_if_error: Option<u64>,
    /// Unix milliseconds when the request that fetched (or revalidated) it
    /// began: purges at or after this cover it (see [`crate::purge`]).
    #[serde(default)]
    pub fetched_ms: u64,
    /// The normalised authority and path with query of its key, for purges by URL and prefix.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub path: String,
}

/// Whether a stored response may be used without contacting the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Fresh, with this many seconds left.
    Fresh(u64),
    /// Stale by this many seconds, or it must always be revalidated.
    Stale(u64),
}

impl EntryMeta {
    /// Builds the record for a response received at `response_time` for a
    /// request sent at `request_time` (§4.2.3 age calculation).
    pub fn new(
        primary: &str,
        plan: &Storable,
        status: StatusCode,
        headers: &HeaderMap,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Self {
        EntryMeta {
            primary: primary.to_string(),
            stored_at: unix_secs(response_time),
            initial_age: crate::policy::initial_age(headers, request_time, response_time),
            fresh_for: plan.fresh_for,
            revalidate: plan.revalidate,
            shared_with_auth: plan.shared_with_auth,
            status: status.as_u16(),
            shadow: Vec::new(),
            stale_while_revalidate: plan.stale_while_revalidate,
            stale_if_error: plan.stale_if_error,
            fetched_ms: request_time
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64,
            host: String::new(),
            path: String::new(),
        }
    }

    /// `current_age` (§4.2.3) at `now`.
    pub fn current_age(&self, now: SystemTime) -> u64 {
        self.initial_age + unix_secs(now).saturating_sub(self.stored_at)
    }

    /// Fresh or stale at `now` (§4.2).
    pub fn freshness(&self, now: SystemTime) -> Freshness {
        let age = self.current_age(now);
        match self.revalidate {
            Revalidate::Always => Freshness::Stale(age.saturating_sub(self.fresh_for)),
            _ if age < self.fresh_for => Freshness::Fresh(self.fresh_for - age),
            _ => Freshness::Stale(age - self.fresh_for),
        }
    }

    /// Remaining freshness at `now`, negative once stale (`Cache-Status: ttl=`).
    pub fn ttl(&self, now: SystemTime) -> i64 {
        self.fresh_for as i64 - self.current_age(now) as i64
    }

    /// Seconds the Cache API should keep the entry: its remaining freshness
    /// plus `retain_stale` for later revalidation or stale serving.
    pub fn retention(&self, retain_stale: u64) -> u64 {
        self.fresh_for.saturating_sub(self.initial_age) + retain_stale
    }
}

/// Turns the headers of a response about to be stored into the stored copy:
/// shadowed fields move into `meta`, and the Cache API is told to keep the
/// entry for `retention` seconds. The record comes back to be [`seal`]ed
/// into the copy once its body is whole (its length is part of the seal).
pub fn to_stored(headers: &mut HeaderMap, mut meta: EntryMeta, retention: u64) -> Record {
    for name in SHADOWED {
        for value in headers.get_all(name) {
            // As UTF-8, which is how the runtime hands values over: a value
            // with bytes beyond ASCII is kept, not dropped from every hit
            // (a lost `Vary` would let a downstream cache mix variants).
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            meta.shadow.push((name.to_string(), text));
        }
        headers.remove(name);
    }
    headers.insert(CACHE_CONTROL, retention_directive(retention));
    Record::Response(meta)
}

/// The latest the Cache API may keep a stored copy until (Unix seconds): a
/// response's record time plus the lifetime it was stored with (it was put
/// no earlier than it was received), a Vary marker's `keep_until`.
/// `record` is the one `headers` hold; `None` without a stored lifetime.
pub fn kept_until(headers: &HeaderMap, record: &Record) -> Option<u64> {
    match record {
        Record::Vary(marker) => Some(marker.keep_until),
        Record::Response(meta) => {
            let lifetime = crate::cache_control::Directives::from_headers(headers, CACHE_CONTROL)?
                .seconds("max-age")?;
            Some(meta.stored_at.saturating_add(lifetime))
        }
    }
}

/// The `Cache-Control` the Cache API sees on a stored copy.
pub fn retention_directive(seconds: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={seconds}")).expect("ASCII")
}

/// A record as stored (the value of [`META_HEADER`]) and the digest of
/// the fields it was stored with (0 if it predates digests). `None`: a
/// foreign version, or a corrupt record.
pub fn read(value: &[u8]) -> Option<(Record, u64)> {
    let envelope: Envelope = serde_json::from_slice(value).ok()?;
    (envelope.v == RECORD_VERSION).then_some((envelope.record, envelope.head))
}

/// Reads and removes the record from a stored copy, restoring the shadowed
/// fields; `parsed` is the record already read from them, if it was.
/// `None`: no record, a foreign version, or a corrupt one.
pub fn from_stored(headers: &mut HeaderMap, parsed: Option<ParsedRecord>) -> Option<Record> {
    let raw = headers.remove(META_HEADER)?;
    let record = match parsed {
        Some(ParsedRecord(record)) => std::sync::Arc::unwrap_or_clone(record),
        None => read(raw.as_bytes())?.0,
    };
    if let Record::Response(meta) = &record {
        crate::headers::remove_where(headers, |name| SHADOWED.contains(&name));
        for (name, value) in &meta.shadow {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.append(n, v);
            }
        }
    }
    Some(record)
}

/// Adds `record` to a copy about to be stored with `headers`, with a
/// digest of those fields (names and values in order; SHA-256, first 8
/// bytes). Two stored copies whose records read the same then have the
/// same fields, so a reader that parsed one copy's fields may use them for
/// another whose record it compares equal, without reading them again
/// (see [`crate::heads`]): the record's times alone would not tell apart
/// two copies of one URL fetched in the same millisecond from different
/// origin servers. `headers` must hold the body's `Content-Length`: the
/// Cache API adds one to a copy stored without, and a range is cut by it.
pub fn seal(headers: &mut HeaderMap, record: Record) {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, value) in headers.iter() {
        hasher.update(name.as_str().as_bytes());
        hasher.update(b":");
        hasher.update(value.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    headers.insert(META_HEADER, encode(record, head));
}

/// Encodes a record as a header value: JSON with every character beyond
/// ASCII escaped (`\uXXXX`), which only strings can hold, so the value is
/// visible ASCII (JSON escapes control characters too) and reads back as
/// the same strings.
fn encode(record: Record, head: u64) -> HeaderValue {
    let json = serde_json::to_string(&Envelope {
        v: RECORD_VERSION,
        record,
        head,
    })
    .expect("records contain only strings and integers");
    let json = match json.is_ascii() {
        true => json,
        false => {
            let mut ascii = String::with_capacity(json.len() + 16);
            for c in json.chars() {
                if c.is_ascii() {
                    ascii.push(c);
                } else {
                    for unit in c.encode_utf16(&mut [0; 2]) {
                        ascii.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            ascii
        }
    };
    HeaderValue::from_str(&json).expect("record JSON is visible ASCII")
}

pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{AGE, DATE, VARY};

    fn plan(fresh_for: u64, revalidate: Revalidate) -> Storable {
        Storable {
            fresh_for,
            revalidate,
            shared_with_auth: false,
            strip_fields: vec![],
            stale_while_revalidate: None,
            stale_if_error: None,
        }
    }

    /// The record of a 200 with `headers`, asked for at `sent` and received at `received`.
    fn meta_for(
        fresh_for: u64,
        revalidate: Revalidate,
        headers: &HeaderMap,
        sent: u64,
        received: u64,
    ) -> EntryMeta {
        let plan = plan(fresh_for, revalidate);
        EntryMeta::new("p", &plan, StatusCode::OK, headers, t(sent), t(received))
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn age_per_rfc_9111_4_2_3() {
        let mut h = HeaderMap::new();
        // Origin says the response was generated 10 s before we got it, and an
        // upstream cache had it for 30 s; the fetch took 2 s.
        h.insert(DATE, httpdate::fmt_http_date(t(990)).parse().unwrap());
        h.insert(AGE, "30".parse().unwrap());
        let meta = meta_for(100, Revalidate::WhenStale, &h, 998, 1000);
        assert_eq!(meta.initial_age, 32);
        assert_eq!(meta.current_age(t(1010)), 42);
        assert_eq!(meta.freshness(t(1010)), Freshness::Fresh(58));
        assert_eq!(meta.freshness(t(1068)), Freshness::Stale(0));
        assert_eq!(meta.freshness(t(1100)), Freshness::Stale(32));
        assert_eq!(meta.retention(86_400), 68 + 86_400);
        // A clock running backwards never makes a negative age.
        assert_eq!(meta.current_age(t(0)), 32);
    }

    #[test]
    fn date_in_the_future_and_garbage_age() {
        let mut h = HeaderMap::new();
        h.insert(DATE, httpdate::fmt_http_date(t(5000)).parse().unwrap());
        h.insert(AGE, "banana".parse().unwrap());
        let meta = meta_for(10, Revalidate::WhenStale, &h, 1000, 1000);
        assert_eq!(meta.initial_age, 0);
    }

    #[test]
    fn no_cache_is_always_stale() {
        let meta = meta_for(100, Revalidate::Always, &HeaderMap::new(), 0, 0);
        assert_eq!(meta.freshness(t(1)), Freshness::Stale(0));
    }

    #[test]
    fn round_trip_restores_shadowed_fields() {
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, "public, max-age=60".parse().unwrap());
        h.append(VARY, "accept".parse().unwrap());
        h.append(VARY, "x-a".parse().unwrap());
        h.insert("etag", "\"v1\"".parse().unwrap());
        h.insert("content-encoding", "gzip".parse().unwrap());
        let date = httpdate::fmt_http_date(t(0));
        h.insert(DATE, date.parse().unwrap());
        let meta = meta_for(60, Revalidate::WhenStale, &h, 0, 0);
        let record = to_stored(&mut h, meta.clone(), 86_460);
        seal(&mut h, record);
        assert_eq!(h[CACHE_CONTROL], "public, max-age=86460");
        assert!(!h.contains_key(VARY));
        // The storage sees neither: it must not transform the body or the date.
        assert!(!h.contains_key("content-encoding"));
        assert!(!h.contains_key(DATE));
        // What a Cache API adds is replaced by the origin's on the way out.
        h.insert(DATE, httpdate::fmt_http_date(t(99)).parse().unwrap());
        let record = from_stored(&mut h, None).unwrap();
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h[DATE], date.as_str());
        assert!(matches!(record, Record::Response(m) if m.fresh_for == 60));
        assert_eq!(h[CACHE_CONTROL], "public, max-age=60");
        assert_eq!(h.get_all(VARY).iter().count(), 2);
        assert!(!h.contains_key(META_HEADER));
    }

    #[test]
    fn shadowed_values_beyond_ascii_come_back_byte_for_byte() {
        let mut h = HeaderMap::new();
        let vary = "x-a, x-é";
        let control = "public, max-age=60, ext=\"é😀\"";
        h.insert(VARY, HeaderValue::from_bytes(vary.as_bytes()).unwrap());
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_bytes(control.as_bytes()).unwrap(),
        );
        let meta = meta_for(60, Revalidate::WhenStale, &h, 0, 0);
        let record = to_stored(&mut h, meta, 86_460);
        seal(&mut h, record);
        assert!(
            h[META_HEADER].to_str().is_ok(),
            "the record stays visible ASCII"
        );
        from_stored(&mut h, None).unwrap();
        assert_eq!(h[VARY].as_bytes(), vary.as_bytes());
        assert_eq!(h[CACHE_CONTROL].as_bytes(), control.as_bytes());
    }

    #[test]
    fn foreign_or_corrupt_records_are_ignored() {
        for raw in [
            r#"{"v":99,"record":{"vary":{"names":[],"generation":"g"}}}"#,
            // Version 2's shape, and version 2 in the current shape.
            r#"{"v":2,"kind":"vary","names":[],"generation":"g"}"#,
            r#"{"v":2,"record":{"vary":{"names":[],"generation":"g"}}}"#,
            "{",
            "null",
            "",
        ] {
            let mut h = HeaderMap::new();
            h.insert(META_HEADER, raw.parse().unwrap());
            assert_eq!(from_stored(&mut h, None), None, "{raw}");
        }
        // A marker written before `keep_until` existed still reads (serde default).
        let mut h = HeaderMap::new();
        let older = r#"{"v":3,"record":{"vary":{"names":["accept"],"generation":"g"}}}"#;
        h.insert(META_HEADER, older.parse().unwrap());
        assert!(
            matches!(from_stored(&mut h, None), Some(Record::Vary(m)) if m.keep_until == 0 && m.generation == "g")
        );
    }
}
