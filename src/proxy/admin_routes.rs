//! The admin routes under `ADMIN_PATH`: the page, and the API (`POST
//! /purge`, `GET /purges`, `POST /warm`) behind the bearer token. Every
//! answer is `no-store`; nothing under the prefix reaches the origin or the
//! cache. Without `ADMIN_TOKEN` the API answers 503 and does nothing.

use super::purging::unix_ms;
use super::*;
use crate::admin::api::{self, ApiError, Site};
use crate::admin::{auth, page};
use crate::platform::{join_all, Kv};
use crate::purge::{purge_id, Plan, PurgeRecord, KEY_PREFIX};
use crate::purge::{Summary, Written};
use serde::Serialize;

/// Seconds a purge record outlives its retention window in KV: room for
/// clocks that disagree a little.
const RECORD_MARGIN_SECS: u64 = 300;

/// Bytes of an over-long API body still read (and dropped) to keep the
/// client's connection usable.
const DRAINED: u64 = 8 * 1024 * 1024;

/// Purges `GET /purges` lists, newest first.
const LISTED: usize = 20;

/// How long a purge waits for the identical one it was paced behind
/// (which writes at most a second later, plus its KV writes).
const FOLLOW_BOUND_MS: u64 = 10_000;
const FOLLOW_POLL_MS: u64 = 20;

/// Warm fetches under way at once: each holds a body in an isolate of 128 MB.
const WARM_PARALLEL: usize = 4;

/// The API's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Purge,
    Purges,
    Warm,
}

impl<B: Body, S: Storage<B>, O: Origin<B>, W: Background, K: Kv> Proxy<B, S, O, W, K> {
    /// Answers a request under the admin prefix.
    pub(super) async fn admin(
        &self,
        request: Request<B>,
        country: &RuntimeCountry,
        now: SystemTime,
    ) -> Response<B> {
        let route = admin::route(request.uri().path(), &self.config.admin_path).unwrap_or_default();
        let method = request.method().clone();
        if let Some(asset) = page::asset(&route) {
            return self.page(&request, &route, asset, now);
        }
        let (api, allowed) = match route.as_str() {
            "/purge" => (Api::Purge, Method::POST),
            "/purges" => (Api::Purges, Method::GET),
            "/warm" => (Api::Warm, Method::POST),
            _ => {
                let error = ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!("no admin route {route}"),
                };
                return self.api_error(error, now);
            }
        };
        if method != allowed {
            let error = ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: format!("{route} takes {allowed}"),
            };
            let mut response = self.api_error(error, now);
            let allow = HeaderValue::from_str(allowed.as_str()).expect("a method");
            response.headers_mut().insert(header::ALLOW, allow);
            return response;
        }
        let Some(token) = &self.config.admin_token else {
            let error = ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message:
                    "the admin API is off: set the ADMIN_TOKEN secret (at least 16 characters)"
                        .into(),
            };
            return self.api_error(error, now);
        };
        if !auth::authorized(request.headers(), token) {
            let error = ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "missing or wrong bearer token".into(),
            };
            let mut response = self.api_error(error, now);
            let challenge = HeaderValue::from_static("Bearer realm=\"edge-cache\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
            return response;
        }
        let site = Site {
            scheme: request.uri().scheme_str().unwrap_or("https").to_string(),
            authority: request
                .uri()
                .authority()
                .map_or(String::new(), |a| a.as_str().to_ascii_lowercase()),
        };
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let result = match api {
            // Past what is worth draining: refused unread (the runtime may
            // then close the connection).
            Api::Purge | Api::Warm if declared.is_some_and(|n| n > DRAINED) => Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("the request body is over {} bytes", api::MAX_BODY),
            }),
            Api::Purges => self.list_purges().await,
            Api::Purge | Api::Warm => match self.admin_body(body).await {
                Ok(Some(body)) if api == Api::Purge => self.purge(&body, &site, now).await,
                Ok(Some(body)) => {
                    let warm = (body.as_slice(), &parts.headers);
                    self.warm(warm, &site, country, now).await
                }
                Ok(None) => Err(ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!("the request body is over {} bytes", api::MAX_BODY),
                }),
                Err(e) => Err(ApiError::bad(format!(
                    "the request body could not be read: {e}"
                ))),
            },
        };
        match result {
            Ok(json) => self.json(StatusCode::OK, &json, now),
            Err(error) => self.api_error(error, now),
        }
    }

    /// The API request's body, `None` when over [`api::MAX_BODY`]. A longer
    /// body is still read to its end (up to [`DRAINED`], JS-side): one
    /// read part way and dropped leaves the client's keep-alive connection
    /// broken for its next request.
    async fn admin_body(&self, body: B) -> Result<Option<Vec<u8>>, PlatformError> {
        let limit = ReadLimit {
            bytes: DRAINED,
            ms: u64::from(self.config.origin_timeout_secs) * 1000,
        };
        match body.buffered(limit).await? {
            Buffered::Whole(body, length) if length <= api::MAX_BODY => {
                body.bytes(api::MAX_BODY).await
            }
            Buffered::Whole(..) | Buffered::PassOn(..) => Ok(None),
        }
    }

    /// `POST /purge`: writes the purge's records to KV (paced, see
    /// [`crate::purge::Plan`]), applies them to this isolate at once, and
    /// deletes URLs a hard purge names from this location's Cache API (a
    /// soft purge keeps them, to be served while they are revalidated). A
    /// KV failure is a 503 that says what did not happen.
    async fn purge(&self, body: &[u8], site: &Site, now: SystemTime) -> Result<String, ApiError> {
        let kv = self.kv()?;
        let purge = api::purge(body, site, &self.config.tracking)?;
        let (now_ms, mode) = (unix_ms(now), purge.mode);
        let digests = purge.digests();
        let summary = purge.summary();
        let plan = self.purges.memo.borrow_mut().pacer.plan(
            now_ms,
            mode,
            purge.everything,
            &digests,
            &summary,
        );
        let written = match plan {
            Plan::Now => {
                let record = (purge.everything, digests, summary.clone());
                self.write_purge(kv, now_ms, mode, record).await?
            }
            Plan::Lead { batch, at_ms } => {
                self.background.sleep(at_ms.saturating_sub(now_ms)).await;
                let record = self.purges.memo.borrow_mut().pacer.take(batch);
                let record = record.expect("a batch stays until its leader finishes it");
                let result = self.write_purge(kv, at_ms, mode, record).await;
                let mut memo = self.purges.memo.borrow_mut();
                memo.pacer
                    .finish(batch, result.clone().map_err(|e| e.message));
                memo.pacer.forget_before(at_ms.saturating_sub(60_000));
                result?
            }
            Plan::Follow { batch } => self.follow(batch).await?,
        };
        if mode == crate::purge::Mode::Hard {
            for uri in &purge.urls {
                self.delete_locally(uri).await;
            }
        }
        Ok(to_json(&Purged {
            purge: Summary {
                id: written.id,
                at: written.at_ms,
                ..summary
            },
            records: written.records,
            paced: plan != Plan::Now,
            propagation_seconds: self.propagation_secs(),
        }))
    }

    /// Writes one purge's records at `at_ms`: `(everything, digests, what
    /// it named)`.
    async fn write_purge(
        &self,
        kv: &K,
        at_ms: u64,
        mode: crate::purge::Mode,
        (everything, digests, summary): (bool, Vec<u64>, Summary),
    ) -> Result<Written, ApiError> {
        let id = purge_id(at_ms, mode, everything, &digests);
        let records = PurgeRecord::split(&id, at_ms, mode, everything, &digests);
        let summary = Summary {
            id: id.clone(),
            at: at_ms,
            ..summary
        };
        let ttl = self.config.purge_window_secs() + RECORD_MARGIN_SECS;
        for (part, record) in records.iter().enumerate() {
            let value = match part {
                0 => to_json(&summary),
                _ => String::from("{}"),
            };
            if let Err(e) = kv.put(&record.key, &value, &record.metadata(), ttl).await {
                // What was written is real: apply it here too.
                self.purges.memo.borrow_mut().insert(&records[..part]);
                self.background
                    .warn(&format!("purge {id}: KV write failed: {e}"));
                let message = match part {
                    0 => format!("KV write failed ({e}): the purge did not happen; send it again"),
                    _ => format!(
                        "KV write failed ({e}) after {part} of {} records: the purge happened only in part; send it again",
                        records.len()
                    ),
                };
                return Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message,
                });
            }
        }
        self.purges.memo.borrow_mut().insert(&records);
        Ok(Written {
            id,
            at_ms,
            records: records.len(),
        })
    }

    /// Waits for the request writing `batch` to report.
    async fn follow(&self, batch: u64) -> Result<Written, ApiError> {
        let mut waited = 0;
        while waited < FOLLOW_BOUND_MS {
            if let Some(outcome) = self.purges.memo.borrow().pacer.outcome(batch) {
                return outcome.map_err(|message| ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message,
                });
            }
            self.background.sleep(FOLLOW_POLL_MS).await;
            waited += FOLLOW_POLL_MS;
        }
        Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message:
                "the purge was queued behind an identical one that did not report: send it again"
                    .into(),
        })
    }

    /// Deletes a purged URL's entries (both schemes; variants go with their
    /// marker) from this location's Cache API, so they are gone here even
    /// for isolates that have not read the purge yet.
    async fn delete_locally(&self, uri: &crate::normalize::NormalizedUri) {
        for scheme in ["http", "https"] {
            let url = format!("{scheme}://{}{}", uri.authority(), uri.path_and_query());
            let Some(key) = url
                .parse()
                .ok()
                .and_then(|u| normalize(&u, &self.config.tracking))
                .map(|u| CacheKey::new(&u))
            else {
                continue;
            };
            if let Err(e) = self.storage.delete(&key.primary_url()).await {
                self.background
                    .warn(&format!("deleting purged {url} here failed: {e}"));
            }
        }
    }

    /// `GET /purges`: the newest purges as they were written (one listing,
    /// then one read per purge).
    async fn list_purges(&self) -> Result<String, ApiError> {
        let kv = self.kv()?;
        let unavailable = |e: PlatformError| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("KV could not be read: {e}"),
        };
        let listing = kv.list(KEY_PREFIX, 1_000).await.map_err(unavailable)?;
        let mut purges = Vec::new();
        for key in listing
            .keys
            .iter()
            .filter(|k| PurgeRecord::is_first_part(&k.name))
        {
            if purges.len() == LISTED {
                break;
            }
            let value = kv.get(&key.name).await.map_err(unavailable)?;
            if let Some(purge) = value.and_then(|v| serde_json::from_str::<Summary>(&v).ok()) {
                purges.push(purge);
            }
        }
        Ok(to_json(&Purges {
            purges,
            propagation_seconds: self.propagation_secs(),
            refresh_seconds: self.config.purge_refresh_secs,
        }))
    }

    /// `POST /warm`: fetches each URL (once per device class) through the
    /// normal pipeline, as a client of that class in the admin request's
    /// country would, a few at a time, and reports each result.
    async fn warm(
        &self,
        (body, admin_headers): (&[u8], &HeaderMap),
        site: &Site,
        country: &RuntimeCountry,
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let warm = api::warm(body, site, &self.config.admin_path)?;
        // The admin request's country, where it is read from a header.
        let country_field = self.config.client.country_header.as_ref().and_then(|name| {
            let value = admin_headers.get(name)?;
            Some((name.clone(), value.clone()))
        });
        let jobs: Vec<(Uri, crate::device::DeviceClass)> = warm
            .urls
            .iter()
            .flat_map(|u| warm.devices.iter().map(move |d| (u.clone(), *d)))
            .collect();
        let mut results = Vec::new();
        for batch in jobs.chunks(WARM_PARALLEL) {
            let fetches: Vec<
                std::pin::Pin<Box<dyn std::future::Future<Output = Response<B>> + '_>>,
            > = batch
                .iter()
                .map(|(uri, device)| {
                    let mut request = Request::new(B::empty());
                    *request.uri_mut() = uri.clone();
                    let agent = HeaderValue::from_static(device.canonical_agent());
                    request.headers_mut().insert(header::USER_AGENT, agent);
                    if let Some((name, value)) = &country_field {
                        request.headers_mut().insert(name.clone(), value.clone());
                    }
                    Box::pin(self.proxied(request, country, now)) as _
                })
                .collect();
            for (response, (uri, device)) in join_all(fetches).await.into_iter().zip(batch) {
                let status = crate::status::last_member(response.headers());
                let cache_status = status.unwrap_or("").to_string();
                results.push(Warmed {
                    url: uri.to_string(),
                    device: device.as_str(),
                    status: response.status().as_u16(),
                    cache_status,
                });
            }
        }
        Ok(to_json(&WarmResults { results }))
    }

    fn kv(&self) -> Result<&K, ApiError> {
        self.purges.kv.as_ref().ok_or_else(|| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "no CACHE_KV binding: purges need a KV namespace (see the README)".into(),
        })
    }

    /// The bound on a purge reaching every location: KV's propagation (60 s)
    /// plus how often isolates read the records.
    fn propagation_secs(&self) -> u64 {
        60 + self.config.purge_refresh_secs
    }

    /// A file of the admin page (GET or HEAD only). `ADMIN_PATH` itself
    /// redirects to `ADMIN_PATH/`, so the page's relative links resolve.
    fn page(
        &self,
        request: &Request<B>,
        route: &str,
        asset: page::Asset,
        now: SystemTime,
    ) -> Response<B> {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            let error = ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "the admin page takes GET".into(),
            };
            return self.api_error(error, now);
        }
        let status = CacheStatus::new(Phase::Local).with_detail("admin");
        // Only at its own spelling: the page finds the API from its own
        // address, and `//evil.example/..;/_admin/` must not become a base
        // that sends the token elsewhere. `ADMIN_PATH` itself gains its `/`
        // so relative links resolve.
        let canonical = format!("{}{route}", self.config.admin_path);
        if request.uri().path() != canonical {
            let mut response = self.local(StatusCode::PERMANENT_REDIRECT, "", status, now);
            let location = HeaderValue::from_str(&canonical).expect("ADMIN_PATH is checked");
            response.headers_mut().insert(header::LOCATION, location);
            return response;
        }
        let body = match *request.method() {
            Method::HEAD => "",
            _ => asset.body,
        };
        let mut response = self.local(StatusCode::OK, body, status, now);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(page::CSP),
        );
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }

    fn api_error(&self, error: ApiError, now: SystemTime) -> Response<B> {
        let json = to_json(&Failed {
            error: error.message,
        });
        self.json(error.status, &json, now)
    }

    fn json(&self, code: StatusCode, json: &str, now: SystemTime) -> Response<B> {
        let status = CacheStatus::new(Phase::Local).with_detail("admin");
        let mut response = self.local(code, &format!("{json}\n"), status, now);
        let headers = response.headers_mut();
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        headers.insert(header::CONTENT_TYPE, json);
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

/// The API's answers.
#[derive(Serialize)]
struct Purged {
    #[serde(flatten)]
    purge: Summary,
    records: usize,
    /// Held back to share a write with a repeat of the same purge.
    paced: bool,
    propagation_seconds: u64,
}

#[derive(Serialize)]
struct Purges {
    purges: Vec<Summary>,
    propagation_seconds: u64,
    refresh_seconds: u64,
}

#[derive(Serialize)]
struct WarmResults {
    results: Vec<Warmed>,
}

#[derive(Serialize)]
struct Warmed {
    url: String,
    device: &'static str,
    status: u16,
    cache_status: String,
}

#[derive(Serialize)]
struct Failed {
    error: String,
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("plain data")
}
