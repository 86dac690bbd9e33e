//! URL normalisation for cache keys (RFC 3986 §6.2.2) and tracking-parameter
//! removal.
//!
//! The normalised URL is the key. The origin is asked for the same URL with
//! the parameters in the client's order ([`origin_uri`]), so that signed
//! URLs still check, or for the key itself (`ORIGIN_URL=normalized`).
//! Written by hand: the `url` crate parses to WHATWG rules the runtime has
//! already applied, and would add to the wasm without doing the query work.

use http::uri::{Authority, Scheme, Uri};

/// Query parameters that never change a response but make every link unique.
pub const DEFAULT_TRACKING: &str =
    "utm_*,gclid,fbclid,msclkid,mc_cid,mc_eid,yclid,_ga,dclid,gbraid,wbraid,_gl,igshid";

/// Parameter names dropped from the key: exact names, and prefixes written `name*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingParams {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl TrackingParams {
    /// Parses `TRACKING_PARAMS`: comma-separated names, `*` suffix for
    /// prefixes, `none` for no removal. Names compare case-insensitively.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut params = TrackingParams {
            exact: Vec::new(),
            prefixes: Vec::new(),
        };
        if spec.trim().eq_ignore_ascii_case("none") {
            return Ok(params);
        }
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let name = item.to_ascii_lowercase();
            match name.strip_suffix('*') {
                Some("") => return Err("a lone `*` would drop every parameter".into()),
                Some(prefix) if !prefix.contains('*') => params.prefixes.push(prefix.to_string()),
                None if !name.contains(['*', '=', '&']) => params.exact.push(name),
                _ => return Err(format!("{item:?} is not a parameter name or `prefix*`")),
            }
        }
        Ok(params)
    }

    fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.exact.contains(&name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

impl Default for TrackingParams {
    fn default() -> Self {
        TrackingParams::parse(DEFAULT_TRACKING).expect("the default list parses")
    }
}

/// A URI that went through [`normalize`]: it has a scheme and an authority,
/// both lower-case, so cache keys can be built from it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedUri(Uri);

impl NormalizedUri {
    pub fn uri(&self) -> &Uri {
        &self.0
    }

    pub fn into_uri(self) -> Uri {
        self.0
    }

    pub fn scheme(&self) -> &str {
        self.0.scheme_str().expect("normalize always sets a scheme")
    }

    pub fn authority(&self) -> &str {
        self.0
            .authority()
            .map(|a| a.as_str())
            .expect("normalize always sets an authority")
    }

    /// Path and query (`/` at least).
    pub fn path_and_query(&self) -> &str {
        self.0.path_and_query().map_or("/", |p| p.as_str())
    }
}

/// The normalised form of `uri`: lower-case scheme and host, no default port,
/// percent-encoding normalised in path and query, tracking parameters
/// removed, and the remaining parameters sorted by name (stable, so repeated
/// names keep their order). `None` when the URI has no scheme or host.
pub fn normalize(uri: &Uri, tracking: &TrackingParams) -> Option<NormalizedUri> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    // `shop.test.` is `shop.test` to DNS and to the origin: one key.
    let host = uri.host()?.trim_end_matches('.').to_ascii_lowercase();
    // A port past `u16` (`-8080`, `65536`) names no server this cache can
    // key: `http` reads it as none, which would be the default port's key.
    let port = match uri.authority()?.as_str().rsplit_once(':') {
        Some((_, spelled)) if !spelled.is_empty() && !spelled.ends_with(']') => {
            Some(uri.port_u16()?)
        }
        _ => None,
    };
    let default_port = matches!(
        (scheme.as_str(), port),
        ("http", Some(80)) | ("https", Some(443))
    );
    let authority = match port {
        Some(port) if !default_port => format!("{host}:{port}"),
        _ => host,
    };
    let path = match uri.path() {
        "" => "/".to_string(),
        p => normalize_escapes(p),
    };
    // (parameter, its name as a form decoder reads it)
    let mut params: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(normalize_escapes)
        .map(|p| {
            let name = param_name(&p);
            (p, name)
        })
        .filter(|(_, name)| !tracking.matches(name))
        .collect();
    // Sorted by the name frameworks read (`a+b`, `a%20b` are one name), and
    // stably: parameters of one name keep their relative order, which is
    // what first-wins and last-wins readers answer by. Sorting on the
    // spelling would let `?a+b=1&a%20b=2` and `?a%20b=2&a+b=1` share a key.
    params.sort_by(|(_, a), (_, b)| a.cmp(b));
    let query: Vec<&str> = params.iter().map(|(p, _)| p.as_str()).collect();
    let path_and_query = match query.is_empty() {
        true => path,
        false => format!("{path}?{}", query.join("&")),
    };
    Uri::builder()
        .scheme(Scheme::try_from(scheme.as_str()).ok()?)
        .authority(Authority::try_from(authority.as_str()).ok()?)
        .path_and_query(path_and_query)
        .build()
        .ok()
        .map(NormalizedUri)
}

/// What the origin is asked for on a cache-eligible request (`ORIGIN_URL`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OriginUrl {
    /// The key's URL with the query in the client's order.
    #[default]
    Client,
    /// The normalised URL: the key itself.
    Normalized,
}

/// The URL a cache-eligible request asks the origin for with
/// [`OriginUrl::Client`]: the key's scheme, host, path and parameters
/// (escapes normalised, tracking parameters and empty ones gone), with the
/// parameters in the `client`'s order rather than sorted, so that a
/// signature over the query (an HMAC token, a presigned URL) still checks
/// at the origin.
///
/// Only the order may differ from the key. Escapes are normalised in both:
/// an origin that routes or signs on the raw bytes (`/%61bout` is not
/// `/about` to many routers) would otherwise let one client's spelling be
/// stored for everyone who spells it the RFC 3986 way. A reordering stays
/// the same set of parameters, each name keeping its values' order.
pub fn origin_uri(client: &Uri, key: &Uri, tracking: &TrackingParams) -> Uri {
    let params: Vec<String> = client
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(normalize_escapes)
        .filter(|p| !tracking.matches(&param_name(p)))
        .collect();
    let path_and_query = match params.is_empty() {
        true => key.path().to_string(),
        false => format!("{}?{}", key.path(), params.join("&")),
    };
    let mut parts = key.clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return key.clone(),
    }
    Uri::from_parts(parts).unwrap_or_else(|_| key.clone())
}

/// RFC 3986 §6.2.2.1–2: escapes of unreserved characters are decoded, the
/// hex digits of the others upper-cased. A malformed `%` is left as it is.
fn normalize_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = match bytes[i] == b'%' && i + 2 < bytes.len() {
            true => hex_pair(bytes[i + 1], bytes[i + 2]),
            false => None,
        };
        match escape {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                // `s` is a URI component: ASCII, so byte-wise pushing is exact.
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    Some((digit(hi)? * 16 + digit(lo)?) as u8)
}

/// A parameter's name as a form decoder reads it (`+` a space, escapes
/// decoded): what tracking names and the key's order compare.
fn param_name(param: &str) -> String {
    let name = param[..param.find('=').unwrap_or(param.len())].replace('+', " ");
    String::from_utf8_lossy(&percent_decode(name.as_bytes())).into_owned()
}

/// A path as the most lenient origin server reads it, for decisions that
/// must hold whichever server is behind (the admin door, `VARY_BY_PATH`):
/// every `%XX` decoded (repeatedly, as double-decoding stacks do, so `%255F`
/// is `_`), the path ending at a decoded `?` or `#`, control characters
/// dropped, fullwidth forms as ASCII (NFKC: `＿` is `_`), letters
/// lower-cased (IIS, Windows file systems; `ı` as `i`), `\` as `/` (IIS),
/// `;params` cut from each segment (Tomcat, Spring, Jetty), empty segments
/// dropped (`//`, nginx's `merge_slashes`), dot segments resolved, trailing
/// dots and spaces trimmed (IIS, Windows). The result is `/a/b`, or `/`.
pub fn lenient_path(path: &str) -> String {
    // Most paths hold nothing any reading changes but case and empty
    // segments (no escape, dot, `;`, `\`, control or non-ASCII byte): the
    // result without the decoding rounds, which every request pays for.
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'~');
    if path.bytes().all(plain) {
        let mut out = String::with_capacity(path.len() + 1);
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            out.extend(segment.chars().map(|c| c.to_ascii_lowercase()));
        }
        if out.is_empty() {
            out.push('/');
        }
        return out;
    }
    lenient_path_decoded(path)
}

/// [`lenient_path`] for a path that may hold escapes, dots and the rest.
fn lenient_path_decoded(path: &str) -> String {
    let mut bytes = decode_u_escapes(path.as_bytes());
    // Each round that changes anything shortens the path, so this ends.
    for _ in 0..4 {
        let decoded = decode_u_escapes(&percent_decode(&bytes));
        if decoded == bytes {
            break;
        }
        bytes = decoded;
    }
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .take_while(|c| !matches!(c, '?' | '#'))
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{0131}' => 'i',
            '\\' => '/',
            c => c,
        })
        .collect::<String>()
        // ASCII only: servers that fold case fold these letters (and `ı`,
        // mapped above); Unicode's tables would add 10+ KB of wasm.
        .to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment.split(';').next().unwrap_or("") {
            "." => {}
            ".." => {
                segments.pop();
            }
            segment => {
                let trimmed = segment.trim_end_matches(['.', ' ']);
                if !trimmed.is_empty() {
                    segments.push(trimmed);
                }
            }
        }
    }
    format!("/{}", segments.join("/"))
}

/// IIS's `%uXXXX` escapes (`%u005F` is `_`), as UTF-8.
fn decode_u_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = bytes
            .get(i..i + 6)
            .filter(|e| e[0] == b'%' && (e[1] | 0x20) == b'u')
            .and_then(|e| std::str::from_utf8(&e[2..]).ok())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match decoded {
            Some(c) => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += 6;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// Decodes every well-formed `%XX` escape once; a malformed `%` stays as it is.
pub fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex_pair(h, l).is_some() => {
                out.push(hex_pair(h, l).unwrap_or(b'%'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_read_as_the_full_reading_reads_them() {
        for path in [
            "",
            "/",
            "//",
            "/A/b",
            "/_Admin//x/",
            "a/B",
            "/x-y_z~1/",
            "///q",
        ] {
            assert_eq!(lenient_path(path), lenient_path_decoded(path), "{path:?}");
        }
    }

    #[test]
    fn parameters_sort_by_the_name_frameworks_read_keeping_their_order() {
        let t = TrackingParams::default();
        let key = |url: &str| {
            normalize(&url.parse().unwrap(), &t)
                .unwrap()
                .uri()
                .to_string()
        };
        // `a+b` and `a%20b` are one name: their order is the answer's, so
        // it stays, and the two orders are two keys.
        assert_eq!(
            key("http://h/q?z=1&a+b=EVIL&a%20b=good"),
            "http://h/q?a+b=EVIL&a%20b=good&z=1"
        );
        assert_ne!(
            key("http://h/q?a+b=EVIL&a%20b=good"),
            key("http://h/q?a%20b=good&a+b=EVIL")
        );
        assert_ne!(
            key("http://h/q?a[]=1&a%5B%5D=2"),
            key("http://h/q?a%5B%5D=2&a[]=1")
        );
        assert_eq!(key("http://h/q?b=1&a=2"), key("http://h/q?a=2&b=1"));
    }

    #[test]
    fn the_origin_gets_the_keys_url_with_the_clients_parameter_order() {
        let t = TrackingParams::default();
        let origin = |url: &str| {
            let uri: Uri = url.parse().unwrap();
            origin_uri(&uri, normalize(&uri, &t).unwrap().uri(), &t).to_string()
        };
        assert_eq!(
            origin("https://Shop.Test/a%7eb/x?z=1&sig=k%2fq%3D&a=%41"),
            "https://shop.test/a~b/x?z=1&sig=k%2Fq%3D&a=A"
        );
        assert_eq!(
            origin("https://shop.test/p?b=2&utm_source=x&a=1&&%67clid=3"),
            "https://shop.test/p?b=2&a=1"
        );
        assert_eq!(
            origin("https://shop.test/p?utm_source=x"),
            "https://shop.test/p"
        );
        assert_eq!(origin("https://shop.test?a&&b"), "https://shop.test/?a&b");
    }

    fn norm(uri: &str) -> String {
        normalize(&uri.parse().unwrap(), &TrackingParams::default())
            .unwrap()
            .uri()
            .to_string()
    }

    #[test]
    fn table() {
        let cases = [
            (
                "HTTPS://Shop.EXAMPLE.com:443/a",
                "https://shop.example.com/a",
            ),
            ("http://shop.example:80/a", "http://shop.example/a"),
            ("http://shop.example:8080/a", "http://shop.example:8080/a"),
            // `http` reads a port with `u16`'s parse, which takes a `+`.
            ("http://shop.example:+8080/a", "http://shop.example:8080/a"),
            ("http://shop.example:0080/a", "http://shop.example/a"),
            ("https://shop.example", "https://shop.example/"),
            (
                "https://s.example/%7euser/%2fx%3a",
                "https://s.example/~user/%2Fx%3A",
            ),
            (
                "https://s.example/a?b=2&a=1&c",
                "https://s.example/a?a=1&b=2&c",
            ),
            (
                "https://s.example/a?x=2&a=1&x=1",
                "https://s.example/a?a=1&x=2&x=1",
            ),
            (
                "https://s.example/a?utm_source=n&id=7&UTM_Medium=e&gclid=1",
                "https://s.example/a?id=7",
            ),
            (
                "https://s.example/a?%75tm_source=x&id=1",
                "https://s.example/a?id=1",
            ),
            ("https://s.example/a?&&id=1&", "https://s.example/a?id=1"),
            ("https://s.example/a?utm_x=1", "https://s.example/a"),
            (
                "https://s.example/a?q=%zz&r=%4",
                "https://s.example/a?q=%zz&r=%4",
            ),
            (
                "https://s.example/a?q=%e2%82%ac",
                "https://s.example/a?q=%E2%82%AC",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), want, "{input}");
        }
    }

    #[test]
    fn tracking_list_is_configurable() {
        let custom = TrackingParams::parse("ref, campaign_*").unwrap();
        let out = normalize(
            &"https://s.example/?ref=a&utm_source=b&campaign_id=c"
                .parse()
                .unwrap(),
            &custom,
        )
        .unwrap();
        assert_eq!(*out.uri(), "https://s.example/?utm_source=b");
        let none = TrackingParams::parse("none").unwrap();
        let out = normalize(&"https://s.example/?utm_source=b".parse().unwrap(), &none).unwrap();
        assert_eq!(*out.uri(), "https://s.example/?utm_source=b");
        for bad in ["*", "a*b", "x=1"] {
            assert!(TrackingParams::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ten_thousand_parameters() {
        // Bare names keep 10,000 parameters under the 64 KB an `http::Uri` holds.
        let query: Vec<String> = (0..10_000).rev().map(|i| i.to_string()).collect();
        let uri = format!("https://s.example/?{}&utm_source=x", query.join("&"));
        let out = norm(&uri);
        assert!(out.starts_with("https://s.example/?0&1&10&100&1000&1001&"));
        assert!(!out.contains("utm_source"));
        assert_eq!(out.matches('&').count(), 9_999);
    }

    #[test]
    fn no_host_no_key() {
        assert!(normalize(&"/relative".parse().unwrap(), &TrackingParams::default()).is_none());
    }

    #[test]
    fn a_port_past_u16_is_no_key_not_the_default_ports() {
        for bad in [
            "http://h:-8080/x",
            "http://h:65536/x",
            "http://h:-0/x",
            "http://[::1]:99999/x",
        ] {
            let uri: Uri = bad.parse().unwrap();
            assert!(
                normalize(&uri, &TrackingParams::default()).is_none(),
                "{bad}"
            );
        }
        for (good, want) in [
            ("http://h:/x", "http://h/x"),
            ("http://[::1]/x", "http://[::1]/x"),
            ("http://[::1]:81/x", "http://[::1]:81/x"),
        ] {
            let uri: Uri = good.parse().unwrap();
            let got = normalize(&uri, &TrackingParams::default()).map(|n| n.uri().to_string());
            assert_eq!(got.as_deref(), Some(want), "{good}");
        }
    }
}
