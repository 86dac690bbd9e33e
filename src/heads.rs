//! Heads of stored copies as this isolate last parsed them: a Cache API
//! hit still reads its body from the Cache API, but not its fields.
//!
//! Reading a stored copy's fields out of the runtime and parsing them with
//! its record was about a sixth of a Cache API hit's time in the isolate (a
//! string of every field built in JS, split into a `HeaderMap`, the record's
//! JSON parsed). A copy whose record reads the same as one parsed before has
//! the same fields: [`meta::seal`] puts a digest of them in the record. So
//! the edge compares the record alone (one field, compared inside the
//! runtime) and reuses the parsed head, as nginx keeps its entries' headers
//! in a shared-memory zone and only their bodies on disk.
//!
//! Nothing here decides freshness or purges: every hit still goes through
//! the pipeline with the record it carries. The memo only saves parsing,
//! and a head whose record no longer matches is read and parsed again.
//! Records written before the digest existed are never kept.
//!
//! Bounded by [`HEADS_BYTES`], least recently used out first.

use crate::headers::fields_size;
use crate::lru::Lru;
use crate::meta::{self, Record};
use http::{HeaderMap, StatusCode};
use std::rc::Rc;
use std::sync::Arc;

/// Memory for parsed heads per isolate: about a thousand heads of 1 KB.
pub const HEADS_BYTES: usize = 1 << 20;
/// Bookkeeping per head beyond its fields and URL (map slots, the parsed
/// record's strings).
const HEAD_OVERHEAD: usize = 256;

/// A stored copy's head, parsed.
pub struct Head<T> {
    /// The record as the runtime holds it, to compare a later read with.
    pub token: T,
    pub status: StatusCode,
    /// The fields as read, record included.
    pub fields: Rc<HeaderMap>,
    pub record: Arc<Record>,
}

/// Parsed heads by storage URL.
pub struct Heads<T> {
    heads: Lru<Rc<Head<T>>>,
}

impl<T> Heads<T> {
    pub fn new(limit: usize) -> Self {
        Heads {
            heads: Lru::new(limit),
        }
    }

    /// The head last parsed for `url`: the caller compares its token with
    /// the copy it holds before using it.
    pub fn get(&mut self, url: &str) -> Option<Rc<Head<T>>> {
        self.heads.get(url).cloned()
    }

    /// Reads the record in `fields` (a copy's head, read whole) and keeps
    /// the head if the record is sealed with a digest; `token` makes the
    /// runtime's form of the record text. The parsed record, if it reads.
    pub fn keep(
        &mut self,
        url: &str,
        status: StatusCode,
        fields: Rc<HeaderMap>,
        token: impl FnOnce(&str) -> T,
    ) -> Option<Arc<Record>> {
        let text = fields.get(meta::META_HEADER)?.to_str().ok()?;
        let (record, digest) = meta::read(text.as_bytes())?;
        let record = Arc::new(record);
        if digest != 0 {
            let size = fields_size(&fields) + url.len() + HEAD_OVERHEAD;
            let head = Head {
                token: token(text),
                status,
                fields: fields.clone(),
                record: record.clone(),
            };
            self.heads.insert(url, Rc::new(head), size);
        }
        Some(record)
    }

    /// A write of `url` is under way: what was parsed for it is not kept.
    pub fn forget(&mut self, url: &str) {
        self.heads.remove(url);
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.heads.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::VaryMarker;

    fn sealed(generation: &str) -> HeaderMap {
        let marker = VaryMarker {
            names: vec!["accept".into()],
            generation: generation.into(),
            keep_until: 0,
        };
        let mut fields = HeaderMap::new();
        fields.insert("x-a", "1".parse().unwrap());
        meta::seal(&mut fields, Record::Vary(marker));
        fields
    }

    #[test]
    fn a_sealed_head_is_kept_with_its_record_text_as_token() {
        let mut heads = Heads::new(HEADS_BYTES);
        let fields = Rc::new(sealed("g"));
        let record = heads.keep("/u", StatusCode::OK, fields.clone(), str::to_string);
        assert!(matches!(record.as_deref(), Some(Record::Vary(m)) if m.generation == "g"));
        let head = heads.get("/u").unwrap();
        assert_eq!(head.token, fields[meta::META_HEADER].to_str().unwrap());
        assert_eq!(head.fields["x-a"], "1");
        heads.forget("/u");
        assert!(heads.get("/u").is_none());
        assert_eq!(heads.bytes(), 0);
    }

    #[test]
    fn a_record_without_a_digest_is_read_but_not_kept() {
        let mut heads = Heads::new(HEADS_BYTES);
        let mut fields = HeaderMap::new();
        let older = r#"{"v":3,"record":{"vary":{"names":["accept"],"generation":"g"}}}"#;
        fields.insert(meta::META_HEADER, older.parse().unwrap());
        let record = heads.keep("/u", StatusCode::OK, Rc::new(fields), str::to_string);
        assert!(record.is_some());
        assert!(heads.get("/u").is_none());
        // Nor is a head without a record that reads.
        let none = heads.keep("/v", StatusCode::OK, Rc::default(), str::to_string);
        assert!(none.is_none() && heads.get("/v").is_none());
    }

    #[test]
    fn copies_with_different_fields_have_different_records() {
        let mut other = HeaderMap::new();
        other.insert("x-a", "2".parse().unwrap());
        let marker = VaryMarker {
            names: vec!["accept".into()],
            generation: "g".into(),
            keep_until: 0,
        };
        meta::seal(&mut other, Record::Vary(marker));
        assert_ne!(other[meta::META_HEADER], sealed("g")[meta::META_HEADER]);
    }

    #[test]
    fn heads_stay_under_their_bound() {
        let mut heads = Heads::new(8 * 1024);
        for i in 0..100 {
            let fields = Rc::new(sealed(&i.to_string()));
            heads.keep(&format!("/{i}"), StatusCode::OK, fields, str::to_string);
        }
        assert!(heads.bytes() <= 8 * 1024);
        assert!(heads.get("/99").is_some() && heads.get("/0").is_none());
    }
}
