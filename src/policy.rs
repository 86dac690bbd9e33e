//! Storing decisions for a shared cache (RFC 9111 §3) and the freshness
//! lifetime of what is stored (§4.2.1, §4.2.2).
//!
//! The answer is a [`Storable`] plan or a [`NoStoreReason`]; the reason ends up
//! in `Cache-Status: …; detail=` so an operator can see why something missed.

use crate::cache_control::{Directives, Qualified};
use http::header::{self, HeaderMap, HeaderName};
use http::StatusCode;
use std::time::SystemTime;

/// `CDN-Cache-Control` (RFC 9213 §3).
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";
/// `Surrogate-Control` (Edge Architecture Specification 1.0).
pub const SURROGATE_CONTROL: &str = "surrogate-control";

/// Heuristic freshness is capped at one day, as Squid and Varnish do: a file
/// untouched for a year should not become fresh for five weeks by accident.
const HEURISTIC_CAP_SECS: u64 = 86_400;

/// Settings of the storing policy that come from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Percent of `Date - Last-Modified` used as heuristic freshness
    /// (RFC 9111 §4.2.2). Zero disables heuristics.
    pub heuristic_percent: u8,
    /// Freshness of a 404 or 410 that gives none (`NEGATIVE_TTL`); zero disables.
    pub negative_ttl: u64,
    /// Bodies longer than this are passed on, not stored (`MAX_STORED_BODY`).
    pub max_stored_body: u64,
}

/// Heuristics and negative caching off; the default body limit.
impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            heuristic_percent: 0,
            negative_ttl: 0,
            max_stored_body: DEFAULT_MAX_STORED_BODY,
        }
    }
}

/// 16 MiB: storing reads a body into memory (twice over, for a moment, while
/// it streams to its client too), and an isolate has 128 MB.
pub const DEFAULT_MAX_STORED_BODY: u64 = 16 * 1024 * 1024;

/// Which field the caching directives were taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectiveSource {
    CdnCacheControl,
    SurrogateControl,
    CacheControl,
    /// No directives at all: only `Expires` or heuristics can make it fresh.
    None,
}

/// The directives that govern this cache for a response.
///
/// RFC 9213 §2.1: a cache that honours a targeted field "MUST select the first
/// (in target list order) field with a valid, non-empty value … and MUST ignore
/// the Cache-Control and Expires header fields". Our target list is
/// `CDN-Cache-Control`, then `Surrogate-Control`. A field that holds only
/// `content="…"` (a request for ESI processing) has no caching directive to
/// select: it must not make a page with `Cache-Control: max-age=60`
/// unstorable.
pub fn governing_directives(headers: &HeaderMap) -> (Directives, DirectiveSource) {
    let targeted = [
        (CDN_CACHE_CONTROL, DirectiveSource::CdnCacheControl),
        (SURROGATE_CONTROL, DirectiveSource::SurrogateControl),
    ];
    for (name, source) in targeted {
        if let Some(d) = Directives::from_headers(headers, name) {
            if !d.is_empty() && !d.only_processing() {
                return (d, source);
            }
        }
    }
    match Directives::from_headers(headers, header::CACHE_CONTROL) {
        Some(d) => (d, DirectiveSource::CacheControl),
        None => (Directives::default(), DirectiveSource::None),
    }
}

/// Why a forwarded response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStoreReason {
    /// `no-store` on the response (§5.2.2.5).
    ResponseNoStore,
    /// `no-store` on the request (§5.2.1.5).
    RequestNoStore,
    /// Unqualified `private` (§5.2.2.7).
    Private,
    /// No `max-age`, `s-maxage` or `Expires`, and heuristics are off or do not apply.
    NoFreshness,
    /// Zero freshness (or `no-cache`) with no validator: every use would be a full fetch.
    NoValidator,
    /// Already stale when it arrived (old `Date`, large `Age`) and no
    /// validator to revalidate it with: no request could ever use it.
    StaleOnArrival,
    /// Longer than `MAX_STORED_BODY`: storing reads the whole body into
    /// memory first, and an isolate has 128 MB.
    TooLarge,
    /// Still arriving `ORIGIN_TIMEOUT` after its head: passed on as it
    /// comes rather than held back from its client, and not stored.
    TooSlow,
    /// `Vary: *` can never be matched (§4.1).
    VaryStar,
    /// `Vary: Cookie`: keying on raw cookies fragments the cache and leaks.
    VaryCookie,
    /// Request carried `Authorization` and the response did not allow sharing (§3.5).
    Authorization,
    /// 206 and 304 are never stored here; 1xx is not a final response.
    Status,
    /// `must-understand` on a status code this cache does not know (§5.2.2.3).
    MustUnderstand,
}

impl NoStoreReason {
    /// The token used in `Cache-Status: …; detail=`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoStoreReason::ResponseNoStore => "no-store",
            NoStoreReason::RequestNoStore => "request-no-store",
            NoStoreReason::Private => "private",
            NoStoreReason::NoFreshness => "no-freshness",
            NoStoreReason::NoValidator => "no-validator",
            NoStoreReason::StaleOnArrival => "stale-on-arrival",
            NoStoreReason::TooLarge => "too-large",
            NoStoreReason::TooSlow => "too-slow",
            NoStoreReason::VaryStar => "vary-star",
            NoStoreReason::VaryCookie => "vary-cookie",
            NoStoreReason::Authorization => "authorization",
            NoStoreReason::Status => "status",
            NoStoreReason::MustUnderstand => "must-understand",
        }
    }
}

/// When a stored response has to go back to the origin before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Revalidate {
    /// Only once stale; it may later be served stale where the rules allow.
    WhenStale,
    /// Once stale it must never be served without revalidation
    /// (`must-revalidate` / `proxy-revalidate`, §5.2.2.2, §5.2.2.8).
    MustWhenStale,
    /// `s-maxage`, which implies `proxy-revalidate` for a shared cache
    /// (§5.2.2.10): stale only within windows the response itself grants.
    SharedMaxAge,
    /// Before every use (`no-cache`, §5.2.2.4).
    Always,
}

/// How a storable response is to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    /// Freshness lifetime in seconds (§4.2.1).
    pub fresh_for: u64,
    pub revalidate: Revalidate,
    /// May answer a request that carries `Authorization` (§3.5).
    pub shared_with_auth: bool,
    /// Fields to drop from the stored copy (`private="…"` / `no-cache="…"`).
    pub strip_fields: Vec<String>,
    /// `stale-while-revalidate` of the governing field (RFC 5861 §3).
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error` of the governing field (RFC 5861 §4).
    pub stale_if_error: Option<u64>,
}

/// Status codes whose meaning this cache knows; only these survive
/// `must-understand` (§5.2.2.3) and only the heuristically cacheable ones
/// among them may get heuristic freshness (RFC 9110 §15.1).
fn understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 302 | 303 | 307 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Decides whether a response to a GET may be stored, following RFC 9111 §3.
pub fn storability(
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
    response_time: SystemTime,
    options: PolicyOptions,
) -> Result<Storable, NoStoreReason> {
    use NoStoreReason as R;
    if status.is_informational() || matches!(status.as_u16(), 206 | 304) {
        return Err(R::Status);
    }
    // A range request reaches the origin with its preconditions (see
    // `proxy::origin_request`): its 412 or 416 answers that request, not the
    // URL, and stored would answer every plain GET. Only a full 200 is the URL's.
    if request.contains_key(header::RANGE) && status != StatusCode::OK {
        return Err(R::Status);
    }
    let declared = response
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > options.max_stored_body) {
        return Err(R::TooLarge);
    }
    let request_cc = Directives::from_headers(request, header::CACHE_CONTROL).unwrap_or_default();
    if request_cc.has("no-store") {
        return Err(R::RequestNoStore);
    }
    let (cc, source) = governing_directives(response);
    if cc.has("must-understand") {
        if !understood(status) {
            return Err(R::MustUnderstand);
        }
    } else if cc.has("no-store") {
        return Err(R::ResponseNoStore);
    }
    let mut strip_fields = Vec::new();
    match cc.qualified("private") {
        Some(Qualified::All) => return Err(R::Private),
        Some(Qualified::Fields(f)) => strip_fields.extend(f),
        None => {}
    }
    let no_cache = match cc.qualified("no-cache") {
        Some(Qualified::All) => true,
        Some(Qualified::Fields(f)) => {
            strip_fields.extend(f);
            false
        }
        None => false,
    };
    for name in crate::variance::vary_names(response) {
        match name.as_str() {
            "*" => return Err(R::VaryStar),
            "cookie" => return Err(R::VaryCookie),
            _ => {}
        }
    }
    let shared_with_auth = cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate");
    if request.contains_key(header::AUTHORIZATION) && !shared_with_auth {
        return Err(R::Authorization);
    }
    // A no-cache response is revalidated before every use, so it needs no
    // freshness of its own to be worth storing (§5.2.2.4).
    let fresh_for = freshness_lifetime(&cc, source, status, response, response_time, options)
        .or(no_cache.then_some(0))
        .ok_or(R::NoFreshness)?;
    let has_validator =
        response.contains_key(header::ETAG) || response.contains_key(header::LAST_MODIFIED);
    if (fresh_for == 0 || no_cache) && !has_validator {
        return Err(R::NoValidator);
    }
    if fresh_for <= initial_age(response, response_time, response_time) && !has_validator {
        // An old `Date` or a large `Age`: it could only ever be refetched.
        return Err(R::StaleOnArrival);
    }
    let revalidate = if no_cache {
        Revalidate::Always
    } else if cc.has("must-revalidate") || cc.has("proxy-revalidate") {
        Revalidate::MustWhenStale
    } else if cc.has("s-maxage") {
        Revalidate::SharedMaxAge
    } else {
        Revalidate::WhenStale
    };
    Ok(Storable {
        fresh_for,
        revalidate,
        shared_with_auth,
        strip_fields,
        stale_while_revalidate: cc.seconds("stale-while-revalidate"),
        stale_if_error: cc.seconds("stale-if-error"),
    })
}

/// Freshness lifetime in seconds (§4.2.1), or `None` when the response has
/// no explicit expiry and heuristics do not apply.
pub fn freshness_lifetime(
    cc: &Directives,
    source: DirectiveSource,
    status: StatusCode,
    response: &HeaderMap,
    response_time: SystemTime,
    options: PolicyOptions,
) -> Option<u64> {
    // A shared cache prefers s-maxage over max-age (§5.2.2.10).
    if let Some(s) = cc.seconds("s-maxage").or_else(|| cc.seconds("max-age")) {
        return Some(s);
    }
    let targeted = matches!(
        source,
        DirectiveSource::CdnCacheControl | DirectiveSource::SurrogateControl
    );
    let date = http_date(response, &header::DATE).unwrap_or(response_time);
    if !targeted && response.contains_key(header::EXPIRES) {
        // An invalid Expires (e.g. "0") means "already expired" (§5.3).
        return Some(match http_date(response, &header::EXPIRES) {
            Some(expires) => secs_between(date, expires),
            None => 0,
        });
    }
    // Negative caching: a missing page asked for again and again costs the
    // origin as much as a present one. Explicit freshness above always wins.
    if matches!(status.as_u16(), 404 | 410) && options.negative_ttl > 0 {
        return Some(options.negative_ttl);
    }
    if options.heuristic_percent == 0 || !(heuristically_cacheable(status) || cc.has("public")) {
        return None;
    }
    let modified = http_date(response, &header::LAST_MODIFIED)?;
    let heuristic = secs_between(modified, date) * u64::from(options.heuristic_percent) / 100;
    Some(heuristic.min(HEURISTIC_CAP_SECS))
}

/// `corrected_initial_age` (§4.2.3) of a response received at
/// `response_time` for a request sent at `request_time`.
pub fn initial_age(
    headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> u64 {
    let date = http_date(headers, &header::DATE).unwrap_or(response_time);
    let apparent_age = secs_between(date, response_time);
    let age_value = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .min(crate::cache_control::DELTA_SECONDS_MAX);
    let response_delay = secs_between(request_time, response_time);
    apparent_age.max(age_value + response_delay)
}

/// Parses an HTTP-date field (RFC 9110 §5.6.7); malformed dates are `None`.
pub fn http_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value.trim()).ok()
}

/// Whole seconds from `from` to `to`, zero if `to` is earlier.
pub fn secs_between(from: SystemTime, to: SystemTime) -> u64 {
    to.duration_since(from).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map as headers;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: u64 = 1_700_000_000;
    fn at(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
    }

    type Headers<'a> = &'a [(&'a str, &'a str)];
    type Case<'a> = (
        Headers<'a>,
        u16,
        Vec<(&'a str, &'a str)>,
        Result<u64, NoStoreReason>,
    );

    /// The decision table: request headers, status, response headers, expected result.
    #[test]
    fn storing_table() {
        use NoStoreReason as R;
        let date = at(NOW);
        let plus_60 = at(NOW + 60);
        let year_ago = at(NOW - 365 * 86_400);
        let ten_days_ago = at(NOW - 10 * 86_400);
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (&[], 200, vec![("cache-control", "max-age=60")], Ok(60)),
            (&[], 200, vec![("cache-control", "max-age=60, s-maxage=5")], Ok(5)),
            (&[], 200, vec![("cache-control", "no-store, max-age=60")], Err(R::ResponseNoStore)),
            (&[], 200, vec![("cache-control", "private, max-age=60")], Err(R::Private)),
            (&[], 200, vec![("cache-control", "private=\"set-cookie\", max-age=60")], Ok(60)),
            (&[], 200, vec![], Err(R::NoFreshness)),
            (&[], 200, vec![("cache-control", "public")], Err(R::NoFreshness)),
            (&[], 200, vec![("date", &date), ("expires", &plus_60)], Ok(60)),
            (&[], 200, vec![("date", &date), ("expires", "0"), ("etag", "\"a\"")], Ok(0)),
            (&[], 200, vec![("date", &date), ("expires", "0")], Err(R::NoValidator)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("date", &date), ("expires", "0")], Ok(60)),
            (&[], 200, vec![("cache-control", "no-cache, max-age=60")], Err(R::NoValidator)),
            (&[], 200, vec![("cache-control", "no-cache, max-age=60"), ("etag", "\"x\"")], Ok(60)),
            (&[], 200, vec![("cache-control", "no-cache"), ("etag", "\"x\"")], Ok(0)),
            (&[], 200, vec![("cache-control", "no-cache")], Err(R::NoValidator)),
            (&[], 200, vec![("cache-control", "max-age=0"), ("etag", "\"x\"")], Ok(0)),
            // Stale on arrival: usable only with a validator to revalidate it.
            (&[], 200, vec![("cache-control", "max-age=60"), ("age", "60")], Err(R::StaleOnArrival)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("content-length", "16777217")], Err(R::TooLarge)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("content-length", "16777216")], Ok(60)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("age", "59")], Ok(60)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("date", &ten_days_ago)], Err(R::StaleOnArrival)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("age", "600"), ("etag", "\"x\"")], Ok(60)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("vary", "accept, *")], Err(R::VaryStar)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("vary", "Accept, Cookie")], Err(R::VaryCookie)),
            (&[("authorization", "Bearer x")], 200, vec![("cache-control", "max-age=60")], Err(R::Authorization)),
            (&[("authorization", "Bearer x")], 200, vec![("cache-control", "public, max-age=60")], Ok(60)),
            (&[("authorization", "Bearer x")], 200, vec![("cache-control", "s-maxage=60")], Ok(60)),
            (&[("authorization", "Bearer x")], 200, vec![("cache-control", "must-revalidate, max-age=60")], Ok(60)),
            (&[("cache-control", "no-store")], 200, vec![("cache-control", "max-age=60")], Err(R::RequestNoStore)),
            (&[], 206, vec![("cache-control", "max-age=60")], Err(R::Status)),
            (&[("range", "bytes=9999-")], 416, vec![("cache-control", "max-age=60")], Err(R::Status)),
            (&[("range", "bytes=0-3"), ("if-match", "\"x\"")], 412, vec![("cache-control", "max-age=60")], Err(R::Status)),
            (&[("range", "x")], 404, vec![("cache-control", "max-age=60")], Err(R::Status)),
            (&[("range", "bytes=0-3"), ("if-range", "\"old\"")], 200, vec![("cache-control", "max-age=60")], Ok(60)),
            (&[], 304, vec![("cache-control", "max-age=60")], Err(R::Status)),
            (&[], 503, vec![], Err(R::NoFreshness)),
            (&[], 503, vec![("cache-control", "max-age=5")], Ok(5)),
            (&[], 404, vec![("cache-control", "max-age=30")], Ok(30)),
            (&[], 299, vec![("cache-control", "max-age=30, must-understand, no-store")], Err(R::MustUnderstand)),
            (&[], 200, vec![("cache-control", "max-age=30, must-understand, no-store")], Ok(30)),
            // Targeted fields win over Cache-Control and Expires (RFC 9213 §2.1).
            (&[], 200, vec![("cache-control", "no-store"), ("cdn-cache-control", "max-age=90")], Ok(90)),
            (&[], 200, vec![("cache-control", "max-age=90"), ("cdn-cache-control", "no-store")], Err(R::ResponseNoStore)),
            (&[], 200, vec![("cache-control", "private"), ("surrogate-control", "max-age=20")], Ok(20)),
            (&[], 200, vec![("surrogate-control", "max-age=20"), ("cdn-cache-control", "max-age=40")], Ok(40)),
            // A request for ESI processing is not a caching directive: Cache-Control governs.
            (&[], 200, vec![("cache-control", "max-age=60"), ("surrogate-control", "content=\"ESI/1.0\"")], Ok(60)),
            (&[], 200, vec![("cache-control", "max-age=60"), ("surrogate-control", "content=\"ESI/1.0\", max-age=5")], Ok(5)),
            (&[], 200, vec![("cdn-cache-control", ""), ("cache-control", "max-age=7")], Ok(7)),
            (&[], 200, vec![("cdn-cache-control", "public"), ("date", &date), ("expires", &plus_60)], Err(R::NoFreshness)),
            // Heuristics are off by default.
            (&[], 200, vec![("date", &date), ("last-modified", &year_ago)], Err(R::NoFreshness)),
        ];
        for (i, (req, status, res, want)) in cases.into_iter().enumerate() {
            let got = storability(
                &headers(req),
                StatusCode::from_u16(status).unwrap(),
                &headers(&res),
                UNIX_EPOCH + Duration::from_secs(NOW),
                PolicyOptions::default(),
            )
            .map(|s| s.fresh_for);
            assert_eq!(got, want, "case {i}: {req:?} {status} {res:?}");
        }
        let heuristic = PolicyOptions {
            heuristic_percent: 10,
            ..PolicyOptions::default()
        };
        let check = |res: &[(&str, &str)], status: u16| {
            storability(
                &HeaderMap::new(),
                StatusCode::from_u16(status).unwrap(),
                &headers(res),
                UNIX_EPOCH + Duration::from_secs(NOW),
                heuristic,
            )
            .map(|s| s.fresh_for)
        };
        assert_eq!(
            check(&[("date", &date), ("last-modified", &ten_days_ago)], 200),
            Ok(86_400)
        );
        let hour_ago = at(NOW - 3600);
        assert_eq!(
            check(&[("date", &date), ("last-modified", &hour_ago)], 200),
            Ok(360)
        );
        assert_eq!(
            check(&[("date", &date), ("last-modified", &hour_ago)], 302),
            Err(R::NoFreshness)
        );
        assert_eq!(
            check(&[("date", &date), ("last-modified", &hour_ago)], 500),
            Err(R::NoFreshness)
        );
    }

    #[test]
    fn negative_ttl_for_404_and_410_without_freshness() {
        let negative = PolicyOptions {
            negative_ttl: 30,
            ..PolicyOptions::default()
        };
        let check = |status: u16, res: &[(&str, &str)], options| {
            storability(
                &HeaderMap::new(),
                StatusCode::from_u16(status).unwrap(),
                &headers(res),
                UNIX_EPOCH + Duration::from_secs(NOW),
                options,
            )
            .map(|s| s.fresh_for)
        };
        assert_eq!(check(404, &[], negative), Ok(30));
        assert_eq!(check(410, &[], negative), Ok(30));
        // Explicit origin freshness wins, either way.
        assert_eq!(
            check(404, &[("cache-control", "max-age=5")], negative),
            Ok(5)
        );
        assert_eq!(
            check(404, &[("cache-control", "max-age=0")], negative),
            Err(NoStoreReason::NoValidator)
        );
        assert_eq!(
            check(404, &[("cache-control", "no-store")], negative),
            Err(NoStoreReason::ResponseNoStore)
        );
        // Other errors never, and 0 turns it off.
        for status in [400, 403, 500, 503] {
            assert_eq!(
                check(status, &[], negative),
                Err(NoStoreReason::NoFreshness),
                "{status}"
            );
        }
        assert_eq!(
            check(404, &[], PolicyOptions::default()),
            Err(NoStoreReason::NoFreshness)
        );
    }

    #[test]
    fn revalidation_modes() {
        let store = |cc: &str| {
            storability(
                &HeaderMap::new(),
                StatusCode::OK,
                &headers(&[("cache-control", cc), ("etag", "\"e\"")]),
                UNIX_EPOCH,
                PolicyOptions::default(),
            )
            .unwrap()
        };
        assert_eq!(store("max-age=1").revalidate, Revalidate::WhenStale);
        assert_eq!(
            store("max-age=1, must-revalidate").revalidate,
            Revalidate::MustWhenStale
        );
        assert_eq!(
            store("max-age=1, proxy-revalidate").revalidate,
            Revalidate::MustWhenStale
        );
        assert_eq!(store("max-age=1, no-cache").revalidate, Revalidate::Always);
        let s = store("max-age=1, no-cache=\"Set-Cookie\", private=x-user");
        assert_eq!(s.revalidate, Revalidate::WhenStale);
        assert_eq!(
            s.strip_fields,
            vec!["x-user".to_string(), "set-cookie".to_string()]
        );
        assert!(!s.shared_with_auth);
        assert!(store("public, max-age=1").shared_with_auth);
    }
}
