//! What the cache knows about the client, normalised: device class and country.
//!
//! Both are sent to the origin under names of our own ([`OriginNames`],
//! `X-Edge-Device-Type` and `X-Edge-Country` by default) and under
//! Cloudflare's `CF-Device-Type` and `CF-IPCountry`, overwriting whatever
//! the client sent under any of them. An origin that answers `Vary` on
//! either name is keyed on exactly the values the worker sent. The
//! Cloudflare names are aliases for origins written for Cloudflare's own
//! device and country features: Cloudflare removes `CF-IPCountry` from a
//! Worker's request to an origin it does not proxy and sets its own for
//! one it does, and `cf-` names are its to set, so in production only our
//! names are sure to arrive. With `COUNTRY_GROUPS`, the group name is sent
//! in place of the country: the origin then cannot answer per country what
//! is cached per group.

use crate::device::{classify, DeviceClass};
use http::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const DEVICE_TYPE: &str = "cf-device-type";
pub const IP_COUNTRY: &str = "cf-ipcountry";
/// The default names the origin receives the device class and country under.
pub const DEFAULT_DEVICE_HEADER: &str = "x-edge-device-type";
pub const DEFAULT_COUNTRY_HEADER: &str = "x-edge-country";

/// Request fields the traits' names may not take.
const RESERVED: [&str; 20] = [
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "expect",
    "forwarded",
    "host",
    "origin",
    "pragma",
    "range",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
];

/// The names the origin receives the client's traits under
/// (`ORIGIN_DEVICE_HEADER`, `ORIGIN_COUNTRY_HEADER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginNames {
    pub device: HeaderName,
    pub country: HeaderName,
}

impl Default for OriginNames {
    fn default() -> Self {
        OriginNames {
            device: HeaderName::from_static(DEFAULT_DEVICE_HEADER),
            country: HeaderName::from_static(DEFAULT_COUNTRY_HEADER),
        }
    }
}

impl OriginNames {
    /// A name for one of the traits: letters, digits and `-` (any other
    /// character makes a name this cache strips as an alias of another,
    /// see `headers::strip_unkeyed_inputs`), not Cloudflare's (`cf-`, which
    /// it removes or sets itself).
    pub fn parse_name(value: &str) -> Result<HeaderName, String> {
        let value = value.trim();
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("{value:?} must be letters, digits and -"));
        }
        let name = HeaderName::from_bytes(value.as_bytes())
            .map_err(|_| format!("{value:?} is not a header name"))?;
        if name.as_str().starts_with("cf-") {
            return Err(format!(
                "{value:?} is Cloudflare's name space (cf-): it would not reach the origin"
            ));
        }
        // A field the request has a use for would be overwritten (`Cookie`,
        // `User-Agent`), or one this cache strips would never arrive.
        let taken = RESERVED.contains(&name.as_str())
            || name.as_str().starts_with("accept")
            || name.as_str().starts_with("if-")
            || name.as_str().starts_with("sec-")
            || crate::headers::UNKEYED_INPUTS.contains(&name.as_str());
        match taken {
            true => Err(format!("{value:?} is a field requests already use")),
            false => Ok(name),
        }
    }
}
/// Country used when none is known or the value is not an ISO 3166 code.
pub const UNKNOWN_COUNTRY: &str = "XX";

/// Countries collapsed into named groups for the key (`COUNTRY_GROUPS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryGroups(BTreeMap<String, String>);

impl CountryGroups {
    /// Parses `{"EUR": ["DE", "FR"], "N-AM": ["US", "CA"]}`. A group name of
    /// two characters would read as a country code, and is refused.
    pub fn parse(json: &str) -> Result<Self, String> {
        let groups: BTreeMap<String, Vec<String>> = serde_json::from_str(json)
            .map_err(|e| format!("must be a JSON object of group name to country codes ({e})"))?;
        let mut map = BTreeMap::new();
        for (group, countries) in groups {
            if group.is_empty()
                || !group
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "group name {group:?} must be letters, digits, - or _"
                ));
            }
            if group.len() == 2 {
                // Countries in no group are keyed by their code: a group
                // named `NA` would be shared with Namibia's clients.
                return Err(format!(
                    "group name {group:?} reads as a country code: use a longer name"
                ));
            }
            for country in countries {
                let code = country_code(&country)
                    .ok_or(format!("{country:?} is not a two-letter country code"))?;
                if let Some(other) = map.insert(code.clone(), group.clone()) {
                    return Err(format!("{code} is in both {other} and {group}"));
                }
            }
        }
        Ok(CountryGroups(map))
    }

    /// The group of `code`, or the code itself when it is in none.
    fn key_for(&self, code: String) -> String {
        self.0.get(&code).cloned().unwrap_or(code)
    }
}

/// An ISO 3166-1 alpha-2 code (or Cloudflare's `T1` for Tor), upper-cased.
fn country_code(raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let valid = code.len() == 2 && (code.bytes().all(|b| b.is_ascii_uppercase()) || code == "T1");
    valid.then_some(code)
}

/// How the client is observed (from configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `COUNTRY_HEADER`: read the country from this request header instead of `request.cf`.
    pub country_header: Option<HeaderName>,
    pub country_groups: CountryGroups,
    pub origin_names: OriginNames,
}

/// The client's country as given (`request.cf.country` at the edge, or
/// the `COUNTRY_HEADER` field), read at most once, and only when something
/// needs it: reading the runtime's parses its whole cf object (about 5% of
/// a Cache API hit's CPU in a profile), and a hit on an entry that does not
/// vary by country needs no country. Clones share the one reading.
#[derive(Clone)]
pub struct RuntimeCountry(Rc<RuntimeRead>);

struct RuntimeRead {
    read: Box<dyn Fn() -> Option<String>>,
    value: OnceCell<Option<String>>,
}

impl RuntimeCountry {
    pub fn new(read: impl Fn() -> Option<String> + 'static) -> Self {
        RuntimeCountry(Rc::new(RuntimeRead {
            read: Box::new(read),
            value: OnceCell::new(),
        }))
    }

    /// A country known already.
    pub fn known(country: Option<&str>) -> Self {
        let country = country.map(str::to_string);
        Self::new(move || country.clone())
    }

    /// The country as given, read now if not yet read.
    pub fn get(&self) -> Option<&str> {
        self.0.value.get_or_init(|| (self.0.read)()).as_deref()
    }
}

impl std::fmt::Debug for RuntimeCountry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.value.get() {
            Some(country) => write!(f, "RuntimeCountry({country:?})"),
            None => f.write_str("RuntimeCountry(unread)"),
        }
    }
}

/// The normalised client traits.
#[derive(Debug, Clone)]
pub struct Client {
    pub device: DeviceClass,
    /// As given; normalised and grouped when asked (see [`Client::country`]).
    country: RuntimeCountry,
}

impl Client {
    /// Observes the client from its headers, and from the runtime's
    /// country when no request field is configured to name it.
    pub fn observe(headers: &HeaderMap, runtime: &RuntimeCountry, options: &ClientOptions) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Not `to_str`, which refuses any non-ASCII byte: translated and
        // vendor agents carry UTF-8 (`KHTML, как Gecko`) and must be classed too.
        let agent = headers
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let device = classify(agent.as_deref().unwrap_or(""), text("sec-ch-ua-mobile"));
        let country = match &options.country_header {
            Some(name) => RuntimeCountry::known(text(name.as_str())),
            None => runtime.clone(),
        };
        Client { device, country }
    }

    /// Country code, group name, or [`UNKNOWN_COUNTRY`]; the runtime's is
    /// read the first time it is asked for.
    pub fn country(&self, options: &ClientOptions) -> String {
        let code = self
            .country
            .get()
            .and_then(country_code)
            .unwrap_or_else(|| UNKNOWN_COUNTRY.to_string());
        options.country_groups.key_for(code)
    }

    /// The origin request's device inputs when variants are keyed by class
    /// (`VARY_USER_AGENT=device`): the class's canonical agent, and
    /// `Sec-CH-UA-Mobile` saying the same, with the other client hints
    /// gone, so the origin sees nothing of the device the key does not hold.
    pub fn stamp_device_class(&self, headers: &mut HeaderMap) {
        crate::headers::remove_where(headers, |name| name.starts_with("sec-ch-ua"));
        let agent = HeaderValue::from_static(self.device.canonical_agent());
        headers.insert(USER_AGENT, agent);
        let mobile = match self.device {
            DeviceClass::Mobile => "?1",
            _ => "?0",
        };
        headers.insert("sec-ch-ua-mobile", HeaderValue::from_static(mobile));
    }

    /// Sets the device class on the request to the origin, under the
    /// configured name and Cloudflare's alias alike, and removes whatever
    /// the client sent under the country's names: until
    /// [`Client::stamp_country`] sets them, nothing there may be read as the
    /// country. `COUNTRY_HEADER` is ours to read, not the origin's: it would
    /// let the origin answer per country what is cached per group.
    ///
    /// Also removed: the client's fields under the default names when
    /// others are configured (an origin may still read those), and every
    /// spelling of these names with other punctuation for `-`: CGI, WSGI
    /// and Rack read `X_Edge_Country` as `HTTP_X_EDGE_COUNTRY`, and PHP
    /// turns `.` and spaces into `_` too.
    pub fn stamp_device(&self, headers: &mut HeaderMap, options: &ClientOptions) {
        let names = &options.origin_names;
        let traits = [
            Some(DEVICE_TYPE),
            Some(IP_COUNTRY),
            Some(DEFAULT_DEVICE_HEADER),
            Some(DEFAULT_COUNTRY_HEADER),
            Some(names.device.as_str()),
            Some(names.country.as_str()),
            options.country_header.as_ref().map(HeaderName::as_str),
        ];
        let spelled_alike = |name: &str, other: &str| {
            name.len() == other.len()
                && name.bytes().zip(other.bytes()).all(|(a, b)| {
                    a == b || (!a.is_ascii_alphanumeric() && !b.is_ascii_alphanumeric())
                })
        };
        crate::headers::remove_where(headers, |name| {
            traits.iter().flatten().any(|t| spelled_alike(name, t))
        });
        let device = HeaderValue::from_static(self.device.as_str());
        headers.insert(DEVICE_TYPE, device.clone());
        headers.insert(&names.device, device);
    }

    /// Sets the country under the configured name and Cloudflare's alias:
    /// before a variant is chosen by it, and before the request can reach
    /// the origin.
    pub fn stamp_country(&self, headers: &mut HeaderMap, options: &ClientOptions) {
        let names = &options.origin_names;
        match HeaderValue::from_str(&self.country(options)) {
            Ok(country) => {
                headers.insert(IP_COUNTRY, country.clone());
                headers.insert(&names.country, country);
            }
            Err(_) => {
                // Not reached (codes and group names are ASCII letters):
                // what the client sent must not stand in.
                headers.remove(IP_COUNTRY);
                headers.remove(&names.country);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map;

    fn options(header: Option<&str>, groups: &str) -> ClientOptions {
        ClientOptions {
            origin_names: OriginNames::default(),
            country_header: header.map(|h| HeaderName::from_bytes(h.as_bytes()).unwrap()),
            country_groups: CountryGroups::parse(groups).unwrap(),
        }
    }

    /// The country as observed with `options`.
    fn country(h: &HeaderMap, runtime: Option<&str>, options: &ClientOptions) -> String {
        Client::observe(h, &RuntimeCountry::known(runtime), options).country(options)
    }

    #[test]
    fn country_from_cf_or_the_configured_header() {
        let h = header_map(&[("x-country", "de")]);
        assert_eq!(country(&h, Some("FR"), &options(None, "{}")), "FR");
        assert_eq!(
            country(&h, Some("FR"), &options(Some("x-country"), "{}")),
            "DE"
        );
        assert_eq!(country(&h, None, &options(None, "{}")), "XX");
        for junk in ["", "DEU", "1x", "é", "  "] {
            let h = header_map(&[("x-country", junk)]);
            assert_eq!(
                country(&h, None, &options(Some("x-country"), "{}")),
                "XX",
                "{junk}"
            );
        }
    }

    #[test]
    fn the_runtimes_country_is_read_once_and_only_when_asked() {
        let reads = Rc::new(std::cell::Cell::new(0));
        let counted = reads.clone();
        let runtime = RuntimeCountry::new(move || {
            counted.set(counted.get() + 1);
            Some("de".into())
        });
        let o = options(None, r#"{"EUR": ["DE"]}"#);
        let client = Client::observe(&HeaderMap::new(), &runtime, &o);
        let mut h = HeaderMap::new();
        client.stamp_device(&mut h, &o);
        assert_eq!(
            reads.get(),
            0,
            "observing and stamping the device read nothing"
        );
        client.stamp_country(&mut h, &o);
        assert_eq!(client.clone().country(&o), "EUR");
        assert_eq!(reads.get(), 1);
        // With the country named by a request field, the runtime's is never read.
        let o = options(Some("x-country"), "{}");
        assert_eq!(country(&header_map(&[("x-country", "fr")]), None, &o), "FR");
        let h = header_map(&[("x-country", "fr")]);
        Client::observe(&h, &runtime, &o).country(&o);
        assert_eq!(reads.get(), 1);
    }

    #[test]
    fn agents_with_utf8_are_classified_by_their_text() {
        let tablet = "Mozilla/5.0 (Linux; Android 4.2.2; Mytab-U55GT Build/JDQ39) AppleWebKit/537.36 (KHTML, как Gecko) Chrome/71.0 Safari/537.36";
        let mut h = HeaderMap::new();
        h.insert(
            USER_AGENT,
            HeaderValue::from_bytes(tablet.as_bytes()).unwrap(),
        );
        let unknown = RuntimeCountry::known(None);
        let observed = Client::observe(&h, &unknown, &options(None, "{}"));
        assert_eq!(observed.device, classify(tablet, None));
        h.insert(
            USER_AGENT,
            HeaderValue::from_bytes(b"iPhone \xff\xfe").unwrap(),
        );
        let observed = Client::observe(&h, &unknown, &options(None, "{}"));
        assert_eq!(observed.device, DeviceClass::Mobile);
    }

    #[test]
    fn groups_collapse_countries() {
        let o = options(
            Some("x-country"),
            r#"{"EUR": ["de", "FR"], "N-AM": ["US"]}"#,
        );
        let country = |c: &str| country(&header_map(&[("x-country", c)]), None, &o);
        assert_eq!(country("DE"), "EUR");
        assert_eq!(country("fr"), "EUR");
        assert_eq!(country("US"), "N-AM");
        assert_eq!(country("JP"), "JP");
        for bad in [
            // Namibia's code: its clients would share North America's variant.
            r#"{"NA": ["US", "CA"]}"#,
            r#"{"T1": ["DE"]}"#,
            "[]",
            r#"{"EU": ["DEU"]}"#,
            r#"{"E U": ["DE"]}"#,
            r#"{"A": ["DE"], "B": ["DE"]}"#,
            "{",
        ] {
            assert!(CountryGroups::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stamped_headers_overwrite_the_clients_under_every_name() {
        let names = OriginNames {
            device: OriginNames::parse_name("X-Class").unwrap(),
            country: OriginNames::parse_name("x-geo").unwrap(),
        };
        let mut h = header_map(&[
            ("cf-device-type", "tablet"),
            ("cf-ipcountry", "ZZ"),
            ("x-class", "tablet"),
            ("x-geo", "ZZ"),
            ("x_geo", "ZZ"),
            ("cf_ipcountry", "ZZ"),
            ("x-edge-country", "ZZ"),
            ("x_edge_device_type", "tablet"),
            ("x.edge.country", "ZZ"),
            ("x+geo", "ZZ"),
            ("cf.device~type", "tablet"),
            ("x-test-country", "de"),
            ("x_test.country", "ZZ"),
            ("user-agent", "Mozilla/5.0 (iPhone)"),
        ]);
        let o = ClientOptions {
            origin_names: names,
            country_header: Some(HeaderName::from_static("x-test-country")),
            ..ClientOptions::default()
        };
        let client = Client::observe(&h, &RuntimeCountry::known(None), &o);
        client.stamp_device(&mut h, &o);
        // Until the country is stamped, nothing the client sent stands for
        // it, under any name or spelling an origin might read it by.
        for name in [
            "cf-ipcountry",
            "x-geo",
            "x_geo",
            "cf_ipcountry",
            "x-edge-country",
            "x.edge.country",
            "x+geo",
            "x-test-country",
            "x_test.country",
        ] {
            assert!(!h.contains_key(name), "{name}");
        }
        for name in ["x_edge_device_type", "cf.device~type"] {
            assert!(!h.contains_key(name), "{name}");
        }
        client.stamp_country(&mut h, &o);
        for (name, value) in [
            ("cf-device-type", "mobile"),
            ("x-class", "mobile"),
            ("cf-ipcountry", "DE"),
            ("x-geo", "DE"),
        ] {
            assert_eq!(
                h.get_all(name).iter().collect::<Vec<_>>(),
                [value],
                "{name}"
            );
        }
    }

    #[test]
    fn origin_names_are_field_names_outside_cloudflares() {
        assert_eq!(OriginNames::parse_name(" X-Device ").unwrap(), "x-device");
        assert!(OriginNames::parse_name("CF-Device")
            .unwrap_err()
            .contains("cf-"));
        for bad in [
            "a b",
            "X_Device",
            "X.Geo",
            "",
            "Cookie",
            "User-Agent",
            "X-Forwarded-Host",
            "Accept-Language",
            "If-Match",
        ] {
            assert!(OriginNames::parse_name(bad).is_err(), "{bad}");
        }
    }
}
