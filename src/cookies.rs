//! Cookie hygiene for a shared cache: a stored entry never carries a cookie,
//! request cookies are never part of the key, and a request carrying a session
//! cookie (`BYPASS_COOKIES`) does not touch the cache at all.

use http::header::{HeaderMap, COOKIE, SET_COOKIE};

/// Cookie names that mark a request as personal (`BYPASS_COOKIES`):
/// exact names, and prefixes written `name*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BypassCookies {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl BypassCookies {
    /// Parses `session,wordpress_logged_in_*`. Cookie names are case-sensitive.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut names = BypassCookies::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let invalid = |c: char| c.is_ascii_control() || " \t\",;=\\".contains(c);
            match item.strip_suffix('*') {
                Some(prefix)
                    if !prefix.is_empty() && !prefix.contains(invalid) && !prefix.contains('*') =>
                {
                    names.prefixes.push(prefix.to_string())
                }
                None if !item.contains(invalid) && !item.contains('*') => {
                    names.exact.push(item.to_string())
                }
                _ => return Err(format!("{item:?} is not a cookie name or `prefix*`")),
            }
        }
        Ok(names)
    }

    /// True when the request carries one of the cookies. Malformed pairs are
    /// skipped; a cookie without `=` counts by its whole text as the name.
    pub fn matches(&self, request: &HeaderMap) -> bool {
        if self.exact.is_empty() && self.prefixes.is_empty() {
            return false;
        }
        request
            .get_all(COOKIE)
            .iter()
            .flat_map(|line| line.as_bytes().split(|b| *b == b';'))
            .map(|pair| {
                let name = pair.split(|b| *b == b'=').next().unwrap_or(pair);
                String::from_utf8_lossy(name.trim_ascii()).into_owned()
            })
            .any(|name| {
                self.exact.contains(&name)
                    || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
            })
    }
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
    for name in strip_fields {
        stored.remove(name.as_str());
    }
    if !strip_fields.iter().any(|f| f == "set-cookie") {
        client.remove(SET_COOKIE);
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, "a=1".parse().unwrap());
        h.append(SET_COOKIE, "b=2".parse().unwrap());
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
        assert!(!with("Session=1"));
        assert!(with(";;=; session"));
        assert!(!with("=====;;;; ;"));
        assert!(!names.matches(&HeaderMap::new()));
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
        assert!(!client.contains_key(SET_COOKIE));
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
