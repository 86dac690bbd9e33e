//! Purges through the admin API, as the next requests see them: hard and
//! soft, by tag, URL, prefix and everything, across isolates that share
//! only KV, and with KV failing.

use super::*;
use crate::memory::MemoryKv;

const TOKEN: &str = "a-test-token-of-enough-length";

/// A harness whose admin API is on.
pub(super) fn purging(
    handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
) -> Harness {
    let mut h = harness(handler);
    h.config_mut().admin_token = Some(TOKEN.into());
    h
}

impl Harness {
    fn admin(&self, method: &str, route: &str, body: &str) -> (u16, serde_json::Value) {
        self.admin_as(method, route, body, &format!("Bearer {TOKEN}"))
    }

    fn admin_as(
        &self,
        method: &str,
        route: &str,
        body: &str,
        auth: &str,
    ) -> (u16, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("https://shop.example/_admin{route}"))
            .header("authorization", auth)
            .body(body.as_bytes().to_vec())
            .unwrap();
        let response = futures::executor::block_on(self.proxy.handle(
            req,
            &RuntimeCountry::known(None),
            self.now,
        ));
        self.proxy.background.run();
        assert_eq!(response.headers()["cache-control"], "no-store");
        let json = serde_json::from_slice(response.body()).unwrap_or(serde_json::Value::Null);
        (response.status().as_u16(), json)
    }

    /// Purges, and moves the clock on a millisecond, as any later
    /// request's would be: a purge covers what was fetched in its own.
    pub(super) fn purge(&mut self, body: &str) -> serde_json::Value {
        let (code, json) = self.admin("POST", "/purge", body);
        assert_eq!(code, 200, "{json}");
        self.advance_ms(1);
        json
    }

    /// Another isolate: its own memo and flights, the same storage, origin and KV.
    fn other_isolate(&self) -> Harness {
        let mut proxy = self.proxy.clone();
        proxy.purges.memo = Default::default();
        proxy.flights = Flights::default();
        Harness {
            proxy,
            now: self.now,
            country: self.country.clone(),
        }
    }
}

pub(super) fn tagged(n: usize) -> Response<Vec<u8>> {
    let mut r = Response::new(format!("v{n}").into_bytes());
    for (k, v) in [
        ("cache-control", "max-age=600"),
        ("cache-tag", "Product-7,home"),
        ("surrogate-key", "shelf"),
        ("etag", "\"e1\""),
    ] {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    r
}

/// An origin answering `tagged(call number)`.
pub(super) fn counting() -> impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
    let n = std::cell::Cell::new(0);
    move |_| {
        n.set(n.get() + 1);
        Ok(tagged(n.get()))
    }
}

#[test]
fn a_hard_tag_purge_makes_the_next_request_a_miss() {
    let mut h = purging(counting());
    assert_eq!(h.get("/a").body(), b"v1");
    let hit = h.get("/a");
    assert_eq!(status(&hit), "edge-cache; hit; ttl=600");
    // Tags are the cache's: clients never see them.
    assert!(!hit.headers().contains_key("cache-tag"));
    assert!(!hit.headers().contains_key("surrogate-key"));
    h.advance_ms(5);
    let answer = h.purge(r#"{"tags": ["product-7"]}"#);
    assert_eq!(answer["tags"], serde_json::json!(["product-7"]));
    assert_eq!(answer["soft"], false);
    assert_eq!(answer["propagation_seconds"], 65);
    let miss = h.get("/a");
    assert_eq!(
        status(&miss),
        "edge-cache; fwd=uri-miss; fwd-status=200; stored; ttl=600; detail=purged"
    );
    assert_eq!(miss.body(), b"v2");
    // The refill began after the purge: it is not covered.
    h.advance_ms(1);
    assert_eq!(h.get("/a").body(), b"v2");
    assert_eq!(h.calls(), 2);
    // Other tags, either field, any case.
    for tag in ["SHELF", "home"] {
        h.advance_ms(1);
        h.purge(&format!(r#"{{"tags": ["{tag}"]}}"#));
        h.advance_ms(1);
        h.get("/a");
    }
    assert_eq!(h.calls(), 4);
    h.purge(r#"{"tags": ["unrelated"]}"#);
    h.advance_ms(1);
    assert_eq!(status(&h.get("/a")), "edge-cache; hit; ttl=600");
}

#[test]
fn a_soft_purge_serves_stale_once_and_revalidates_in_the_background() {
    let mut h = purging(counting());
    h.get("/a");
    h.advance_ms(5);
    h.purge(r#"{"tags": ["home"], "soft": true}"#);
    h.answer_with(answer(
        304,
        &[("etag", "\"e1\""), ("cache-control", "max-age=600")],
        b"",
    ));
    let soft = h.get("/a");
    assert_eq!(
        status(&soft),
        "edge-cache; hit; ttl=600; detail=soft-purged"
    );
    assert_eq!(soft.body(), b"v1");
    assert_eq!(h.calls(), 2, "revalidated in the background");
    let seen = h.proxy.origin.seen.borrow()[1].headers().clone();
    assert_eq!(seen["if-none-match"], "\"e1\"");
    h.advance_ms(1);
    let after = h.get("/a");
    assert_eq!(status(&after), "edge-cache; hit; ttl=600");
    assert_eq!(after.body(), b"v1", "the 304 kept the body");
    assert_eq!(h.calls(), 2);
}

#[test]
fn a_soft_purge_of_what_may_not_be_served_stale_revalidates_first() {
    let mut h = purging(ok(
        &[
            ("cache-control", "max-age=600, must-revalidate"),
            ("cache-tag", "t"),
            ("etag", "\"x\""),
        ],
        "body",
    ));
    h.get("/a");
    h.advance_ms(5);
    h.purge(r#"{"tags": ["t"], "soft": true}"#);
    let r = h.get("/a");
    assert!(
        status(&r).starts_with("edge-cache; fwd=stale; fwd-status=200"),
        "{}",
        status(&r)
    );
}

#[test]
fn url_purges_cover_every_variant_and_spelling() {
    let mut h = purging(echo("cf-device-type"));
    for agent in [IPHONE, DESKTOP] {
        h.send("GET", "/p/x?b=2&a=1", &[("user-agent", agent)]);
    }
    h.get("/other");
    assert_eq!(h.calls(), 3);
    h.advance_ms(5);
    h.purge(r#"{"urls": ["/P//x?a=1&b=2"]}"#);
    for agent in [IPHONE, DESKTOP] {
        let r = h.send("GET", "/p/x?a=1&b=2", &[("user-agent", agent)]);
        assert!(
            status(&r).contains("fwd-status=200; stored"),
            "{}",
            status(&r)
        );
    }
    assert_eq!(status(&h.get("/other")), "edge-cache; hit; ttl=60");
    assert_eq!(h.calls(), 5);
}

#[test]
fn prefix_purges_match_whole_segments_and_everything_covers_all() {
    let mut h = purging(counting());
    for path in ["/blog", "/blog/a", "/blog/a/b?p=2", "/blogger", "/shop"] {
        h.get(path);
    }
    h.advance_ms(5);
    h.purge(r#"{"prefixes": ["/blog/"]}"#);
    let missed: Vec<&str> = ["/blog", "/blog/a", "/blog/a/b?p=2", "/blogger", "/shop"]
        .into_iter()
        .filter(|p| status(&h.get(p)).contains("purged"))
        .collect();
    assert_eq!(missed, ["/blog", "/blog/a", "/blog/a/b?p=2"]);
    h.advance_ms(5);
    h.purge(r#"{"prefixes": ["other.example/shop"]}"#);
    assert!(!status(&h.get("/shop")).contains("purged"), "another host");
    h.purge(r#"{"everything": true}"#);
    assert!(status(&h.get("/shop")).contains("purged"));
    assert!(status(&h.get("/blogger")).contains("purged"));
}

#[test]
fn another_isolate_sees_a_purge_when_it_next_reads_kv() {
    let mut a = purging(counting());
    a.get("/a");
    let mut b = a.other_isolate();
    assert_eq!(status(&b.get("/a")), "edge-cache; hit; ttl=600");
    a.advance_ms(10);
    a.purge(r#"{"tags": ["home"]}"#);
    // Within PURGE_REFRESH, B decides on what it read.
    b.advance_ms(2_000);
    assert_eq!(status(&b.get("/a")), "edge-cache; hit; ttl=598");
    // Half-way: served as read, and the records are read in the background.
    b.advance_ms(600);
    b.get("/a");
    b.advance_ms(1);
    assert!(status(&b.get("/a")).contains("purged"));
    assert_eq!(b.calls(), 2);
}

#[test]
fn kv_failures_fail_towards_the_origin() {
    let h = purging(counting());
    h.get("/a");
    let kv: MemoryKv = h.proxy.purges.kv.clone().unwrap();
    *kv.failing.borrow_mut() = true;
    let (code, json) = h.admin("POST", "/purge", r#"{"tags": ["home"]}"#);
    assert_eq!(code, 503);
    assert!(
        json["error"].as_str().unwrap().contains("did not happen"),
        "{json}"
    );
    // An isolate that cannot read the records revalidates what it serves.
    let mut fresh = h.other_isolate();
    fresh.answer_with(answer(304, &[("etag", "\"e1\"")], b""));
    let r = fresh.get("/a");
    assert!(
        status(&r).starts_with("edge-cache; fwd=stale; fwd-status=304"),
        "{}",
        status(&r)
    );
    assert_eq!(r.body(), b"v1");
    // Records read once are trusted for a while, then no longer.
    *kv.failing.borrow_mut() = false;
    fresh.advance_ms(10_000);
    fresh.get("/a");
    *kv.failing.borrow_mut() = true;
    fresh.advance_ms(10_000);
    assert_eq!(status(&fresh.get("/a")), "edge-cache; hit; ttl=580");
    fresh.advance_ms(60_000);
    assert!(status(&fresh.get("/a")).starts_with("edge-cache; fwd=stale"));
}

#[test]
fn a_purge_writes_few_kv_records_and_lists_them() {
    let mut h = purging(counting());
    let tags: Vec<String> = (0..100).map(|i| format!("\"t{i}\"")).collect();
    let kv: MemoryKv = h.proxy.purges.kv.clone().unwrap();
    let before = *kv.ops.borrow();
    let answer = h.purge(&format!(r#"{{"tags": [{}]}}"#, tags.join(",")));
    assert_eq!(answer["records"], 3);
    assert_eq!(
        *kv.ops.borrow() - before,
        3,
        "one write per record, nothing else"
    );
    let (code, list) = h.admin("GET", "/purges", "");
    assert_eq!(code, 200);
    assert_eq!(list["purges"][0]["id"], answer["id"]);
    assert_eq!(list["purges"][0]["tags"].as_array().unwrap().len(), 100);
}

#[test]
fn the_api_is_shut_without_a_token_and_refuses_bad_requests() {
    let mut h = purging(counting());
    let (code, _) = h.admin_as(
        "POST",
        "/purge",
        r#"{"everything": true}"#,
        "Bearer wrong-token-of-some-length",
    );
    assert_eq!(code, 401);
    let (code, _) = h.admin_as("POST", "/purge", r#"{"everything": true}"#, "");
    assert_eq!(code, 401);
    let (code, json) = h.admin("POST", "/purge", r#"{"tags": "x"}"#);
    assert_eq!(
        (
            code,
            json["error"].as_str().unwrap().contains("invalid type")
        ),
        (400, true)
    );
    let big = format!(r#"{{"tags": ["{}"]}}"#, "x".repeat(300 * 1024));
    assert_eq!(h.admin("POST", "/purge", &big).0, 413);
    assert_eq!(h.admin("GET", "/purge", "").0, 405);
    h.config_mut().admin_token = None;
    let (code, json) = h.admin("POST", "/purge", r#"{"everything": true}"#);
    assert_eq!(code, 503);
    assert!(json["error"].as_str().unwrap().contains("ADMIN_TOKEN"));
    // The page needs no token, and says where its files are.
    let page = h.get("/_admin/");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(h.get("/_admin").status(), 308);
    assert_eq!(h.calls(), 0);
}

#[test]
fn warm_fills_through_the_pipeline_as_the_named_device() {
    let h = purging(echo("cf-device-type"));
    let body = r#"{"urls": ["/w1", "https://shop.example/w2"], "devices": ["mobile"]}"#;
    let (code, json) = h.admin("POST", "/warm", body);
    assert_eq!(code, 200, "{json}");
    assert_eq!(json["results"][0]["url"], "https://shop.example/w1");
    assert_eq!(json["results"][1]["device"], "mobile");
    assert_eq!(h.calls(), 2);
    for path in ["/w1", "/w2"] {
        let phone = h.send("GET", path, &[("user-agent", IPHONE)]);
        assert_eq!(status(&phone), "edge-cache; hit; ttl=60");
        assert!(std::str::from_utf8(phone.body())
            .unwrap()
            .contains("device=mobile"));
    }
    assert_eq!(h.calls(), 2);
}

#[test]
fn expose_tags_shows_them_for_debugging() {
    let mut h = purging(counting());
    h.config_mut().expose_tags = true;
    h.get("/a");
    let hit = h.get("/a");
    assert_eq!(hit.headers()["cache-tag"], "product-7,home");
    assert_eq!(hit.headers()["surrogate-key"], "shelf");
}
