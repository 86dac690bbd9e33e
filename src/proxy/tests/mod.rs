//! The pipeline end to end over in-memory storage and a scripted origin.
//! Each test asserts what the client sees and how often the origin was asked.

use super::*;
use crate::key::PathRules;
use crate::memory::{MemoryKv, MemoryStorage, QueuedBackground, ScriptedOrigin};
use std::time::{Duration, UNIX_EPOCH};

type TestProxy = Proxy<Vec<u8>, MemoryStorage, ScriptedOrigin, QueuedBackground, MemoryKv>;

struct Harness {
    proxy: TestProxy,
    now: SystemTime,
    /// The runtime's country for every request sent.
    country: RuntimeCountry,
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
            Rc::new(config),
            Flights::default(),
            Purges {
                kv: Some(MemoryKv::default()),
                memo: Default::default(),
            },
        ),
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        country: RuntimeCountry::known(None),
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
    /// The configuration, to change before a test's requests.
    fn config_mut(&mut self) -> &mut Config {
        Rc::make_mut(&mut self.proxy.config)
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("https://shop.example{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = futures::executor::block_on(self.proxy.handle(
            req.body(Vec::new()).unwrap(),
            &self.country,
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
    fn advance_ms(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
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
fn preconditions_are_answered_only_from_responses_the_cache_holds() {
    let mut h = harness(ok(
        &[
            ("cache-control", "private, no-store"),
            ("set-cookie", "session=s1; HttpOnly"),
            ("etag", "\"p1\""),
        ],
        "welcome",
    ));
    // RFC 9111 §4.3.2: nothing stored, so nothing to answer them from;
    // the origin never saw them (a fill asks without them).
    for inm in ["*", "\"p1\""] {
        let login = h.send("GET", "/login", &[("if-none-match", inm)]);
        assert_eq!(login.status(), 200, "{inm}");
        assert_eq!(login.body(), b"welcome");
        assert_eq!(login.headers()["set-cookie"], "session=s1; HttpOnly");
    }
    // A bypassed request takes its preconditions to the origin, whose 200 stands.
    h.config_mut().bypass_cookies = crate::cookies::BypassCookies::parse("session").unwrap();
    h.answer_with(ok(
        &[
            ("cache-control", "private"),
            ("set-cookie", "session=rotated"),
        ],
        "account",
    ));
    let headers = [("cookie", "session=old"), ("if-none-match", "*")];
    let account = h.send("GET", "/account", &headers);
    assert_eq!(account.status(), 200);
    assert_eq!(account.headers()["set-cookie"], "session=rotated");
    assert_eq!(h.last_seen()["if-none-match"], "*");
}

#[test]
fn a_clients_preconditions_do_not_ride_on_a_revalidation() {
    let version = Rc::new(std::cell::Cell::new(1));
    let current = version.clone();
    let mut h = harness(move |req| {
        let modified = format!("Wed, 0{} Jan 2020 00:00:00 GMT", current.get());
        let mut r = Response::new(format!("VERSION-{}", current.get()).into_bytes());
        let unchanged = req
            .headers()
            .get("if-modified-since")
            .is_some_and(|v| v == &modified[..]);
        // `*` is true of any representation (RFC 9110 §13.1.2): a 304 with no validators.
        if req.headers().get("if-none-match").is_some_and(|v| v == "*") || unchanged {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.body_mut().clear();
        } else {
            r.headers_mut()
                .insert("last-modified", modified.parse().unwrap());
        }
        r.headers_mut()
            .insert("cache-control", "max-age=3".parse().unwrap());
        Ok(r)
    });
    h.get("/page");
    version.set(2);
    h.advance(4);
    let headers = [("range", "bytes=0-0"), ("if-none-match", "*")];
    let attacker = h.send("GET", "/page", &headers);
    assert_eq!(attacker.status(), 304);
    let revalidation = h.last_seen();
    assert!(!revalidation.contains_key("if-none-match"));
    assert!(!revalidation.contains_key("range"));
    assert_eq!(
        revalidation["if-modified-since"],
        "Wed, 01 Jan 2020 00:00:00 GMT"
    );
    let plain = h.get("/page");
    assert_eq!(plain.body(), b"VERSION-2");
    assert_eq!(status(&plain), "edge-cache; hit; ttl=3");
}

#[test]
fn if_match_and_if_unmodified_since_rule_out_the_stored_bytes() {
    let mut h = harness(|req| {
        let mut r = Response::new(b"0123456789".to_vec());
        if req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.body_mut().clear();
        }
        r.headers_mut()
            .insert("cache-control", "max-age=3".parse().unwrap());
        r.headers_mut().insert("etag", "\"v1\"".parse().unwrap());
        r.headers_mut().insert(
            "last-modified",
            "Wed, 01 Jan 2020 00:00:00 GMT".parse().unwrap(),
        );
        Ok(r)
    });
    h.get("/file");
    // A client resuming a download of another representation gets no bytes
    // of this one, fresh or just revalidated (RFC 9110 §13.2.2).
    for advance in [0, 4] {
        h.advance(advance);
        for precondition in [
            ("if-match", "\"v0\""),
            ("if-unmodified-since", "Tue, 31 Dec 2019 00:00:00 GMT"),
        ] {
            let resumed = h.send("GET", "/file", &[("range", "bytes=0-3"), precondition]);
            assert_eq!(resumed.status(), 412, "{precondition:?} after {advance}s");
            assert!(resumed.body().is_empty());
        }
        let same = h.send(
            "GET",
            "/file",
            &[("range", "bytes=0-3"), ("if-match", "\"v1\"")],
        );
        assert_eq!(same.status(), 206);
        assert_eq!(same.body(), b"0123");
    }
    assert_eq!(h.get("/file").body(), b"0123456789");
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
fn admin_path_is_reserved() {
    let h = harness(ok(&[], "x"));
    let r = h.get("/_admin/nothing");
    assert_eq!(r.status(), 404);
    assert_eq!(status(&r), "edge-cache; detail=admin");
    assert_eq!(r.headers()["cache-control"], "no-store");
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

impl Harness {
    /// The fields of the last request the origin saw.
    fn last_seen(&self) -> HeaderMap {
        let seen = self.proxy.origin.seen.borrow();
        seen.last().expect("the origin was asked").headers().clone()
    }

    /// Replaces what the origin answers from now on.
    fn answer_with(
        &self,
        handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
    ) {
        *self.proxy.origin.handler.borrow_mut() = Box::new(handler);
    }
}

mod coalesce;
mod esi;
mod keys;
mod origin;
mod purge;
mod stale;
