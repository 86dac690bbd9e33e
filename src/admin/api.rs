//! The admin API's requests, read and checked: every problem is a 400
//! naming it (malformed JSON, a wrong type, an unknown field, an empty
//! request, too many items, a tag past the limits, a URL we cannot key),
//! before anything is written.

use crate::device::DeviceClass;
use crate::normalize::{lenient_path, normalize, NormalizedUri, TrackingParams};
use crate::purge::{tags, Mode, Summary, Target, MAX_PREFIX_SEGMENTS};
use http::{StatusCode, Uri};
use serde::Deserialize;

/// Items (tags, URLs, prefixes) one purge request may name.
pub const MAX_ITEMS: usize = 100;
/// Bytes of a request body; a longer one is a 413.
pub const MAX_BODY: u64 = 256 * 1024;
/// Bytes of one URL or prefix.
const MAX_URL: usize = 4096;

/// A request the API refuses, with its status and a message for the JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The site the admin request was sent to: relative URLs resolve against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub scheme: String,
    pub authority: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    everything: bool,
    #[serde(default)]
    soft: bool,
}

/// A purge, checked: what it names, readable and as targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purge {
    pub mode: Mode,
    pub everything: bool,
    pub tags: Vec<String>,
    /// Each URL normalised as keys are.
    pub urls: Vec<NormalizedUri>,
    /// Each prefix as `host/path` or `/path`, with its target.
    pub prefixes: Vec<(String, Target)>,
}

impl Purge {
    /// The distinct target digests.
    pub fn digests(&self) -> Vec<u64> {
        let tags = self.tags.iter().map(|t| Target::Tag(t.clone()));
        let urls = self.urls.iter().map(url_target);
        let prefixes = self.prefixes.iter().map(|(_, t)| t.clone());
        let mut out: Vec<u64> = tags
            .chain(urls)
            .chain(prefixes)
            .map(|t| t.digest())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// What the purge names, as the API reports it.
    pub fn summary(&self) -> Summary {
        Summary {
            soft: self.mode == Mode::Soft,
            everything: self.everything,
            tags: self.tags.clone(),
            urls: self.urls.iter().map(|u| u.uri().to_string()).collect(),
            prefixes: self.prefixes.iter().map(|(p, _)| p.clone()).collect(),
            ..Summary::default()
        }
    }
}

/// The target of a URL purge: every variant, any scheme.
fn url_target(uri: &NormalizedUri) -> Target {
    let (path, query) = split_query(uri.path_and_query());
    Target::Url {
        host: uri.authority().to_string(),
        path: lenient_path(path),
        query: query.to_string(),
    }
}

fn split_query(path_and_query: &str) -> (&str, &str) {
    path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""))
}

/// Reads `POST /_admin/purge`.
pub fn purge(body: &[u8], site: &Site, tracking: &TrackingParams) -> Result<Purge, ApiError> {
    let body: PurgeBody = json(body)?;
    let items = body.tags.len() + body.urls.len() + body.prefixes.len();
    if items == 0 && !body.everything {
        return Err(ApiError::bad(
            "nothing to purge: give \"tags\", \"urls\", \"prefixes\" or \"everything\": true",
        ));
    }
    if items > MAX_ITEMS {
        return Err(ApiError::bad(format!(
            "{items} items in one purge; at most {MAX_ITEMS}"
        )));
    }
    let mut tag_list = Vec::new();
    for tag in &body.tags {
        let tag = tag.trim();
        if !tags::is_valid(tag) {
            return Err(ApiError::bad(format!(
                "tag {tag:?} must be 1 to {} bytes of visible ASCII without commas or spaces",
                tags::MAX_TAG_BYTES
            )));
        }
        tag_list.push(tag.to_ascii_lowercase());
    }
    let urls = body
        .urls
        .iter()
        .map(|u| absolute(u, site).and_then(|uri| keyed(&uri, tracking)))
        .collect::<Result<Vec<_>, _>>()?;
    let prefixes = body
        .prefixes
        .iter()
        .map(|p| prefix(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Purge {
        mode: if body.soft { Mode::Soft } else { Mode::Hard },
        everything: body.everything,
        tags: tag_list,
        urls,
        prefixes,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarmBody {
    urls: Vec<String>,
    #[serde(default)]
    devices: Vec<String>,
}

/// A warm request, checked: URLs of the admin request's own site, and the
/// device classes to fetch each for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warm {
    pub urls: Vec<Uri>,
    pub devices: Vec<DeviceClass>,
}

/// Reads `POST /_admin/warm`. Without `devices`, each URL is fetched once,
/// as a desktop.
pub fn warm(body: &[u8], site: &Site, admin_path: &str) -> Result<Warm, ApiError> {
    let body: WarmBody = json(body)?;
    if body.urls.is_empty() {
        return Err(ApiError::bad("nothing to warm: give \"urls\""));
    }
    if body.urls.len() > MAX_ITEMS {
        return Err(ApiError::bad(format!(
            "{} URLs in one warm; at most {MAX_ITEMS}",
            body.urls.len()
        )));
    }
    let mut urls = Vec::new();
    for url in &body.urls {
        let uri = absolute(url, site)?;
        let same_site = uri.scheme_str() == Some(site.scheme.as_str())
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(&site.authority));
        if !same_site {
            return Err(ApiError::bad(format!(
                "{url:?} is not on this site ({}://{})",
                site.scheme, site.authority
            )));
        }
        if super::is_admin_path(uri.path(), admin_path) {
            return Err(ApiError::bad(format!("{url:?} is an admin route")));
        }
        if !urls.contains(&uri) {
            urls.push(uri);
        }
    }
    let mut devices = Vec::new();
    for name in &body.devices {
        let class = DeviceClass::parse(name).ok_or_else(|| {
            ApiError::bad(format!("device {name:?} must be mobile, tablet or desktop"))
        })?;
        if !devices.contains(&class) {
            devices.push(class);
        }
    }
    if devices.is_empty() {
        devices.push(DeviceClass::Desktop);
    }
    Ok(Warm { urls, devices })
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    // serde would read a struct from an array too.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad(
            "invalid request body: it must be a JSON object",
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("invalid request body: {e}")))
}

/// An absolute http(s) URL; a path resolves against `site`.
fn absolute(url: &str, site: &Site) -> Result<Uri, ApiError> {
    let url = url.trim();
    let bad = |why: &str| ApiError::bad(format!("URL {url:?} {why}"));
    if url.len() > MAX_URL {
        return Err(bad("is too long"));
    }
    let full = match url.starts_with('/') && !url.starts_with("//") {
        true => format!("{}://{}{url}", site.scheme, site.authority),
        false => url.to_string(),
    };
    let uri: Uri = whatwg_encoded(&full)
        .parse()
        .map_err(|_| bad("is not a URL"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(bad("must be a path or an http(s) URL with a host")),
    }
}

/// `url` with the characters percent-encoded that the runtime's URL parser
/// (WHATWG URL) encodes in what a client sends: in the path space, `"`,
/// `<`, `>`, `` ` ``, `{`, `}`; in the query space, `"`, `<`, `>`, `'`; and
/// everything not ASCII, as UTF-8. A purge of `/s?q='x'` or `/café` then
/// names the entry a client's `/s?q='x'` or `/café` made.
fn whatwg_encoded(url: &str) -> String {
    let path_start = url.find("://").map_or(0, |i| {
        url[i + 3..].find('/').map_or(url.len(), |j| i + 3 + j)
    });
    let mut out = String::with_capacity(url.len());
    let mut in_query = false;
    for (i, c) in url.char_indices() {
        in_query |= i >= path_start && c == '?';
        let encode = i >= path_start
            && match in_query {
                false => matches!(c, ' ' | '"' | '<' | '>' | '`' | '{' | '}'),
                true => matches!(c, ' ' | '"' | '<' | '>' | '\''),
            };
        match encode || (i >= path_start && !c.is_ascii()) {
            true => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            false => out.push(c),
        }
    }
    out
}

fn keyed(uri: &Uri, tracking: &TrackingParams) -> Result<NormalizedUri, ApiError> {
    normalize(uri, tracking)
        .ok_or_else(|| ApiError::bad(format!("URL {uri} has no host, or a port past 65535")))
}

/// `host/path`, `scheme://host/path` or `/path` (any host).
fn prefix(spec: &str) -> Result<(String, Target), ApiError> {
    let spec = spec.trim();
    let bad = |why: &str| ApiError::bad(format!("prefix {spec:?} {why}"));
    if spec.is_empty() || spec.len() > MAX_URL {
        return Err(bad(
            "must be a path like /blog or host/path, at most 4096 bytes",
        ));
    }
    // `//host/path` names a host, as a protocol-relative URL does.
    let spec = spec.strip_prefix("//").unwrap_or(spec);
    let (host, path) = match spec.starts_with('/') {
        true => (None, spec),
        false => {
            let lower = spec.to_ascii_lowercase();
            let (rest, default_ports): (&str, &[&str]) = match () {
                _ if lower.starts_with("https://") => (&spec[8..], &[":443"]),
                _ if lower.starts_with("http://") => (&spec[7..], &[":80"]),
                _ => (spec, &[":80", ":443"]),
            };
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.to_ascii_lowercase();
            let host_chars = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
            if host.is_empty() || !host.chars().all(host_chars) {
                return Err(bad("has no valid host"));
            }
            let host = default_ports
                .iter()
                .find_map(|port| host.strip_suffix(port))
                .unwrap_or(&host)
                .to_string();
            (Some(host), if path.is_empty() { "/" } else { path })
        }
    };
    let lenient = lenient_path(path);
    if lenient.split('/').filter(|s| !s.is_empty()).count() > MAX_PREFIX_SEGMENTS {
        return Err(bad(&format!(
            "is deeper than {MAX_PREFIX_SEGMENTS} segments"
        )));
    }
    let readable = format!("{}{lenient}", host.as_deref().unwrap_or(""));
    Ok((
        readable,
        Target::Prefix {
            host,
            path: lenient,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            scheme: "https".into(),
            authority: "shop.test".into(),
        }
    }

    fn read(body: &str) -> Result<Purge, ApiError> {
        purge(body.as_bytes(), &site(), &TrackingParams::default())
    }

    #[test]
    fn purges_read_every_kind() {
        let p = read(
            r#"{"tags": ["Blog"], "urls": ["/a?b=2&a=1&utm_source=x", "http://Shop.Test:80/c"],
            "prefixes": ["/News/", "shop.test/x", "https://other.test:443/y"], "soft": true}"#,
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Soft);
        assert_eq!(p.tags, ["blog"]);
        let urls: Vec<String> = p.urls.iter().map(|u| u.uri().to_string()).collect();
        assert_eq!(urls, ["https://shop.test/a?a=1&b=2", "http://shop.test/c"]);
        let prefixes: Vec<&str> = p.prefixes.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(prefixes, ["/news", "shop.test/x", "other.test/y"]);
        let odd = read(
            r#"{"prefixes": ["//shop.test/blog", "shop.test:80/hp"], "urls": ["/s?q='x' y"]}"#,
        )
        .unwrap();
        let odd_prefixes: Vec<&str> = odd.prefixes.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(odd_prefixes, ["shop.test/blog", "shop.test/hp"]);
        assert_eq!(
            odd.urls[0].uri().to_string(),
            "https://shop.test/s?q=%27x%27%20y"
        );
        let accented = read(r#"{"urls": ["/café?q=é"]}"#).unwrap();
        let accented = accented.urls[0].uri().to_string();
        assert_eq!(accented, "https://shop.test/caf%C3%A9?q=%C3%A9");
        assert_eq!(p.digests().len(), 6);
        assert!(read(r#"{"everything": true}"#).unwrap().everything);
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let too_many = format!(r#"{{"tags": [{}]}}"#, vec!["\"t\""; 101].join(","));
        let cases = [
            ("{", "invalid request body"),
            ("[]", "invalid request body"),
            (r#"{"tags": "a"}"#, "invalid type"),
            (r#"{"tag": ["a"]}"#, "unknown field"),
            ("{}", "nothing to purge"),
            (r#"{"everything": false}"#, "nothing to purge"),
            (too_many.as_str(), "at most 100"),
            (r#"{"tags": ["a b"]}"#, "visible ASCII"),
            (r#"{"tags": [""]}"#, "visible ASCII"),
            (r#"{"urls": ["ftp://x/y"]}"#, "http(s)"),
            (r#"{"urls": ["not a url"]}"#, "URL"),
            (r#"{"prefixes": ["bad host/x"]}"#, "host"),
        ];
        for (body, says) in cases {
            let e = read(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
        let deep = format!(
            r#"{{"prefixes": ["{}"]}}"#,
            "/a".repeat(MAX_PREFIX_SEGMENTS + 1)
        );
        assert!(read(&deep).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn warm_stays_on_this_site_and_off_the_admin_routes() {
        let w = |body: &str| warm(body.as_bytes(), &site(), "/_admin");
        let ok = w(r#"{"urls": ["/a", "https://shop.test/b", "/a"], "devices": ["mobile", "tablet", "mobile"]}"#).unwrap();
        assert_eq!(ok.urls.len(), 2);
        assert_eq!(ok.devices, [DeviceClass::Mobile, DeviceClass::Tablet]);
        assert_eq!(
            w(r#"{"urls": ["/a"]}"#).unwrap().devices,
            [DeviceClass::Desktop]
        );
        for (body, says) in [
            (r#"{"urls": ["https://evil.test/a"]}"#, "not on this site"),
            (r#"{"urls": ["http://shop.test/a"]}"#, "not on this site"),
            (r#"{"urls": ["/%5Fadmin/purge"]}"#, "admin route"),
            (r#"{"urls": ["/a"], "devices": ["phone"]}"#, "device"),
            (r#"{"urls": []}"#, "nothing to warm"),
        ] {
            assert!(w(body).unwrap_err().message.contains(says), "{body}");
        }
    }
}
