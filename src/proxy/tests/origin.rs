//! What comes back from the origin: failures, broken or odd answers, and
//! what of it reaches storage and the client.

use super::*;

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
fn forged_metadata_from_origin_is_dropped() {
    let h = harness(ok(
        &[
            ("cache-control", "no-store"),
            (
                "x-edge-cache-meta",
                r#"{"v":3,"record":{"vary":{"names":[],"generation":"x"}}}"#,
            ),
        ],
        "x",
    ));
    assert!(!h.get("/a").headers().contains_key("x-edge-cache-meta"));
    assert!(h.proxy.storage.entries.borrow().is_empty());
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

#[test]
fn copies_of_one_url_with_bodies_of_different_lengths_never_share_a_record() {
    // Same fields, same instant, no Content-Length from the origin: only the
    // body tells the two apart, and the record must (see `crate::heads`).
    let record = |body: &'static [u8]| {
        let h = harness(answer(200, &[("cache-control", "max-age=60")], body));
        h.get("/same");
        let entries = h.proxy.storage.entries.borrow();
        let (_, stored) = entries.iter().next().expect("stored");
        assert_eq!(stored.headers()["content-length"], body.len().to_string());
        stored.headers()[crate::meta::META_HEADER].clone()
    };
    assert_ne!(record(b"short"), record(b"a longer body"));
}
