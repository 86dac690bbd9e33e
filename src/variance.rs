//! Secondary keys from `Vary` (RFC 9111 §4.1).
//!
//! The local Cache API ignores `Vary`, so the variant is built into the storage
//! key here. Like pingora-cache's `VarianceBuilder`, values are kept in a map
//! sorted by field name and hashed as `name NUL value NUL`, so the order of the
//! `Vary` list does not matter and `a|bc` can never equal `ab|c`.

use http::header::{HeaderMap, VARY};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The lower-cased field names listed by every `Vary` line of `headers`.
pub fn vary_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(VARY)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
}

/// The request's values for the fields a stored response varies on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Variance {
    /// Field name to normalised value; `None` when the request lacks the field,
    /// which is different from an empty value (§4.1).
    values: BTreeMap<String, Option<Vec<u8>>>,
}

impl Variance {
    /// Selects the request's values for `names`; with `user_agent`,
    /// `User-Agent` is keyed on that value (the device class) instead of the
    /// request's.
    ///
    /// Values are keyed exactly as the origin receives them: lines combined
    /// with `, `, as the runtime combines them before the worker sees the
    /// request. §4.1 allows more (white space around commas) only where the
    /// field's syntax says it means nothing, which is not so for
    /// `User-Agent` (`KHTML, like Gecko`) or a custom header: an origin that
    /// tells `a,b` from `a, b` would otherwise store one client's page under
    /// another's key.
    pub fn from_request<'a>(
        names: impl IntoIterator<Item = &'a str>,
        request: &HeaderMap,
        user_agent: Option<&str>,
    ) -> Self {
        let mut values = BTreeMap::new();
        for name in names {
            if let (Some(class), "user-agent") = (user_agent, name) {
                values.insert(name.to_string(), Some(class.as_bytes().to_vec()));
                continue;
            }
            let mut lines = request.get_all(name).iter().peekable();
            let value = lines.peek().is_some().then(|| {
                let mut joined = Vec::new();
                for line in lines {
                    if !joined.is_empty() {
                        joined.extend_from_slice(b", ");
                    }
                    joined.extend_from_slice(line.as_bytes());
                }
                joined
            });
            values.insert(name.to_string(), value);
        }
        Variance { values }
    }

    /// A digest of the variance, independent of insertion order.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for (name, value) in &self.values {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            match value {
                Some(v) => {
                    hasher.update([1]);
                    hasher.update(v);
                }
                None => hasher.update([2]),
            }
            hasher.update([0]);
        }
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::header_map as req;

    fn digest(names: &[&str], pairs: &[(&str, &str)]) -> [u8; 32] {
        Variance::from_request(names.iter().copied(), &req(pairs), None).digest()
    }

    #[test]
    fn names_from_all_lines() {
        let h = req(&[("vary", "Accept-Encoding, ACCEPT"), ("vary", " x-a ,,")]);
        assert_eq!(
            vary_names(&h).collect::<Vec<_>>(),
            ["accept-encoding", "accept", "x-a"]
        );
    }

    #[test]
    fn name_order_does_not_matter_values_are_exact() {
        let a = digest(
            &["accept", "x-a"],
            &[("accept", "text/html, application/json"), ("x-a", "1")],
        );
        let b = digest(
            &["x-a", "accept"],
            &[
                ("x-a", "1"),
                ("accept", "text/html"),
                ("accept", "application/json"),
            ],
        );
        assert_eq!(a, b);
        // What the origin could tell apart, the key tells apart.
        let ua = |v| digest(&["user-agent"], &[("user-agent", v)]);
        assert_ne!(ua("(KHTML, like Gecko)"), ua("(KHTML,like Gecko)"));
        assert_ne!(
            digest(&["x-t"], &[("x-t", "a,b")]),
            digest(&["x-t"], &[("x-t", "a, b")])
        );
    }

    #[test]
    fn user_agent_can_be_keyed_on_a_substitute() {
        let names = ["user-agent"];
        let a = Variance::from_request(names, &req(&[("user-agent", "iPhone 15")]), Some("mobile"));
        let b = Variance::from_request(names, &req(&[("user-agent", "iPhone 12")]), Some("mobile"));
        assert_eq!(a.digest(), b.digest());
        assert_ne!(
            a.digest(),
            Variance::from_request(names, &req(&[("user-agent", "iPhone 15")]), None).digest()
        );
    }

    #[test]
    fn distinct_requests_distinct_variants() {
        let base = digest(&["x-a", "x-b"], &[("x-a", "a"), ("x-b", "bc")]);
        assert_ne!(
            base,
            digest(&["x-a", "x-b"], &[("x-a", "ab"), ("x-b", "c")])
        );
        assert_ne!(base, digest(&["x-a", "x-b"], &[("x-a", "a")]));
        // Absent and empty are different (§4.1).
        assert_ne!(digest(&["x-a"], &[]), digest(&["x-a"], &[("x-a", "")]));
        // Fields not named by Vary do not matter.
        assert_eq!(
            digest(&["x-a"], &[("x-a", "1")]),
            digest(&["x-a"], &[("x-a", "1"), ("x-z", "2")])
        );
    }
}
