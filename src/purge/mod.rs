//! Purge: records that say "entries fetched at or before this millisecond,
//! matching these targets, are gone (hard) or stale (soft)".
//!
//! A purge is not a deletion. The Cache API is per location, so deleting
//! reaches one location only; a purge must reach all of them, so it is a
//! record in Workers KV, checked when an entry is used. Every stored entry
//! records `fetched_ms`, when the request that fetched (or revalidated) it
//! began, so a purge and a refill in the same second are told apart, and a
//! fill that began before a purge is covered even when it is stored after.
//!
//! Records are written once and never rewritten, one KV key each
//! (`purge/<inverted ms>/<id>/<part>`): KV's one write per key per second,
//! and last-writer-wins between locations, cannot lose a purge. The
//! metadata (at most 1,024 bytes) holds everything a check needs: the
//! time, the mode and up to [`DIGESTS_PER_RECORD`] target digests, so one
//! `list` reads the whole state, newest first. The value of part 0 is the
//! readable purge, for `GET /_admin/purges`.
//!
//! Targets are 64-bit digests (SHA-256, truncated) of what they name:
//! a tag, a URL (host, lenient path, normalised query), or a path prefix
//! (with or without its host). An entry's own digests are computed only
//! when a record newer than the entry exists, which on most hits is none.
//! A collision costs one refetch, never a wrong answer.

mod memo;
mod pacing;
pub mod tags;

pub use memo::{Memo, Refresh};
pub use pacing::{Plan, Written};

use crate::normalize::lenient_path;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where purge records live in KV.
pub const KEY_PREFIX: &str = "purge/";

/// Target digests per record: 48 keep the metadata JSON under KV's 1,024 bytes.
pub const DIGESTS_PER_RECORD: usize = 48;

/// Prefix purges reach this many path segments deep; the admin API refuses deeper ones.
pub const MAX_PREFIX_SEGMENTS: usize = 32;

/// What a purge does to the entries it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The next request is a miss.
    Hard,
    /// The next request is served stale at once and revalidates in the
    /// background, as stale-while-revalidate does.
    Soft,
}

/// What a purge names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A tag (lower-case) from `Cache-Tag` or `Surrogate-Key`.
    Tag(String),
    /// Every variant of one URL, any scheme: host, lenient path, normalised query.
    Url {
        host: String,
        path: String,
        query: String,
    },
    /// Every URL whose lenient path is `path` or below it, on `host` or any host.
    Prefix { host: Option<String>, path: String },
}

impl Target {
    pub fn digest(&self) -> u64 {
        match self {
            Target::Tag(tag) => digest(&["t", tag]),
            Target::Url { host, path, query } => digest(&["u", host, path, query]),
            Target::Prefix { host, path } => digest(&["p", host.as_deref().unwrap_or(""), path]),
        }
    }
}

fn digest(parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let out = hasher.finalize();
    u64::from_be_bytes(out[..8].try_into().expect("SHA-256 is 32 bytes"))
}

/// One purge record, as its KV key's metadata holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeRecord {
    /// Its KV key.
    pub key: String,
    /// Unix milliseconds: entries fetched at or before this are covered.
    pub at_ms: u64,
    pub mode: Mode,
    pub everything: bool,
    pub digests: Vec<u64>,
}

/// The metadata JSON of a record.
#[derive(Serialize, Deserialize)]
struct Metadata {
    v: u32,
    at: u64,
    soft: bool,
    #[serde(default)]
    all: bool,
    #[serde(default)]
    d: Vec<String>,
}

impl PurgeRecord {
    /// The records one purge writes: its digests split by
    /// [`DIGESTS_PER_RECORD`], under keys sorting newest first. `id` names
    /// the purge; the same purge at the same millisecond gets the same keys.
    pub fn split(id: &str, at_ms: u64, mode: Mode, everything: bool, digests: &[u64]) -> Vec<Self> {
        let chunks: Vec<&[u64]> = match digests.is_empty() {
            true => vec![&[]],
            false => digests.chunks(DIGESTS_PER_RECORD).collect(),
        };
        chunks
            .into_iter()
            .enumerate()
            .map(|(part, chunk)| PurgeRecord {
                key: format!("{KEY_PREFIX}{:016x}/{id}/{part}", u64::MAX - at_ms),
                at_ms,
                mode,
                everything,
                digests: chunk.to_vec(),
            })
            .collect()
    }

    pub fn metadata(&self) -> String {
        serde_json::to_string(&Metadata {
            v: 1,
            at: self.at_ms,
            soft: self.mode == Mode::Soft,
            all: self.everything,
            d: self.digests.iter().map(|d| format!("{d:016x}")).collect(),
        })
        .expect("plain data")
    }

    /// A record from a KV key and its metadata; `None` for anything else.
    pub fn parse(key: &str, metadata: &str) -> Option<Self> {
        let m: Metadata = serde_json::from_str(metadata).ok()?;
        if m.v != 1 {
            return None;
        }
        let digests =
            m.d.iter()
                .map(|d| u64::from_str_radix(d, 16).ok())
                .collect::<Option<Vec<_>>>()?;
        Some(PurgeRecord {
            key: key.to_string(),
            at_ms: m.at,
            mode: if m.soft { Mode::Soft } else { Mode::Hard },
            everything: m.all,
            digests,
        })
    }

    /// Whether the first part of a purge (the one holding its readable value).
    pub fn is_first_part(key: &str) -> bool {
        key.ends_with("/0")
    }
}

/// A stored entry as purge sees it.
pub struct Subject<'a> {
    pub fetched_ms: u64,
    /// The normalised authority.
    pub host: &'a str,
    /// The normalised path and query.
    pub path_and_query: &'a str,
    /// The stored response's headers, with its tag fields: read only when
    /// a record newer than the entry exists.
    pub headers: &'a http::HeaderMap,
}

impl Subject<'_> {
    /// Every digest a record could name this entry by.
    fn digests(&self) -> Vec<u64> {
        let tags = tags::read(self.headers);
        let (path, query) = self
            .path_and_query
            .split_once('?')
            .unwrap_or((self.path_and_query, ""));
        let lenient = lenient_path(path);
        let mut out: Vec<u64> = tags.iter().map(|t| digest(&["t", t])).collect();
        out.push(digest(&["u", self.host, &lenient, query]));
        let mut prefix = String::new();
        let segments = lenient.split('/').filter(|s| !s.is_empty());
        for segment in std::iter::once("")
            .chain(segments)
            .take(MAX_PREFIX_SEGMENTS + 1)
        {
            if !segment.is_empty() {
                prefix.push('/');
                prefix.push_str(segment);
            }
            let path = if prefix.is_empty() { "/" } else { &prefix };
            out.push(digest(&["p", self.host, path]));
            out.push(digest(&["p", "", path]));
        }
        out.sort_unstable();
        out
    }
}

/// Whether purges allow an entry to be used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// No purge covers it.
    Current,
    /// A soft purge covers it: serve stale, revalidate.
    Soft,
    /// A hard purge covers it: a miss.
    Hard,
    /// The purge state cannot vouch for it (records unreadable, or possibly
    /// expired): revalidate before use.
    Unknown,
}

/// What a purge named, as its first record's value holds it and the API
/// reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub id: String,
    /// Unix milliseconds.
    #[serde(default)]
    pub at: u64,
    #[serde(default)]
    pub soft: bool,
    #[serde(default)]
    pub everything: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl Summary {
    /// Adds what `more` names, without repeats.
    pub fn merge(&mut self, more: &Summary) {
        self.everything |= more.everything;
        for (into, from) in [
            (&mut self.tags, &more.tags),
            (&mut self.urls, &more.urls),
            (&mut self.prefixes, &more.prefixes),
        ] {
            for item in from {
                if !into.contains(item) {
                    into.push(item.clone());
                }
            }
        }
    }
}

/// An id for a purge: a digest of what it names and when, so that the same
/// purge sent twice in one millisecond (from anywhere) writes the same keys.
pub fn purge_id(at_ms: u64, mode: Mode, everything: bool, digests: &[u64]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(at_ms.to_be_bytes());
    hasher.update([mode as u8, everything as u8]);
    for d in digests {
        hasher.update(d.to_be_bytes());
    }
    hasher.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(path_and_query: &'a str, headers: &'a http::HeaderMap) -> Subject<'a> {
        Subject {
            fetched_ms: 1_000,
            host: "shop.test",
            path_and_query,
            headers,
        }
    }

    fn tagged(tags: &str) -> http::HeaderMap {
        crate::memory::header_map(&[("cache-tag", tags)])
    }

    fn names(subject: &Subject, target: &Target) -> bool {
        subject.digests().binary_search(&target.digest()).is_ok()
    }

    #[test]
    fn targets_name_entries() {
        let headers = tagged("post-7,blog");
        let s = subject("/blog/2024/post?p=2", &headers);
        let url = |path: &str, query: &str| Target::Url {
            host: "shop.test".into(),
            path: path.into(),
            query: query.into(),
        };
        let prefix = |host: Option<&str>, path: &str| Target::Prefix {
            host: host.map(str::to_string),
            path: path.into(),
        };
        assert!(names(&s, &Target::Tag("blog".into())));
        assert!(!names(&s, &Target::Tag("blo".into())));
        assert!(names(&s, &url("/blog/2024/post", "p=2")));
        assert!(!names(&s, &url("/blog/2024/post", "")));
        assert!(names(&s, &prefix(None, "/blog")));
        assert!(names(&s, &prefix(Some("shop.test"), "/blog/2024")));
        assert!(names(&s, &prefix(None, "/blog/2024/post")));
        assert!(names(&s, &prefix(None, "/")));
        assert!(!names(&s, &prefix(Some("other.test"), "/blog")));
        assert!(!names(&s, &prefix(None, "/blo")));
        assert!(!names(&s, &prefix(None, "/blog/2024/post/x")));
        // Paths compare in their lenient form, as the origin may read them.
        let none = http::HeaderMap::new();
        let odd = subject("/BLOG//2024/./post?p=2", &none);
        assert!(names(&odd, &url("/blog/2024/post", "p=2")));
        assert!(names(&odd, &prefix(None, "/blog")));
    }

    #[test]
    fn records_round_trip_within_kv_limits() {
        let digests: Vec<u64> = (0..100u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let id = purge_id(5, Mode::Soft, false, &digests);
        let records = PurgeRecord::split(&id, 5, Mode::Soft, false, &digests);
        assert_eq!(records.len(), 3);
        for record in &records {
            let metadata = record.metadata();
            assert!(metadata.len() <= 1024, "{} bytes", metadata.len());
            assert_eq!(
                PurgeRecord::parse(&record.key, &metadata).as_ref(),
                Some(record)
            );
        }
        assert!(PurgeRecord::is_first_part(&records[0].key));
        // Newer purges sort first.
        let newer = PurgeRecord::split("x", 6, Mode::Hard, true, &[]);
        assert_eq!(newer.len(), 1);
        assert!(newer[0].key < records[0].key);
        for garbage in [
            "",
            "{}",
            "{\"v\":2,\"at\":1,\"soft\":false}",
            "{\"v\":1,\"at\":1,\"soft\":false,\"d\":[\"zz\"]}",
        ] {
            assert_eq!(PurgeRecord::parse("k", garbage), None, "{garbage}");
        }
    }
}
