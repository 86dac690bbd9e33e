//! ESI variables (ESI 1.0 §5), the documented subset:
//!
//! | variable | value |
//! |---|---|
//! | `$(HTTP_HOST)` | the page's host |
//! | `$(QUERY_STRING)`, `$(QUERY_STRING{name})` | the page's query, or one parameter (decoded) |
//! | `$(HTTP_COOKIE{name})` | one request cookie (never a `BYPASS_COOKIES` one: those requests bypass the cache) |
//! | `$(DEVICE_CLASS)` | the normalised device class: `mobile`, `tablet`, `desktop` |
//! | `$(GEO{country_code})` | the normalised country (or its group), `XX` when unknown |
//!
//! Anything else is empty. Values are escaped for where they land, because
//! they come from the client and the composed page is served to it: HTML
//! character references in `esi:vars` text (a query parameter must not
//! become markup), percent-encoding of everything but unreserved characters
//! in an include's `src` or `alt` (a value must not change the URL's host
//! or path structure).

use crate::cookies;

/// What variables are read from: the page request, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    pub host: String,
    pub query: String,
    pub cookie: String,
    pub device: &'static str,
    pub country: String,
}

/// Where a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Html,
    Url,
}

impl Variables {
    /// The value of the variable `name` with its optional `{key}`.
    fn value(&self, name: &str, key: Option<&str>) -> String {
        match (name, key) {
            ("HTTP_HOST", None) => self.host.clone(),
            ("QUERY_STRING", None) => self.query.clone(),
            ("QUERY_STRING", Some(key)) => self
                .query
                .split('&')
                .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
                .find(|(k, _)| decode(k) == key)
                .map(|(_, v)| decode(v))
                .unwrap_or_default(),
            ("HTTP_COOKIE", Some(key)) => cookies::value(&self.cookie, key).unwrap_or_default(),
            ("DEVICE_CLASS", None) => self.device.to_string(),
            ("GEO", Some("country_code")) => self.country.clone(),
            _ => String::new(),
        }
    }

    /// `text` with every `$(NAME)` and `$(NAME{key})` replaced, escaped for `context`.
    pub fn substitute(&self, text: &str, context: Context) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("$(") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = &after[..end];
            let (name, key) = match inner.split_once('{') {
                Some((name, key)) => (name, Some(key.trim_end_matches('}'))),
                None => (inner, None),
            };
            let valid = name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
            match valid {
                true => out.push_str(&escape(&self.value(name, key), context)),
                false => out.push_str(&rest[start..start + 2 + end + 1]),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn escape(value: &str, context: Context) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match (context, c) {
            (Context::Html, '&') => out.push_str("&amp;"),
            (Context::Html, '<') => out.push_str("&lt;"),
            (Context::Html, '>') => out.push_str("&gt;"),
            (Context::Html, '"') => out.push_str("&quot;"),
            (Context::Html, '\'') => out.push_str("&#39;"),
            (Context::Html, c) => out.push(c),
            (Context::Url, c) if c.is_ascii_alphanumeric() || "-._~".contains(c) => out.push(c),
            (Context::Url, c) => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// A query component decoded (`+` as space), lossily.
fn decode(raw: &str) -> String {
    let bytes = crate::normalize::percent_decode(raw.replace('+', " ").as_bytes());
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        Variables {
            host: "shop.test".into(),
            query: "q=%3Cb%3E&lang=de&x=a+b".into(),
            cookie: "theme=dark; session=s".into(),
            device: "mobile",
            country: "DE".into(),
        }
    }

    #[test]
    fn the_subset_and_its_escaping() {
        let v = vars();
        let html = |t| v.substitute(t, Context::Html);
        assert_eq!(
            html("$(HTTP_HOST) $(DEVICE_CLASS) $(GEO{country_code})"),
            "shop.test mobile DE"
        );
        assert_eq!(
            html("[$(QUERY_STRING{lang})] [$(QUERY_STRING{x})]"),
            "[de] [a b]"
        );
        assert_eq!(
            html("$(QUERY_STRING{q})"),
            "&lt;b&gt;",
            "a parameter never becomes markup"
        );
        assert_eq!(html("$(HTTP_COOKIE{theme})"), "dark");
        assert_eq!(html("$(UNKNOWN) $(QUERY_STRING{none})|"), " |");
        assert_eq!(html("$(not a var) $(open"), "$(not a var) $(open");
        let url = v.substitute(
            "/frag?lang=$(QUERY_STRING{lang})&q=$(QUERY_STRING{q})",
            Context::Url,
        );
        assert_eq!(url, "/frag?lang=de&q=%3Cb%3E");
        let hostile = Variables {
            query: "p=..%2F..%2Fadmin%3Fx%23".into(),
            ..vars()
        };
        assert_eq!(
            hostile.substitute("/f/$(QUERY_STRING{p})", Context::Url),
            "/f/..%2F..%2Fadmin%3Fx%23"
        );
    }
}
