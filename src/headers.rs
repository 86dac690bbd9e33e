//! Header hygiene at the proxy boundary.

use crate::policy::{CDN_CACHE_CONTROL, SURROGATE_CONTROL};
use http::header::{self, HeaderMap, HeaderName};

/// Hop-by-hop fields (RFC 9110 §7.6.1), plus the legacy `Keep-Alive` and
/// `Proxy-Connection` that intermediaries still see.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Removes hop-by-hop fields, including every field `Connection` names.
/// Applied in both directions: they describe one connection, not the message.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Request fields that can change what an origin answers without being part
/// of the key: the classic cache-poisoning inputs. Removed from cache-eligible
/// requests before they reach the origin.
pub const UNKEYED_INPUTS: [&str; 14] = [
    "x-forwarded-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-host",
    "x-original-host",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "forwarded",
];

/// Removes [`UNKEYED_INPUTS`].
pub fn strip_unkeyed_inputs(headers: &mut HeaderMap) {
    for name in UNKEYED_INPUTS {
        headers.remove(name);
    }
}

/// Removes the targeted cache fields from what the client receives: they are
/// ours alone (RFC 9213 §2.1 lets a cache remove the field it consumed), but
/// stay in storage so that revalidation sees them.
pub fn strip_targeted_fields(headers: &mut HeaderMap) {
    headers.remove(CDN_CACHE_CONTROL);
    headers.remove(SURROGATE_CONTROL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_listed_and_connection_named_fields() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "close, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("content-type", "text/plain"),
        ] {
            h.append(HeaderName::from_static(k), v.parse().unwrap());
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["content-type"]
        );
    }

    #[test]
    fn malformed_connection_is_harmless() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, ", , \"x\", bad name".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }
}
