//! Stale content: stale-while-revalidate, stale-if-error, negative caching,
//! and what revalidation does to a stored entry.

use super::*;

#[test]
fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let mut h = harness(ok(
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=30"),
            ("etag", "\"v1\""),
        ],
        "one",
    ));
    h.get("/swr");
    h.advance(70);
    h.answer_with(answer(
        304,
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=30"),
            ("etag", "\"v1\""),
        ],
        b"",
    ));
    // `send` runs the background work after the response, as wait_until does.
    let stale = h.get("/swr");
    assert_eq!(
        status(&stale),
        "edge-cache; hit; ttl=-10; detail=stale-while-revalidate"
    );
    assert_eq!(stale.body(), b"one");
    assert_eq!(h.calls(), 2);
    let seen = h.proxy.origin.seen.borrow()[1].headers().clone();
    assert_eq!(seen["if-none-match"], "\"v1\"");
    let fresh = h.get("/swr");
    assert_eq!(status(&fresh), "edge-cache; hit; ttl=60");
    assert_eq!(fresh.body(), b"one");
    // Past the window the client waits for the revalidation.
    h.advance(95);
    assert!(status(&h.get("/swr")).starts_with("edge-cache; fwd=stale; fwd-status=304"));
}

#[test]
fn stale_if_error_hides_origin_failures_inside_its_window_only() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60, stale-if-error=300")],
        "good",
    ));
    h.get("/sie");
    h.advance(100);
    h.answer_with(answer(503, &[], b"down"));
    let masked = h.get("/sie");
    assert_eq!(
        status(&masked),
        "edge-cache; fwd=stale; fwd-status=503; ttl=-40; detail=stale-if-error"
    );
    assert_eq!(masked.status(), 200);
    assert_eq!(masked.body(), b"good");
    h.answer_with(|_| Err(OriginError::TimedOut));
    let timed_out = h.get("/sie");
    assert_eq!(
        status(&timed_out),
        "edge-cache; fwd=stale; ttl=-40; detail=stale-if-error"
    );
    h.answer_with(|_| Err(OriginError::Unreachable("reset".into())));
    assert_eq!(h.get("/sie").body(), b"good");
    // Not for a 404 or a 501: those are answers, not failures.
    h.answer_with(answer(404, &[], b"gone"));
    assert_eq!(h.get("/sie").status(), 404);
    h.answer_with(answer(503, &[], b"down"));
    h.advance(300);
    let past = h.get("/sie");
    assert_eq!(past.status(), 503);
    assert_eq!(past.body(), b"down");
}

#[test]
fn configured_windows_never_override_a_prohibition() {
    for cache_control in ["max-age=60, must-revalidate", "s-maxage=60", "no-cache"] {
        let mut h = harness(|_| unreachable!());
        h.config_mut().stale = crate::stale::StaleDefaults {
            while_revalidate: 600,
            if_error: 600,
        };
        let cc: &'static str = Box::leak(cache_control.to_string().into_boxed_str());
        let headers: &'static [(&str, &str)] =
            Box::leak(vec![("cache-control", cc), ("etag", "\"e\"")].into_boxed_slice());
        h.answer_with(ok(headers, "x"));
        h.get("/p");
        h.advance(61);
        h.answer_with(answer(503, &[], b"down"));
        let r = h.get("/p");
        assert_eq!(r.status(), 503, "{cache_control}");
    }
}

#[test]
fn defaults_apply_to_responses_that_name_no_window() {
    let mut h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    h.config_mut().stale = crate::stale::StaleDefaults {
        while_revalidate: 30,
        if_error: 0,
    };
    h.get("/d");
    h.advance(61);
    assert!(status(&h.get("/d")).ends_with("detail=stale-while-revalidate"));
}

#[test]
fn missing_pages_are_cached_for_negative_ttl() {
    let mut h = harness(answer(404, &[], b"no such page"));
    let first = h.get("/missing");
    assert_eq!(
        status(&first),
        "edge-cache; fwd=uri-miss; fwd-status=404; stored; ttl=30"
    );
    assert_eq!(h.get("/missing").status(), 404);
    assert_eq!(h.calls(), 1);
    h.advance(31);
    h.get("/missing");
    assert_eq!(h.calls(), 2);
    let mut off = harness(answer(410, &[], b"gone"));
    off.config_mut().policy.negative_ttl = 0;
    off.get("/gone");
    off.get("/gone");
    assert_eq!(off.calls(), 2);
}

#[test]
fn only_an_anonymous_request_with_a_forbidding_answer_retires_an_entry() {
    for (headers, retired) in [
        (&[("cache-control", "no-store")][..], false),
        (&[("cookie", "cart=1")][..], false),
        // A revalidation asks for the whole entry, without the client's
        // range: the answer is about the entry, as an anonymous one is.
        (&[("range", "bytes=0-1")][..], true),
        (&[][..], true),
    ] {
        let mut h = harness(ok(
            &[("cache-control", "max-age=60"), ("etag", "\"r\"")],
            "shared",
        ));
        h.get("/retire");
        h.advance(61);
        // A Range would get a 206, as a real origin answers it.
        h.answer_with(|req: &Request<Vec<u8>>| {
            let mut r = Response::new(b"yours".to_vec());
            if req.headers().contains_key("range") {
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            }
            r.headers_mut()
                .insert("cache-control", "private".parse().unwrap());
            Ok(r)
        });
        h.send("GET", "/retire", headers);
        assert_eq!(
            h.proxy.storage.entries.borrow().is_empty(),
            retired,
            "{headers:?}"
        );
    }
}

#[test]
fn a_304_without_date_freshens_the_entry() {
    let mut h = harness(|_| unreachable!());
    // The origin's own Date on the stored response, as a real origin sends.
    let date: &'static str = Box::leak(httpdate::fmt_http_date(h.now).into_boxed_str());
    let headers: &'static [(&str, &str)] = Box::leak(Box::new([
        ("cache-control", "max-age=60"),
        ("etag", "\"d\""),
        ("date", date),
    ]));
    h.answer_with(ok(headers, "x"));
    h.get("/dateless");
    h.advance(61);
    h.answer_with(answer(
        304,
        &[("cache-control", "max-age=60"), ("etag", "\"d\"")],
        b"",
    ));
    h.get("/dateless");
    assert_eq!(status(&h.get("/dateless")), "edge-cache; hit; ttl=60");
    assert_eq!(h.calls(), 2);
}

#[test]
fn a_revalidation_the_origin_forbids_storing_forgets_the_entry() {
    let mut h = harness(ok(
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=600"),
            ("etag", "\"o\""),
        ],
        "old shared copy",
    ));
    h.get("/now-private");
    h.advance(61);
    h.answer_with(ok(&[("cache-control", "no-store")], "personal"));
    assert_eq!(h.get("/now-private").body(), b"old shared copy");
    // The background revalidation learnt that nothing may be stored.
    let next = h.get("/now-private");
    assert_eq!(next.body(), b"personal");
    assert!(status(&next).contains("fwd=uri-miss"));
}

#[test]
fn stale_if_error_covers_a_body_that_breaks_off() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60, stale-if-error=600")],
        "good",
    ));
    h.get("/breaks");
    h.advance(61);
    h.answer_with(answer(
        200,
        &[("cache-control", "max-age=60")],
        b"par\0<truncated>",
    ));
    let r = h.get("/breaks");
    assert_eq!(r.body(), b"good");
    assert!(status(&r).ends_with("detail=stale-if-error"));
}

#[test]
fn an_authenticated_revalidation_does_not_forget_the_shared_entry() {
    let mut h = harness(ok(
        &[("cache-control", "s-maxage=60"), ("etag", "\"s\"")],
        "shared",
    ));
    h.get("/shared");
    h.advance(61);
    h.answer_with(ok(&[("cache-control", "private")], "yours"));
    let personal = h.send("GET", "/shared", &[("authorization", "Bearer t")]);
    assert_eq!(personal.body(), b"yours");
    assert_eq!(h.proxy.storage.entries.borrow().len(), 1, "still stored");
    // Without Authorization, the same answer does retire it.
    h.get("/shared");
    assert!(h.proxy.storage.entries.borrow().is_empty());
}

#[test]
fn an_error_or_a_304_with_no_store_never_retires_an_entry() {
    let answers: [(u16, &'static [(&str, &str)]); 4] = [
        (400, &[("cache-control", "no-store")]),
        (
            406,
            &[(
                "cache-control",
                "no-cache, no-store, max-age=0, must-revalidate",
            )],
        ),
        (
            302,
            &[("cache-control", "private"), ("location", "/elsewhere")],
        ),
        (304, &[("cache-control", "no-store"), ("etag", "\"r\"")]),
    ];
    for (code, headers) in answers {
        let mut h = harness(ok(
            &[("cache-control", "max-age=60"), ("etag", "\"r\"")],
            "shared",
        ));
        h.get("/kept");
        h.advance(61);
        h.answer_with(answer(code, headers, b""));
        h.get("/kept");
        assert_eq!(h.proxy.storage.entries.borrow().len(), 1, "{code}");
    }
}

#[test]
fn a_clients_no_store_does_not_ride_on_the_shared_background_revalidation() {
    let mut h = harness(ok(
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=600"),
            ("etag", "\"v1\""),
        ],
        "one",
    ));
    h.get("/swr-ns");
    h.advance(70);
    let stale = h.send(
        "GET",
        "/swr-ns",
        &[("cache-control", "no-store"), ("pragma", "no-cache")],
    );
    assert_eq!(
        status(&stale),
        "edge-cache; hit; ttl=-10; detail=stale-while-revalidate"
    );
    let background = h.last_seen();
    assert!(!background.contains_key("cache-control"));
    assert!(!background.contains_key("pragma"));
    // The revalidation was stored: the next request is a fresh hit.
    assert_eq!(status(&h.get("/swr-ns")), "edge-cache; hit; ttl=60");
}

#[test]
fn a_background_revalidation_asks_in_the_requests_parameter_order() {
    let mut h = harness(ok(
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=30"),
            ("etag", "\"v1\""),
        ],
        "one",
    ));
    h.get("/swr?a=1&b=2");
    h.advance(70);
    let stale = h.get("/swr?b=2&a=%31");
    assert!(status(&stale).ends_with("detail=stale-while-revalidate"));
    let seen: Vec<String> = h
        .proxy
        .origin
        .seen
        .borrow()
        .iter()
        .map(|r| r.uri().to_string())
        .collect();
    assert_eq!(
        seen,
        [
            "https://shop.example/swr?a=1&b=2",
            "https://shop.example/swr?b=2&a=1"
        ]
    );
}
