//! Repeated purges of the same target within a second are one KV write.
//!
//! A purge naming a target this isolate wrote less than a second ago is not
//! written at once: it is written when the second is up, in one record
//! shared by every purge of that mode that asked meanwhile, timed at that
//! moment. Timing it then (not at the first purge) keeps a refill that
//! began between two purges covered by the second; timing it a little late
//! covers a little more, which costs a refetch, never a stale answer.
//! Targets not written lately go at once.

use super::{Mode, Summary};

/// Two purges of one target are at least this far apart in KV.
const PACE_MS: u64 = 1_000;

/// A batch not taken this long after its time was abandoned.
const ABANDONED_MS: u64 = 5_000;

/// Purges waiting for their second, and what became of written ones.
#[derive(Debug, Default)]
pub struct Pacer {
    batches: Vec<Batch>,
    next: u64,
    /// Records this isolate decided to write in the last second: `(at_ms,
    /// mode, everything, digests)`, noted when decided, not when the write
    /// lands, so a purge arriving while a write is under way is paced too.
    recent: Vec<(u64, Mode, bool, Vec<u64>)>,
}

/// Purges to be written together at `at_ms`.
#[derive(Debug)]
pub struct Batch {
    pub number: u64,
    pub at_ms: u64,
    pub mode: Mode,
    pub everything: bool,
    pub digests: Vec<u64>,
    /// What the purges named, merged.
    pub summary: Summary,
    /// Taken by the request that writes it.
    started: bool,
    /// What the write reported, or why it failed.
    outcome: Option<Result<Written, String>>,
}

/// A purge written to KV: its id, time and number of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub at_ms: u64,
    pub records: usize,
}

/// What a purge request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Write now.
    Now,
    /// Wait until `at_ms`, then write the batch (see [`Pacer::take`]).
    Lead { batch: u64, at_ms: u64 },
    /// Another request writes the batch; wait for its outcome.
    Follow { batch: u64 },
}

impl Pacer {
    /// When this isolate last decided to write a record in `mode` naming
    /// any of `digests` (or everything, for `everything`).
    fn last(&self, mode: Mode, everything: bool, digests: &[u64]) -> Option<u64> {
        self.recent
            .iter()
            .filter(|(_, m, all, names)| {
                *m == mode && ((everything && *all) || names.iter().any(|d| digests.contains(d)))
            })
            .map(|(at, ..)| *at)
            .max()
    }

    fn note(&mut self, at_ms: u64, mode: Mode, everything: bool, digests: &[u64]) {
        self.recent.retain(|(at, ..)| at + PACE_MS > at_ms);
        self.recent
            .push((at_ms, mode, everything, digests.to_vec()));
    }

    /// The plan for a purge at `now_ms`.
    pub fn plan(
        &mut self,
        now_ms: u64,
        mode: Mode,
        everything: bool,
        digests: &[u64],
        summary: &Summary,
    ) -> Plan {
        // A batch whose leader went away (its client disconnected while it
        // waited for the second) is never written: forget it, or every
        // later repeat would wait on it.
        self.batches
            .retain(|b| b.started || b.at_ms + ABANDONED_MS > now_ms);
        let at_ms = match self.last(mode, everything, digests) {
            Some(last) if last + PACE_MS > now_ms => last + PACE_MS,
            _ => {
                self.note(now_ms, mode, everything, digests);
                return Plan::Now;
            }
        };
        if let Some(batch) = self
            .batches
            .iter_mut()
            .find(|b| !b.started && b.mode == mode && b.at_ms >= at_ms)
        {
            batch.everything |= everything;
            batch.digests.extend_from_slice(digests);
            batch.digests.sort_unstable();
            batch.digests.dedup();
            batch.summary.merge(summary);
            return Plan::Follow {
                batch: batch.number,
            };
        }
        self.next += 1;
        self.batches.push(Batch {
            number: self.next,
            at_ms,
            mode,
            everything,
            digests: digests.to_vec(),
            summary: summary.clone(),
            started: false,
            outcome: None,
        });
        Plan::Lead {
            batch: self.next,
            at_ms,
        }
    }

    /// The batch to write, closed to newcomers.
    pub fn take(&mut self, number: u64) -> Option<(bool, Vec<u64>, Summary)> {
        let batch = self.batches.iter_mut().find(|b| b.number == number)?;
        batch.started = true;
        let taken = (
            batch.everything,
            batch.digests.clone(),
            batch.summary.clone(),
        );
        let (at_ms, mode) = (batch.at_ms, batch.mode);
        self.note(at_ms, mode, taken.0, &taken.1);
        Some(taken)
    }

    /// Records how the batch's write ended.
    pub fn finish(&mut self, number: u64, outcome: Result<Written, String>) {
        if let Some(batch) = self.batches.iter_mut().find(|b| b.number == number) {
            batch.outcome = Some(outcome);
        }
    }

    /// How the batch's write ended, once it has.
    pub fn outcome(&self, number: u64) -> Option<Result<Written, String>> {
        self.batches
            .iter()
            .find(|b| b.number == number)
            .and_then(|b| b.outcome.clone())
    }

    /// Drops batches written long ago.
    pub fn forget_before(&mut self, ms: u64) {
        self.batches
            .retain(|b| b.outcome.is_none() || b.at_ms >= ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(tags: &[&str]) -> Summary {
        Summary {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Summary::default()
        }
    }

    #[test]
    fn repeats_within_a_second_share_one_later_write() {
        let mut p = Pacer::default();
        let hard = Mode::Hard;
        let (one, two) = (tags(&["a"]), tags(&["b", "a"]));
        assert_eq!(p.plan(3_000, hard, false, &[1], &one), Plan::Now);
        assert_eq!(p.plan(5_000, hard, false, &[1], &one), Plan::Now);
        let lead = p.plan(5_100, hard, false, &[1], &one);
        assert_eq!(
            lead,
            Plan::Lead {
                batch: 1,
                at_ms: 6_000
            }
        );
        let follow = p.plan(5_200, hard, false, &[1, 2], &two);
        assert_eq!(follow, Plan::Follow { batch: 1 });
        // Another mode is another record.
        assert_eq!(p.plan(5_200, Mode::Soft, false, &[1], &one), Plan::Now);
        let soft = p.plan(5_300, Mode::Soft, false, &[1], &one);
        assert!(matches!(soft, Plan::Lead { batch: 2, .. }));
        let merged = tags(&["a", "b"]);
        assert_eq!(p.take(1), Some((false, vec![1, 2], merged)));
        // Closed once taken, and noted as written then: a repeat arriving
        // while that write is under way waits for the next second.
        let later = p.plan(6_001, hard, false, &[1], &one);
        assert_eq!(
            later,
            Plan::Lead {
                batch: 3,
                at_ms: 7_000
            }
        );
        assert_eq!(p.outcome(1), None);
        let written = Written {
            id: "id".into(),
            at_ms: 6_000,
            records: 1,
        };
        p.finish(1, Ok(written.clone()));
        assert_eq!(p.outcome(1), Some(Ok(written)));
        p.forget_before(7_000);
        assert_eq!(p.outcome(1), None);
    }
}
