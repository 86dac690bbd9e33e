//! Cookie hygiene for a shared cache: a stored entry never carries a cookie.

use http::header::{HeaderMap, SET_COOKIE};

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
