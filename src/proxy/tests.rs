//! The pipeline end to end over in-memory storage and a scripted origin.
//! Each test asserts what the client sees and how often the origin was asked.

use super::*;
use crate::key::PathRules;
use crate::memory::{MemoryStorage, QueuedBackground, ScriptedOrigin};
use std::time::{Duration, UNIX_EPOCH};

type TestProxy = Proxy<Vec<u8>, MemoryStorage, ScriptedOrigin, QueuedBackground>;

struct Harness {
    proxy: TestProxy,
    now: SystemTime,
}

fn harness(
    handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
) -> Harness {
    let config =
        Config::from_lookup(|name| (name == "ORIGIN").then(|| "http://origin.test".to_string()))
            .expect("the defaults are valid");
    Harness {
        proxy: Proxy::new(
            MemoryStorage::default(),
            ScriptedOrigin::new(handler),
            QueuedBackground::default(),
            config,
            Flights::default(),
        ),
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    }
}

/// An origin answering 200 with `body` and the given headers.
fn ok(
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
    move |_| {
        let mut r = Response::new(body.as_bytes().to_vec());
        for (k, v) in headers {
            r.headers_mut().append(*k, v.parse().unwrap());
        }
        Ok(r)
    }
}

impl Harness {
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("https://shop.example{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = futures::executor::block_on(self.proxy.handle(
            req.body(Vec::new()).unwrap(),
            None,
            self.now,
        ));
        self.proxy.background.run();
        response
    }
    fn get(&self, path: &str) -> Response<Vec<u8>> {
        self.send("GET", path, &[])
    }
    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }
    fn calls(&self) -> usize {
        self.proxy.origin.calls()
    }
}

fn status(r: &Response<Vec<u8>>) -> &str {
    r.headers()["cache-status"].to_str().unwrap()
}

#[test]
fn miss_then_hit_with_age() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=60"), ("x-origin", "1")],
        "hello",
    ));
    let first = h.get("/a");
    assert_eq!(
        status(&first),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(first.body(), b"hello");
    h.advance(10);
    let second = h.get("/a");
    assert_eq!(status(&second), "edge-cache; hit; ttl=50");
    assert_eq!(second.body(), b"hello");
    assert_eq!(second.headers()["age"], "10");
    assert_eq!(second.headers()["cache-control"], "max-age=60");
    assert_eq!(second.headers()["x-origin"], "1");
    assert!(!second.headers().contains_key("x-edge-cache-meta"));
    assert_eq!(h.calls(), 1);
}

#[test]
fn not_storable_responses_say_why() {
    let cases: &[(&'static [(&'static str, &'static str)], &str)] = &[
        (&[("cache-control", "no-store, max-age=60")], "no-store"),
        (&[("cache-control", "private, max-age=60")], "private"),
        (&[], "no-freshness"),
        (
            &[("cache-control", "max-age=60"), ("vary", "*")],
            "vary-star",
        ),
    ];
    for (headers, detail) in cases {
        let h = harness(ok(headers, "x"));
        let first = h.get("/a");
        assert_eq!(
            status(&first),
            format!("edge-cache; fwd=uri-miss; fwd-status=200; detail={detail}")
        );
        h.get("/a");
        assert_eq!(h.calls(), 2, "{detail}");
    }
}

#[test]
fn targeted_field_governs_and_is_not_forwarded() {
    let h = harness(ok(
        &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=90"),
        ],
        "x",
    ));
    let first = h.get("/a");
    assert!(!first.headers().contains_key("cdn-cache-control"));
    let hit = h.get("/a");
    assert_eq!(status(&hit), "edge-cache; hit; ttl=90");
    assert_eq!(hit.headers()["cache-control"], "no-store");
    assert!(!hit.headers().contains_key("cdn-cache-control"));
    assert_eq!(h.calls(), 1);
}

#[test]
fn vary_keeps_variants_apart() {
    let h = harness(|req| {
        let lang = req
            .headers()
            .get("accept-language")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let mut r = Response::new(format!("lang={lang}").into_bytes());
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        r.headers_mut()
            .insert("vary", "Accept-Language".parse().unwrap());
        Ok(r)
    });
    let de = [("accept-language", "de")];
    let fr = [("accept-language", "fr")];
    assert_eq!(
        status(&h.send("GET", "/v", &de)),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(
        status(&h.send("GET", "/v", &fr)),
        "edge-cache; fwd=vary-miss; fwd-status=200; stored; ttl=60"
    );
    let de_hit = h.send("GET", "/v", &de);
    assert_eq!(de_hit.body(), b"lang=de");
    assert_eq!(de_hit.headers()["vary"], "Accept-Language");
    assert_eq!(h.send("GET", "/v", &fr).body(), b"lang=fr");
    assert_eq!(
        status(&h.send("GET", "/v", &[])),
        "edge-cache; fwd=vary-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(h.calls(), 3);
}

#[test]
fn unsafe_method_invalidates_target_and_same_origin_location() {
    let h = harness(|req| {
        let mut r = Response::new(b"x".to_vec());
        if req.method() == Method::POST {
            r.headers_mut()
                .insert("location", "/other".parse().unwrap());
            r.headers_mut().insert(
                "content-location",
                "https://elsewhere.example/x".parse().unwrap(),
            );
        } else {
            r.headers_mut()
                .insert("cache-control", "max-age=60".parse().unwrap());
        }
        Ok(r)
    });
    h.get("/a");
    h.get("/other");
    let post = h.send("POST", "/a", &[]);
    assert_eq!(status(&post), "edge-cache; fwd=method; fwd-status=200");
    assert_eq!(
        status(&h.get("/a")),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(
        status(&h.get("/other")),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(h.calls(), 5);
}

#[test]
fn failed_unsafe_request_invalidates_nothing() {
    let h = harness(|req| {
        let mut r = Response::new(b"x".to_vec());
        *r.status_mut() = if req.method() == Method::POST {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        Ok(r)
    });
    h.get("/a");
    h.send("POST", "/a", &[]);
    assert_eq!(status(&h.get("/a")), "edge-cache; hit; ttl=60");
}

#[test]
fn stale_entry_is_revalidated_with_its_etag() {
    let mut h = harness(|req| {
        let mut r = Response::new(b"body".to_vec());
        if req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.body_mut().clear();
            r.headers_mut().insert("x-fresh", "yes".parse().unwrap());
        }
        r.headers_mut()
            .insert("cache-control", "max-age=10".parse().unwrap());
        r.headers_mut().insert("etag", "\"v1\"".parse().unwrap());
        Ok(r)
    });
    h.get("/a");
    h.advance(11);
    let revalidated = h.get("/a");
    assert_eq!(
        status(&revalidated),
        "edge-cache; fwd=stale; fwd-status=304; stored; ttl=10"
    );
    assert_eq!(revalidated.status(), 200);
    assert_eq!(revalidated.body(), b"body");
    assert_eq!(revalidated.headers()["x-fresh"], "yes");
    assert_eq!(
        h.proxy.origin.seen.borrow()[1].headers()["if-none-match"],
        "\"v1\""
    );
    h.advance(5);
    let hit = h.get("/a");
    assert_eq!(status(&hit), "edge-cache; hit; ttl=5");
    assert_eq!(hit.body(), b"body");
    assert_eq!(h.calls(), 2);
}

#[test]
fn no_cache_revalidates_every_time() {
    let h = harness(|req| {
        let mut r = Response::new(b"body".to_vec());
        if req.headers().contains_key("if-none-match") {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.body_mut().clear();
        }
        r.headers_mut()
            .insert("cache-control", "no-cache, max-age=600".parse().unwrap());
        r.headers_mut().insert("etag", "\"v1\"".parse().unwrap());
        Ok(r)
    });
    h.get("/a");
    for _ in 0..2 {
        let r = h.get("/a");
        assert_eq!(
            status(&r),
            "edge-cache; fwd=stale; fwd-status=304; stored; ttl=600"
        );
        assert_eq!(r.body(), b"body");
    }
    assert_eq!(h.calls(), 3);
}

#[test]
fn head_is_answered_from_stored_get() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "hello"));
    let miss = h.send("HEAD", "/a", &[]);
    assert!(miss.body().is_empty());
    assert_eq!(h.proxy.origin.seen.borrow()[0].method(), Method::GET);
    let hit = h.send("HEAD", "/a", &[]);
    assert_eq!(status(&hit), "edge-cache; hit; ttl=60");
    assert!(hit.body().is_empty());
    assert_eq!(h.get("/a").body(), b"hello");
    assert_eq!(h.calls(), 1);
}

#[test]
fn client_conditionals_get_304_from_cache() {
    let h = harness(ok(
        &[("cache-control", "max-age=60"), ("etag", "\"e1\"")],
        "hello",
    ));
    let miss = h.send("GET", "/a", &[("if-none-match", "\"e1\"")]);
    assert_eq!(miss.status(), 304);
    assert!(!h.proxy.origin.seen.borrow()[0]
        .headers()
        .contains_key("if-none-match"));
    let hit = h.send("GET", "/a", &[("if-none-match", "\"e1\"")]);
    assert_eq!(hit.status(), 304);
    assert!(hit.body().is_empty());
    assert_eq!(hit.headers()["etag"], "\"e1\"");
    assert!(hit.headers().contains_key("age"));
    assert_eq!(
        h.send("GET", "/a", &[("if-none-match", "\"e0\"")]).status(),
        200
    );
    assert_eq!(h.calls(), 1);
}

#[test]
fn ranges_are_cut_from_the_stored_full_response() {
    let h = harness(|req| {
        let mut r = Response::new(b"0123456789".to_vec());
        if req.headers().contains_key("range") {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            *r.body_mut() = b"01".to_vec();
        }
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        Ok(r)
    });
    let passed = h.send("GET", "/r", &[("range", "bytes=0-1")]);
    assert_eq!(passed.status(), 206);
    assert_eq!(
        status(&passed),
        "edge-cache; fwd=uri-miss; fwd-status=206; detail=status"
    );
    h.get("/r");
    let part = h.send("GET", "/r", &[("range", "bytes=2-4")]);
    assert_eq!(part.status(), 206);
    assert_eq!(part.body(), b"234");
    assert_eq!(part.headers()["content-range"], "bytes 2-4/10");
    let bad = h.send("GET", "/r", &[("range", "bytes=20-")]);
    assert_eq!(bad.status(), 416);
    assert_eq!(bad.headers()["content-range"], "bytes */10");
    assert_eq!(h.calls(), 2);
}

#[test]
fn authorization_needs_a_shareable_response() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "anon"));
    h.get("/a");
    let authed = h.send("GET", "/a", &[("authorization", "Bearer t")]);
    assert_eq!(
        status(&authed),
        "edge-cache; fwd=bypass; fwd-status=200; detail=authorization"
    );
    assert_eq!(h.calls(), 2);

    let public = harness(ok(&[("cache-control", "public, max-age=60")], "pub"));
    public.send("GET", "/a", &[("authorization", "Bearer t")]);
    assert_eq!(
        status(&public.send("GET", "/a", &[("authorization", "Bearer u")])),
        "edge-cache; hit; ttl=60"
    );
    assert_eq!(public.calls(), 1);
}

#[test]
fn only_if_cached_never_forwards() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    let r = h.send("GET", "/a", &[("cache-control", "only-if-cached")]);
    assert_eq!(r.status(), 504);
    assert_eq!(h.calls(), 0);
    h.get("/a");
    assert_eq!(
        h.send("GET", "/a", &[("cache-control", "only-if-cached")])
            .status(),
        200
    );
}

#[test]
fn client_no_cache_is_served_from_cache() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    h.get("/a");
    for cc in ["no-cache", "max-age=0"] {
        assert_eq!(
            status(&h.send("GET", "/a", &[("cache-control", cc)])),
            "edge-cache; hit; ttl=60"
        );
    }
    assert_eq!(h.calls(), 1);
}

#[test]
fn origin_timeout_is_a_504() {
    let h = harness(|_| Err(OriginError::TimedOut));
    let r = h.get("/a");
    assert_eq!(r.status(), 504);
    assert_eq!(
        status(&r),
        "edge-cache; fwd=uri-miss; detail=origin-timeout"
    );
}

#[test]
fn origin_failure_is_a_502_and_storage_failure_fails_open() {
    let h = harness(|_| Err(OriginError::Unreachable("connection refused".into())));
    let r = h.get("/a");
    assert_eq!(r.status(), 502);
    assert_eq!(
        status(&r),
        "edge-cache; fwd=uri-miss; detail=origin-unreachable"
    );

    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    *h.proxy.storage.failing.borrow_mut() = true;
    assert_eq!(h.get("/a").status(), 200);
    assert_eq!(h.get("/a").body(), b"x");
    assert_eq!(h.calls(), 2);
    assert!(!h.proxy.background.warnings.borrow().is_empty());
}

#[test]
fn set_cookie_never_reaches_storage() {
    let h = harness(ok(
        &[("cache-control", "max-age=60"), ("set-cookie", "sid=1")],
        "x",
    ));
    assert!(!h.get("/a").headers().contains_key("set-cookie"));
    assert!(!h.get("/a").headers().contains_key("set-cookie"));
    assert!(h
        .proxy
        .storage
        .entries
        .borrow()
        .values()
        .all(|r| !r.headers().contains_key("set-cookie")));
    let private = harness(ok(
        &[
            ("cache-control", "private, max-age=60"),
            ("set-cookie", "sid=1"),
        ],
        "x",
    ));
    assert_eq!(private.get("/a").headers()["set-cookie"], "sid=1");
}

#[test]
fn forged_metadata_from_origin_is_dropped() {
    let h = harness(ok(
        &[
            ("cache-control", "no-store"),
            (
                "x-edge-cache-meta",
                "{\"v\":1,\"kind\":\"vary\",\"names\":[],\"generation\":\"x\"}",
            ),
        ],
        "x",
    ));
    assert!(!h.get("/a").headers().contains_key("x-edge-cache-meta"));
    assert!(h.proxy.storage.entries.borrow().is_empty());
}

#[test]
fn admin_path_is_reserved() {
    let h = harness(ok(&[], "x"));
    let r = h.get("/_admin/purge");
    assert_eq!(r.status(), 404);
    assert_eq!(status(&r), "edge-cache; detail=admin");
    assert_eq!(h.get("/_administrator").status(), 200);
    for method in ["GET", "POST", "DELETE"] {
        for path in ["/%5Fadmin/purge", "//_admin/x", "/_ADMIN/x", "/_admin;x/y"] {
            let r = h.send(method, path, &[]);
            assert_eq!(status(&r), "edge-cache; detail=admin", "{method} {path}");
        }
    }
    assert_eq!(h.calls(), 1);
}

/// An origin answering `status` with `body` and `headers`.
fn answer(
    code: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
) -> impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
    move |_| {
        let mut r = Response::new(body.to_vec());
        *r.status_mut() = StatusCode::from_u16(code).unwrap();
        for (k, v) in headers {
            r.headers_mut().append(*k, v.parse().unwrap());
        }
        Ok(r)
    }
}

#[test]
fn a_body_that_broke_off_is_never_stored() {
    // With Content-Length the client sees the short body for what it is;
    // storage must not keep it.
    let h = harness(answer(
        200,
        &[("cache-control", "max-age=60"), ("content-length", "100")],
        b"part\0<truncated>",
    ));
    h.get("/cut");
    assert!(h.proxy.storage.entries.borrow().is_empty());
    assert!(h.proxy.background.warnings.borrow()[0].contains("body incomplete"));
    // Without it, the body is read whole before it is sent: the client gets a 502.
    let h = harness(answer(
        200,
        &[("cache-control", "max-age=60")],
        b"part\0<truncated>",
    ));
    let r = h.get("/chunked");
    assert_eq!(r.status(), 502);
    assert_eq!(
        status(&r),
        "edge-cache; fwd=uri-miss; fwd-status=200; detail=origin-incomplete"
    );
    assert!(h.proxy.storage.entries.borrow().is_empty());
}

#[test]
fn a_body_longer_or_shorter_than_its_length_is_never_stored() {
    for length in ["3", "9"] {
        let headers: &'static [(&str, &str)] = match length {
            "3" => &[("cache-control", "max-age=60"), ("content-length", "3")],
            _ => &[("cache-control", "max-age=60"), ("content-length", "9")],
        };
        let h = harness(answer(200, headers, b"hello"));
        h.get("/len");
        assert!(h.proxy.storage.entries.borrow().is_empty(), "{length}");
        h.get("/len");
        assert_eq!(h.calls(), 2, "{length}");
    }
}

#[test]
fn statuses_outside_200_to_599_are_a_502_and_never_stored() {
    for code in [100, 101, 103, 600, 999] {
        let h = harness(answer(code, &[("cache-control", "max-age=60")], b"odd"));
        let r = h.get("/odd");
        assert_eq!(r.status(), 502, "{code}");
        assert_eq!(
            status(&r),
            "edge-cache; fwd=uri-miss; detail=origin-invalid-status"
        );
        h.get("/odd");
        assert_eq!(h.calls(), 2, "{code}");
    }
}

#[test]
fn a_304_for_another_representation_refetches_in_full() {
    let h = harness(|req: &Request<Vec<u8>>| {
        let mut r = Response::new(Vec::new());
        if req.headers().contains_key("if-none-match") {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
        } else {
            *r.body_mut() = b"two".to_vec();
        }
        r.headers_mut().insert("etag", "\"v2\"".parse().unwrap());
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        Ok(r)
    });
    // Stored v1, stale on arrival but revalidatable.
    let stored = harness(answer(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("age", "60"),
            ("etag", "\"v1\""),
        ],
        b"one",
    ));
    stored.get("/swap");
    *h.proxy.storage.entries.borrow_mut() = stored.proxy.storage.entries.borrow().clone();
    let r = h.get("/swap");
    assert_eq!(r.body(), b"two");
    assert_eq!(r.headers()["etag"], "\"v2\"");
    assert_eq!(h.calls(), 2);
    assert!(!h.proxy.origin.seen.borrow()[1]
        .headers()
        .contains_key("if-none-match"));
    assert_eq!(h.get("/swap").body(), b"two");
    assert_eq!(h.calls(), 2);
}

#[test]
fn a_range_miss_keeps_its_preconditions() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "full"));
    h.send(
        "GET",
        "/r",
        &[
            ("range", "bytes=0-1"),
            ("if-range", "\"v1\""),
            ("if-match", "\"v1\""),
        ],
    );
    h.send("GET", "/s", &[("if-none-match", "\"v1\"")]);
    let seen = h.proxy.origin.seen.borrow();
    assert_eq!(seen[0].headers()["if-range"], "\"v1\"");
    assert_eq!(seen[0].headers()["if-match"], "\"v1\"");
    assert!(!seen[1].headers().contains_key("if-none-match"));
}

#[test]
fn hop_by_hop_fields_are_not_forwarded() {
    let h = harness(ok(
        &[
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("cache-control", "max-age=5"),
        ],
        "x",
    ));
    let r = h.send(
        "GET",
        "/a",
        &[
            ("connection", "x-client-hop"),
            ("x-client-hop", "1"),
            ("keep-alive", "5"),
        ],
    );
    assert!(!r.headers().contains_key("x-hop"));
    let seen = h.proxy.origin.seen.borrow();
    assert!(!seen[0].headers().contains_key("x-client-hop"));
    assert!(!seen[0].headers().contains_key("keep-alive"));
}

#[test]
fn every_write_is_one_the_cache_api_keeps() {
    let h = harness(|req| {
        let mut r = Response::new(b"x".to_vec());
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        r.headers_mut().insert("vary", "accept".parse().unwrap());
        r.headers_mut().insert("set-cookie", "a=1".parse().unwrap());
        if req.method() == Method::HEAD {
            r.body_mut().clear();
        }
        Ok(r)
    });
    h.get("/a");
    h.send("HEAD", "/b", &[]);
    assert!(
        h.proxy.background.warnings.borrow().is_empty(),
        "{:?}",
        h.proxy.background.warnings.borrow()
    );
    assert_eq!(h.proxy.storage.entries.borrow().len(), 4);
}

#[test]
fn a_cacheable_error_keeps_its_status_through_storage() {
    let h = harness(|_| {
        let mut r = Response::new(b"down".to_vec());
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut()
            .insert("cache-control", "max-age=30".parse().unwrap());
        Ok(r)
    });
    h.get("/e");
    let hit = h.get("/e");
    assert_eq!(hit.status(), 503);
    assert_eq!(status(&hit), "edge-cache; hit; ttl=30");
    assert_eq!(h.calls(), 1);
}

/// An origin that answers with what it saw, cacheable, varying as told.
fn echo(
    vary: &'static str,
) -> impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
    move |req| {
        let h = |n: &str| {
            req.headers()
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let body = format!(
            "{} device={} country={}",
            req.uri(),
            h("cf-device-type"),
            h("cf-ipcountry")
        );
        let mut r = Response::new(body.into_bytes());
        r.headers_mut()
            .insert("cache-control", "max-age=60".parse().unwrap());
        if !vary.is_empty() {
            r.headers_mut().insert("vary", vary.parse().unwrap());
        }
        Ok(r)
    }
}

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148";
const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120.0 Mobile Safari/537.36";
const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36";

#[test]
fn tracking_parameters_and_order_share_one_entry_and_the_origin_sees_the_key() {
    let h = harness(echo(""));
    let first = h.get("/p?b=2&a=1&utm_source=news");
    assert_eq!(
        first.body(),
        b"https://shop.example/p?a=1&b=2 device=desktop country=XX"
    );
    assert_eq!(
        status(&h.get("/p?a=1&b=2&gclid=x")),
        "edge-cache; hit; ttl=60"
    );
    assert_eq!(
        status(&h.get("/p?a=1")),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
    );
    assert_eq!(h.calls(), 2);
}

#[test]
fn vary_on_device_type_keys_on_the_class_not_the_agent() {
    let h = harness(echo("CF-Device-Type"));
    assert_eq!(
        h.send("GET", "/d", &[("user-agent", IPHONE)]).body(),
        b"https://shop.example/d device=mobile country=XX"
    );
    let pixel = h.send("GET", "/d", &[("user-agent", PIXEL)]);
    assert_eq!(status(&pixel), "edge-cache; hit; ttl=60");
    let desktop = h.send("GET", "/d", &[("user-agent", DESKTOP)]);
    assert_eq!(
        desktop.body(),
        b"https://shop.example/d device=desktop country=XX"
    );
    // A client cannot choose its own variant.
    let spoof = h.send(
        "GET",
        "/d",
        &[("user-agent", DESKTOP), ("cf-device-type", "mobile")],
    );
    assert!(spoof.body().ends_with(b"device=desktop country=XX"));
    assert_eq!(h.calls(), 2);
}

#[test]
fn vary_user_agent_is_keyed_on_the_raw_agent_by_default() {
    let h = harness(echo("User-Agent"));
    h.send("GET", "/ua", &[("user-agent", IPHONE)]);
    assert!(status(&h.send("GET", "/ua", &[("user-agent", PIXEL)])).contains("fwd=vary-miss"));
    assert_eq!(
        h.proxy.origin.seen.borrow()[1].headers()["user-agent"],
        PIXEL
    );
}

#[test]
fn keyed_by_device_the_origin_sees_only_the_class_agent() {
    let mut h = harness(echo("User-Agent"));
    h.proxy.config.user_agent = UserAgentKey::Device;
    h.send("GET", "/ua", &[("user-agent", IPHONE)]);
    assert_eq!(
        status(&h.send("GET", "/ua", &[("user-agent", PIXEL)])),
        "edge-cache; hit; ttl=60"
    );
    let canonical = crate::device::DeviceClass::Mobile.canonical_agent();
    assert_eq!(
        h.proxy.origin.seen.borrow()[0].headers()["user-agent"],
        canonical
    );
}

#[test]
fn path_rules_vary_without_the_origin() {
    let mut h = harness(echo(""));
    h.proxy.config.path_rules = PathRules::parse(r#"{"/shop/": ["device"]}"#).unwrap();
    h.send("GET", "/shop/x", &[("user-agent", IPHONE)]);
    assert!(
        status(&h.send("GET", "/shop/x", &[("user-agent", DESKTOP)])).contains("fwd=vary-miss")
    );
    assert!(status(&h.send("GET", "/shop/x", &[("user-agent", PIXEL)])).contains("hit"));
    h.send("GET", "/blog", &[("user-agent", IPHONE)]);
    assert!(status(&h.send("GET", "/blog", &[("user-agent", DESKTOP)])).contains("hit"));
}

#[test]
fn bypass_cookies_skip_the_cache_and_keep_their_cookies() {
    let mut h = harness(echo(""));
    h.proxy.config.bypass_cookies = crate::cookies::BypassCookies::parse("session").unwrap();
    h.get("/c");
    let bypass = h.send("GET", "/c", &[("cookie", "theme=1; session=abc")]);
    assert_eq!(
        status(&bypass),
        "edge-cache; fwd=bypass; fwd-status=200; detail=cookie"
    );
    assert_eq!(
        h.proxy.origin.seen.borrow()[1].headers()["cookie"],
        "theme=1; session=abc"
    );
    // Other cookies are not part of the key.
    let other = h.send("GET", "/c", &[("cookie", "theme=2")]);
    assert!(status(&other).contains("hit"), "{}", status(&other));
    assert_eq!(h.calls(), 2);
}

#[test]
fn vary_cookie_is_not_stored() {
    let h = harness(echo("Cookie"));
    assert!(status(&h.get("/vc")).ends_with("detail=vary-cookie"));
}

#[test]
fn unkeyed_inputs_never_reach_the_origin() {
    let h = harness(echo(""));
    h.send(
        "GET",
        "/u",
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-original-url", "/admin"),
            ("x-http-method-override", "DELETE"),
        ],
    );
    let seen = &h.proxy.origin.seen.borrow()[0];
    for name in crate::headers::UNKEYED_INPUTS {
        assert!(!seen.headers().contains_key(name), "{name}");
    }
}

#[test]
fn a_vary_marker_lives_as_long_as_its_variants() {
    let mut h = harness(ok(
        &[("cache-control", "max-age=3600"), ("vary", "accept")],
        "x",
    ));
    h.proxy.config.retain_stale = 0;
    h.get("/m");
    let entries = h.proxy.storage.entries.borrow();
    let lifetimes: Vec<u64> = entries
        .values()
        .map(|r| {
            let cc = r.headers()["cache-control"].to_str().unwrap();
            crate::cache_control::Directives::parse(cc)
                .seconds("max-age")
                .unwrap()
        })
        .collect();
    assert_eq!(lifetimes.len(), 2, "a marker and a variant");
    assert_eq!(
        lifetimes.iter().min(),
        lifetimes.iter().max(),
        "marker and variant lifetimes: {lifetimes:?}"
    );
}

#[test]
fn a_longer_lived_variant_extends_its_marker_without_orphaning_the_others() {
    let h = harness(|req| {
        let long = req.headers().get("accept").is_some_and(|v| v == "long");
        let mut r = Response::new(b"x".to_vec());
        let cc = if long { "max-age=90000" } else { "max-age=60" };
        r.headers_mut().insert("cache-control", cc.parse().unwrap());
        r.headers_mut().insert("vary", "accept".parse().unwrap());
        Ok(r)
    });
    h.send("GET", "/m", &[("accept", "short")]);
    h.send("GET", "/m", &[("accept", "long")]);
    assert!(status(&h.send("GET", "/m", &[("accept", "short")])).contains("hit"));
    assert!(status(&h.send("GET", "/m", &[("accept", "long")])).contains("hit"));
    assert_eq!(h.calls(), 2);
    let marker_lifetime = h
        .proxy
        .storage
        .entries
        .borrow()
        .values()
        .filter(|r| r.body() == b"vary marker\n")
        .map(|r| r.headers()["cache-control"].to_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        marker_lifetime,
        ["public, max-age=176400"],
        "90000 fresh + one day retained"
    );
}

#[test]
fn a_request_without_a_host_bypasses_the_cache() {
    let h = harness(ok(&[("cache-control", "max-age=60")], "x"));
    let request = Request::builder().uri("/no-host").body(Vec::new()).unwrap();
    let r = futures::executor::block_on(h.proxy.handle(request, None, h.now));
    h.proxy.background.run();
    assert_eq!(
        status(&r),
        "edge-cache; fwd=bypass; fwd-status=200; detail=no-host"
    );
    assert!(h.proxy.storage.entries.borrow().is_empty());
}

impl Harness {
    /// Replaces what the origin answers from now on.
    fn answer_with(
        &self,
        handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
    ) {
        *self.proxy.origin.handler.borrow_mut() = Box::new(handler);
    }
}

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
        h.proxy.config.stale = crate::stale::StaleDefaults {
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
    h.proxy.config.stale = crate::stale::StaleDefaults {
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
    off.proxy.config.policy.negative_ttl = 0;
    off.get("/gone");
    off.get("/gone");
    assert_eq!(off.calls(), 2);
}

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
                let answer = proxy.handle(request, None, now).await;
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
    h.advance(u64::from(h.proxy.config.origin_timeout_secs));
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
fn only_an_anonymous_request_with_a_forbidding_answer_retires_an_entry() {
    for (headers, retired) in [
        (&[("cache-control", "no-store")][..], false),
        (&[("cookie", "cart=1")][..], false),
        (&[("range", "bytes=0-1")][..], false),
        (&[][..], true),
    ] {
        let mut h = harness(ok(
            &[("cache-control", "max-age=60"), ("etag", "\"r\"")],
            "shared",
        ));
        h.get("/retire");
        h.advance(61);
        // A Range gets a 206, as a real origin answers it.
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
