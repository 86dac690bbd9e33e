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

/// True when the client's `If-None-Match` / `If-Modified-Since` is satisfied
/// by `stored`, so a 304 answers it (RFC 9110 §13.1.2, §13.1.3, §13.2.2).
/// `stored` is a current representation (the caller only asks for a 200), so
/// `If-None-Match: *` is satisfied by it with or without an `ETag`: "If the
/// field value is "*", the condition is false if the origin server has a
/// current representation for the target resource" (§13.1.2).
pub fn is_not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if request.contains_key(IF_NONE_MATCH) {
        let etag = stored.get(ETAG).and_then(|v| v.to_str().ok());
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(entity_tags)
            .any(|candidate| {
                candidate == "*" || etag.is_some_and(|etag| weak_eq(candidate, etag))
            });
    }
    // If-Modified-Since is ignored when If-None-Match is present (§13.1.3).
    match (
        crate::policy::http_date(request, &IF_MODIFIED_SINCE),
        crate::policy::http_date(stored, &LAST_MODIFIED),
    ) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// The members of an `If-None-Match` list (RFC 9110 §13.1.2): `*`, or
/// entity-tags. An entity-tag's quoted part may hold commas (`etagc`,
/// §8.8.3), so the list is read tag by tag, not split on commas: `"x,*,y"`
/// is one tag, not a `*`. Reading stops at the first member that is
/// neither, so a malformed list matches only by the members before it.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if let Some(after) = rest.strip_prefix('*') {
            rest = after;
            return Some("*");
        }
        let quoted = rest.strip_prefix("W/").unwrap_or(rest);
        let end = quoted.strip_prefix('"')?.find('"')? + 2;
        let length = rest.len() - quoted.len() + end;
        let (tag, after) = rest.split_at(length);
        rest = after;
        Some(tag)
    })
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
    fn not_modified_table() {
        let stored = h(&[
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("if-none-match", "\"v1\"")], true),
            (&[("if-none-match", "W/\"v1\"")], true),
            (&[("if-none-match", "\"v0\", \"v1\"")], true),
            (&[("if-none-match", "*")], true),
            (&[("if-none-match", "\"v2\"")], false),
            (
                &[
                    ("if-none-match", "\"v2\""),
                    ("if-modified-since", "Wed, 01 Jan 2031 00:00:00 GMT"),
                ],
                false,
            ),
            (
                &[("if-modified-since", "Wed, 01 Jan 2031 00:00:00 GMT")],
                true,
            ),
            (
                &[("if-modified-since", "Tue, 01 Jan 2030 00:00:00 GMT")],
                true,
            ),
            (
                &[("if-modified-since", "Mon, 01 Jan 2029 00:00:00 GMT")],
                false,
            ),
            (&[("if-modified-since", "yesterday")], false),
            (&[], false),
        ];
        for (req, want) in cases {
            assert_eq!(is_not_modified(&h(req), &stored), *want, "{req:?}");
        }
        // A comma inside a tag is part of it (RFC 9110 §8.8.3).
        let commas = h(&[("etag", "\"a,b\"")]);
        for (inm, want) in [
            ("\"a,b\"", true),
            ("\"x\", W/\"a,b\"", true),
            ("\"x,*,y\"", false),
            ("\"a\", \"b\"", false),
            ("\"x\" , *", true),
            ("bare, *", false),
            ("\"unclosed, *", false),
        ] {
            let request = h(&[("if-none-match", inm)]);
            assert_eq!(is_not_modified(&request, &commas), want, "{inm}");
        }
        // A representation without an ETag still satisfies `*`, and no
        // other tag: `If-Modified-Since` is not looked at (§13.1.3).
        let untagged = h(&[("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT")]);
        assert!(is_not_modified(&h(&[("if-none-match", "*")]), &untagged));
        let ims_too = [
            ("if-none-match", "\"v1\""),
            ("if-modified-since", "Wed, 01 Jan 2031 00:00:00 GMT"),
        ];
        assert!(!is_not_modified(&h(&ims_too), &untagged));
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
