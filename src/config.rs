//! Configuration: one typed, validated struct read from the Worker's
//! environment on each request.
//!
//! Parsing takes a lookup function rather than `worker::Env` so that it runs
//! (and is tested) natively. A malformed value is a [`ConfigError`] naming the
//! variable, which the edge turns into a 500 and a log line, never a panic.

use crate::client::{
    ClientOptions, CountryGroups, OriginNames, DEFAULT_COUNTRY_HEADER, DEFAULT_DEVICE_HEADER,
};
use crate::cookies::BypassCookies;
use crate::key::{PathRules, UserAgentKey};
use crate::normalize::{OriginUrl, TrackingParams, DEFAULT_TRACKING};
use crate::policy::{PolicyOptions, DEFAULT_MAX_STORED_BODY};
use crate::stale::StaleDefaults;
use http::{HeaderName, Uri};

/// Everything the worker reads from `[vars]` and secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where cache misses go (`ORIGIN`).
    pub origin: OriginConfig,
    /// Prefix of the admin routes (`ADMIN_PATH`, default `/_admin`).
    pub admin_path: String,
    /// The name this cache uses in `Cache-Status` (`CACHE_NAME`, default `edge-cache`).
    pub cache_name: String,
    /// `HEURISTIC_FRESHNESS`: percent of `Date - Last-Modified`, 0 (the default) disables.
    pub policy: PolicyOptions,
    /// `RETAIN_STALE`: seconds an entry is kept past its freshness for revalidation (default one day).
    pub retain_stale: u64,
    /// `STALE_WHILE_REVALIDATE`, `STALE_IF_ERROR`: windows for responses that name none.
    pub stale: StaleDefaults,
    /// `ORIGIN_TIMEOUT`: seconds to wait for the origin's response headers (default 30).
    pub origin_timeout_secs: u32,
    /// `TRACKING_PARAMS`: query parameters dropped from the key and the origin URL.
    pub tracking: TrackingParams,
    /// `ORIGIN_URL`: `client` (default), the key's URL with the parameters
    /// in the client's order; `normalized`, the key's.
    pub origin_url: OriginUrl,
    /// `COUNTRY_HEADER`, `COUNTRY_GROUPS`, `ORIGIN_DEVICE_HEADER`, `ORIGIN_COUNTRY_HEADER`.
    pub client: ClientOptions,
    /// `BYPASS_COOKIES`: requests carrying these cookies bypass the cache.
    pub bypass_cookies: BypassCookies,
    /// `VARY_USER_AGENT`: `raw` (default) or `device`.
    pub user_agent: UserAgentKey,
    /// `VARY_BY_PATH`: paths keyed by device and/or country regardless of `Vary`.
    pub path_rules: PathRules,
    /// `ADMIN_TOKEN` (a secret): the admin API's bearer token; `None` (or
    /// one too short to resist guessing) keeps the API shut.
    pub admin_token: Option<String>,
    /// `PURGE_REFRESH`: seconds between reads of the purge records (default 5).
    pub purge_refresh_secs: u64,
    /// `EXPOSE_TAGS`: send `Cache-Tag` / `Surrogate-Key` on to clients (debugging).
    pub expose_tags: bool,
    /// `HOT_TIER_BYTES`: the in-isolate tier's bound (0 turns it off).
    pub hot_tier_bytes: usize,
    /// `ESI_ALLOWED_HOSTS`: hosts (lower-case, with any port) that absolute
    /// ESI includes may name besides the page's own and the origin's.
    pub esi_allowed_hosts: Vec<String>,
    /// `ESI`: compose pages that ask for it (`on`, the default: a page is
    /// composed only when its origin says so), or pass them through as they
    /// are (`off`).
    pub esi: bool,
}

/// The in-isolate tier's default bound: 8 MiB of the isolate's 128 MB.
pub const DEFAULT_HOT_TIER_BYTES: usize = 8 * 1024 * 1024;
/// Half the isolate's memory, at most.
pub const MAX_HOT_TIER_BYTES: usize = 64 * 1024 * 1024;

/// An `ADMIN_TOKEN` shorter than this keeps the admin API shut.
pub const MIN_ADMIN_TOKEN: usize = 16;

impl Config {
    /// Seconds purge records are kept in KV, and the age past which an
    /// entry is revalidated because a record covering it may be gone:
    /// `RETAIN_STALE`, at least an hour.
    pub fn purge_window_secs(&self) -> u64 {
        self.retain_stale.max(3_600)
    }
}

/// Where the origin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginConfig {
    /// `ORIGIN` unset or empty: the bundled demo site in `www/` (static-assets binding).
    DemoAssets,
    /// `ORIGIN=https://host[:port][/prefix]`.
    Url(OriginBase),
}

/// An origin base URL; request paths are appended to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginBase {
    /// `scheme://authority`
    root: String,
    /// Path prefix without a trailing slash, possibly empty.
    prefix: String,
}

impl OriginBase {
    pub fn parse(value: &str) -> Result<Self, String> {
        let uri: Uri = value
            .trim()
            .parse()
            .map_err(|e| format!("not a URL ({e})"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s,
            _ => return Err("must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("has no host")?;
        if authority.as_str().contains('@') {
            return Err("must not contain credentials".into());
        }
        if uri.query().is_some() {
            return Err("must not have a query".into());
        }
        Ok(OriginBase {
            root: format!("{scheme}://{authority}"),
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The origin's host and port.
    pub fn authority(&self) -> &str {
        self.root.split_once("://").map_or("", |(_, a)| a)
    }

    /// The origin URL for a client request URI: prefix, then path and query.
    pub fn url_for(&self, uri: &Uri) -> String {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{}{}{}", self.root, self.prefix, path)
    }
}

/// A configuration variable with a value the worker cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration variable {} is invalid: {}",
            self.variable, self.reason
        )
    }
}

impl Config {
    /// Reads and validates every variable through `lookup` (name to value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let err = |variable: &'static str, reason: String| ConfigError { variable, reason };
        // A variable that is one of a few words; the first is the default.
        fn one_of<T: Copy>(
            variable: &'static str,
            value: Option<String>,
            words: &[(&str, T)],
        ) -> Result<T, ConfigError> {
            let Some(value) = value else {
                return Ok(words[0].1);
            };
            match words.iter().find(|(word, _)| *word == value) {
                Some((_, choice)) => Ok(*choice),
                None => {
                    let names: Vec<&str> = words.iter().map(|(word, _)| *word).collect();
                    let reason = format!("{value:?} must be {}", names.join(" or "));
                    Err(ConfigError { variable, reason })
                }
            }
        }

        let origin = match get("ORIGIN") {
            None => OriginConfig::DemoAssets,
            Some(v) => OriginConfig::Url(
                OriginBase::parse(&v).map_err(|r| err("ORIGIN", format!("{v:?} {r}")))?,
            ),
        };
        let admin_path = match get("ADMIN_PATH") {
            None => "/_admin".to_string(),
            // A prefix that reads as the root would take the whole site.
            Some(v)
                if v.starts_with('/')
                    && v.bytes().all(|b| b.is_ascii_graphic())
                    && !v.contains(['?', '#'])
                    && crate::normalize::lenient_path(&v) != "/" =>
            {
                v.trim_end_matches('/').to_string()
            }
            Some(v) => {
                return Err(err(
                    "ADMIN_PATH",
                    format!("{v:?} must be a path like /_admin"),
                ))
            }
        };
        let cache_name = match get("CACHE_NAME") {
            None => "edge-cache".to_string(),
            Some(v) if v.bytes().all(is_tchar) => v,
            Some(v) => {
                return Err(err(
                    "CACHE_NAME",
                    format!("{v:?} must be an HTTP token (letters, digits, -._~)"),
                ))
            }
        };
        let heuristic_percent = match get("HEURISTIC_FRESHNESS") {
            None => 0,
            Some(v) => match v.trim_end_matches('%').parse::<u8>() {
                Ok(p) if p <= 100 => p,
                _ => {
                    return Err(err(
                        "HEURISTIC_FRESHNESS",
                        format!("{v:?} must be a percentage from 0 to 100"),
                    ))
                }
            },
        };
        // Seconds, at most one year.
        let seconds = |name: &'static str, default: u64| match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 365 * 86_400)
                .ok_or_else(|| err(name, format!("{v:?} must be seconds, at most one year"))),
        };
        let retain_stale = seconds("RETAIN_STALE", 86_400)?;
        let stale = StaleDefaults {
            while_revalidate: seconds("STALE_WHILE_REVALIDATE", 0)?,
            if_error: seconds("STALE_IF_ERROR", 0)?,
        };
        let negative_ttl = seconds("NEGATIVE_TTL", 30)?;
        let max_stored_body = match get("MAX_STORED_BODY") {
            None => DEFAULT_MAX_STORED_BODY,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|b| (1..=512 * 1024 * 1024).contains(b))
                .ok_or_else(|| {
                    err(
                        "MAX_STORED_BODY",
                        format!("{v:?} must be bytes, from 1 to 536870912 (512 MiB)"),
                    )
                })?,
        };
        // Seconds, from 1 to `max`.
        let seconds_from_one = |name: &'static str, default: u64, max: u64| match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=max).contains(s))
                .ok_or_else(|| err(name, format!("{v:?} must be seconds from 1 to {max}"))),
        };
        let origin_timeout_secs = seconds_from_one("ORIGIN_TIMEOUT", 30, 600)? as u32;
        let tracking =
            TrackingParams::parse(&get("TRACKING_PARAMS").unwrap_or(DEFAULT_TRACKING.to_string()))
                .map_err(|r| err("TRACKING_PARAMS", r))?;
        let country_header = match get("COUNTRY_HEADER") {
            None => None,
            Some(v) => Some(
                HeaderName::from_bytes(v.as_bytes())
                    .map_err(|_| err("COUNTRY_HEADER", format!("{v:?} is not a header name")))?,
            ),
        };
        let origin_names = OriginNames {
            device: OriginNames::parse_name(
                &get("ORIGIN_DEVICE_HEADER").unwrap_or(DEFAULT_DEVICE_HEADER.to_string()),
            )
            .map_err(|r| err("ORIGIN_DEVICE_HEADER", r))?,
            country: OriginNames::parse_name(
                &get("ORIGIN_COUNTRY_HEADER").unwrap_or(DEFAULT_COUNTRY_HEADER.to_string()),
            )
            .map_err(|r| err("ORIGIN_COUNTRY_HEADER", r))?,
        };
        if origin_names.device == origin_names.country {
            let same = format!(
                "{} is ORIGIN_DEVICE_HEADER's name too",
                origin_names.country
            );
            return Err(err("ORIGIN_COUNTRY_HEADER", same));
        }
        let origin_url = one_of(
            "ORIGIN_URL",
            get("ORIGIN_URL"),
            &[
                ("client", OriginUrl::Client),
                ("normalized", OriginUrl::Normalized),
            ],
        )?;
        let country_groups = match get("COUNTRY_GROUPS") {
            None => CountryGroups::default(),
            Some(v) => CountryGroups::parse(&v).map_err(|r| err("COUNTRY_GROUPS", r))?,
        };
        let bypass_cookies = BypassCookies::parse(&get("BYPASS_COOKIES").unwrap_or_default())
            .map_err(|r| err("BYPASS_COOKIES", r))?;
        let user_agent = one_of(
            "VARY_USER_AGENT",
            get("VARY_USER_AGENT"),
            &[("raw", UserAgentKey::Raw), ("device", UserAgentKey::Device)],
        )?;
        let path_rules = match get("VARY_BY_PATH") {
            None => PathRules::default(),
            Some(v) => PathRules::parse(&v).map_err(|r| err("VARY_BY_PATH", r))?,
        };
        let purge_refresh_secs = seconds_from_one("PURGE_REFRESH", 5, 300)?;
        let expose_tags = one_of(
            "EXPOSE_TAGS",
            get("EXPOSE_TAGS"),
            &[("false", false), ("true", true)],
        )?;
        let admin_token = lookup("ADMIN_TOKEN").filter(|t| t.len() >= MIN_ADMIN_TOKEN);
        let esi_allowed_hosts = get("ESI_ALLOWED_HOSTS")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let hot_tier_bytes = match get("HOT_TIER_BYTES") {
            None => DEFAULT_HOT_TIER_BYTES,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|b| *b <= MAX_HOT_TIER_BYTES)
                .ok_or_else(|| {
                    err(
                        "HOT_TIER_BYTES",
                        format!("{v:?} must be bytes, from 0 (off) to {MAX_HOT_TIER_BYTES}"),
                    )
                })?,
        };
        let esi = one_of("ESI", get("ESI"), &[("on", true), ("off", false)])?;
        Ok(Config {
            hot_tier_bytes,
            esi,
            esi_allowed_hosts,
            admin_token,
            purge_refresh_secs,
            expose_tags,
            origin,
            origin_timeout_secs,
            tracking,
            origin_url,
            client: ClientOptions {
                country_header,
                country_groups,
                origin_names,
            },
            bypass_cookies,
            user_agent,
            path_rules,
            admin_path,
            cache_name,
            policy: PolicyOptions {
                heuristic_percent,
                negative_ttl,
                max_stored_body,
            },
            retain_stale,
            stale,
        })
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.origin, OriginConfig::DemoAssets);
        assert_eq!(c.admin_path, "/_admin");
        assert_eq!(c.cache_name, "edge-cache");
        assert_eq!(c.policy.heuristic_percent, 0);
        assert_eq!(c.retain_stale, 86_400);
        assert_eq!(c.policy.negative_ttl, 30);
        assert_eq!(c.stale, StaleDefaults::default());
        assert_eq!(c.origin_timeout_secs, 30);
        assert_eq!((c.purge_refresh_secs, c.expose_tags), (5, false));
        assert_eq!(c.admin_token, None);
        let short = parse(&[("ADMIN_TOKEN", "short")]).unwrap();
        assert_eq!(
            short.admin_token, None,
            "a guessable token keeps the API shut"
        );
        assert_eq!(
            parse(&[("ORIGIN", "  ")]).unwrap().origin,
            OriginConfig::DemoAssets
        );
    }

    #[test]
    fn origin_urls() {
        let base = OriginBase::parse("http://127.0.0.1:9000/v2/").unwrap();
        assert_eq!(
            base.url_for(&"https://edge.example/a/b?c=1".parse().unwrap()),
            "http://127.0.0.1:9000/v2/a/b?c=1"
        );
        let root = OriginBase::parse("https://origin.example").unwrap();
        assert_eq!(
            root.url_for(&"https://edge.example/".parse().unwrap()),
            "https://origin.example/"
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("ORIGIN", "ftp://x"),
            ("ORIGIN", "not a url"),
            ("ORIGIN", "/relative"),
            ("ORIGIN", "https://user:pw@host"),
            ("ORIGIN", "https://host/?q=1"),
            ("ADMIN_PATH", "admin"),
            ("ADMIN_PATH", "/"),
            ("ADMIN_PATH", "//"),
            ("ADMIN_PATH", "/a\u{7f}"),
            ("ADMIN_PATH", "/ädmin"),
            ("ADMIN_PATH", "/./"),
            ("CACHE_NAME", "edge cache"),
            ("HEURISTIC_FRESHNESS", "150"),
            ("HEURISTIC_FRESHNESS", "ten"),
            ("RETAIN_STALE", "-1"),
            ("RETAIN_STALE", "99999999999"),
            ("STALE_WHILE_REVALIDATE", "soon"),
            ("STALE_IF_ERROR", "-5"),
            ("NEGATIVE_TTL", "1.5"),
            ("MAX_STORED_BODY", "0"),
            ("MAX_STORED_BODY", "1GB"),
            ("ORIGIN_TIMEOUT", "0"),
            ("TRACKING_PARAMS", "*"),
            ("COUNTRY_HEADER", "bad header"),
            ("COUNTRY_GROUPS", "{\"EU\": \"DE\"}"),
            ("BYPASS_COOKIES", "a=b"),
            ("VARY_USER_AGENT", "browser"),
            ("VARY_BY_PATH", "{\"/\": [\"colour\"]}"),
            ("ORIGIN_TIMEOUT", "fast"),
            ("PURGE_REFRESH", "0"),
            ("PURGE_REFRESH", "301"),
            ("EXPOSE_TAGS", "yes"),
            ("ESI", "yes"),
            ("ORIGIN_URL", "raw"),
            ("HOT_TIER_BYTES", "67108865"),
            ("HOT_TIER_BYTES", "-1"),
            ("ORIGIN_DEVICE_HEADER", "cf-device"),
            ("ORIGIN_COUNTRY_HEADER", "a:b"),
            ("ORIGIN_COUNTRY_HEADER", "X-Edge-Device-Type"),
        ];
        for (name, value) in cases {
            let e = parse(&[(name, value)]).unwrap_err();
            assert_eq!(e.variable, name, "{value}");
            assert!(e.to_string().contains(name));
        }
        assert_eq!(
            parse(&[("HEURISTIC_FRESHNESS", "10%")])
                .unwrap()
                .policy
                .heuristic_percent,
            10
        );
        assert_eq!(
            parse(&[("ADMIN_PATH", "/ops/")]).unwrap().admin_path,
            "/ops"
        );
    }
}
