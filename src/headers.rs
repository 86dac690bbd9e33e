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
/// requests before they reach the origin. Drawn from what common stacks read
/// to rebuild the request's URL, scheme or method:
/// Rack/Rails (`X-Forwarded-Host`, `-Proto`, `-Scheme`, `-Ssl`, `-Port`,
/// `X-HTTP-Method-Override`), Django (`X-Forwarded-Host`, `-Port`, `-Proto`),
/// Symfony/Laravel (`Forwarded`, `X-Forwarded-*` incl. `-Prefix`,
/// `X-Original-URL`, `X-Rewrite-URL`), Express (`X-Forwarded-Proto`, `-Host`;
/// method-override's `X-HTTP-Method`, `X-Method-Override`), Spring
/// (`Forwarded`, `X-Forwarded-Host`, `-Port`, `-Proto`, `-Ssl`, `-Prefix`),
/// ASP.NET Core (`X-Forwarded-*`, `X-Original-Host`, `-Proto`, `-Prefix`,
/// `X-HTTP-Method-Override`), Werkzeug's ProxyFix, and proxies' own
/// (`X-Forwarded-Server`, `-Uri`, `-Path`, `-Protocol`, `X-Original-URI`,
/// `X-Url-Scheme`, `Front-End-Https`, `X-Host`).
/// `X-Forwarded-For` stays: it names the client, not the resource.
pub const UNKEYED_INPUTS: [&str; 26] = [
    "forwarded",
    "front-end-https",
    "x-forwarded-host",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-proto",
    "x-forwarded-protocol",
    "x-forwarded-ssl",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-host",
    "x-http-host",
    "x-original-host",
    "x-original-proto",
    "x-original-prefix",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-url-scheme",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    "x-override-url",
];

/// Removes [`UNKEYED_INPUTS`], and every field whose name has an `_`.
///
/// CGI, WSGI, PHP and nginx with `underscores_in_headers` read `X_Forwarded_Host`
/// as `X-Forwarded-Host` (both become `HTTP_X_FORWARDED_HOST`). So any
/// field with an `_` is an alias the key cannot see: of an unkeyed input, of
/// a field the origin names in `Vary`, or of the device and country fields
/// the cache stamps. nginx (by default) and Apache drop such fields for the
/// same reason. The names compare after lower-casing, which `http` already did.
pub fn strip_unkeyed_inputs(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_') || UNKEYED_INPUTS.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
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
    fn unkeyed_inputs_go_in_every_spelling() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("X-Forwarded-Host", "evil.example"),
            ("x_forwarded_host", "evil.example"),
            ("X_FORWARDED-PROTO", "http"),
            ("cf_device_type", "tablet"),
            ("x-forwarded-ssl", "on"),
            ("front-end-https", "on"),
            ("x-original-uri", "/admin"),
            ("x_http_method_override", "DELETE"),
            ("x-forwarded-for", "203.0.113.9"),
            ("accept", "text/html"),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        strip_unkeyed_inputs(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["accept", "x-forwarded-for"]);
    }

    #[test]
    fn malformed_connection_is_harmless() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, ", , \"x\", bad name".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }
}
