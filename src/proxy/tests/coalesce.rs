//! One origin fetch per key: requests in flight together on a held origin.

use super::*;

/// Requests in flight together: each runs as its own task on one thread,
/// as in an isolate; `settle` runs everything that can run, background
/// work included.
struct Crowd {
    pool: futures::executor::LocalPool,
    answers: std::rc::Rc<std::cell::RefCell<Vec<Response<Vec<u8>>>>>,
}

impl Crowd {
    fn new() -> Self {
        Crowd {
            pool: futures::executor::LocalPool::new(),
            answers: Default::default(),
        }
    }

    fn send(&self, h: &Harness, path: &str, headers: &[(&str, &str)]) {
        use futures::task::LocalSpawnExt;
        let mut req = Request::builder().uri(format!("https://shop.example{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let request = req.body(Vec::new()).unwrap();
        let (proxy, answers, now) = (h.proxy.clone(), self.answers.clone(), h.now);
        self.pool
            .spawner()
            .spawn_local(async move {
                let answer = proxy
                    .handle(request, &RuntimeCountry::known(None), now)
                    .await;
                answers.borrow_mut().push(answer);
            })
            .unwrap();
    }

    fn settle(&mut self, h: &Harness) {
        for _ in 0..10 {
            self.pool.run_until_stalled();
            h.proxy.background.run();
        }
    }

    /// `n` requests for `path` in flight together on a held origin, then
    /// the origin released and everything run to the end.
    fn burst(h: &Harness, n: usize, path: &str, headers: &[(&str, &str)]) -> Crowd {
        h.proxy.origin.hold();
        let mut crowd = Crowd::new();
        for _ in 0..n {
            crowd.send(h, path, headers);
        }
        crowd.settle(h);
        h.proxy.origin.release();
        crowd.settle(h);
        crowd
    }

    fn statuses(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .answers
            .borrow()
            .iter()
            .map(|r| status(r).to_string())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

#[test]
fn a_stampede_on_a_cold_key_makes_one_origin_call() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "body"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    for _ in 0..10 {
        crowd.send(&h, "/cold", &[]);
    }
    crowd.settle(&h);
    assert_eq!(h.calls(), 1);
    assert!(
        crowd.answers.borrow().is_empty(),
        "everyone waits for the origin"
    );
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(h.calls(), 1);
    let answers = crowd.answers.borrow();
    assert_eq!(answers.len(), 10);
    assert!(answers.iter().all(|r| r.body() == b"body"));
    assert_eq!(
        crowd.statuses(),
        [
            "edge-cache; fwd=uri-miss; fwd-status=200; collapsed; ttl=60",
            "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
        ]
    );
    assert_eq!(h.proxy.flights.in_flight(), 0);
}

#[test]
fn a_stampede_on_an_expired_key_revalidates_once() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60"), ("etag", "\"v\"")],
        "body",
    ));
    h.get("/expired");
    h.advance(61);
    h.answer_with(answer(
        304,
        &[("cache-control", "max-age=60"), ("etag", "\"v\"")],
        b"",
    ));
    let crowd = Crowd::burst(&h, 10, "/expired", &[]);
    assert_eq!(h.calls(), 2);
    assert!(crowd.answers.borrow().iter().all(|r| r.body() == b"body"));
    assert_eq!(
        crowd.statuses(),
        [
            "edge-cache; fwd=stale; fwd-status=200; collapsed; ttl=60",
            "edge-cache; fwd=stale; fwd-status=304; stored; ttl=60"
        ]
    );
}

#[test]
fn waiters_ask_the_origin_themselves_all_at_once_when_nothing_is_shared() {
    let h = harness(ok(&[("cache-control", "private, max-age=60")], "mine"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    for _ in 0..5 {
        crowd.send(&h, "/private", &[]);
    }
    crowd.settle(&h);
    assert_eq!(h.calls(), 1);
    // The leader's answer is private: the four waiters go to the origin
    // together, not one after another.
    h.proxy.origin.release();
    h.proxy.origin.hold();
    crowd.settle(&h);
    assert_eq!(h.calls(), 5);
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(crowd.answers.borrow().len(), 5);
}

#[test]
fn a_cookie_kept_for_the_leaders_client_is_not_shared() {
    let h = harness(ok(
        &[
            ("cache-control", "max-age=60, private=\"Set-Cookie\""),
            ("set-cookie", "visitor=1"),
        ],
        "x",
    ));
    Crowd::burst(&h, 3, "/cookie", &[]);
    assert_eq!(h.calls(), 3);
}

#[test]
fn a_waiter_of_another_variant_asks_the_origin_itself() {
    let h = harness(echo("X-V"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/v", &[("x-v", "a")]);
    crowd.send(&h, "/v", &[("x-v", "a")]);
    crowd.send(&h, "/v", &[("x-v", "b")]);
    crowd.settle(&h);
    assert_eq!(h.calls(), 1);
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(h.calls(), 2);
    let seen = h.proxy.origin.seen.borrow();
    assert_eq!(seen[1].headers()["x-v"], "b");
}

#[test]
fn authorized_requests_never_share_a_fetch() {
    let h = harness(ok(&[("cache-control", "public, max-age=60")], "x"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    for _ in 0..3 {
        crowd.send(&h, "/auth", &[("authorization", "Bearer t")]);
    }
    crowd.settle(&h);
    assert_eq!(h.calls(), 3);
    h.proxy.origin.release();
    crowd.settle(&h);
}

#[test]
fn a_failed_leader_fails_its_waiters_without_retries() {
    let h = harness(|_| Err(OriginError::Unreachable("refused".into())));
    let crowd = Crowd::burst(&h, 5, "/dead", &[]);
    assert_eq!(h.calls(), 1);
    assert!(crowd.answers.borrow().iter().all(|r| r.status() == 502));
}

#[test]
fn a_failed_revalidation_gives_waiters_their_stale_entry_where_allowed() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60, stale-if-error=600")],
        "old",
    ));
    h.get("/sie-crowd");
    h.advance(61);
    h.answer_with(|_| Err(OriginError::TimedOut));
    let crowd = Crowd::burst(&h, 5, "/sie-crowd", &[]);
    assert_eq!(h.calls(), 2);
    assert!(crowd.answers.borrow().iter().all(|r| r.body() == b"old"));
    assert_eq!(
        crowd.statuses(),
        ["edge-cache; fwd=stale; ttl=-1; detail=stale-if-error"]
    );
}

#[test]
fn one_background_revalidation_per_key() {
    let mut h = harness(ok(
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=60"),
            ("etag", "\"v\""),
        ],
        "x",
    ));
    h.get("/bg");
    h.advance(61);
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    for _ in 0..5 {
        crowd.send(&h, "/bg", &[]);
    }
    // Everyone is answered at once, stale; one revalidation is under way.
    crowd.pool.run_until_stalled();
    assert_eq!(crowd.answers.borrow().len(), 5);
    let background = h.proxy.background.clone();
    let mut pool = futures::executor::LocalPool::new();
    {
        use futures::task::LocalSpawnExt;
        for task in background.tasks.borrow_mut().drain(..) {
            pool.spawner().spawn_local(task).unwrap();
        }
    }
    pool.run_until_stalled();
    assert_eq!(h.calls(), 2);
    h.proxy.origin.release();
    pool.run_until_stalled();
    background.run();
    assert_eq!(h.calls(), 2);
}

#[test]
fn a_waiter_stops_waiting_after_origin_timeout() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/slow", &[]);
    crowd.send(&h, "/slow", &[]);
    crowd.settle(&h);
    assert_eq!(h.calls(), 1);
    h.proxy.background.fire_timers();
    crowd.settle(&h);
    assert_eq!(h.calls(), 2, "the waiter went to the origin itself");
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(crowd.answers.borrow().len(), 2);
}

#[test]
fn a_flight_that_never_ends_holds_its_key_for_origin_timeout_at_most() {
    let mut h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/wedged", &[]);
    crowd.settle(&h);
    let bound = h.proxy.config.origin_timeout_secs;
    h.advance(u64::from(bound));
    crowd.send(&h, "/wedged", &[]);
    crowd.settle(&h);
    assert_eq!(
        h.calls(),
        2,
        "past the bound, a request leads a new flight at once"
    );
    h.proxy.origin.release();
    crowd.settle(&h);
}

#[test]
fn a_leaders_5xx_is_never_handed_to_its_waiters() {
    // The origin fails only the leader's request (a header the key does not hold).
    let h = harness(|req: &Request<Vec<u8>>| {
        let bad = req.headers().contains_key("x-bad");
        let mut r = Response::new(if bad {
            b"oops".to_vec()
        } else {
            b"fine".to_vec()
        });
        *r.status_mut() = if bad {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        if !bad {
            r.headers_mut()
                .insert("cache-control", "max-age=60".parse().unwrap());
        }
        Ok(r)
    });
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/choke", &[("x-bad", "1")]);
    for _ in 0..4 {
        crowd.send(&h, "/choke", &[]);
    }
    crowd.settle(&h);
    h.proxy.origin.release();
    crowd.settle(&h);
    let answers = crowd.answers.borrow();
    assert_eq!(answers.iter().filter(|r| r.status() == 500).count(), 1);
    assert_eq!(answers.iter().filter(|r| r.body() == b"fine").count(), 4);
}

#[test]
fn a_5xx_revalidation_gives_waiters_their_stale_entry_without_retries() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60, stale-if-error=600")],
        "old",
    ));
    h.get("/busy-stale");
    h.advance(61);
    h.answer_with(answer(503, &[], b"busy"));
    let crowd = Crowd::burst(&h, 5, "/busy-stale", &[]);
    assert_eq!(h.calls(), 2);
    assert!(crowd.answers.borrow().iter().all(|r| r.body() == b"old"));
}

#[test]
fn a_range_or_no_store_request_never_leads_a_flight() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/spoil", &[("range", "bytes=0-0")]);
    crowd.send(&h, "/spoil", &[("cache-control", "no-store")]);
    for _ in 0..4 {
        crowd.send(&h, "/spoil", &[]);
    }
    crowd.settle(&h);
    assert_eq!(h.calls(), 3, "the two go alone; the four share one fetch");
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(h.calls(), 3);
}

#[test]
fn waiters_collapse_onto_a_no_cache_entry_just_validated() {
    let h = harness(ok(&[("cache-control", "no-cache"), ("etag", "\"n\"")], "x"));
    h.get("/no-cache");
    h.answer_with(answer(
        304,
        &[("cache-control", "no-cache"), ("etag", "\"n\"")],
        b"",
    ));
    let crowd = Crowd::burst(&h, 5, "/no-cache", &[]);
    assert_eq!(h.calls(), 2);
    assert!(crowd.answers.borrow().iter().all(|r| r.body() == b"x"));
}

#[test]
fn waiters_of_another_variant_share_one_fetch_of_their_own() {
    let h = harness(echo("X-V"));
    h.proxy.origin.hold();
    let mut crowd = Crowd::new();
    crowd.send(&h, "/variants", &[("x-v", "de")]);
    for _ in 0..3 {
        crowd.send(&h, "/variants", &[("x-v", "fr")]);
    }
    crowd.settle(&h);
    h.proxy.origin.release();
    h.proxy.origin.hold();
    crowd.settle(&h);
    assert_eq!(h.calls(), 2, "one fetch for de, then one for the three fr");
    h.proxy.origin.release();
    crowd.settle(&h);
    assert_eq!(h.calls(), 2);
    let answers = crowd.answers.borrow();
    assert_eq!(answers.len(), 4);
    // Both variants stay reachable: the second fill used the first's marker.
    drop(answers);
    assert!(status(&h.send("GET", "/variants", &[("x-v", "de")])).contains("hit"));
    assert!(status(&h.send("GET", "/variants", &[("x-v", "fr")])).contains("hit"));
}

#[test]
fn waiters_that_a_purge_turns_away_share_one_refetch() {
    let mut h = super::purge::purging(super::purge::counting());
    h.get("/p");
    h.advance(700); // stale: the next requests refill it (no validators match)
    h.proxy.origin.hold();
    let mut early = Crowd::new();
    for _ in 0..3 {
        early.send(&h, "/p", &[]);
    }
    early.settle(&h);
    // The purge lands while that fill is held at the origin; five more
    // requests arrive after it and wait on the same flight.
    h.advance_ms(10);
    h.purge(r#"{"tags": ["home"]}"#);
    let mut late = Crowd::new();
    for _ in 0..5 {
        late.send(&h, "/p", &[]);
    }
    late.settle(&h);
    assert_eq!(h.calls(), 2, "one fill in flight");
    h.proxy.origin.release();
    early.settle(&h);
    late.settle(&h);
    // Requests that arrived before the purge may have what was fetched
    // before it; those after it share one refetch.
    let bodies = |crowd: &Crowd| -> Vec<Vec<u8>> {
        crowd
            .answers
            .borrow()
            .iter()
            .map(|r| r.body().clone())
            .collect()
    };
    assert_eq!(bodies(&early), vec![b"v2".to_vec(); 3]);
    assert_eq!(bodies(&late), vec![b"v3".to_vec(); 5]);
    assert_eq!(h.calls(), 3);
}
