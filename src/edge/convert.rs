//! Conversions between `web_sys` messages and `http` types.
//!
//! Header values cross as UTF-8. The Fetch standard makes them ByteStrings
//! (one char a byte), but workerd decodes the bytes a client sends as UTF-8
//! and encodes strings as UTF-8 on `fetch` (checked against a bare JS
//! worker: `é` arrives as U+00E9, `€` as U+20AC, and leaves as the same
//! bytes). Mapping them as UTF-8 keeps a cookie or agent in any script
//! byte-exact on its way to the origin; a Latin-1 mapping turned everything
//! above U+00FF into `?`. Bytes that are not UTF-8 are replaced by U+FFFD in
//! workerd before any worker code runs, so no mapping could keep them.

use super::body::{EdgeBody, Stored};
use crate::heads::{Heads, HEADS_BYTES};
use crate::meta::ParsedRecord;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{Error, Result};

#[wasm_bindgen(module = "/src/edge/glue.js")]
extern "C" {
    #[wasm_bindgen(js_name = requestHead)]
    fn request_head(request: &web_sys::Request) -> String;
    #[wasm_bindgen(js_name = responseHead)]
    fn response_head(response: &web_sys::Response) -> String;
    #[wasm_bindgen(js_name = recordIs)]
    fn record_is(response: &web_sys::Response, known: &JsValue) -> bool;
    #[wasm_bindgen(catch, js_name = respondWith)]
    fn respond_with(
        stored: &web_sys::Response,
        status: u16,
        changes: &str,
    ) -> std::result::Result<web_sys::Response, JsValue>;
}

thread_local! {
    /// Stored heads as this isolate parsed them, with their records as JS
    /// strings (plain data and string handles).
    static HEADS: RefCell<Heads<JsValue>> = RefCell::new(Heads::new(HEADS_BYTES));
}

/// A request's method, URL and fields, read in one crossing.
pub fn request_from_js(request: &web_sys::Request) -> Result<Request<EdgeBody>> {
    let head = request_head(request);
    let mut lines = head.split('\n');
    let mut builder = Request::builder()
        .method(lines.next().unwrap_or_default())
        .uri(lines.next().unwrap_or_default());
    if let Some(headers) = builder.headers_mut() {
        headers.reserve(head.matches('\n').count());
        fields_from_lines(lines, headers);
    }
    builder
        .body(EdgeBody::from_stream(request.body()))
        .map_err(|e| Error::RustError(format!("unusable request: {e}")))
}

/// A response from `fetch`, its head read in one crossing.
pub fn response_from_js(response: &web_sys::Response) -> Response<EdgeBody> {
    let (status, headers, _) = response_parts(response);
    let mut out = Response::new(EdgeBody::from_stream(response.body()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// A Cache API response: its body stays in it (see [`EdgeBody::Stored`]),
/// unless its head did not read back exactly. Its head is parsed once per
/// isolate while its record stays the same (see [`crate::heads`]).
pub fn stored_from_js(url: &str, response: web_sys::Response) -> Response<EdgeBody> {
    let known = HEADS.with_borrow_mut(|heads| heads.get(url));
    if let Some(head) = known.filter(|head| record_is(&response, &head.token)) {
        let record = ParsedRecord(head.record.clone());
        return stored_with(response, head.status, head.fields.clone(), Some(record));
    }
    let (status, headers, exact) = response_parts(&response);
    if response.body().is_none() || !exact {
        let mut out = Response::new(EdgeBody::from_stream(response.body()));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let fields = Rc::new(headers);
    let record =
        HEADS.with_borrow_mut(|heads| heads.keep(url, status, fields.clone(), JsValue::from_str));
    stored_with(response, status, fields, record.map(ParsedRecord))
}

/// A stored response whose fields, as read, are `fields`.
fn stored_with(
    response: web_sys::Response,
    status: http::StatusCode,
    fields: Rc<HeaderMap>,
    record: Option<ParsedRecord>,
) -> Response<EdgeBody> {
    let headers = HeaderMap::clone(&fields);
    let mut out = Response::new(EdgeBody::Stored(Box::new(Stored {
        response,
        headers: fields,
    })));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    if let Some(record) = record {
        out.extensions_mut().insert(record);
    }
    out
}

/// A write of `url` is under way: its parsed head is not kept.
pub fn forget_head(url: &str) {
    HEADS.with_borrow_mut(|heads| heads.forget(url));
}

/// Status and fields, and whether every field was kept as it was.
fn response_parts(response: &web_sys::Response) -> (http::StatusCode, HeaderMap, bool) {
    let head = response_head(response);
    let mut lines = head.split('\n');
    let status = lines
        .next()
        .and_then(|s| http::StatusCode::from_bytes(s.as_bytes()).ok())
        .unwrap_or(http::StatusCode::BAD_GATEWAY);
    // Sized once: a map grown field by field rehashes as it goes.
    let mut headers = HeaderMap::with_capacity(head.matches('\n').count());
    let exact = fields_from_lines(lines, &mut headers);
    (status, headers, exact)
}

pub fn response_to_js(response: Response<EdgeBody>) -> Result<web_sys::Response> {
    let (parts, body) = response.into_parts();
    // 101, 204, 205 and 304 must not have a body, not even an empty one.
    let null_body = matches!(parts.status.as_u16(), 101 | 204 | 205 | 304);
    let body = match body {
        _ if null_body => EdgeBody::Empty,
        EdgeBody::Stored(stored) => {
            let changes = changes(&stored.headers, &parts.headers);
            return respond_with(&stored.response, parts.status.as_u16(), &changes)
                .map_err(Error::from);
        }
        body => body,
    };
    let init = web_sys::ResponseInit::new();
    // Every body the core hands back is as the origin encoded it (see
    // `EdgeOrigin::fetch`) or made here unencoded: send it as it is. The
    // default would compress once more whatever `Content-Encoding` says.
    super::runtime::set_manual(&init, super::runtime::Manual::EncodeBody);
    init.set_status(parts.status.as_u16());
    init.set_headers(&headers_to_js(&parts.headers)?);
    let built = match body {
        EdgeBody::Empty => web_sys::Response::new_with_opt_str_and_init(None, &init),
        EdgeBody::Bytes(mut b) => {
            web_sys::Response::new_with_opt_u8_array_and_init(Some(&mut b), &init)
        }
        EdgeBody::Stream(s) => {
            web_sys::Response::new_with_opt_readable_stream_and_init(Some(&s), &init)
        }
        EdgeBody::Buffer(b) => {
            web_sys::Response::new_with_opt_buffer_source_and_init(Some(&*b), &init)
        }
        EdgeBody::Stored(_) => unreachable!("sent from its stored response above"),
    };
    built.map_err(Error::from)
}

/// What turns `before` into `after`, as `glue.js`'s `respondWith` reads
/// it: a line per field to delete, then per value to append. A field
/// whose values changed is deleted and appended anew.
fn changes(before: &HeaderMap, after: &HeaderMap) -> String {
    let mut out = String::new();
    let mut line = |name: &HeaderName, value: Option<&HeaderValue>| {
        out.push_str(name.as_str());
        if let Some(value) = value {
            out.push(':');
            out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        out.push('\n');
    };
    for name in before.keys() {
        if !after.contains_key(name) {
            line(name, None);
        }
    }
    for name in after.keys() {
        let values = after.get_all(name);
        // `Age` is set anew even when it reads the same: `before` may be a
        // head parsed at an earlier read (see `crate::heads`), and a runtime
        // that added its own `Age` would have changed it since.
        if name != http::header::AGE && values.iter().eq(before.get_all(name).iter()) {
            continue;
        }
        if before.contains_key(name) {
            line(name, None);
        }
        for value in values {
            line(name, Some(value));
        }
    }
    out
}

/// Fields from `name:value` lines (see `glue.js`) into `headers`; false
/// when one had to be dropped or changed to fit `http`'s rules.
fn fields_from_lines<'a>(lines: impl Iterator<Item = &'a str>, headers: &mut HeaderMap) -> bool {
    let mut exact = true;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            exact = false;
            continue;
        };
        match (HeaderName::from_bytes(name.as_bytes()), value_from(value)) {
            (Ok(n), Some((v, as_sent))) => {
                exact &= as_sent;
                headers.append(n, v);
            }
            _ => exact = false,
        }
    }
    exact
}

/// A header value, with control characters `http` refuses read as spaces
/// rather than the whole field dropped: a dropped `Vary: Cookie\x0b` would
/// make a per-user page look shareable.
/// The flag says whether it is as sent.
fn value_from(text: &str) -> Option<(HeaderValue, bool)> {
    if let Ok(value) = HeaderValue::from_bytes(text.as_bytes()) {
        return Some((value, true));
    }
    let spaced: Vec<u8> = text
        .bytes()
        .map(|b| match b {
            b'\t' => b,
            0..=0x1f | 0x7f => b' ',
            _ => b,
        })
        .collect();
    HeaderValue::from_bytes(&spaced).ok().map(|v| (v, false))
}

/// Builds the `[[name, value], …]` list a JS `Headers` can be made from, in
/// one crossing (`JSON.parse`).
pub fn headers_to_js(headers: &HeaderMap) -> Result<JsValue> {
    let pairs: Vec<(&str, std::borrow::Cow<str>)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes())))
        .collect();
    let json = serde_json::to_string(&pairs).map_err(|e| Error::RustError(e.to_string()))?;
    js_sys::JSON::parse(&json).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{Body, Buffered, ReadLimit};

    /// A body's bytes, read whole as the core reads one.
    async fn bytes(body: EdgeBody) -> Vec<u8> {
        match body.buffered(ReadLimit::NONE).await.unwrap() {
            Buffered::Whole(EdgeBody::Buffer(b), _) => js_sys::Uint8Array::new(&b).to_vec(),
            Buffered::Whole(EdgeBody::Bytes(b), _) => b,
            _ => panic!("not read whole"),
        }
    }
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn headers_round_trip_byte_for_byte_in_utf8() {
        let mut response = Response::new(EdgeBody::Empty);
        let map = response.headers_mut();
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        // Node's Headers refuses chars above U+00FF (workerd does not: the
        // end-to-end tests send those), so `é` is what can be checked here.
        map.insert(
            "x-utf8",
            HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        map.insert("x-colon", HeaderValue::from_static("a:b: c"));
        let js = response_to_js(response).unwrap();
        assert_eq!(js.headers().get("x-utf8").unwrap().as_deref(), Some("café"));
        let back = response_from_js(&js);
        assert_eq!(back.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(back.headers()["x-utf8"].as_bytes(), "café".as_bytes());
        assert_eq!(back.headers()["x-colon"], "a:b: c");
    }

    #[wasm_bindgen_test]
    async fn a_stored_response_goes_out_with_only_the_changed_fields() {
        let init = web_sys::ResponseInit::new();
        init.set_status(404);
        let fields = web_sys::Headers::new().unwrap();
        for (name, value) in [("x-kept", "1"), ("x-gone", "2"), ("x-changed", "3")] {
            fields.append(name, value).unwrap();
        }
        init.set_headers(&fields);
        let stored =
            web_sys::Response::new_with_opt_str_and_init(Some("stored body"), &init).unwrap();
        let mut response = stored_from_js("https://t.example/a", stored);
        assert!(matches!(response.body(), EdgeBody::Stored(_)));
        let headers = response.headers_mut();
        headers.remove("x-gone");
        headers.insert("x-changed", HeaderValue::from_static("4"));
        headers.append("x-changed", HeaderValue::from_static("5"));
        headers.insert("age", HeaderValue::from_static("7"));
        let js = response_to_js(response).unwrap();
        assert_eq!(js.status(), 404);
        let get = |name: &str| js.headers().get(name).unwrap();
        assert_eq!(get("x-kept").as_deref(), Some("1"));
        assert_eq!(get("x-gone"), None);
        assert_eq!(get("x-changed").as_deref(), Some("4, 5"));
        assert_eq!(get("age").as_deref(), Some("7"));
        let back = response_from_js(&js);
        assert_eq!(bytes(back.into_body()).await, b"stored body");
    }

    #[wasm_bindgen_test]
    fn age_is_set_anew_though_the_parsed_head_already_reads_the_same() {
        // The runtime's copy says 30; the head parsed at an earlier read said 7.
        let init = web_sys::ResponseInit::new();
        let fields = web_sys::Headers::new().unwrap();
        fields.append("age", "30").unwrap();
        init.set_headers(&fields);
        let stored = web_sys::Response::new_with_opt_str_and_init(Some("b"), &init).unwrap();
        let mut parsed = HeaderMap::new();
        parsed.insert("age", HeaderValue::from_static("7"));
        let response = stored_with(stored, http::StatusCode::OK, Rc::new(parsed), None);
        assert_eq!(response.headers()["age"], "7");
        let js = response_to_js(response).unwrap();
        assert_eq!(js.headers().get("age").unwrap().as_deref(), Some("7"));
    }

    #[wasm_bindgen_test]
    async fn a_stored_body_read_by_the_core_is_a_stream() {
        let stored = web_sys::Response::new_with_opt_str(Some("0123456789")).unwrap();
        let part = stored_from_js("https://t.example/b", stored)
            .into_body()
            .range(2, 5)
            .await
            .unwrap();
        assert_eq!(bytes(part).await, b"2345");
    }

    #[wasm_bindgen_test]
    async fn null_body_statuses_and_bytes() {
        let mut not_modified = Response::new(EdgeBody::from_bytes(b"ignored".to_vec()));
        *not_modified.status_mut() = http::StatusCode::NOT_MODIFIED;
        let js = response_to_js(not_modified).unwrap();
        assert_eq!(js.status(), 304);
        assert!(js.body().is_none());

        let js = response_to_js(Response::new(EdgeBody::from_bytes(b"hello".to_vec()))).unwrap();
        let back = response_from_js(&js);
        assert_eq!(bytes(back.into_body()).await, b"hello");
    }

    #[wasm_bindgen_test]
    async fn a_teed_stream_yields_the_body_twice() {
        let js = web_sys::Response::new_with_opt_str(Some("stream body")).unwrap();
        let (a, b) = EdgeBody::from_stream(js.body()).tee();
        assert_eq!(bytes(a).await, b"stream body");
        assert_eq!(bytes(b).await, b"stream body");
    }

    #[wasm_bindgen_test]
    async fn a_range_of_a_stream_keeps_only_its_bytes() {
        let stream = |text: &str| {
            let js = web_sys::Response::new_with_opt_str(Some(text)).unwrap();
            EdgeBody::from_stream(js.body())
        };
        let part = stream("0123456789").range(2, 5).await.unwrap();
        assert!(matches!(&part, EdgeBody::Buffer(b) if b.byte_length() == 4));
        assert_eq!(bytes(part).await, b"2345");
        assert!(
            stream("0123").range(2, 9).await.is_err(),
            "shorter than the range"
        );
    }

    #[wasm_bindgen_test]
    fn requests_convert_with_method_uri_and_headers() {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        let headers = web_sys::Headers::new().unwrap();
        headers.append("x-a", "1").unwrap();
        init.set_headers_headers(&headers);
        init.set_body_opt_str(Some("payload"));
        let js =
            web_sys::Request::new_with_str_and_init("https://shop.example/a?b=1", &init).unwrap();
        let request = request_from_js(&js).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "https://shop.example/a?b=1");
        assert_eq!(request.headers()["x-a"], "1");
        assert!(matches!(request.body(), EdgeBody::Stream(_)));
    }
}
