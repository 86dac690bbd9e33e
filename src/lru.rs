//! A map by storage URL bounded in bytes, least recently used out first:
//! what the isolate keeps in memory ([`crate::hot_tier`]'s entries,
//! [`crate::heads`]' parsed heads) lives in one of these.
//!
//! By hand rather than the `lru` crate: the bound is in bytes that the
//! caller counts (a body, its fields, its URL), not in entries, and recency
//! is a `BTreeMap` of ticks, which the core already links.

use std::collections::{BTreeMap, HashMap};

struct Held<V> {
    value: V,
    size: usize,
    /// Its place in the recency order.
    tick: u64,
}

/// Values by URL, at most `limit` bytes of them as their sizes say.
pub struct Lru<V> {
    slots: HashMap<String, Held<V>>,
    /// Recency: tick to URL, oldest first.
    order: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    limit: usize,
}

impl<V> Lru<V> {
    /// A map of at most `limit` bytes; 0 keeps nothing.
    pub fn new(limit: usize) -> Self {
        Lru {
            slots: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            limit,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The value at `url`, which becomes the most recently used. Its URL
    /// moves in the recency order rather than being copied: every memory
    /// hit comes through here.
    pub fn get(&mut self, url: &str) -> Option<&mut V> {
        let held = self.slots.get_mut(url)?;
        self.tick += 1;
        let key = self
            .order
            .remove(&held.tick)
            .expect("every slot is in the order");
        held.tick = self.tick;
        self.order.insert(held.tick, key);
        Some(&mut held.value)
    }

    /// Keeps `value` at `url` as `size` bytes, in place of what was there,
    /// dropping the least recently used until it fits. Not kept if it alone
    /// is over the bound.
    pub fn insert(&mut self, url: &str, value: V, size: usize) {
        self.remove(url);
        if size > self.limit {
            return;
        }
        while self.bytes + size > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(held) = self.slots.remove(&oldest) {
                self.bytes -= held.size;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, url.to_string());
        self.bytes += size;
        let held = Held {
            value,
            size,
            tick: self.tick,
        };
        self.slots.insert(url.to_string(), held);
    }

    /// Drops the value at `url`, if held.
    pub fn remove(&mut self, url: &str) -> Option<V> {
        let held = self.slots.remove(url)?;
        self.order.remove(&held.tick);
        self.bytes -= held.size;
        Some(held.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first_and_bytes_add_up() {
        let mut lru = Lru::new(30);
        for (url, n) in [("/a", 1), ("/b", 2), ("/c", 3)] {
            lru.insert(url, n, 10);
        }
        assert_eq!((lru.len(), lru.bytes()), (3, 30));
        assert_eq!(lru.get("/a"), Some(&mut 1));
        lru.insert("/d", 4, 10);
        // `/b` was the least recently used once `/a` was read.
        assert_eq!(lru.get("/b"), None);
        assert_eq!((lru.len(), lru.bytes()), (3, 30));
        // Replacing a value counts it once; a bigger one makes room.
        lru.insert("/a", 5, 20);
        assert_eq!((lru.len(), lru.bytes()), (2, 30));
        assert_eq!(lru.get("/c"), None, "the oldest left to make room");
        assert_eq!(lru.remove("/a"), Some(5));
        assert_eq!(lru.remove("/a"), None);
        assert_eq!((lru.len(), lru.bytes()), (1, 10));
    }

    #[test]
    fn a_value_over_the_bound_is_not_kept_and_drops_nothing() {
        let mut lru = Lru::new(30);
        lru.insert("/a", 1, 10);
        lru.insert("/big", 2, 31);
        assert_eq!((lru.len(), lru.bytes()), (1, 10));
        let mut off = Lru::new(0);
        off.insert("/a", 1, 1);
        assert!(off.is_empty());
    }
}
