//! Tags, read from `Cache-Tag` (comma-separated, Cloudflare's convention)
//! and `Surrogate-Key` (space-separated, Fastly's).
//!
//! Limits, in the spirit of Cloudflare's: a tag is visible ASCII without
//! commas or spaces, at most [`MAX_TAG_BYTES`] bytes, compared
//! case-insensitively; each field carries at most [`MAX_TOTAL_BYTES`] of
//! them (each its own budget, so a long `Cache-Tag` cannot make the
//! `Surrogate-Key` tags unpurgeable). `Surrogate-Key` splits on any white
//! space, tabs included. What is past a limit is dropped (and logged by the caller), never
//! a failed request. The fields stay in the stored record as written, so a
//! 304 that restates one keeps the other's tags (RFC 9111 §4.3.4); they are
//! never sent to clients unless `EXPOSE_TAGS` is set.

use http::header::{HeaderMap, HeaderValue};

pub const CACHE_TAG: &str = "cache-tag";
pub const SURROGATE_KEY: &str = "surrogate-key";
pub const MAX_TAG_BYTES: usize = 1024;
pub const MAX_TOTAL_BYTES: usize = 16 * 1024;

/// The fields and their separators (`' '` stands for any ASCII white space).
const FIELDS: [(&str, char); 2] = [(CACHE_TAG, ','), (SURROGATE_KEY, ' ')];

/// `value` split at `separator`, trimmed, empty parts dropped.
fn split(value: &str, separator: char) -> impl Iterator<Item = &str> {
    value
        .split(move |c: char| c == separator || (separator == ' ' && c.is_ascii_whitespace()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether `tag` is one the limits accept.
pub fn is_valid(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_BYTES
        && tag.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// The tags of a stored response, lower-case.
pub fn read(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for (name, separator) in FIELDS {
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else { continue };
            out.extend(
                split(value, separator)
                    .filter(|t| is_valid(t))
                    .map(str::to_ascii_lowercase),
            );
        }
    }
    out
}

/// Rewrites both fields of a response about to be stored to the tags the
/// limits accept, lower-case and in order; returns how many were dropped.
pub fn sanitise(headers: &mut HeaderMap) -> usize {
    let mut dropped = 0;
    for (name, separator) in FIELDS {
        let (mut kept, mut total): (Vec<String>, usize) = (Vec::new(), 0);
        for value in headers.get_all(name) {
            let text = String::from_utf8_lossy(value.as_bytes());
            for tag in split(&text, separator) {
                if is_valid(tag) && total + tag.len() <= MAX_TOTAL_BYTES {
                    total += tag.len();
                    kept.push(tag.to_ascii_lowercase());
                } else {
                    dropped += 1;
                }
            }
        }
        headers.remove(name);
        if !kept.is_empty() {
            let joined = kept.join(&separator.to_string());
            headers.insert(name, HeaderValue::from_str(&joined).expect("visible ASCII"));
        }
    }
    dropped
}

/// Removes the tag fields from what a client receives.
pub fn strip(headers: &mut HeaderMap) {
    for (name, _) in FIELDS {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map;

    #[test]
    fn both_fields_are_read_case_insensitively() {
        let h = header_map(&[
            ("cache-tag", "Product-7, blog ,,"),
            ("cache-tag", "home"),
            ("surrogate-key", "a  B\tc"),
        ]);
        assert_eq!(read(&h), ["product-7", "blog", "home", "a", "b", "c"]);
    }

    #[test]
    fn limits_drop_what_exceeds_them() {
        let long = "x".repeat(MAX_TAG_BYTES + 1);
        let mut h = header_map(&[
            ("cache-tag", &format!("ok,{long},fine")),
            ("surrogate-key", "k1 k2"),
        ]);
        assert_eq!(sanitise(&mut h), 1);
        assert_eq!(h["cache-tag"], "ok,fine");
        assert_eq!(h["surrogate-key"], "k1 k2");
        // A response with 20 KiB of tags keeps the first 16 KiB.
        let many: Vec<String> = (0..40).map(|i| format!("{i:0>512}")).collect();
        let mut h = header_map(&[("cache-tag", &many.join(",")), ("surrogate-key", "sk-a")]);
        assert_eq!(sanitise(&mut h), 8);
        assert_eq!(read(&h).len(), 33, "Surrogate-Key has its own budget");
        let mut none = header_map(&[("cache-tag", ", ,")]);
        assert_eq!(sanitise(&mut none), 0);
        assert!(!none.contains_key("cache-tag"));
    }
}
