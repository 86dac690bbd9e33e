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

use super::body::EdgeBody;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response};
use wasm_bindgen::JsValue;
use worker::{Error, Result};

pub fn request_from_js(request: &web_sys::Request) -> Result<Request<EdgeBody>> {
    let mut builder = Request::builder()
        .method(request.method().as_str())
        .uri(request.url());
    if let Some(headers) = builder.headers_mut() {
        *headers = headers_from_js(&request.headers());
    }
    builder
        .body(EdgeBody::from_stream(request.body()))
        .map_err(|e| Error::RustError(format!("unusable request: {e}")))
}

pub fn response_from_js(response: &web_sys::Response) -> Response<EdgeBody> {
    let mut out = Response::new(EdgeBody::from_stream(response.body()));
    *out.status_mut() =
        http::StatusCode::from_u16(response.status()).unwrap_or(http::StatusCode::BAD_GATEWAY);
    *out.headers_mut() = headers_from_js(&response.headers());
    out
}

pub fn response_to_js(response: Response<EdgeBody>) -> Result<web_sys::Response> {
    let (parts, body) = response.into_parts();
    let init = web_sys::ResponseInit::new();
    // Every body the core hands back is as the origin encoded it (see
    // `EdgeOrigin::fetch`) or made here unencoded: send it as it is. The
    // default would compress once more whatever `Content-Encoding` says.
    super::runtime::set_manual(&init, super::runtime::Manual::EncodeBody);
    init.set_status(parts.status.as_u16());
    init.set_headers(&headers_to_js(&parts.headers)?);
    // 101, 204, 205 and 304 must not have a body, not even an empty one.
    let null_body = matches!(parts.status.as_u16(), 101 | 204 | 205 | 304);
    let built = match body {
        _ if null_body => web_sys::Response::new_with_opt_str_and_init(None, &init),
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
    };
    built.map_err(Error::from)
}

/// Reads a JS `Headers` in one crossing: `JSON.stringify(Array.from(headers))`.
/// Walking the iterator from Rust costs about seven calls a field, which the
/// hit path pays for the request and the stored response alike.
pub fn headers_from_js(headers: &web_sys::Headers) -> HeaderMap {
    let pairs = js_sys::Array::from(headers);
    let json = js_sys::JSON::stringify(&pairs)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_json::from_str(&json).unwrap_or_default();
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if let (Ok(n), Some(v)) = (HeaderName::from_bytes(name.as_bytes()), value_from(&value)) {
            map.append(n, v);
        }
    }
    map
}

/// A header value, with control characters `http` refuses read as spaces
/// rather than the whole field dropped: a dropped `Vary: Cookie\x0b` would
/// make a per-user page look shareable.
fn value_from(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(text.as_bytes()).ok().or_else(|| {
        let spaced: Vec<u8> = text
            .bytes()
            .map(|b| match b {
                b'\t' => b,
                0..=0x1f | 0x7f => b' ',
                _ => b,
            })
            .collect();
        HeaderValue::from_bytes(&spaced).ok()
    })
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
        let mut map = HeaderMap::new();
        map.append("set-cookie", HeaderValue::from_static("a=1"));
        map.append("set-cookie", HeaderValue::from_static("b=2"));
        // Node's Headers refuses chars above U+00FF (workerd does not: the
        // end-to-end tests send those), so `é` is what can be checked here.
        map.insert(
            "x-utf8",
            HeaderValue::from_bytes("café".as_bytes()).unwrap(),
        );
        let js = web_sys::Headers::new_with_str_sequence_sequence(&headers_to_js(&map).unwrap())
            .unwrap();
        assert_eq!(js.get("x-utf8").unwrap().as_deref(), Some("café"));
        let back = headers_from_js(&js);
        assert_eq!(back.get_all("set-cookie").iter().count(), 2);
        assert_eq!(back["x-utf8"].as_bytes(), "café".as_bytes());
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
