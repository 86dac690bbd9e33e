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
/// The value is split as bytes: one token that is not a name (a byte beyond
/// ASCII, say) must not spare the names beside it.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|n| HeaderName::from_bytes(n.trim_ascii()).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    remove_where(headers, |name| HOP_BY_HOP.contains(&name));
}

/// Removes every field whose name `doomed` says so of. One pass over the
/// names present: most messages carry none of the names a strip is after,
/// and removing by a `&str` parses and hashes that name each time (about
/// 1% of a Cache API hit's profile for the nine hop-by-hop names alone).
pub fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&str) -> bool) {
    let found: Vec<HeaderName> = headers
        .keys()
        .filter(|name| doomed(name.as_str()))
        .cloned()
        .collect();
    for name in found {
        headers.remove(name);
    }
}

/// Request fields no origin request carries, whatever the method:
/// `Expect: 100-continue` makes the origin send a `100` that workerd's
/// `fetch` takes for the final answer (every such upload would fail), and
/// `Proxy` is httpoxy: CGI turns it into `HTTP_PROXY`, the proxy setting of
/// the origin's own outbound requests. `X-Edge-Cache-Meta` is the name of
/// the cache's stored record: a client's field of that name is nobody's.
const NEVER_FORWARDED: [&str; 3] = ["expect", "proxy", crate::meta::META_HEADER];

/// Removes [`NEVER_FORWARDED`].
pub fn strip_never_forwarded(headers: &mut HeaderMap) {
    remove_where(headers, |name| NEVER_FORWARDED.contains(&name));
}

/// Request fields that can change what an origin answers without being part
/// of the key: the classic cache-poisoning inputs. Removed from cache-eligible
/// requests before they reach the origin. Drawn from what common stacks read
/// to rebuild the request's URL, scheme, method or client:
/// Rack/Rails (`X-Forwarded-Host`, `-Proto`, `-Scheme`, `-Ssl`, `-Port`,
/// `X-HTTP-Method-Override`), Django (`X-Forwarded-Host`, `-Port`, `-Proto`),
/// Symfony/Laravel (`Forwarded`, `X-Forwarded-*` incl. `-Prefix`,
/// `X-Original-URL`, `X-Rewrite-URL`, Cloudflare's `CF-Visitor`), Express
/// (`X-Forwarded-Proto`, `-Host`; method-override's `X-HTTP-Method`,
/// `X-Method-Override`), Spring (`Forwarded`, `X-Forwarded-Host`, `-Port`,
/// `-Proto`, `-Ssl`, `-Prefix`), ASP.NET Core (`X-Forwarded-*`,
/// `X-Original-Host`, `-Proto`, `-Prefix`, `X-HTTP-Method-Override`), IIS ARR
/// (`X-ARR-SSL`), Tornado (`X-Scheme`, `X-Real-IP`), Werkzeug's ProxyFix, and
/// proxies' own (`X-Forwarded-Server`, `-Uri`, `-Path`, `-Protocol`,
/// `X-Original-URI`, `X-Url-Scheme`, `Front-End-Https`, `X-Host`,
/// `Base-Url`); client addresses a geolocating origin trusts (`X-Real-IP`,
/// `True-Client-IP`, `X-Client-IP`, `Client-IP`, `X-Cluster-Client-IP`); and
/// the agent aliases device detectors read beside `User-Agent` (Mobile_Detect,
/// WURFL: `X-OperaMini-Phone-UA`, `X-Device-User-Agent`, …).
/// `X-Forwarded-For` stays: the platform appends the real client to it.
pub const UNKEYED_INPUTS: [&str; 44] = [
    "base-url",
    "cf-visitor",
    "client-ip",
    "device-stock-ua",
    "forwarded",
    "front-end-https",
    "true-client-ip",
    "x-arr-ssl",
    "x-bolt-phone-ua",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-device-user-agent",
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
    "x-http-method",
    "x-http-method-override",
    "x-method-override",
    "x-operamini-phone-ua",
    "x-original-host",
    "x-original-method",
    "x-original-prefix",
    "x-original-proto",
    "x-original-uri",
    "x-original-url",
    "x-original-user-agent",
    "x-override-url",
    "x-real-ip",
    "x-rewrite-url",
    "x-scheme",
    "x-skyfire-phone",
    "x-ucbrowser-device-ua",
    "x-ucbrowser-phone-ua",
    "x-url-scheme",
    "x-wap-profile",
];

/// Removes [`UNKEYED_INPUTS`], and every field whose name has a character
/// other than a letter, a digit or `-`.
///
/// CGI, WSGI, PHP, Apache and nginx with `underscores_in_headers` turn the
/// name into `HTTP_X_FORWARDED_HOST` whether it was sent as
/// `X-Forwarded-Host`, `X_Forwarded_Host` or `X.Forwarded.Host`. So such a
/// name is an alias the key cannot see: of an unkeyed input, of a field the
/// origin names in `Vary`, or of the device and country fields the cache
/// stamps. nginx (by default) and Apache drop them for the same reason.
pub fn strip_unkeyed_inputs(headers: &mut HeaderMap) {
    let alias = |name: &str| {
        !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    remove_where(headers, |name| {
        alias(name) || UNKEYED_INPUTS.contains(&name)
    });
}

/// Removes the targeted cache fields from what the client receives: they are
/// ours alone (RFC 9213 §2.1 lets a cache remove the field it consumed), but
/// stay in storage so that revalidation sees them.
pub fn strip_targeted_fields(headers: &mut HeaderMap) {
    headers.remove(CDN_CACHE_CONTROL);
    headers.remove(SURROGATE_CONTROL);
}

/// What a message's fields count against a bound: their names and values.
pub fn fields_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum()
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
            ("x.forwarded.host", "evil.example"),
            ("x-scheme", "http"),
            ("x-device-user-agent", "iPhone"),
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
        // A token beyond ASCII spares none of the names beside it.
        use http::HeaderValue;
        let odd = HeaderValue::from_bytes("close, x-probe, cookie, é".as_bytes()).unwrap();
        h.insert(header::CONNECTION, odd);
        h.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-\xff").unwrap(),
        );
        h.insert("x-probe", HeaderValue::from_static("hop"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=1"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }
}
