//! The isolate's copy of the purge records, and when to read them again.
//!
//! A hit makes no KV call: it is checked against this memo. While traffic
//! flows, one request refreshes the memo in the background once it is half
//! `PURGE_REFRESH` old; a request that finds it older than `PURGE_REFRESH`
//! (an isolate just started, or idle) reads KV first, and requests arriving
//! meanwhile wait for that read. So no request makes more than one KV call,
//! and a purge is seen by every isolate within KV's propagation plus
//! `PURGE_REFRESH`.
//!
//! When the memo cannot vouch for an entry it says [`Coverage::Unknown`]
//! and the entry is revalidated before use; the cache fails towards the
//! origin, never towards serving what may have been purged:
//! - the records have not been read successfully for [`TRUST_MS`];
//! - the entry was fetched before the records' retention window: a record
//!   covering it may have expired from KV;
//! - the listing was cut short and the entry is older than its oldest record.

use super::pacing::Pacer;
use super::{Coverage, Mode, PurgeRecord, Subject};
use crate::platform::KvList;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// How long records last read are trusted when KV cannot be read again.
pub const TRUST_MS: u64 = 60_000;

/// A read begun this long ago is taken for abandoned.
const ABANDONED_MS: u64 = 5_000;

/// How long records this isolate wrote are kept beside what KV lists, in
/// case the listing does not show them yet.
const LOCAL_MS: u64 = 300_000;

#[derive(Debug, Default)]
pub struct Memo {
    /// Newest first.
    records: Vec<PurgeRecord>,
    /// Written by this isolate.
    local: Vec<PurgeRecord>,
    /// When KV was last read successfully (this isolate's clock).
    read_at_ms: Option<u64>,
    /// When the last listing was cut short, its oldest record: entries
    /// fetched before it may be covered by a record not listed. Records
    /// this isolate wrote do not move it.
    floor_ms: Option<u64>,
    /// When the read under way began: a read whose request went away (a
    /// client that disconnected) never ends, so one older than
    /// [`ABANDONED_MS`] no longer counts.
    reading_since: Option<u64>,
    /// When the last read failed or took too long: while the records are
    /// still trusted, requests then stop waiting on KV for a while and
    /// read it in the background instead (a hanging KV must not add its
    /// timeout to every request).
    failed_at_ms: Option<u64>,
    /// Purges this isolate is holding back for their second.
    pub pacer: Pacer,
    /// Changes whenever the records do.
    version: u64,
    /// Entries the current records were found not to cover: (host, path,
    /// fetched_ms, tag fields) hashed, to the `version` checked. A hot entry is then
    /// checked once per change of the records, not on every hit.
    cleared: HashMap<u64, u64>,
}

/// Entries remembered as cleared; past this the memory starts afresh.
const CLEARED_MAX: usize = 8_192;

/// What a request does about the memo before it decides on an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Recent enough.
    Use,
    /// Use it, and read KV in the background.
    UseAndRefresh,
    /// Too old: read KV first.
    ReadFirst,
    /// Too old, and another request is reading: wait for that read.
    WaitForRead,
}

impl Memo {
    /// What a request at `now_ms` does, refreshing every `every_ms`.
    pub fn refresh(&self, now_ms: u64, every_ms: u64) -> Refresh {
        let age = self.read_at_ms.map(|at| now_ms.saturating_sub(at));
        let reading = self
            .reading_since
            .is_some_and(|since| now_ms.saturating_sub(since) < ABANDONED_MS);
        let backing_off = self
            .failed_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) < every_ms);
        let trusted = age.is_some_and(|age| age <= TRUST_MS + every_ms);
        match age {
            Some(age) if age < every_ms / 2 => Refresh::Use,
            Some(age) if age < every_ms || (trusted && backing_off) => match reading {
                true => Refresh::Use,
                false => Refresh::UseAndRefresh,
            },
            _ if reading => Refresh::WaitForRead,
            _ => Refresh::ReadFirst,
        }
    }

    pub fn begin_read(&mut self, now_ms: u64) {
        self.reading_since = Some(now_ms);
    }

    /// A read ended: with the listing, or `None` when it failed (the old
    /// records stay, trusted for [`TRUST_MS`] after the last good read).
    pub fn end_read(&mut self, listing: Option<KvList>, now_ms: u64) {
        self.reading_since = None;
        let Some(listing) = listing else {
            self.failed_at_ms = Some(now_ms);
            return;
        };
        let mut records: Vec<PurgeRecord> = listing
            .keys
            .iter()
            .filter_map(|k| PurgeRecord::parse(&k.name, k.metadata.as_deref()?))
            .collect();
        // A listing cut short with nothing readable (a future format)
        // vouches for nothing older than now.
        let listed_oldest = records.iter().map(|r| r.at_ms).min().unwrap_or(now_ms);
        self.floor_ms = (!listing.complete).then_some(listed_oldest);
        self.local
            .retain(|r| r.at_ms.saturating_add(LOCAL_MS) > now_ms);
        for record in &self.local {
            if !records.iter().any(|r| r.key == record.key) {
                records.push(record.clone());
            }
        }
        sort(&mut records);
        let same = records.len() == self.records.len()
            && records
                .iter()
                .zip(&self.records)
                .all(|(a, b)| a.key == b.key);
        if !same {
            self.changed();
        }
        self.records = records;
        self.read_at_ms = Some(now_ms);
    }

    fn changed(&mut self) {
        self.version += 1;
        self.cleared.clear();
    }

    /// Records this isolate just wrote: they apply here at once.
    pub fn insert(&mut self, written: &[PurgeRecord]) {
        self.changed();
        for record in written {
            if !self.records.iter().any(|r| r.key == record.key) {
                self.records.push(record.clone());
            }
            self.local.push(record.clone());
        }
        sort(&mut self.records);
    }

    /// Whether purges let `subject` be used as it is, at `now_ms`, when
    /// records are kept for `window_ms` and read every `every_ms`.
    pub fn coverage(
        &mut self,
        subject: &Subject,
        now_ms: u64,
        window_ms: u64,
        every_ms: u64,
    ) -> Coverage {
        let trusted = self
            .read_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) <= TRUST_MS + every_ms);
        if !trusted || subject.fetched_ms.saturating_add(window_ms) < now_ms {
            return Coverage::Unknown;
        }
        if self
            .floor_ms
            .is_some_and(|floor| subject.fetched_ms < floor)
        {
            return Coverage::Unknown;
        }
        // Most hits: no record issued by now is as new as the entry (they
        // are sorted newest first), and nothing needs hashing.
        let newest = self.records.iter().find(|r| r.at_ms <= now_ms);
        if newest.is_none_or(|r| r.at_ms < subject.fetched_ms) {
            return Coverage::Current;
        }
        let id = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            (subject.host, subject.path_and_query, subject.fetched_ms).hash(&mut hasher);
            for name in [super::tags::CACHE_TAG, super::tags::SURROGATE_KEY] {
                for value in subject.headers.get_all(name) {
                    value.as_bytes().hash(&mut hasher);
                }
            }
            hasher.finish()
        };
        if self.cleared.get(&id) == Some(&self.version) {
            return Coverage::Current;
        }
        let mut digests: Option<Vec<u64>> = None;
        let (mut found, mut skipped) = (Coverage::Current, false);
        for record in &self.records {
            if record.at_ms > now_ms {
                // Issued after this request arrived (a waiter's, or from a
                // clock ahead of ours): not for this request.
                skipped = true;
                continue;
            }
            if record.at_ms < subject.fetched_ms {
                break;
            }
            let covers = record.everything || {
                let mine = digests.get_or_insert_with(|| subject.digests());
                record.digests.iter().any(|d| mine.binary_search(d).is_ok())
            };
            match (covers, record.mode) {
                (true, Mode::Hard) => return Coverage::Hard,
                (true, Mode::Soft) => found = Coverage::Soft,
                (false, _) => {}
            }
        }
        // Remembered only when every record was weighed: one skipped for
        // being newer than this request may apply to the next.
        if found == Coverage::Current && !skipped {
            if self.cleared.len() >= CLEARED_MAX {
                self.cleared.clear();
            }
            self.cleared.insert(id, self.version);
        }
        found
    }
}

fn sort(records: &mut [PurgeRecord]) {
    records.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.key.cmp(&b.key)));
}

#[cfg(test)]
mod tests {
    use super::super::Target;
    use super::*;
    use crate::platform::KvKey;

    const WINDOW: u64 = 3_600_000;
    const EVERY: u64 = 5_000;

    /// Checks an entry fetched at `fetched_ms` with `tags`.
    fn check(memo: &mut Memo, fetched_ms: u64, tags: &[&str], now_ms: u64) -> Coverage {
        let headers = crate::memory::header_map(&[("cache-tag", &tags.join(","))]);
        let subject = Subject {
            fetched_ms,
            host: "shop.test",
            path_and_query: "/a",
            headers: &headers,
        };
        memo.coverage(&subject, now_ms, WINDOW, EVERY)
    }

    fn listing(records: &[PurgeRecord], complete: bool) -> KvList {
        KvList {
            keys: records
                .iter()
                .map(|r| KvKey {
                    name: r.key.clone(),
                    metadata: Some(r.metadata()),
                })
                .collect(),
            complete,
        }
    }

    fn tag_purge(at_ms: u64, mode: Mode, tag: &str) -> Vec<PurgeRecord> {
        let d = [Target::Tag(tag.into()).digest()];
        PurgeRecord::split(&format!("{tag}{at_ms}"), at_ms, mode, false, &d)
    }

    #[test]
    fn refresh_schedule() {
        let mut memo = Memo::default();
        assert_eq!(memo.refresh(0, EVERY), Refresh::ReadFirst);
        memo.begin_read(0);
        assert_eq!(memo.refresh(0, EVERY), Refresh::WaitForRead);
        memo.end_read(Some(KvList::default()), 10_000);
        assert_eq!(memo.refresh(12_499, EVERY), Refresh::Use);
        assert_eq!(memo.refresh(12_500, EVERY), Refresh::UseAndRefresh);
        memo.begin_read(12_500);
        assert_eq!(memo.refresh(12_600, EVERY), Refresh::Use);
        // A read whose request went away stops counting after a while.
        let mut stuck = Memo::default();
        stuck.begin_read(100);
        assert_eq!(stuck.refresh(200, EVERY), Refresh::WaitForRead);
        assert_eq!(stuck.refresh(100 + ABANDONED_MS, EVERY), Refresh::ReadFirst);
        // A failed read keeps the old records; once too old, read first.
        memo.end_read(None, 12_700);
        // But not again while the failure is recent and the records trusted:
        // in the background.
        assert_eq!(memo.refresh(15_000, EVERY), Refresh::UseAndRefresh);
        assert_eq!(memo.refresh(17_700, EVERY), Refresh::ReadFirst);
    }

    #[test]
    fn a_purge_covers_entries_fetched_at_or_before_it() {
        let mut memo = Memo::default();
        let records = [
            tag_purge(2_000, Mode::Hard, "a"),
            tag_purge(3_000, Mode::Soft, "b"),
        ]
        .concat();
        memo.end_read(Some(listing(&records, true)), 4_000);
        let mut check = |fetched, tags: &[&str]| check(&mut memo, fetched, tags, 4_000);
        assert_eq!(check(1_999, &["a"]), Coverage::Hard);
        assert_eq!(
            check(2_000, &["a"]),
            Coverage::Hard,
            "the same millisecond is covered"
        );
        assert_eq!(
            check(2_001, &["a"]),
            Coverage::Current,
            "a refill after the purge is not"
        );
        assert_eq!(check(2_500, &["b"]), Coverage::Soft);
        assert_eq!(
            check(1_000, &["a", "b"]),
            Coverage::Hard,
            "hard wins over soft"
        );
        assert_eq!(check(1_000, &["c"]), Coverage::Current);
        // A request that arrived before a purge is not bound by it.
        assert_eq!(
            super::tests::check(&mut memo, 1_000, &["a"], 1_999),
            Coverage::Current
        );
    }

    #[test]
    fn what_the_memo_cannot_vouch_for_is_unknown() {
        let mut memo = Memo::default();
        assert_eq!(check(&mut memo, 1, &[], 10), Coverage::Unknown);
        memo.end_read(
            Some(listing(&tag_purge(WINDOW, Mode::Hard, "a"), false)),
            WINDOW + 10,
        );
        let now = WINDOW + 10;
        // Fetched before the retention window: a covering record may be gone.
        assert_eq!(check(&mut memo, 5, &[], now), Coverage::Unknown);
        // Older than the oldest record of a listing cut short.
        assert_eq!(check(&mut memo, WINDOW - 1, &[], now), Coverage::Unknown);
        assert_eq!(check(&mut memo, WINDOW + 1, &[], now), Coverage::Current);
        // KV unreadable for longer than it is trusted.
        let later = now + TRUST_MS + EVERY + 1;
        memo.end_read(None, later);
        assert_eq!(check(&mut memo, later, &[], later), Coverage::Unknown);
    }

    #[test]
    fn records_this_isolate_wrote_do_not_lower_the_floor_of_a_listing_cut_short() {
        let mut memo = Memo::default();
        memo.insert(&tag_purge(1_000, Mode::Hard, "mine"));
        let listed = [
            tag_purge(5_000, Mode::Hard, "a"),
            tag_purge(6_000, Mode::Hard, "b"),
        ]
        .concat();
        memo.end_read(Some(listing(&listed, false)), 7_000);
        // Fetched between this isolate's record and the oldest listed one:
        // a record not listed may cover it.
        assert_eq!(check(&mut memo, 3_000, &["z"], 7_000), Coverage::Unknown);
        assert_eq!(check(&mut memo, 5_500, &["z"], 7_000), Coverage::Current);
    }

    #[test]
    fn a_hot_entry_is_checked_once_per_change_of_the_records() {
        let mut memo = Memo::default();
        let records = [
            tag_purge(2_000, Mode::Hard, "a"),
            tag_purge(3_000, Mode::Hard, "b"),
        ]
        .concat();
        memo.end_read(Some(listing(&records, true)), 4_000);
        assert_eq!(check(&mut memo, 1_000, &["c"], 4_000), Coverage::Current);
        assert_eq!(memo.cleared.len(), 1);
        assert_eq!(check(&mut memo, 1_000, &["c"], 4_000), Coverage::Current);
        // The same URL and time with other tags is another entry.
        assert_eq!(check(&mut memo, 1_000, &["a"], 4_000), Coverage::Hard);
        // A record arriving (even an older one, late from elsewhere) counts.
        let late = [records.clone(), tag_purge(1_500, Mode::Hard, "c")].concat();
        memo.end_read(Some(listing(&late, true)), 5_000);
        assert_eq!(check(&mut memo, 1_000, &["c"], 5_000), Coverage::Hard);
        // Nothing is remembered while a record was weighed out as newer
        // than the request: it may apply to the next one.
        memo.insert(&tag_purge(9_000, Mode::Hard, "d"));
        assert_eq!(check(&mut memo, 8_000, &["d"], 8_500), Coverage::Current);
        assert_eq!(check(&mut memo, 8_000, &["d"], 9_000), Coverage::Hard);
    }

    #[test]
    fn local_writes_apply_at_once_and_survive_a_lagging_listing() {
        let mut memo = Memo::default();
        memo.end_read(
            Some(KvList {
                keys: vec![],
                complete: true,
            }),
            1_000,
        );
        let purge = tag_purge(1_500, Mode::Hard, "a");
        memo.insert(&purge);
        assert_eq!(check(&mut memo, 1_200, &["a"], 1_600), Coverage::Hard);
        memo.end_read(
            Some(KvList {
                keys: vec![],
                complete: true,
            }),
            2_000,
        );
        assert_eq!(check(&mut memo, 1_200, &["a"], 2_000), Coverage::Hard);
        let everything = PurgeRecord::split("all", 2_500, Mode::Soft, true, &[]);
        memo.insert(&everything);
        assert_eq!(check(&mut memo, 2_400, &[], 2_600), Coverage::Soft);
    }
}
