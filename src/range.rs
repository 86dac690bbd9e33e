//! Serving a single byte range from a stored full response (RFC 9110 §14).
//!
//! Only one range is served; a multi-range request gets the full 200, which
//! §14.2 allows ("a server MAY ignore the Range header field").

use http::header::{HeaderMap, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};

/// What to send for a request against a stored 200 of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeResponse {
    /// No usable `Range` (absent, not bytes, several ranges, or `If-Range` failed).
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 (§15.5.17).
    Unsatisfiable,
}

/// Decides how to answer the request's `Range` for a body of `len` bytes.
pub fn evaluate(request: &HeaderMap, stored: &HeaderMap, len: u64) -> RangeResponse {
    let Some(spec) = request.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeResponse::Full;
    };
    if !if_range_holds(request, stored) {
        return RangeResponse::Full;
    }
    // The unit is case-insensitive (§14.1).
    let spec = spec.trim();
    let Some(set) = spec
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| &spec[6..])
    else {
        return RangeResponse::Full;
    };
    let ranges: Vec<&str> = set.split(',').map(str::trim).collect();
    let [range] = ranges.as_slice() else {
        return RangeResponse::Full;
    };
    let Some((first, last)) = range.split_once('-') else {
        return RangeResponse::Full;
    };
    let parse = |s: &str| -> Option<Option<u64>> {
        match s.trim() {
            "" => Some(None),
            // Past u64 is past any body: clamped like any last-pos beyond
            // the end (§14.1.2).
            n if n.bytes().all(|b| b.is_ascii_digit()) => Some(Some(n.parse().unwrap_or(u64::MAX))),
            _ => None,
        }
    };
    let (Some(first), Some(last)) = (parse(first), parse(last)) else {
        return RangeResponse::Full;
    };
    match (first, last) {
        // bytes=-N: the last N bytes.
        (None, Some(0)) => RangeResponse::Unsatisfiable,
        (None, Some(_)) if len == 0 => RangeResponse::Unsatisfiable,
        (None, Some(n)) => RangeResponse::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        },
        (Some(start), _) if start >= len => RangeResponse::Unsatisfiable,
        (Some(start), None) => RangeResponse::Partial {
            start,
            end: len - 1,
        },
        (Some(start), Some(end)) if end < start => RangeResponse::Full,
        (Some(start), Some(end)) => RangeResponse::Partial {
            start,
            end: end.min(len - 1),
        },
        (None, None) => RangeResponse::Full,
    }
}

/// `If-Range` (§13.1.5): an entity tag must match strongly, a date exactly.
fn if_range_holds(request: &HeaderMap, stored: &HeaderMap) -> bool {
    let Some(condition) = request.get(IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let condition = condition.trim();
    if condition.starts_with('"') || condition.starts_with("W/") {
        let etag = stored.get(ETAG).and_then(|v| v.to_str().ok());
        return !condition.starts_with("W/") && etag.is_some_and(|e| e.trim() == condition);
    }
    stored
        .get(LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|modified| modified.trim() == condition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map as h;
    use RangeResponse::*;

    type Headers<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn range_table() {
        let stored = h(&[
            ("etag", "\"a\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        let cases: &[(Headers, u64, RangeResponse)] = &[
            (&[], 10, Full),
            (&[("range", "bytes=0-4")], 10, Partial { start: 0, end: 4 }),
            (&[("range", "bytes=5-")], 10, Partial { start: 5, end: 9 }),
            (&[("range", "bytes=-3")], 10, Partial { start: 7, end: 9 }),
            (&[("range", "bytes=-30")], 10, Partial { start: 0, end: 9 }),
            (&[("range", "bytes=2-99")], 10, Partial { start: 2, end: 9 }),
            (&[("range", "bytes=10-")], 10, Unsatisfiable),
            (&[("range", "bytes=-0")], 10, Unsatisfiable),
            (&[("range", "bytes=-1")], 0, Unsatisfiable),
            (&[("range", "bytes=5-2")], 10, Full),
            (&[("range", "bytes=0-1,3-4")], 10, Full),
            (&[("range", "items=0-1")], 10, Full),
            (&[("range", "bytes=a-b")], 10, Full),
            // A last-pos past the end, even past u64, is clamped (§14.1.2).
            (
                &[("range", "bytes=0-99999999999999999999999")],
                10,
                Partial { start: 0, end: 9 },
            ),
            (
                &[("range", "bytes=99999999999999999999999-")],
                10,
                Unsatisfiable,
            ),
            (&[("range", "BYTES=2-3")], 10, Partial { start: 2, end: 3 }),
            (&[("range", "Bytes=-2")], 10, Partial { start: 8, end: 9 }),
            (&[("range", "bits=2-3")], 10, Full),
            (
                &[("range", "bytes=0-1"), ("if-range", "\"a\"")],
                10,
                Partial { start: 0, end: 1 },
            ),
            (&[("range", "bytes=0-1"), ("if-range", "\"b\"")], 10, Full),
            (&[("range", "bytes=0-1"), ("if-range", "W/\"a\"")], 10, Full),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "Tue, 01 Jan 2030 00:00:00 GMT"),
                ],
                10,
                Partial { start: 0, end: 1 },
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "Tue, 01 Jan 2030 00:00:01 GMT"),
                ],
                10,
                Full,
            ),
        ];
        for (req, len, want) in cases {
            assert_eq!(evaluate(&h(req), &stored, *len), *want, "{req:?}");
        }
    }
}
