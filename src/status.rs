//! The request's phase through the cache, and the `Cache-Status` field
//! (RFC 9211) that reports it.
//!
//! Every response the worker sends carries one `Cache-Status` member for this
//! cache, appended after any members from caches nearer the origin (§2).

use http::header::{HeaderMap, HeaderValue};

pub const CACHE_STATUS: &str = "cache-status";

/// The last `Cache-Status` member of a response: this cache's own.
pub fn last_member(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(CACHE_STATUS)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
}

/// Where the request ended up; each phase maps onto one `Cache-Status` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Served from a fresh stored response.
    Hit,
    /// Nothing stored for the URL (`fwd=uri-miss`).
    UriMiss,
    /// The URL is stored, but not this variant (`fwd=vary-miss`).
    VaryMiss,
    /// A stored response was stale or had to be revalidated (`fwd=stale`).
    Stale,
    /// The method is not served from cache (`fwd=method`).
    Method,
    /// The cache was not consulted for this request (`fwd=bypass`).
    Bypass,
    /// Answered by the worker itself (admin route, errors before lookup).
    Local,
}

impl Phase {
    /// The `fwd` parameter value, `None` for phases that did not forward.
    pub fn fwd(self) -> Option<&'static str> {
        match self {
            Phase::Hit | Phase::Local => None,
            Phase::UriMiss => Some("uri-miss"),
            Phase::VaryMiss => Some("vary-miss"),
            Phase::Stale => Some("stale"),
            Phase::Method => Some("method"),
            Phase::Bypass => Some("bypass"),
        }
    }

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Hit => "hit",
            Phase::Local => "local",
            other => other.fwd().unwrap_or("unknown"),
        }
    }
}

/// One `Cache-Status` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    pub phase: Phase,
    /// Status the origin answered with, when it was asked.
    pub fwd_status: Option<u16>,
    /// The request waited for another one's fetch and was answered from
    /// what that stored (RFC 9211 §2.6).
    pub collapsed: bool,
    /// The response was stored (or its stored copy refreshed).
    pub stored: bool,
    /// Remaining freshness in seconds, negative when stale.
    pub ttl: Option<i64>,
    /// A token saying why it was not stored, bypassed or failed.
    pub detail: Option<&'static str>,
}

impl CacheStatus {
    pub fn new(phase: Phase) -> Self {
        CacheStatus {
            phase,
            fwd_status: None,
            collapsed: false,
            stored: false,
            ttl: None,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Renders the member, e.g. `edge-cache; fwd=uri-miss; fwd-status=200; stored`.
    pub fn render(&self, cache_name: &str) -> String {
        let mut out = String::from(cache_name);
        match self.phase.fwd() {
            None if self.phase == Phase::Hit => out.push_str("; hit"),
            None => {}
            Some(fwd) => {
                out.push_str("; fwd=");
                out.push_str(fwd);
            }
        }
        if let Some(status) = self.fwd_status {
            out.push_str(&format!("; fwd-status={status}"));
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if self.stored {
            out.push_str("; stored");
        }
        if let Some(ttl) = self.ttl {
            out.push_str(&format!("; ttl={ttl}"));
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            out.push_str(detail);
        }
        out
    }

    /// Appends this member to the response's `Cache-Status` list.
    pub fn append_to(&self, headers: &mut HeaderMap, cache_name: &str) {
        // The cache name is validated as a token at configuration time, and
        // every other part is ASCII we write ourselves.
        if let Ok(value) = HeaderValue::from_str(&self.render(cache_name)) {
            headers.append(CACHE_STATUS, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc_9211_members() {
        let mut hit = CacheStatus::new(Phase::Hit);
        hit.ttl = Some(42);
        assert_eq!(hit.render("edge-cache"), "edge-cache; hit; ttl=42");
        let mut miss = CacheStatus::new(Phase::UriMiss);
        miss.fwd_status = Some(200);
        miss.stored = true;
        assert_eq!(
            miss.render("edge-cache"),
            "edge-cache; fwd=uri-miss; fwd-status=200; stored"
        );
        let bypass = CacheStatus::new(Phase::Bypass).with_detail("authorization");
        assert_eq!(bypass.render("c"), "c; fwd=bypass; detail=authorization");
        assert_eq!(
            CacheStatus::new(Phase::Local)
                .with_detail("admin")
                .render("c"),
            "c; detail=admin"
        );
    }

    #[test]
    fn appended_after_upstream_members() {
        let mut h = HeaderMap::new();
        h.append(CACHE_STATUS, "origin-cache; hit".parse().unwrap());
        CacheStatus::new(Phase::Hit).append_to(&mut h, "edge-cache");
        let all: Vec<_> = h.get_all(CACHE_STATUS).iter().collect();
        assert_eq!(all, ["origin-cache; hit", "edge-cache; hit"]);
    }
}
