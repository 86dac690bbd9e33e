//! ESI composition through the pipeline: each fragment a request of its
//! own, the template stored as it is, honest headers on the composed page.

use super::*;

/// A harness with purges and composition on.
fn purging(
    handler: impl Fn(&Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> + 'static,
) -> Harness {
    let mut h = super::purge::purging(handler);
    h.config_mut().esi = true;
    h
}

/// An origin of pages and fragments, by path; counts calls per path.
fn site(req: &Request<Vec<u8>>) -> Result<Response<Vec<u8>>, OriginError> {
    let path = req.uri().path().to_string();
    let device = req
        .headers()
        .get("cf-device-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let esi = ("surrogate-control", "content=\"ESI/1.0\"");
    let (headers, body): (Vec<(&str, &str)>, String) = match path.as_str() {
        "/page" => (
            vec![esi, ("cache-control", "max-age=60"), ("etag", "\"template\"")],
            r#"<h1><esi:include src="/frag/a"/></h1><p><esi:include src="frag/b"/></p><esi:include src="/frag/a"/>"#.into(),
        ),
        "/frag/a" => (
            vec![("cache-control", "max-age=30"), ("set-cookie", "f=1"), ("cache-tag", "frag-a")],
            "A".into(),
        ),
        "/frag/b" => (
            vec![("cache-control", "max-age=90"), ("vary", "cf-device-type")],
            format!("B-{device}"),
        ),
        "/bomb" => (
            vec![esi, ("cache-control", "max-age=60")],
            r#"<esi:include src="/frag/a"/>"#.repeat(5_000),
        ),
        "/soft-bomb" => (
            vec![esi, ("cache-control", "max-age=60")],
            r#"<esi:include src="/frag/a" onerror="continue"/>"#.repeat(5_000),
        ),
        "/loop" => (vec![esi, ("cache-control", "max-age=60")], r#"x<esi:include src="/loop"/>"#.into()),
        "/deep/1" | "/deep/2" | "/deep/3" | "/deep/4" => {
            let n: u8 = path[6..].parse().unwrap();
            (
                vec![esi, ("cache-control", "max-age=60")],
                format!(r#"{n}<esi:include src="/deep/{}"/>"#, n + 1),
            )
        }
        "/deep/5" => (vec![("cache-control", "max-age=60")], "5".into()),
        "/admin-include" => (
            vec![esi, ("cache-control", "max-age=60")],
            r#"a<esi:include src="/_admin/purges" onerror="continue"/><esi:include src="/%5Fadmin/purges" onerror="continue"/>b"#.into(),
        ),
        "/offsite" => (
            vec![esi, ("cache-control", "max-age=60")],
            r#"a<esi:include src="http://169.254.169.254/latest" onerror="continue"/>b<esi:include src="https://evil.test/x" alt="/frag/a"/>c"#.into(),
        ),
        "/gzpage" => (
            vec![esi, ("cache-control", "max-age=60")],
            r#"A<esi:include src="/frag/gz"/>B<esi:include src="/frag/always-gz" onerror="continue"/>C"#.into(),
        ),
        // Compresses when asked to, as nginx's `gzip on` does.
        "/frag/gz" | "/frag/always-gz" => {
            let asked = req
                .headers()
                .get("accept-encoding")
                .is_some_and(|v| v.to_str().unwrap().contains("gzip"));
            let gzip = asked || path == "/frag/always-gz";
            let mut r = Response::new(if gzip { b"\x1f\x8bGZ".to_vec() } else { b"plain".to_vec() });
            r.headers_mut().insert("cache-control", "max-age=60".parse().unwrap());
            r.headers_mut().insert("vary", "accept-encoding".parse().unwrap());
            if gzip {
                r.headers_mut().insert("content-encoding", "gzip".parse().unwrap());
            }
            return Ok(r);
        }
        "/missing" => {
            let body = r#"gone <esi:remove>SECRET</esi:remove><esi:include src="/frag/a"/>"#;
            let mut r = Response::builder().status(404).body(body.as_bytes().to_vec()).unwrap();
            r.headers_mut().insert("surrogate-control", esi.1.parse().unwrap());
            return Ok(r);
        }
        // Honours Range, as origins of templates may.
        "/ranged" if req.headers().contains_key("range") => {
            let body = br#"<esi:remove>SECRET</esi:remove>"#;
            let mut r = Response::builder().status(206).body(body[..10].to_vec()).unwrap();
            for (k, v) in [esi, ("cache-control", "max-age=60"), ("content-range", "bytes 0-9/31")] {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            return Ok(r);
        }
        "/ranged" => (vec![esi, ("cache-control", "max-age=60")], r#"<esi:remove>SECRET</esi:remove>ok"#.into()),
        _ => return Ok(Response::builder().status(404).body(b"none".to_vec()).unwrap()),
    };
    let mut r = Response::new(body.into_bytes());
    for (k, v) in headers {
        r.headers_mut().append(k, v.parse().unwrap());
    }
    Ok(r)
}

fn calls_to(h: &Harness, path: &str) -> usize {
    h.proxy
        .origin
        .seen
        .borrow()
        .iter()
        .filter(|r| r.uri().path() == path)
        .count()
}

#[test]
fn a_page_is_composed_from_fragments_each_cached_on_its_own() {
    let h = purging(site);
    let page = h.send("GET", "/page", &[("user-agent", IPHONE)]);
    assert_eq!(page.status(), 200);
    assert_eq!(page.body(), b"<h1>A</h1><p>B-mobile</p>A");
    let headers = page.headers();
    assert_eq!(
        headers["cache-control"], "private, max-age=30",
        "the most restrictive part, for this client only"
    );
    for gone in [
        "etag",
        "content-length",
        "set-cookie",
        "surrogate-control",
        "cache-tag",
    ] {
        assert!(!headers.contains_key(gone), "{gone}");
    }
    assert!(
        status(&page).ends_with("esi-fragments=2; esi-hits=0"),
        "{}",
        status(&page)
    );
    assert_eq!(h.calls(), 3, "the page and two fragments, /frag/a once");
    let again = h.send("GET", "/page", &[("user-agent", DESKTOP)]);
    assert_eq!(again.body(), b"<h1>A</h1><p>B-desktop</p>A");
    assert!(status(&again).starts_with("edge-cache; hit"));
    assert!(
        status(&again).ends_with("esi-fragments=2; esi-hits=1"),
        "{}",
        status(&again)
    );
    assert_eq!(h.calls(), 4, "only the desktop variant of /frag/b");
}

#[test]
fn purging_a_fragment_refetches_it_and_not_the_template() {
    let mut h = purging(site);
    h.get("/page");
    h.advance_ms(5);
    h.purge(r#"{"tags": ["frag-a"]}"#);
    let page = h.get("/page");
    assert_eq!(page.body(), b"<h1>A</h1><p>B-desktop</p>A");
    assert_eq!(
        (
            calls_to(&h, "/page"),
            calls_to(&h, "/frag/a"),
            calls_to(&h, "/frag/b")
        ),
        (1, 2, 1)
    );
}

#[test]
fn the_templates_validators_and_bytes_answer_no_precondition_or_range() {
    let h = purging(site);
    h.get("/page");
    for (name, value) in [("if-none-match", "\"template\""), ("range", "bytes=0-3")] {
        let r = h.send("GET", "/page", &[(name, value)]);
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.body(), b"<h1>A</h1><p>B-desktop</p>A", "{name}");
    }
    let head = h.send("HEAD", "/page", &[]);
    assert!(head.body().is_empty());
    assert!(!head.headers().contains_key("etag"));
}

#[test]
fn bombs_loops_depth_and_other_hosts_are_bounded() {
    let h = purging(site);
    let bomb = h.get("/bomb");
    assert_eq!(
        bomb.status(),
        502,
        "5,000 required includes: more than a page may hold"
    );
    assert!(calls_to(&h, "/frag/a") <= 1);
    let soft = h.get("/soft-bomb");
    assert_eq!(soft.status(), 200);
    assert_eq!(
        soft.body().len(),
        super::super::compose::MAX_INCLUDES,
        "the rest disappear"
    );
    assert_eq!(calls_to(&h, "/frag/a"), 1);
    assert_eq!(h.get("/loop").status(), 502);
    assert_eq!(calls_to(&h, "/loop"), 1, "refused without a request");
    let deep = h.get("/deep/1");
    assert_eq!(deep.status(), 502, "deeper than three levels");
    assert_eq!(calls_to(&h, "/deep/5"), 0);
    let admin = h.send(
        "GET",
        "/admin-include",
        &[("authorization", "Bearer secret")],
    );
    assert_eq!(
        admin.body(),
        b"ab",
        "admin routes are refused without a request"
    );
    assert_eq!(
        calls_to(&h, "/_admin/purges") + calls_to(&h, "/%5Fadmin/purges"),
        0
    );
    let offsite = h.get("/offsite");
    assert_eq!(offsite.body(), b"abAc", "refused, then its alt");
    let seen = h.proxy.origin.seen.borrow();
    assert!(
        seen.iter()
            .all(|r| !r.uri().to_string().contains("169.254")
                && !r.uri().to_string().contains("evil"))
    );
}

#[test]
fn an_error_page_template_is_composed_and_a_range_of_one_never_reaches_the_client() {
    let h = purging(site);
    let missing = h.get("/missing");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.body(), b"gone A");
    let ranged = h.send("GET", "/ranged", &[("range", "bytes=0-9")]);
    assert_eq!(ranged.status(), 502);
    assert!(!String::from_utf8_lossy(ranged.body()).contains("esi"));
    assert!(
        status(&ranged).contains("detail=esi-error"),
        "{}",
        status(&ranged)
    );
    let whole = h.get("/ranged");
    assert_eq!(whole.body(), b"ok");
    // Once stored, a range request gets the composed page.
    let again = h.send("GET", "/ranged", &[("range", "bytes=0-9")]);
    assert_eq!(again.status(), 200);
    assert_eq!(again.body(), b"ok");
}

#[test]
fn compositions_hold_a_bounded_number_of_bytes_per_isolate() {
    use crate::proxy::budget::{Held, MAX_COMPOSING_BYTES};
    let h = purging(site);
    let now = h.now;
    let hog = Held::new(now, 90_000);
    assert!(hog.take(MAX_COMPOSING_BYTES - 100, now));
    assert!(!Held::new(now, 90_000).take(101, now));
    let refused = h.get("/page");
    assert_eq!(refused.status(), 503);
    assert!(
        status(&refused).contains("detail=esi-busy"),
        "{}",
        status(&refused)
    );
    drop(hog);
    let page = h.get("/page");
    assert_eq!(page.body(), b"<h1>A</h1><p>B-desktop</p>A");
    // Everything the page held is released with it.
    let all = Held::new(now, 90_000);
    assert!(all.take(MAX_COMPOSING_BYTES, now));
    // A composition never dropped (its client's request cancelled) stops
    // counting once past its bound.
    let later = now + std::time::Duration::from_millis(90_001);
    assert!(Held::new(later, 90_000).take(MAX_COMPOSING_BYTES, later));
}

#[test]
fn fragments_are_asked_for_unencoded_and_an_encoded_one_is_an_include_error() {
    let h = purging(site);
    let page = h.send(
        "GET",
        "/gzpage",
        &[("accept-encoding", "gzip, deflate, br")],
    );
    assert_eq!(page.body(), b"AplainBC");
}

#[test]
fn with_esi_off_a_template_passes_through_untouched() {
    let mut h = purging(site);
    h.config_mut().esi = false;
    let page = h.get("/page");
    assert!(std::str::from_utf8(page.body())
        .unwrap()
        .contains("<esi:include"));
    assert_eq!(page.headers()["etag"], "\"template\"");
    assert_eq!(h.calls(), 1);
}
