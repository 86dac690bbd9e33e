//! Cookie hygiene for a shared cache: a stored entry never carries a cookie,
//! request cookies are never part of the key, and a request carrying a session
//! cookie (`BYPASS_COOKIES`) does not touch the cache at all.
//!
//! The bypass check reads `Cookie` as generously as any origin might, because
//! a session cookie the origin sees but the check misses makes the origin
//! personalise a page that is then stored for everyone. Origins disagree:
//! RFC 6265 separates pairs with `; `; runtimes join repeated `Cookie` lines
//! with `, ` (workerd does); Python's `http.cookies` also splits on white
//! space; PHP percent-decodes names and turns `.`, ` ` and `[` into `_`;
//! ASP.NET compares names case-insensitively. A name counts as present when
//! any of those readings finds it. Hand-written: cookie crates parse one
//! reading (RFC 6265), which is exactly the gap this closes.

use http::header::{HeaderMap, COOKIE, SET_COOKIE};

/// Cookie names that mark a request as personal (`BYPASS_COOKIES`):
/// exact names, and prefixes written `name*`, kept in canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BypassCookies {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl BypassCookies {
    /// Parses `session,wordpress_logged_in_*`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut names = BypassCookies::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let invalid = |c: char| c.is_ascii_control() || " \t\",;=\\".contains(c);
            match item.strip_suffix('*') {
                Some(prefix)
                    if !prefix.is_empty() && !prefix.contains(invalid) && !prefix.contains('*') =>
                {
                    names.prefixes.push(canonical(prefix.as_bytes()))
                }
                None if !item.contains(invalid) && !item.contains('*') => {
                    names.exact.push(canonical(item.as_bytes()))
                }
                _ => return Err(format!("{item:?} is not a cookie name or `prefix*`")),
            }
        }
        Ok(names)
    }

    /// True when any `Cookie` line, read any way an origin reads it, names
    /// one of the cookies. Malformed pairs cannot hide a name: a piece
    /// without `=` counts by its whole text.
    pub fn matches(&self, request: &HeaderMap) -> bool {
        if self.exact.is_empty() && self.prefixes.is_empty() {
            return false;
        }
        request.get_all(COOKIE).iter().any(|line| {
            let line = line.as_bytes();
            // Pairs split on `;` and `,` (RFC 6265, joined lines), and again
            // on white space too (Python), so `a b=1` is seen as `a b` and `b`.
            let pairs = line.split(|b| matches!(b, b';' | b','));
            let words = line.split(|b| matches!(b, b';' | b',' | b' ' | b'\t'));
            pairs.chain(words).any(|piece| {
                let name = piece.split(|b| *b == b'=').next().unwrap_or(piece);
                // PHP reads `session[x]` as the array `session`.
                let array = name.split(|b| *b == b'[').next().unwrap_or(name);
                [canonical(name), canonical(array)].iter().any(|name| {
                    self.exact.contains(name)
                        || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
                })
            })
        })
    }
}

/// A cookie name as the most lenient origin reads it: `+` as a space
/// (older PHP), percent-decoded (PHP, repeatedly as a double-decoding stack
/// would), trimmed of white space and quotes, `.`, ` ` and `[` as `_` (PHP),
/// and lower-case (ASP.NET).
fn canonical(name: &[u8]) -> String {
    let plus_as_space: Vec<u8> = name
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let mut name = plus_as_space.trim_ascii().to_vec();
    // Each round shortens the name, so this ends; three covers double encoding.
    for _ in 0..3 {
        let decoded = crate::normalize::percent_decode(&name);
        if decoded == name {
            break;
        }
        name = decoded;
    }
    let name: Vec<u8> = name
        .trim_ascii()
        .iter()
        .filter(|b| **b != b'"')
        .map(|b| match b {
            b'.' | b' ' | b'[' => b'_',
            other => other.to_ascii_lowercase(),
        })
        .collect();
    String::from_utf8_lossy(&name).into_owned()
}

/// The value of the cookie `name` in a `Cookie` field (`a=1; b=2`), read
/// plainly: names compared exactly, values unquoted. For ESI's
/// `$(HTTP_COOKIE{name})`, not for deciding bypass (see `matches`).
pub fn value(cookie: &str, name: &str) -> Option<String> {
    cookie.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Splits the headers of a response that is about to be stored into the
/// copy for storage and the copy for the client that caused the fetch.
///
/// `Set-Cookie` never reaches storage. The client that triggered the fill
/// loses it too, so that a miss and the hits after it look the same, unless
/// the origin said the cookie is only for this client with `private="Set-Cookie"`
/// or `no-cache="Set-Cookie"` (RFC 9111 §5.2.2.4, §5.2.2.7): then it is kept for
/// that client. The other fields those qualified forms name leave the stored copy only.
pub fn split_for_storage(client: &mut HeaderMap, strip_fields: &[String]) -> HeaderMap {
    let mut stored = client.clone();
    stored.remove(SET_COOKIE);
    // RFC 2965's obsolete form: no browser reads it, no shared entry keeps it.
    stored.remove(SET_COOKIE2);
    for name in strip_fields {
        stored.remove(name.as_str());
    }
    if !strip_fields.iter().any(|f| f == "set-cookie") {
        client.remove(SET_COOKIE);
        client.remove(SET_COOKIE2);
    }
    stored
}

const SET_COOKIE2: &str = "set-cookie2";

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "a=1".parse().unwrap());
        h.append(SET_COOKIE, "b=2".parse().unwrap());
        h.append(SET_COOKIE2, "c=3".parse().unwrap());
        h.insert("x-user", "42".parse().unwrap());
        h.insert("content-type", "text/html".parse().unwrap());
        h
    }

    #[test]
    fn bypass_cookie_patterns() {
        let names = BypassCookies::parse("session, wordpress_logged_in_*").unwrap();
        let with = |cookie: &str| {
            let mut h = HeaderMap::new();
            h.insert(COOKIE, cookie.parse().unwrap());
            names.matches(&h)
        };
        assert!(with("theme=dark; session=abc"));
        assert!(with("wordpress_logged_in_12ab=x"));
        assert!(!with("sessionid=1; theme=dark"));
        assert!(with(";;=; session"));
        assert!(!with("=====;;;; ;"));
        assert!(!with("theme=dark; my_session=1; x=session"));
        assert!(!names.matches(&HeaderMap::new()));
        // Every separator and spelling some origin accepts finds the name.
        for hidden in [
            "theme=dark, session=x",
            "theme=dark session=x",
            "theme=dark\tsession=x",
            "Session=1",
            "SESSION=1",
            "%73ession=1",
            "%2573ession=1",
            " \"session\"=1",
            "wordpress.logged_in_1=x",
            "wordpress[logged_in_1=x",
            "WordPress_Logged_In_1=x",
            "session[x]=abc",
            "+session=abc",
        ] {
            assert!(with(hidden), "{hidden}");
        }
        // Each Cookie line counts, not only the first.
        let mut lines = HeaderMap::new();
        lines.append(COOKIE, "theme=dark".parse().unwrap());
        lines.append(COOKIE, "session=attacker".parse().unwrap());
        assert!(names.matches(&lines));
        assert!(!BypassCookies::default().matches(&with_cookie()));
        for bad in ["*", "a b", "x=1", "a*b*"] {
            assert!(BypassCookies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unqualified_cookie_is_removed_everywhere() {
        let mut client = with_cookie();
        let stored = split_for_storage(&mut client, &[]);
        assert!(!stored.contains_key(SET_COOKIE));
        assert!(!stored.contains_key(SET_COOKIE2));
        assert!(!client.contains_key(SET_COOKIE));
        assert!(!client.contains_key(SET_COOKIE2));
        assert!(stored.contains_key("x-user"));
    }

    #[test]
    fn qualified_cookie_stays_with_its_client_only() {
        let mut client = with_cookie();
        let stored = split_for_storage(&mut client, &["set-cookie".into(), "x-user".into()]);
        assert!(!stored.contains_key(SET_COOKIE));
        assert!(!stored.contains_key("x-user"));
        assert_eq!(client.get_all(SET_COOKIE).iter().count(), 2);
        assert!(client.contains_key("x-user"));
    }
}
