//! Requests that go to the origin without the cache, and the invalidation
//! that successful unsafe requests cause (RFC 9111 §4.4).

use super::*;

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Goes to the origin without the cache: methods other than GET and HEAD
    /// (`status` says `fwd=method`), and bypassed requests (`fwd=bypass`).
    pub(super) async fn forward(
        &self,
        request: Request<B>,
        mut status: CacheStatus,
        now: SystemTime,
    ) -> Response<B> {
        let uri = request.uri().clone();
        let method = request.method().clone();
        let client_headers = request.headers().clone();
        let response = match self.fetch_origin(request, now).await {
            Ok(r) => r,
            Err(e) => return self.origin_failed(status, e, now),
        };
        status.fwd_status = Some(response.status().as_u16());
        // RFC 9110 §9.2.1: GET, HEAD, OPTIONS and TRACE are safe.
        let unsafe_method = !matches!(
            method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        if unsafe_method && (response.status().is_success() || response.status().is_redirection()) {
            self.invalidate(&uri, response.headers()).await;
        }
        let (parts, body) = response.into_parts();
        self.deliver(
            parts,
            body,
            &client_headers,
            &method,
            status,
            Preconditions::PassOn,
        )
    }

    /// §4.4: a successful unsafe request invalidates the target URI and the
    /// same-origin `Location` / `Content-Location`. Deleting the primary URL
    /// is enough: variants are only reachable through it.
    async fn invalidate(&self, uri: &Uri, response: &HeaderMap) {
        let mut targets = vec![uri.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(target) = response
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| same_origin(uri, v))
            {
                targets.push(target);
            }
        }
        for target in targets {
            if let Some(key) =
                normalize(&target, &self.config.tracking).map(|uri| CacheKey::new(&uri))
            {
                if let Err(e) = self.storage.delete(&key.primary_url()).await {
                    self.background
                        .warn(&format!("invalidation of {target} failed: {e}"));
                }
            }
        }
    }
}

/// Resolves `Location`-style `value` against `base`; `Some` only when it
/// points at the same scheme and authority (§4.4 forbids invalidating others).
fn same_origin(base: &Uri, value: &str) -> Option<Uri> {
    let value = value.trim();
    let resolved: Uri = if value.starts_with('/') && !value.starts_with("//") {
        format!("{}://{}{}", base.scheme_str()?, base.authority()?, value)
            .parse()
            .ok()?
    } else {
        value.parse().ok()?
    };
    let same = resolved.scheme() == base.scheme()
        && resolved
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase())
            == base.authority().map(|a| a.as_str().to_ascii_lowercase());
    same.then_some(resolved)
}
