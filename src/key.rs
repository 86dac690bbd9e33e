//! Cache keys, and the Cache API URLs they are stored under.
//!
//! A request's *primary key* names the resource: format version, host and
//! path with query. Every response for it is found through the primary key's
//! storage URL: either the response itself, or, when the origin answered with
//! `Vary`, a marker that names the varying fields and a *generation*. Variants
//! are stored under `primary/<digest(generation, variance)>`, so replacing or
//! deleting the marker makes every old variant unreachable at once (§4.4
//! invalidation, and purge by URL later) without listing them.
//!
//! Key format version 1, hashed with SHA-256 and truncated to 128 bits:
//! `"edge-cache/1" NUL scheme "://" authority NUL path-and-query` of the
//! URI as [`crate::normalize`] left it (the type makes that the only way in).
//! The storage URL lives under the request's own scheme and host, in a path
//! no origin URL can produce once hashed: `/__edge-cache/1/<hex>`.

use crate::client::{DEVICE_TYPE, IP_COUNTRY};
use crate::normalize::{lenient_path, NormalizedUri};
use crate::variance::Variance;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// Bumped whenever the key's input or layout changes, orphaning old entries.
pub const KEY_FORMAT: &str = "edge-cache/1";

/// The key of one request: the resource, and how its variants are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Scheme and authority the storage URLs live under.
    base: String,
    /// Hex digest of the primary key input.
    primary: String,
    /// The normalised authority, and path with query, the key was made of.
    authority: String,
    path_and_query: String,
    /// What `User-Agent` is keyed on instead of the header (the device class).
    user_agent: Option<&'static str>,
    /// Fields varied on whatever the origin says (`VARY_BY_PATH`).
    implicit_vary: Vec<String>,
}

impl CacheKey {
    /// The key of a normalised URI; its variants see the request as it is.
    pub fn new(uri: &NormalizedUri) -> Self {
        let (scheme, authority, path) = (uri.scheme(), uri.authority(), uri.path_and_query());
        let mut hasher = Sha256::new();
        for part in [KEY_FORMAT, "\0", scheme, "://", authority, "\0", path] {
            hasher.update(part.as_bytes());
        }
        CacheKey {
            base: format!("{scheme}://{authority}"),
            primary: hex16(&hasher.finalize()),
            authority: authority.to_string(),
            path_and_query: path.to_string(),
            user_agent: None,
            implicit_vary: Vec::new(),
        }
    }

    /// Sets how variants are chosen: `User-Agent` keyed on `user_agent` when
    /// given, and fields to vary on regardless of `Vary`.
    pub fn with_variance(
        mut self,
        user_agent: Option<&'static str>,
        implicit_vary: Vec<String>,
    ) -> Self {
        self.user_agent = user_agent;
        self.implicit_vary = implicit_vary;
        self
    }

    /// Fields this key varies on whatever the origin says.
    pub fn implicit_vary(&self) -> &[String] {
        &self.implicit_vary
    }

    /// The request's values for `names`.
    pub fn variance<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        request: &HeaderMap,
    ) -> Variance {
        Variance::from_request(names, request, self.user_agent)
    }

    /// The normalised authority (host and port) the key was made of.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The normalised path and query the key was made of.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The primary key's digest, recorded in entry metadata.
    pub fn primary(&self) -> &str {
        &self.primary
    }

    /// Where the response, or the vary marker, for this resource is stored.
    pub fn primary_url(&self) -> String {
        format!("{}/__edge-cache/1/{}", self.base, self.primary)
    }

    /// Where one variant of this resource is stored.
    pub fn variant_url(&self, generation: &str, variance: &Variance) -> String {
        let mut hasher = Sha256::new();
        hasher.update(generation.as_bytes());
        hasher.update([0]);
        hasher.update(variance.digest());
        format!("{}/{}", self.primary_url(), hex16(&hasher.finalize()))
    }
}

/// What `Vary: User-Agent` is keyed on (`VARY_USER_AGENT`).
///
/// A stored variant may depend only on what its key tells apart, so the
/// origin must see exactly what the key holds: with `Raw` that is the
/// client's agent; with `Device` the origin is sent a canonical agent of the
/// class instead ([`crate::device::DeviceClass::canonical_agent`]), never
/// the client's, or one desktop's agent reflected into a page would be
/// served to every desktop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserAgentKey {
    /// The raw header: one variant per distinct agent string (RFC 9111 §4.1).
    #[default]
    Raw,
    /// The device class (`mobile`, `tablet`, `desktop`): few variants, and
    /// the origin sees the class's canonical agent.
    Device,
}

/// Paths whose responses vary on device and/or country without the origin
/// saying so (`VARY_BY_PATH`, e.g. `{"/shop/": ["device", "country"]}`).
/// The longest matching prefix wins. Paths and prefixes compare in their
/// [`lenient_path`] form, so `/SHOP/x`, `//shop/x` and `/shop;v=1/x` are
/// under `/shop/` for every origin that might read them so; a prefix
/// ending in `/` matches whole segments (`/shop/` is not `/shopping`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathRules(Vec<(PathPrefix, Vec<String>)>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct PathPrefix {
    lenient: String,
    whole_segments: bool,
}

impl PathPrefix {
    fn matches(&self, lenient: &str) -> bool {
        match self.whole_segments {
            true => {
                lenient == self.lenient
                    || self.lenient == "/"
                    || lenient
                        .strip_prefix(self.lenient.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            false => lenient.starts_with(self.lenient.as_str()),
        }
    }
}

impl PathRules {
    pub fn parse(json: &str) -> Result<Self, String> {
        let rules: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_str(json)
            .map_err(|e| {
                format!("must be a JSON object of path prefix to [\"device\", \"country\"] ({e})")
            })?;
        let mut out = Vec::new();
        for (prefix, dimensions) in rules {
            if !prefix.starts_with('/') {
                return Err(format!("path prefix {prefix:?} must start with /"));
            }
            let mut fields = Vec::new();
            for dimension in dimensions {
                fields.push(match dimension.as_str() {
                    "device" => DEVICE_TYPE.to_string(),
                    "country" => IP_COUNTRY.to_string(),
                    other => return Err(format!("{other:?} is not \"device\" or \"country\"")),
                });
            }
            let prefix = PathPrefix {
                whole_segments: prefix.ends_with('/'),
                lenient: lenient_path(&prefix),
            };
            out.push((prefix, fields));
        }
        out.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.lenient.len()));
        Ok(PathRules(out))
    }

    /// The fields a path always varies on.
    pub fn for_path(&self, path: &str) -> Vec<String> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let path = lenient_path(path);
        self.0
            .iter()
            .find(|(prefix, _)| prefix.matches(&path))
            .map(|(_, fields)| fields.clone())
            .unwrap_or_default()
    }
}

/// Lower-case hex of the first 16 bytes (by table: one `format!` a byte
/// was 3% of a composed page's CPU, every fragment hashing its key).
fn hex16(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in bytes.iter().take(16) {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> CacheKey {
        let tracking = crate::normalize::TrackingParams::default();
        CacheKey::new(&crate::normalize::normalize(&uri.parse().unwrap(), &tracking).unwrap())
    }

    #[test]
    fn host_is_case_insensitive_path_is_not() {
        assert_eq!(
            key("https://EXAMPLE.com/a?b=1"),
            key("https://example.com/a?b=1")
        );
        assert_ne!(key("https://example.com/a"), key("https://example.com/A"));
        assert_ne!(
            key("https://example.com/a?b=1"),
            key("https://example.com/a?b=2")
        );
        assert_ne!(key("https://a.example/x"), key("https://b.example/x"));
        assert_eq!(key("https://example.com./a"), key("https://example.com/a"));
        assert_ne!(key("http://example.com/x"), key("https://example.com/x"));
    }

    #[test]
    fn storage_urls() {
        let k = key("http://localhost:8787/a");
        assert!(k
            .primary_url()
            .starts_with("http://localhost:8787/__edge-cache/1/"));
        assert_eq!(
            k.primary_url().len(),
            "http://localhost:8787/__edge-cache/1/".len() + 32
        );
        let v = Variance::default();
        assert_ne!(k.variant_url("g1", &v), k.variant_url("g2", &v));
        assert!(k.variant_url("g1", &v).starts_with(&k.primary_url()));
    }

    #[test]
    fn path_rules_longest_prefix_wins() {
        let rules =
            PathRules::parse(r#"{"/": ["country"], "/shop/": ["device", "country"]}"#).unwrap();
        assert_eq!(
            rules.for_path("/shop/a"),
            ["cf-device-type", "cf-ipcountry"]
        );
        assert_eq!(rules.for_path("/blog"), ["cf-ipcountry"]);
        for spelling in [
            "/SHOP/a",
            "//shop/a",
            "/shop;v=1/a",
            "/%73hop/a",
            "/x/../shop/a",
        ] {
            assert_eq!(rules.for_path(spelling).len(), 2, "{spelling}");
        }
        assert_eq!(rules.for_path("/shopping"), ["cf-ipcountry"]);
        assert!(PathRules::default().for_path("/x").is_empty());
        for bad in [r#"{"shop": ["device"]}"#, r#"{"/": ["colour"]}"#, "[]"] {
            assert!(PathRules::parse(bad).is_err(), "{bad}");
        }
    }
}
