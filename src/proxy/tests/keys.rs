//! Keys: URL normalisation, device and country variants, `Vary`, cookies
//! and the request fields that never reach the origin.

use super::*;

#[test]
fn tracking_parameters_and_order_share_one_entry_and_the_origin_sees_the_clients_query() {
    let h = harness(echo(""));
    let first = h.get("/p?b=2&a=1&utm_source=news");
    assert_eq!(
        first.body(),
        b"https://shop.example/p?b=2&a=1 device=desktop country=XX"
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
fn origin_url_normalized_asks_the_origin_for_the_key() {
    let mut h = harness(echo(""));
    h.config_mut().origin_url = crate::normalize::OriginUrl::Normalized;
    assert_eq!(
        h.get("/p?b=2&a=%41&utm_source=news").body(),
        b"https://shop.example/p?a=A&b=2 device=desktop country=XX"
    );
}

#[test]
fn vary_on_our_device_name_or_cloudflares_keys_alike_and_cannot_be_forged() {
    for vary in ["X-Edge-Device-Type", "CF-Device-Type"] {
        let h = harness(echo(vary));
        let forged = [
            ("user-agent", IPHONE),
            ("x-edge-device-type", "desktop"),
            ("cf-device-type", "tablet"),
        ];
        assert_eq!(
            h.send("GET", "/d", &forged).body(),
            b"https://shop.example/d device=mobile country=XX",
            "{vary}"
        );
        let pixel = h.send("GET", "/d", &[("user-agent", PIXEL)]);
        assert_eq!(status(&pixel), "edge-cache; hit; ttl=60", "{vary}");
        let desktop = h.send(
            "GET",
            "/d",
            &[("user-agent", DESKTOP), ("x-edge-device-type", "mobile")],
        );
        assert_eq!(
            desktop.body(),
            b"https://shop.example/d device=desktop country=XX",
            "{vary}"
        );
        assert_eq!(h.calls(), 2, "{vary}");
    }
}

#[test]
fn fields_the_clients_connection_names_are_gone_before_the_key_is_chosen() {
    // Removed only on the way out, the stamped device was keyed as sent
    // and never reached the origin: its answer for no device was stored
    // as the iPhones' variant.
    let h = harness(echo("X-Edge-Device-Type"));
    let attack = [
        ("user-agent", IPHONE),
        ("connection", "x-edge-device-type, cf-device-type"),
    ];
    assert_eq!(
        h.send("GET", "/c", &attack).body(),
        b"https://shop.example/c device=mobile country=XX"
    );
    let victim = h.send("GET", "/c", &[("user-agent", IPHONE)]);
    assert_eq!(status(&victim), "edge-cache; hit; ttl=60");
    assert_eq!(
        victim.body(),
        b"https://shop.example/c device=mobile country=XX"
    );
    assert_eq!(h.calls(), 1);
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
    h.config_mut().user_agent = UserAgentKey::Device;
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
    h.config_mut().path_rules = PathRules::parse(r#"{"/shop/": ["device"]}"#).unwrap();
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
    h.config_mut().bypass_cookies = crate::cookies::BypassCookies::parse("session").unwrap();
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
    h.config_mut().retain_stale = 0;
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
    let r =
        futures::executor::block_on(h.proxy.handle(request, &RuntimeCountry::known(None), h.now));
    h.proxy.background.run();
    assert_eq!(
        status(&r),
        "edge-cache; fwd=bypass; fwd-status=200; detail=no-host"
    );
    assert!(h.proxy.storage.entries.borrow().is_empty());
}

/// The runtime's country (`request.cf.country`), counting its reads: each
/// request gets a new one, as each request has its own `cf`.
fn runtime_country(h: &mut Harness, country: &'static str, reads: &Rc<std::cell::Cell<u32>>) {
    let reads = reads.clone();
    h.country = RuntimeCountry::new(move || {
        reads.set(reads.get() + 1);
        Some(country.to_string())
    });
}

#[test]
fn the_runtimes_country_is_read_only_when_the_request_needs_it() {
    let mut h = harness(echo(""));
    let reads = Rc::new(std::cell::Cell::new(0));
    runtime_country(&mut h, "DE", &reads);
    let miss = h.get("/c");
    assert!(miss.body().ends_with(b"country=DE"), "the origin is told");
    assert_eq!(reads.get(), 1);
    runtime_country(&mut h, "FR", &reads);
    let hit = h.send(
        "GET",
        "/c",
        &[("x-edge-country", "ZZ"), ("cf-ipcountry", "ZZ")],
    );
    assert!(status(&hit).contains("hit"));
    assert!(hit.body().ends_with(b"country=DE"));
    assert_eq!(
        reads.get(),
        1,
        "a hit that does not vary by country reads none"
    );
    // Bypassing and other methods go to the origin with the country.
    runtime_country(&mut h, "FR", &reads);
    let post = h.send("POST", "/c", &[("cf-ipcountry", "ZZ")]);
    assert!(post.body().ends_with(b"country=FR"));
    assert_eq!(reads.get(), 2);
}

#[test]
fn a_variant_chosen_by_the_runtimes_country_reads_it_and_ignores_the_clients() {
    let mut h = harness(echo("x-edge-country"));
    let reads = Rc::new(std::cell::Cell::new(0));
    // Each country misses once, then hits its own variant.
    for round in ["miss", "hit"] {
        for (country, forged) in [("DE", "FR"), ("FR", "DE")] {
            runtime_country(&mut h, country, &reads);
            let forged = [("x-edge-country", forged), ("cf-ipcountry", forged)];
            let answer = h.send("GET", "/v", &forged);
            assert_eq!(status(&answer).contains("hit"), round == "hit", "{round}");
            let own = format!("country={country}");
            assert!(answer.body().ends_with(own.as_bytes()), "{round}");
        }
    }
    assert_eq!(h.calls(), 2);
    assert_eq!(
        reads.get(),
        4,
        "each request through the marker read its country once"
    );
}
