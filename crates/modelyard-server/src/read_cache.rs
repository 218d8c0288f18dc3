//! A cache of anonymous metadata reads (repo lists, search, info, trees, refs, commits): what
//! every visitor and unauthenticated client sees, served from memory instead of the database.
//!
//! Only requests without credentials (no `Authorization`, no cookie) are cached, so a cached
//! response never holds anything private. A write through this replica (any unsafe method
//! outside the cluster and job APIs) empties the cache when it completes, and a response
//! computed while a write ran is not kept; writes through other replicas, and changes made by
//! background tasks (an analysis finishing, download counts), show within `TTL` plus the time
//! one refresh takes (`STALE_MAX` at most): when an entry expires, one request recomputes it
//! while the others are still answered from it, so a popular listing never sends every
//! connection to the database at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::HttpBody as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// How long another replica's write may go unseen.
pub const TTL: Duration = Duration::from_secs(1);
/// An expired entry is served while another request refreshes it, up to this age.
const STALE_MAX: Duration = Duration::from_secs(5);
/// Responses larger than this are not kept.
const MAX_BODY: u64 = 1 << 20;
/// Entries kept at most.
const CAPACITY: u64 = 4096;

struct Cached {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    fetched: Instant,
    /// Set by the one request that recomputes this entry once it is older than `TTL`.
    refreshing: AtomicBool,
}

impl Cached {
    fn response(&self) -> Response {
        let mut resp = (self.status, self.body.clone()).into_response();
        *resp.headers_mut() = self.headers.clone();
        resp
    }
}

/// The cache and the count of writes that invalidated it.
#[derive(Clone)]
pub struct ReadCache {
    entries: moka::sync::Cache<String, Arc<Cached>>,
    writes: Arc<AtomicU64>,
}

impl Default for ReadCache {
    fn default() -> Self {
        ReadCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                // Expired entries are refreshed in place; ones nobody asks for again go.
                .time_to_idle(TTL * 30)
                .build(),
            writes: Arc::default(),
        }
    }
}

impl ReadCache {
    /// Forgets everything (after a write).
    pub fn invalidate(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }
}

/// The cache key of a cacheable request: its URI and the headers a response is built from
/// (links use the host and scheme the client sees).
fn key(req: &Request) -> Option<String> {
    if req.method() != Method::GET {
        return None;
    }
    let h = req.headers();
    if h.contains_key("authorization") || h.contains_key("cookie") {
        return None;
    }
    let path = req.uri().path();
    let metadata = (path.starts_with("/api/models") || path.starts_with("/api/datasets"))
        && !path.contains("/analysis/")
        && !path.contains("/summary");
    if !metadata {
        return None;
    }
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    Some(format!(
        "{}\n{}\n{}\n{}",
        req.uri(),
        header("host"),
        header("x-forwarded-host"),
        header("x-forwarded-proto")
    ))
}

/// Writes that change what the cached reads show: anything but reads and the cluster's own
/// traffic (heartbeats, job events), which would otherwise empty the cache every few seconds.
fn invalidates(req: &Request) -> bool {
    let p = req.uri().path();
    !req.method().is_safe()
        && !p.starts_with("/api/cluster/")
        && !p.starts_with("/api/jobs")
        && !p.starts_with("/api/predict")
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let cache = &state.read_cache;
    let Some(key) = key(&req) else {
        let write = invalidates(&req);
        let resp = next.run(req).await;
        if write {
            cache.invalidate();
        }
        return resp;
    };
    let stale = cache.entries.get(&key);
    if let Some(hit) = &stale {
        // Fresh, or expired while another request is already refreshing it (unless that
        // refresh never finished: its client went away).
        let age = hit.fetched.elapsed();
        if age < TTL || (age < STALE_MAX && hit.refreshing.swap(true, Ordering::SeqCst)) {
            return hit.response();
        }
    }
    let writes = cache.writes.load(Ordering::SeqCst);
    let resp = next.run(req).await;
    let small = resp
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_BODY);
    if resp.status() != StatusCode::OK || !small {
        // Not kept: the old entry goes, so that the next request asks the database again.
        if stale.is_some() {
            cache.entries.invalidate(&key);
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY as usize).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    // Computed while a write ran: it may predate the write, so it is served once, not kept
    // (the write emptied the cache, the expired entry included).
    if cache.writes.load(Ordering::SeqCst) == writes {
        cache.entries.insert(
            key,
            Arc::new(Cached {
                status: parts.status,
                headers: parts.headers.clone(),
                body: body.clone(),
                fetched: Instant::now(),
                refreshing: AtomicBool::new(false),
            }),
        );
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_anonymous_metadata_reads_are_kept() {
        let get = |uri: &str, h: &[(&str, &str)]| key(&req(Method::GET, uri, h));
        assert!(get("/api/models?search=x", &[("host", "a")]).is_some());
        assert!(get("/api/datasets/ns/n/tree/main", &[]).is_some());
        // Credentials, background-computed results and other paths are never cached.
        assert!(get("/api/models", &[("authorization", "Bearer t")]).is_none());
        assert!(get("/api/models", &[("cookie", "s=1")]).is_none());
        assert!(get("/api/models/ns/n/analysis/main", &[]).is_none());
        assert!(get("/api/jobs", &[]).is_none());
        assert!(get("/ns/n", &[]).is_none());
        assert!(key(&req(Method::POST, "/api/models", &[])).is_none());
        // Responses built for another host are kept apart.
        assert_ne!(
            get("/api/models", &[("host", "a")]),
            get("/api/models", &[("host", "b")])
        );
        // Writes invalidate, the cluster's own traffic does not.
        assert!(invalidates(&req(
            Method::POST,
            "/api/models/ns/n/commit/main",
            &[]
        )));
        assert!(invalidates(&req(
            Method::PUT,
            "/api/models/ns/n/settings",
            &[]
        )));
        assert!(!invalidates(&req(
            Method::POST,
            "/api/cluster/heartbeat",
            &[]
        )));
        assert!(!invalidates(&req(Method::GET, "/api/models", &[])));
    }
}
