//! Conditional requests: answering the client's (RFC 9110 §13) from a stored
//! response, and revalidating a stored response with the origin (RFC 9111 §4.3).

use http::header::{
    self, HeaderMap, HeaderName, HeaderValue, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
};

/// Fields a 304 carries over from the 200 it stands for (RFC 9110 §15.4.5).
const NOT_MODIFIED_FIELDS: [HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    ETAG,
    header::EXPIRES,
    header::VARY,
    LAST_MODIFIED,
];

/// What the client's preconditions make of a stored 200 it is about to be
/// served (RFC 9110 §13.2.2), evaluated in the RFC's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// None failed: the response (or the range asked for) goes out.
    Proceed,
    /// `If-None-Match` / `If-Modified-Since` hold: a 304 answers.
    NotModified,
    /// `If-Match` / `If-Unmodified-Since` rule this representation out: a
    /// 412. RFC 9111 §4.3.2 leaves them to origins, but a cache that serves
    /// the representation they rule out hands a client resuming a download
    /// bytes of another one to splice in; the origin, asked, answers 412.
    Failed,
}

/// Evaluates the client's preconditions against `stored`, a current
/// representation (the caller only asks for a 200). So `*` is satisfied by
/// it with or without an `ETag`: "If the field value is "*", the condition
/// is false if the origin server has a current representation for the
/// target resource" (§13.1.2), and `If-Match: *` holds (§13.1.1).
pub fn evaluate(request: &HeaderMap, stored: &HeaderMap) -> Evaluation {
    // Most requests carry none: they cost no date parsing on every hit.
    let asked = [
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
    ];
    if !asked.iter().any(|name| request.contains_key(name)) {
        return Evaluation::Proceed;
    }
    let etag = stored.get(ETAG).and_then(|v| v.to_str().ok());
    let modified = crate::policy::http_date(stored, &LAST_MODIFIED);
    let listed = |name: &HeaderName, matches: &dyn Fn(&str, &str) -> bool| {
        request
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(entity_tags)
            .any(|tag| tag == "*" || etag.is_some_and(|etag| matches(tag, etag)))
    };
    // Steps 1 and 2: If-Unmodified-Since only without If-Match, and only
    // for a representation with a modification date (§13.1.4).
    // A tag with bytes past ASCII (obs-text, §8.8.3) cannot be compared as
    // text here; then If-Match is left to the origin's judgement, as
    // before the cache evaluated it, rather than failed.
    let unreadable = |name| request.get_all(name).iter().any(|v| v.to_str().is_err());
    let stored_unreadable = stored.get(ETAG).is_some_and(|v| v.to_str().is_err());
    if request.contains_key(IF_MATCH) {
        if !(unreadable(&IF_MATCH) || stored_unreadable || listed(&IF_MATCH, &strong_eq)) {
            return Evaluation::Failed;
        }
    } else if let (Some(since), Some(modified)) = (
        crate::policy::http_date(request, &IF_UNMODIFIED_SINCE),
        modified,
    ) {
        if modified > since {
            return Evaluation::Failed;
        }
    }
    // Steps 3 and 4: If-Modified-Since only without If-None-Match (§13.1.3).
    let not_modified = if request.contains_key(IF_NONE_MATCH) {
        listed(&IF_NONE_MATCH, &weak_eq)
    } else {
        match (
            crate::policy::http_date(request, &IF_MODIFIED_SINCE),
            modified,
        ) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        }
    };
    match not_modified {
        true => Evaluation::NotModified,
        false => Evaluation::Proceed,
    }
}

/// The members of an `If-None-Match` / `If-Match` list (RFC 9110 §13.1.1,
/// §13.1.2): `*`, or entity-tags. An entity-tag's quoted part may hold
/// commas (`etagc`, §8.8.3), so the list is read tag by tag, not split on
/// commas: `"x,*,y"` is one tag, not a `*`. An unquoted member (some
/// origins send `ETag: abc123`, and clients echo it) runs to the next comma;
/// an unterminated quote ends the list.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if let Some(after) = rest.strip_prefix('*') {
            rest = after;
            return Some("*");
        }
        let quoted = rest.strip_prefix("W/").unwrap_or(rest);
        let length = match quoted.strip_prefix('"') {
            Some(inside) => rest.len() - quoted.len() + inside.find('"')? + 2,
            None => rest.find(',').unwrap_or(rest.len()),
        };
        let (tag, after) = rest.split_at(length);
        rest = after;
        Some(tag.trim_end()).filter(|tag| !tag.is_empty())
    })
}

/// Strong comparison (RFC 9110 §8.8.3.2): neither weak, and the same tag.
fn strong_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.starts_with("W/") && a == b
}

/// Weak comparison (RFC 9110 §8.8.3.2): equal opaque tags, `W/` ignored.
fn weak_eq(a: &str, b: &str) -> bool {
    fn opaque(tag: &str) -> &str {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag)
    }
    opaque(a) == opaque(b)
}

/// The headers of a 304 standing for `stored`.
pub fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in NOT_MODIFIED_FIELDS {
        for value in stored.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Removes the client's preconditions before a cache fill, so the origin
/// sends a full response that can be stored; the cache then answers the
/// preconditions itself.
pub fn strip_preconditions(headers: &mut HeaderMap) {
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ] {
        headers.remove(name);
    }
}

/// Validators for revalidating `stored` (RFC 9111 §4.3.1); `None` when the
/// stored response has none and must be fetched in full.
pub fn validators(stored: &HeaderMap) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    if let Some(etag) = stored.get(ETAG) {
        out.push((IF_NONE_MATCH, etag.clone()));
    }
    if let Some(modified) = stored.get(LAST_MODIFIED) {
        out.push((IF_MODIFIED_SINCE, modified.clone()));
    }
    (!out.is_empty()).then_some(out)
}

/// Whether a 304 selects `stored` for update (RFC 9111 §4.3.4): a strong
/// `ETag` in the 304 must be the stored one; a weak one must match it weakly;
/// without an `ETag`, a `Last-Modified` in both must be equal. A 304 with no
/// validators selects the one stored response it answers.
pub fn selects(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let etag = |h: &HeaderMap| h.get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(new) = etag(not_modified) {
        return match etag(stored) {
            Some(old) if new.trim().starts_with("W/") => weak_eq(&new, &old),
            Some(old) => new.trim() == old.trim(),
            None => false,
        };
    }
    match (
        crate::policy::http_date(not_modified, &LAST_MODIFIED),
        crate::policy::http_date(stored, &LAST_MODIFIED),
    ) {
        (Some(new), Some(old)) => new == old,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Freshens a stored response's headers with a 304's (RFC 9111 §4.3.4):
/// every field in the 304 replaces the stored one, except the ones that
/// describe the body the 304 does not carry. The stored `Age` goes: it was
/// the age when first stored, and the response has just been validated, so
/// its age is now the 304's (absent: zero).
pub fn freshen(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    stored.remove(header::AGE);
    let keep = [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_TYPE,
    ];
    for name in not_modified.keys() {
        if keep.contains(name) {
            continue;
        }
        stored.remove(name);
        for value in not_modified.get_all(name) {
            stored.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map as h;

    #[test]
    fn evaluation_table() {
        use Evaluation::{Failed, NotModified, Proceed};
        let stored = h(&[
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        const LATER: &str = "Wed, 01 Jan 2031 00:00:00 GMT";
        const SAME: &str = "Tue, 01 Jan 2030 00:00:00 GMT";
        const EARLIER: &str = "Mon, 01 Jan 2029 00:00:00 GMT";
        let cases: &[(&[(&str, &str)], Evaluation)] = &[
            (&[("if-none-match", "\"v1\"")], NotModified),
            (&[("if-none-match", "W/\"v1\"")], NotModified),
            (&[("if-none-match", "\"v0\", \"v1\"")], NotModified),
            (&[("if-none-match", "*")], NotModified),
            (&[("if-none-match", "\"v2\"")], Proceed),
            (
                &[("if-none-match", "\"v2\""), ("if-modified-since", LATER)],
                Proceed,
            ),
            (&[("if-modified-since", LATER)], NotModified),
            (&[("if-modified-since", SAME)], NotModified),
            (&[("if-modified-since", EARLIER)], Proceed),
            (&[("if-modified-since", "yesterday")], Proceed),
            (&[], Proceed),
            // Steps 1 and 2 come first, and compare strongly (§13.1.1).
            (&[("if-match", "\"v1\"")], Proceed),
            (&[("if-match", "\"v0\", \"v1\"")], Proceed),
            (&[("if-match", "*")], Proceed),
            (&[("if-match", "\"v0\""), ("range", "bytes=0-9")], Failed),
            (&[("if-match", "W/\"v1\"")], Failed),
            (&[("if-match", "\"v0\""), ("if-none-match", "*")], Failed),
            (&[("if-unmodified-since", EARLIER)], Failed),
            (&[("if-unmodified-since", SAME)], Proceed),
            (&[("if-unmodified-since", "yesterday")], Proceed),
            // If-Unmodified-Since is not looked at beside If-Match.
            (
                &[("if-match", "\"v1\""), ("if-unmodified-since", EARLIER)],
                Proceed,
            ),
            (
                &[("if-unmodified-since", LATER), ("if-none-match", "*")],
                NotModified,
            ),
        ];
        for (req, want) in cases {
            assert_eq!(evaluate(&h(req), &stored), *want, "{req:?}");
        }
        // A comma inside a tag is part of it (RFC 9110 §8.8.3); an unquoted
        // tag runs to the next comma.
        let commas = h(&[("etag", "\"a,b\"")]);
        let unquoted = h(&[("etag", "abc123")]);
        for (inm, stored, want) in [
            ("\"a,b\"", &commas, NotModified),
            ("\"x\", W/\"a,b\"", &commas, NotModified),
            ("\"x,*,y\"", &commas, Proceed),
            ("\"a\", \"b\"", &commas, Proceed),
            ("\"x\" , *", &commas, NotModified),
            ("bare, *", &commas, NotModified),
            ("\"unclosed, *", &commas, Proceed),
            ("abc123", &unquoted, NotModified),
            ("\"x\", abc123 ", &unquoted, NotModified),
            ("abc", &unquoted, Proceed),
        ] {
            let request = h(&[("if-none-match", inm)]);
            assert_eq!(evaluate(&request, stored), want, "{inm}");
        }
        // A representation without an ETag or a date: `*` holds, no tag
        // does, and `If-Modified-Since` is not looked at (§13.1.3).
        let untagged = h(&[("last-modified", SAME)]);
        assert_eq!(
            evaluate(&h(&[("if-none-match", "*")]), &untagged),
            NotModified
        );
        let ims_too = [("if-none-match", "\"v1\""), ("if-modified-since", LATER)];
        assert_eq!(evaluate(&h(&ims_too), &untagged), Proceed);
        let bare = HeaderMap::new();
        assert_eq!(evaluate(&h(&[("if-match", "\"v1\"")]), &bare), Failed);
        assert_eq!(evaluate(&h(&[("if-match", "*")]), &bare), Proceed);
        let obs = |tag: &[u8]| HeaderValue::from_bytes(tag).unwrap();
        let mut odd = h(&[("if-match", "\"v1\"")]);
        odd.append(IF_MATCH, obs(b"\"x\xff\""));
        assert_eq!(evaluate(&odd, &stored), Proceed);
        let mut latin = HeaderMap::new();
        latin.insert(ETAG, obs(b"\"caf\xe9\""));
        let mut echoed = HeaderMap::new();
        echoed.insert(IF_MATCH, obs(b"\"caf\xe9\""));
        assert_eq!(evaluate(&echoed, &latin), Proceed);
        let undated = [("if-unmodified-since", EARLIER)];
        assert_eq!(evaluate(&h(&undated), &bare), Proceed);
    }

    #[test]
    fn freshen_keeps_body_fields() {
        let mut stored = h(&[
            ("etag", "\"a\""),
            ("content-length", "10"),
            ("cache-control", "max-age=1"),
            ("age", "60"),
            ("x-old", "1"),
        ]);
        freshen(
            &mut stored,
            &h(&[
                ("cache-control", "max-age=60"),
                ("content-length", "0"),
                ("x-new", "2"),
            ]),
        );
        assert_eq!(stored["cache-control"], "max-age=60");
        assert_eq!(stored["content-length"], "10");
        assert_eq!(stored["x-old"], "1");
        assert_eq!(stored["x-new"], "2");
        assert!(!stored.contains_key("age"));
    }

    #[test]
    fn a_304_selects_only_its_own_representation() {
        let stored = h(&[
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("etag", "\"v1\"")], true),
            (&[("etag", "\"v2\"")], false),
            (&[("etag", "W/\"v1\"")], true),
            (&[("etag", "W/\"v2\"")], false),
            (&[("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT")], true),
            (&[("last-modified", "Wed, 02 Jan 2030 00:00:00 GMT")], false),
        ];
        for (not_modified, want) in cases {
            assert_eq!(
                selects(&stored, &h(not_modified)),
                *want,
                "{not_modified:?}"
            );
        }
        assert!(!selects(&HeaderMap::new(), &h(&[("etag", "\"v1\"")])));
    }

    #[test]
    fn validators_from_stored() {
        assert!(validators(&HeaderMap::new()).is_none());
        let v = validators(&h(&[("etag", "\"a\"")])).unwrap();
        assert_eq!(v, vec![(IF_NONE_MATCH, HeaderValue::from_static("\"a\""))]);
    }
}
