//! One origin fetch per key at a time, per isolate (request coalescing).
//!
//! The first request to miss a key, or to find its entry stale, leads: it
//! fetches from the origin. Requests that arrive for the same key while the
//! leader is in flight wait for its [`Outcome`] instead of asking the origin
//! too, as pingora-cache's `lock` does. Waiters never share the leader's
//! response object: in workerd a body belongs to the request that fetched it.
//! On [`Outcome::Stored`] each waiter reads the stored entry itself, in its
//! own request, which also checks that the entry is its own variant.
//!
//! A waiter is woken through a signal it made itself ([`Background::signal`]),
//! so that it resumes in its own request's context; the registry holds only
//! plain data and wake-ups. What a waiter does with each outcome is the proxy's business
//! (see `proxy::coalesce`); waiting is bounded by the caller.

use crate::platform::{Background, OriginError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// How a flight ended, as its waiters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A shared entry was stored (or freshened) at this storage URL: read
    /// it from storage. Written after the waiter joined, it may serve the
    /// waiter even if it is already stale (a `no-cache` entry, just
    /// validated): that is what collapsing the waiter's request means.
    Stored(String),
    /// Nothing shareable came of it (not storable, `private`, a `Set-Cookie`
    /// kept for the leader's own client, a failed write, the leader gone):
    /// each waiter asks the origin itself, all at once.
    NotShared,
    /// The origin failed; a dead origin must not see one retry per waiter.
    Failed(OriginError),
    /// The origin answered this error status (500, 502, 503, 504), not
    /// stored. Waiters with a stale entry inside stale-if-error use it
    /// rather than retry; the status itself is never handed on, since it may
    /// answer something only the leader's request carried.
    ErrorStatus(u16),
}

/// A waiting request's wake-up, given to the leader.
type Wake = Box<dyn FnOnce()>;

struct Flight {
    /// When its leader set off: a flight older than the bound takes no
    /// more waiters (see [`Flights::join`]).
    started: SystemTime,
    outcome: Option<Outcome>,
    wakes: Vec<Wake>,
}

/// The flights in progress in this isolate, by key.
#[derive(Clone, Default)]
pub struct Flights(Rc<RefCell<HashMap<String, Rc<RefCell<Flight>>>>>);

/// What joining a flight made of this request.
pub enum Join {
    Leader(Lead),
    Waiter(Wait),
}

impl Flights {
    /// Leads a new flight for `key`, or waits for the one in progress. A
    /// flight that set off more than `bound` ago (its leader hung, or its
    /// body trickles) takes no more waiters: this request leads a new one,
    /// so a leader that never finishes cannot hold its key for longer.
    pub fn join(&self, key: &str, now: SystemTime, bound: Duration) -> Join {
        let mut flights = self.0.borrow_mut();
        match flights.get(key) {
            Some(flight) if flight.borrow().started + bound > now => {
                Join::Waiter(Wait(flight.clone()))
            }
            _ => {
                let flight = Flight {
                    started: now,
                    outcome: None,
                    wakes: Vec::new(),
                };
                let flight = Rc::new(RefCell::new(flight));
                flights.insert(key.to_string(), flight.clone());
                Join::Leader(Lead {
                    flights: self.clone(),
                    key: key.to_string(),
                    flight,
                })
            }
        }
    }

    /// Keys with a flight in progress (for tests and logs).
    pub fn in_flight(&self) -> usize {
        self.0.borrow().len()
    }
}

/// The leader's duty to say how its flight ended. Dropped unsaid (the
/// request was cancelled, a path forgot), it ends as [`Outcome::NotShared`],
/// so no waiter is left behind.
pub struct Lead {
    flights: Flights,
    key: String,
    flight: Rc<RefCell<Flight>>,
}

impl Lead {
    /// Ends the flight: later requests start a new one, waiters wake.
    pub fn finish(self, outcome: Outcome) {
        self.end(outcome);
        std::mem::forget(self);
    }

    fn end(&self, outcome: Outcome) {
        {
            // Leave the key to a newer flight that replaced this one.
            let mut flights = self.flights.0.borrow_mut();
            if flights
                .get(&self.key)
                .is_some_and(|f| Rc::ptr_eq(f, &self.flight))
            {
                flights.remove(&self.key);
            }
        }
        let wakes = {
            let mut flight = self.flight.borrow_mut();
            flight.outcome = Some(outcome);
            std::mem::take(&mut flight.wakes)
        };
        for wake in wakes {
            wake();
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.end(Outcome::NotShared);
    }
}

/// A place in a flight's waiting list.
pub struct Wait(Rc<RefCell<Flight>>);

impl Wait {
    /// The flight's outcome, once the leader finishes.
    pub async fn outcome(self, background: &impl Background) -> Outcome {
        if let Some(outcome) = self.0.borrow().outcome.clone() {
            return outcome;
        }
        let (wake, woken) = background.signal();
        self.0.borrow_mut().wakes.push(wake);
        woken.await;
        self.0
            .borrow()
            .outcome
            .clone()
            .unwrap_or(Outcome::NotShared)
    }
}

impl Wait {
    /// The flight's outcome, or `None` if the leader has not finished
    /// within `ms` milliseconds.
    pub async fn outcome_within(self, background: &impl Background, ms: u64) -> Option<Outcome> {
        crate::platform::within(self.outcome(background), background, ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::QueuedBackground;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    use std::time::UNIX_EPOCH;

    const T0: SystemTime = UNIX_EPOCH;
    const BOUND: Duration = Duration::from_secs(30);

    #[test]
    fn a_flight_past_its_bound_takes_no_more_waiters() {
        let flights = Flights::default();
        let background = QueuedBackground::default();
        let Join::Leader(stuck) = flights.join("k", T0, BOUND) else {
            panic!()
        };
        let Join::Waiter(early) = flights.join("k", T0 + BOUND / 2, BOUND) else {
            panic!("inside the bound, requests wait")
        };
        let Join::Leader(fresh) = flights.join("k", T0 + BOUND, BOUND) else {
            panic!("past the bound, a request leads a new flight")
        };
        // The stuck leader ending late does not end the new flight.
        stuck.finish(Outcome::NotShared);
        assert_eq!(flights.in_flight(), 1);
        assert_eq!(
            futures::executor::block_on(early.outcome(&background)),
            Outcome::NotShared
        );
        fresh.finish(Outcome::Stored("u".into()));
        assert_eq!(flights.in_flight(), 0);
    }

    #[test]
    fn one_leader_many_waiters_one_outcome() {
        let flights = Flights::default();
        let background = QueuedBackground::default();
        let Join::Leader(lead) = flights.join("k", T0, BOUND) else {
            panic!("the first request leads")
        };
        let mut pool = LocalPool::new();
        let seen = Rc::new(RefCell::new(Vec::new()));
        for _ in 0..5 {
            let Join::Waiter(wait) = flights.join("k", T0, BOUND) else {
                panic!("later requests wait")
            };
            let (seen, background) = (seen.clone(), background.clone());
            pool.spawner()
                .spawn_local(async move {
                    let outcome = wait.outcome(&background).await;
                    seen.borrow_mut().push(outcome);
                })
                .unwrap();
        }
        assert!(matches!(flights.join("other", T0, BOUND), Join::Leader(_)));
        pool.run_until_stalled();
        assert!(seen.borrow().is_empty());
        lead.finish(Outcome::Stored("u".into()));
        pool.run_until_stalled();
        assert_eq!(*seen.borrow(), vec![Outcome::Stored("u".into()); 5]);
        // The next request after the flight leads a new one.
        assert!(matches!(flights.join("k", T0, BOUND), Join::Leader(_)));
    }

    #[test]
    fn a_dropped_leader_releases_its_waiters() {
        let flights = Flights::default();
        let background = QueuedBackground::default();
        let lead = flights.join("k", T0, BOUND);
        let Join::Waiter(wait) = flights.join("k", T0, BOUND) else {
            panic!()
        };
        drop(lead);
        let outcome = futures::executor::block_on(wait.outcome(&background));
        assert_eq!(outcome, Outcome::NotShared);
        assert_eq!(flights.in_flight(), 0);
    }
}
