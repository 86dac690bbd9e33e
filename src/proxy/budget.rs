//! How much memory the isolate's ESI compositions hold at once.
//!
//! Templates and fragments are read into wasm memory, which never shrinks
//! (see `compose`), so every composition counts what it holds against one
//! bound for the isolate, and gives it back when it is dropped.

use super::purging::unix_ms;
use std::collections::HashMap;
use std::time::SystemTime;

/// A quarter of the isolate's 128 MB.
pub const MAX_COMPOSING_BYTES: u64 = 32 * 1024 * 1024;

thread_local! {
    /// What the compositions in this isolate hold now, by composition.
    static COMPOSING: std::cell::RefCell<Compositions> = std::cell::RefCell::default();
}

/// The isolate's compositions: bytes and start (Unix ms) by id, and the total.
#[derive(Default)]
struct Compositions {
    held: HashMap<u64, (u64, u64)>,
    total: u64,
    next_id: u64,
}

/// The bytes one page's composition holds (its template, twice: read and
/// cut into pieces; its fragments), counted against the isolate's
/// [`MAX_COMPOSING_BYTES`] until the composition is dropped, or for at most
/// `expires_ms`: the runtime never settles the I/O of a request whose
/// client went away (where it does not report that, see `edge::task`), so
/// such a composition is never dropped, and must not keep others out.
pub(super) struct Held {
    id: u64,
    expires_ms: u64,
}

impl Held {
    pub(super) fn new(now: SystemTime, expires_ms: u64) -> Self {
        let now_ms = unix_ms(now);
        let id = COMPOSING.with_borrow_mut(|c| {
            c.next_id += 1;
            c.held.insert(c.next_id, (0, now_ms));
            c.next_id
        });
        Held { id, expires_ms }
    }

    /// Counts `bytes` more at `now`, unless the isolate would then hold
    /// too much (compositions older than their bound no longer count).
    pub(super) fn take(&self, bytes: u64, now: SystemTime) -> bool {
        let now_ms = unix_ms(now);
        COMPOSING.with_borrow_mut(|c| {
            let expired: Vec<u64> = c
                .held
                .iter()
                .filter(|(_, (_, started))| started + self.expires_ms < now_ms)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                if let Some((gone, _)) = c.held.remove(&id) {
                    c.total -= gone;
                }
            }
            let Some((mine, _)) = c.held.get_mut(&self.id) else {
                return false;
            };
            if c.total + bytes > MAX_COMPOSING_BYTES {
                return false;
            }
            *mine += bytes;
            c.total += bytes;
            true
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        COMPOSING.with_borrow_mut(|c| {
            if let Some((mine, _)) = c.held.remove(&self.id) {
                c.total -= mine;
            }
        });
    }
}
