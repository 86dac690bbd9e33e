//! Parsing of `Cache-Control` and its targeted siblings (`CDN-Cache-Control`,
//! `Surrogate-Control`).
//!
//! Written by hand because the parse is small, must be lenient in exactly the
//! ways RFC 9111 asks for, and no crate covers the targeted fields together
//! with qualified `private="…"` / `no-cache="…"` forms.

use http::header::{AsHeaderName, HeaderMap};

/// `delta-seconds` larger than this are clamped to it (RFC 9111 §1.2.2:
/// "a cache … MUST consider the value to be 2147483648 (2^31)").
pub const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// The directives of one cache-control style field, in the order received.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    items: Vec<(String, Option<String>)>,
}

impl Directives {
    /// Parses every line of `name` in `headers` as one comma-separated list
    /// (RFC 9110 §5.3: multiple field lines are one list).
    pub fn from_headers(headers: &HeaderMap, name: impl AsHeaderName) -> Option<Self> {
        let mut lines = headers.get_all(name).iter().peekable();
        lines.peek()?;
        let mut directives = Directives::default();
        for line in lines {
            // Non-UTF-8 bytes cannot form a directive; parse what remains.
            directives.extend_from(&String::from_utf8_lossy(line.as_bytes()));
        }
        Some(directives)
    }

    /// Parses a single field value.
    pub fn parse(value: &str) -> Self {
        let mut directives = Directives::default();
        directives.extend_from(value);
        directives
    }

    fn extend_from(&mut self, value: &str) {
        for item in split_list(value) {
            let (name, arg) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
                None => (item.trim(), None),
            };
            if !name.is_empty() {
                self.items.push((name.to_ascii_lowercase(), arg));
            }
        }
    }

    /// True when no directive was given (an empty or all-commas field).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when every directive is one that says nothing about caching:
    /// `Surrogate-Control: content="ESI/1.0"` asks for processing
    /// (Edge Architecture Specification 1.0, §3.3), not for a lifetime.
    pub fn only_processing(&self) -> bool {
        self.items.iter().all(|(name, _)| name == "content")
    }

    /// True if the directive is present, with or without an argument.
    pub fn has(&self, name: &str) -> bool {
        self.items.iter().any(|(n, _)| n == name)
    }

    /// The first occurrence's `delta-seconds` argument.
    ///
    /// A directive present with a malformed argument yields `Some(0)`: RFC 9111
    /// §4.2.1 lets a cache "consider the response to be stale" when its
    /// freshness information is invalid, the safe reading for a shared cache.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let (_, arg) = self.items.iter().find(|(n, _)| n == name)?;
        Some(arg.as_deref().and_then(parse_delta_seconds).unwrap_or(0))
    }

    /// The first occurrence's argument, unquoted.
    pub fn argument(&self, name: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, arg)| arg.as_deref())
    }

    /// The argument of `private` or `no-cache` as a field-name list.
    ///
    /// `None`: absent. `Some(Qualified::All)`: the unqualified form, which
    /// applies to the whole response. `Some(Qualified::Fields(..))`: only the
    /// named fields are affected (RFC 9111 §5.2.2.4, §5.2.2.7).
    pub fn qualified(&self, name: &str) -> Option<Qualified> {
        let mut result: Option<Qualified> = None;
        for (_, arg) in self.items.iter().filter(|(n, _)| n == name) {
            let fields: Vec<String> = arg
                .as_deref()
                .map(|a| {
                    a.split(',')
                        .map(|f| f.trim().to_ascii_lowercase())
                        .filter(|f| !f.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            // The unqualified form anywhere wins: it is the more restrictive.
            result = match (result, fields.is_empty()) {
                (Some(Qualified::All), _) | (_, true) => Some(Qualified::All),
                (Some(Qualified::Fields(mut have)), false) => {
                    have.extend(fields);
                    Some(Qualified::Fields(have))
                }
                (None, false) => Some(Qualified::Fields(fields)),
            };
        }
        result
    }
}

/// How far a `private` or `no-cache` directive reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualified {
    All,
    /// Lower-cased field names.
    Fields(Vec<String>),
}

/// RFC 9111 §1.2.2: digits only; overflow clamps to 2^31.
fn parse_delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u64>().unwrap_or(u64::MAX).min(DELTA_SECONDS_MAX))
}

/// Splits on commas outside quoted strings.
fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or('\\')
                } else {
                    c
                });
            }
            out
        }
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // (field, directive, expected seconds)
        let cases: &[(&str, &str, Option<u64>)] = &[
            ("max-age=60", "max-age", Some(60)),
            ("MAX-AGE=60", "max-age", Some(60)),
            ("public, max-age=60, s-maxage=10", "s-maxage", Some(10)),
            ("max-age=\"60\"", "max-age", Some(60)),
            ("max-age=60, max-age=5", "max-age", Some(60)),
            ("max-age=abc", "max-age", Some(0)),
            ("max-age=-1", "max-age", Some(0)),
            ("max-age", "max-age", Some(0)),
            (
                "max-age=99999999999999999999999",
                "max-age",
                Some(DELTA_SECONDS_MAX),
            ),
            ("max-age=4294967296", "max-age", Some(DELTA_SECONDS_MAX)),
            ("no-store", "max-age", None),
            ("", "max-age", None),
            (",,, ,", "max-age", None),
            ("private=\"a, max-age=9\", max-age=3", "max-age", Some(3)),
        ];
        for (field, name, want) in cases {
            assert_eq!(Directives::parse(field).seconds(name), *want, "{field}");
        }
    }

    #[test]
    fn qualified_forms() {
        let d = Directives::parse("private=\"Set-Cookie, X-Foo\", no-cache");
        assert_eq!(
            d.qualified("private"),
            Some(Qualified::Fields(vec!["set-cookie".into(), "x-foo".into()]))
        );
        assert_eq!(d.qualified("no-cache"), Some(Qualified::All));
        assert_eq!(d.qualified("no-store"), None);
        let both = Directives::parse("private=set-cookie, private");
        assert_eq!(both.qualified("private"), Some(Qualified::All));
    }

    #[test]
    fn multiple_lines_are_one_list() {
        let mut h = HeaderMap::new();
        h.append("cache-control", "public".parse().unwrap());
        h.append("cache-control", "max-age=7".parse().unwrap());
        let d = Directives::from_headers(&h, http::header::CACHE_CONTROL).unwrap();
        assert!(d.has("public"));
        assert_eq!(d.seconds("max-age"), Some(7));
        assert!(Directives::from_headers(&h, http::header::EXPIRES).is_none());
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let long = "a=\"".repeat(10_000) + &",".repeat(10_000);
        let _ = Directives::parse(&long);
        let _ = Directives::parse("\"\\");
        let _ = Directives::parse("x=\"é\\\"");
    }
}
