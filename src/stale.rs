//! When a stale entry may still be served (RFC 9111 §4.2.4, RFC 5861).
//!
//! Two uses, each with a window of seconds past freshness:
//! `stale-while-revalidate` answers at once while the entry is revalidated
//! in the background; `stale-if-error` answers when the origin fails (500,
//! 502, 503, 504, unreachable, reset, or past `ORIGIN_TIMEOUT`). A window
//! comes from the response's own directive in its governing field, else from
//! the configured default (`STALE_WHILE_REVALIDATE`, `STALE_IF_ERROR`).
//!
//! What forbids stale, whatever the windows: `no-cache` (every use
//! revalidates, §5.2.2.4), `must-revalidate` and `proxy-revalidate`
//! (§5.2.2.2, §5.2.2.8; §4.2.4: "MUST NOT generate a stale response if it is
//! prohibited by an explicit in-protocol directive"). `s-maxage` carries the
//! meaning of `proxy-revalidate` for a shared cache (§5.2.2.10), so configured
//! defaults never apply to it; where the RFCs leave room, the response's own
//! `stale-while-revalidate` / `stale-if-error` next to `s-maxage` is honoured,
//! as the origin's explicit, bounded permission (the CDN idiom
//! `s-maxage=60, stale-while-revalidate=30`). Every window is also bounded by
//! `RETAIN_STALE`, which is how long the Cache API keeps an entry past its
//! freshness, so a window never outlives the entry it needs.

use crate::meta::{EntryMeta, Freshness};
use crate::policy::Revalidate;
use http::StatusCode;
use std::time::SystemTime;

/// Windows for responses that name none (`STALE_WHILE_REVALIDATE`, `STALE_IF_ERROR`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StaleDefaults {
    pub while_revalidate: u64,
    pub if_error: u64,
}

/// What a stale entry would be served for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaleUse {
    /// At once, while it is revalidated in the background (RFC 5861 §3).
    WhileRevalidate,
    /// Instead of an origin failure (RFC 5861 §4).
    IfError,
}

impl StaleUse {
    /// The `Cache-Status` detail of a response served stale for this use.
    pub fn detail(self) -> &'static str {
        match self {
            StaleUse::WhileRevalidate => "stale-while-revalidate",
            StaleUse::IfError => "stale-if-error",
        }
    }
}

/// Seconds past freshness during which `meta` may be served for `usage`.
pub fn window(meta: &EntryMeta, usage: StaleUse, defaults: &StaleDefaults, retain: u64) -> u64 {
    let (explicit, default) = match usage {
        StaleUse::WhileRevalidate => (meta.stale_while_revalidate, defaults.while_revalidate),
        StaleUse::IfError => (meta.stale_if_error, defaults.if_error),
    };
    let granted = match meta.revalidate {
        Revalidate::Always | Revalidate::MustWhenStale => 0,
        Revalidate::SharedMaxAge => explicit.unwrap_or(0),
        Revalidate::WhenStale => explicit.unwrap_or(default),
    };
    granted.min(retain)
}

/// How many seconds stale `meta` is at `now`, when it may be served stale
/// for `usage`; `None` outside the window. A fresh entry that is being
/// revalidated anyway (a soft purge) counts as stale by 0 seconds: a purge
/// must not take away its stale-if-error cover.
pub fn servable(
    meta: &EntryMeta,
    now: SystemTime,
    usage: StaleUse,
    defaults: &StaleDefaults,
    retain: u64,
) -> Option<u64> {
    let by = match meta.freshness(now) {
        Freshness::Fresh(_) => 0,
        Freshness::Stale(by) => by,
    };
    (by < window(meta, usage, defaults, retain)).then_some(by)
}

/// Whether the response lets a shared cache serve it stale at all (RFC 9111
/// §4.2.4): not with `no-cache`, `must-revalidate` or `proxy-revalidate`,
/// and with `s-maxage` only where it grants its own `stale-while-revalidate`.
/// A soft purge serves stale only where this allows it.
pub fn may_serve_stale(meta: &EntryMeta) -> bool {
    match meta.revalidate {
        Revalidate::Always | Revalidate::MustWhenStale => false,
        Revalidate::SharedMaxAge => meta.stale_while_revalidate.is_some_and(|w| w > 0),
        Revalidate::WhenStale => true,
    }
}

/// Origin answers that `stale-if-error` may hide (RFC 5861 §4).
pub fn is_error_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map;
    use crate::policy::{storability, PolicyOptions};
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// The entry a response with `cache_control` (as Cache-Control, or as
    /// `field`) would be stored as at time 0.
    fn stored(field: &str, cache_control: &str) -> EntryMeta {
        let headers = header_map(&[(field, cache_control), ("etag", "\"e\"")]);
        let plan = storability(
            &http::HeaderMap::new(),
            StatusCode::OK,
            &headers,
            at(0),
            PolicyOptions::default(),
        )
        .expect("storable");
        EntryMeta::new("p", &plan, StatusCode::OK, &headers, at(0), at(0))
    }

    /// Governing field, its value, defaults (swr, sie), age in seconds, swr?, sie?
    type Case<'a> = (&'a str, &'a str, (u64, u64), u64, bool, bool);

    #[test]
    fn decision_table() {
        use StaleUse::*;
        let cc = "cache-control";
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // A fresh entry revalidated anyway counts as stale by 0 s.
            (cc, "max-age=60, stale-while-revalidate=30", (0, 0), 59, true, false),
            // The response's own windows; stale by 0..window-1 seconds.
            (cc, "max-age=60, stale-while-revalidate=30", (0, 0), 60, true, false),
            (cc, "max-age=60, stale-while-revalidate=30", (0, 0), 89, true, false),
            (cc, "max-age=60, stale-while-revalidate=30", (0, 0), 90, false, false),
            (cc, "max-age=60, stale-if-error=300", (0, 0), 200, false, true),
            (cc, "max-age=60, stale-if-error=300", (0, 0), 360, false, false),
            // Defaults fill in what the response does not say, and never override it.
            (cc, "max-age=60", (30, 300), 70, true, true),
            (cc, "max-age=60, stale-while-revalidate=5", (30, 0), 70, false, false),
            (cc, "max-age=60, stale-while-revalidate=0", (30, 0), 60, false, false),
            // Prohibitions (RFC 9111 §4.2.4), whatever the windows say.
            (cc, "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=30", (30, 30), 61, false, false),
            (cc, "max-age=60, proxy-revalidate, stale-if-error=30", (30, 30), 61, false, false),
            (cc, "no-cache, stale-while-revalidate=30, stale-if-error=30", (30, 30), 1, false, false),
            // s-maxage implies proxy-revalidate: no defaults, explicit windows only.
            (cc, "s-maxage=60", (30, 30), 61, false, false),
            (cc, "s-maxage=60, stale-while-revalidate=30", (30, 30), 61, true, false),
            (cc, "s-maxage=60, stale-if-error=30", (0, 0), 61, false, true),
            // The governing field decides, as it does for freshness.
            ("cdn-cache-control", "max-age=60, stale-while-revalidate=30", (0, 0), 61, true, false),
            ("surrogate-control", "max-age=60, stale-if-error=30", (0, 0), 61, false, true),
        ];
        for (field, value, (swr, sie), age, want_swr, want_sie) in cases {
            let meta = stored(field, value);
            let defaults = StaleDefaults {
                while_revalidate: *swr,
                if_error: *sie,
            };
            let now = at(*age);
            let got = |u| servable(&meta, now, u, &defaults, 86_400).is_some();
            assert_eq!(
                got(WhileRevalidate),
                *want_swr,
                "swr: {field}: {value} {defaults:?} at {age}"
            );
            assert_eq!(
                got(IfError),
                *want_sie,
                "sie: {field}: {value} {defaults:?} at {age}"
            );
        }
    }

    #[test]
    fn retain_stale_bounds_every_window() {
        let meta = stored("cache-control", "max-age=60, stale-if-error=86400");
        let defaults = StaleDefaults::default();
        assert_eq!(window(&meta, StaleUse::IfError, &defaults, 600), 600);
        assert!(servable(&meta, at(60 + 599), StaleUse::IfError, &defaults, 600).is_some());
        assert!(servable(&meta, at(60 + 600), StaleUse::IfError, &defaults, 600).is_none());
    }
}
