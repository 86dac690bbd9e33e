//! Answering the client: stored responses with `Age`, ranges and 304s, the
//! last clean-up every response gets, and the worker's own error answers.

use super::*;
use crate::conditional::Evaluation;

/// Who answers the client's preconditions (RFC 9110 §13.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Preconditions {
    /// The cache, from a response it holds: served from storage, or just
    /// stored. The client's preconditions were kept from the origin for it
    /// (see `origin_request`).
    Answer,
    /// Not the cache: the origin saw them (a forwarded request), or the
    /// response is one the cache does not hold. RFC 9111 §4.3.2: a cache
    /// must not evaluate preconditions for a target it has no stored
    /// response for. Turning a `private` 200 into a 304 would also drop its
    /// `Set-Cookie`, and overrule an origin that chose to answer 200.
    PassOn,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Serves a stored response: `Age`, and the client's preconditions, range and method applied.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn serve_stored(
        &self,
        mut parts: Parts,
        body: B,
        meta: &EntryMeta,
        request: &HeaderMap,
        method: &Method,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        parts
            .headers
            .insert(header::AGE, HeaderValue::from(meta.current_age(now)));
        // A template's bytes are not the page's: no range of them.
        let wants_range = request.contains_key(header::RANGE)
            && parts.status == StatusCode::OK
            && !(self.config.esi && compose::is_template(parts.status, &parts.headers))
            && method == Method::GET
            && conditional::evaluate(request, &parts.headers) == Evaluation::Proceed;
        if !wants_range {
            return self.deliver(parts, body, request, method, status, Preconditions::Answer);
        }
        // Stored bodies carry their length (they are stored whole); an
        // entry without one is read whole to learn it. Either way only the
        // range is kept, and never in wasm memory, which never shrinks.
        let stored_length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let (body, length) = match stored_length {
            Some(length) => (body, length),
            None => match body.buffered(ReadLimit::NONE).await {
                Ok(Buffered::Whole(body, length)) => (body, length),
                Ok(Buffered::PassOn(body, _)) => {
                    return self.deliver(
                        parts,
                        body,
                        request,
                        method,
                        status,
                        Preconditions::Answer,
                    )
                }
                Err(e) => return self.storage_failed(status, e, now),
            },
        };
        match range::evaluate(request, &parts.headers, length) {
            RangeResponse::Full => {
                self.deliver(parts, body, request, method, status, Preconditions::Answer)
            }
            RangeResponse::Partial { start, end } => {
                let slice = match body.range(start, end).await {
                    Ok(slice) => (slice, end - start + 1),
                    Err(e) => return self.storage_failed(status, e, now),
                };
                let range = format!("bytes {start}-{end}/{length}");
                let (parts, body) = partial(parts, StatusCode::PARTIAL_CONTENT, &range, slice);
                self.deliver(parts, body, request, method, status, Preconditions::Answer)
            }
            RangeResponse::Unsatisfiable => {
                let range = format!("bytes */{length}");
                let empty = (B::empty(), 0);
                let (parts, body) =
                    partial(parts, StatusCode::RANGE_NOT_SATISFIABLE, &range, empty);
                self.deliver(parts, body, request, method, status, Preconditions::Answer)
            }
        }
    }

    /// The last step for every proxied response: answer preconditions with a
    /// 304 when the cache holds the response, drop the body for HEAD, clean
    /// the headers, add `Cache-Status`.
    pub(super) fn deliver(
        &self,
        mut parts: Parts,
        body: B,
        request: &HeaderMap,
        method: &Method,
        mut status: CacheStatus,
        preconditions: Preconditions,
    ) -> Response<B> {
        let mut body = if method == Method::HEAD {
            B::empty()
        } else {
            body
        };
        if self.config.esi
            && parts.status == StatusCode::PARTIAL_CONTENT
            && compose::marks_template(&parts.headers)
        {
            // A range of a template (a miss or revalidation that carried
            // the client's Range) is markup, not a piece of the page:
            // none of it reaches the client.
            let text =
                "edge-cache: the origin answered a range of an ESI template; ask without Range\n";
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            parts.headers = headers;
            parts.status = StatusCode::BAD_GATEWAY;
            body = B::from_bytes(text.as_bytes().to_vec());
            status = status.with_detail("esi-error");
        }
        let cacheable_method = matches!(*method, Method::GET | Method::HEAD);
        // An ESI template is composed per request (see `compose`), the
        // answer to a POST as much as to a GET: its markup never reaches a
        // client. Its validators are not the page's: they answer no
        // precondition.
        let template = self.config.esi && compose::is_template(parts.status, &parts.headers);
        if template {
            parts.extensions.insert(compose::EsiTemplate);
        }
        let answered = preconditions == Preconditions::Answer
            && cacheable_method
            && !template
            && parts.status == StatusCode::OK;
        let evaluation = match answered {
            true => conditional::evaluate(request, &parts.headers),
            false => Evaluation::Proceed,
        };
        match evaluation {
            Evaluation::Proceed => {}
            Evaluation::NotModified => {
                let mut headers = conditional::not_modified_headers(&parts.headers);
                if let Some(age) = parts.headers.get(header::AGE) {
                    headers.insert(header::AGE, age.clone());
                }
                parts.headers = headers;
                parts.status = StatusCode::NOT_MODIFIED;
                body = B::empty();
            }
            Evaluation::Failed => {
                parts.headers = HeaderMap::new();
                parts.status = StatusCode::PRECONDITION_FAILED;
                body = B::empty();
            }
        }
        strip_targeted_fields(&mut parts.headers);
        if !self.config.expose_tags {
            crate::purge::tags::strip(&mut parts.headers);
        }
        status.append_to(&mut parts.headers, &self.config.cache_name);
        Response::from_parts(parts, body)
    }

    pub(super) fn origin_failed(
        &self,
        status: CacheStatus,
        error: OriginError,
        now: SystemTime,
    ) -> Response<B> {
        self.background.warn(&error.to_string());
        let (code, detail, text) = match error {
            OriginError::TimedOut => (
                StatusCode::GATEWAY_TIMEOUT,
                "origin-timeout",
                "edge-cache: the origin did not answer in time\n",
            ),
            OriginError::Incomplete(_) => (
                StatusCode::BAD_GATEWAY,
                "origin-incomplete",
                "edge-cache: the origin's response broke off before its end\n",
            ),
            OriginError::InvalidStatus(_) => (
                StatusCode::BAD_GATEWAY,
                "origin-invalid-status",
                "edge-cache: the origin answered a status that is not a final response\n",
            ),
            OriginError::Unreachable(_) => (
                StatusCode::BAD_GATEWAY,
                "origin-unreachable",
                "edge-cache: the origin could not be reached\n",
            ),
        };
        self.local(code, text, status.with_detail(detail), now)
    }

    /// A stored body that cannot be read is the storage failing: say so with a 502.
    pub(super) fn storage_failed(
        &self,
        status: CacheStatus,
        error: PlatformError,
        now: SystemTime,
    ) -> Response<B> {
        self.background
            .warn(&format!("reading a stored body failed: {error}"));
        let text = "edge-cache: a stored response could not be read\n";
        self.local(
            StatusCode::BAD_GATEWAY,
            text,
            status.with_detail("storage-error"),
            now,
        )
    }

    /// A response the worker makes itself.
    pub(super) fn local(
        &self,
        code: StatusCode,
        text: &str,
        status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        local_response(code, text, &status, &self.config.cache_name, now)
    }
}

/// A response the worker makes itself, before or instead of the cache: plain
/// text, never stored downstream, with its `Cache-Status`.
pub fn local_response<B: Body>(
    code: StatusCode,
    text: &str,
    status: &CacheStatus,
    cache_name: &str,
    now: SystemTime,
) -> Response<B> {
    let mut response = Response::new(B::from_bytes(text.as_bytes().to_vec()));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::DATE,
        HeaderValue::from_str(&httpdate::fmt_http_date(now)).expect("ASCII"),
    );
    status.append_to(headers, cache_name);
    response
}

/// A 206 or 416 cut from a stored 200: status, `Content-Range`, and the
/// body with its length.
fn partial<B: Body>(
    mut parts: Parts,
    code: StatusCode,
    range: &str,
    (body, length): (B, u64),
) -> (Parts, B) {
    parts.status = code;
    parts.headers.insert(
        header::CONTENT_RANGE,
        HeaderValue::from_str(range).expect("ASCII"),
    );
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    (parts, body)
}
