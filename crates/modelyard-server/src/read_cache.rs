//! A cache of metadata reads (repo lists, search, info, trees, refs, commits), served from
//! memory instead of the database, kept apart per viewer.
//!
//! Requests without credentials and requests with an API token (`Authorization: Bearer`) are
//! cached, each under the viewer it is answered for (anonymous, or the token's user and whether
//! they are an admin: all a metadata response depends on), so a response holding someone's
//! private repos is only ever served to that someone. Browser requests (with a cookie) are not
//! cached. A write through this replica (any unsafe method outside the cluster and job APIs)
//! empties the cache and the token cache when it completes and, on PostgreSQL, tells the other
//! replicas (LISTEN/NOTIFY), which empty theirs; a response computed while a write ran is not
//! kept. Changes made by background tasks (an analysis finishing, download counts) show within
//! `TTL` plus the time one refresh takes (`STALE_MAX` at most): when an entry expires, one
//! request recomputes it while the others are still answered from it, so a popular listing
//! never sends every connection to the database at once.

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

/// The cache, the token cache, and the count of writes that invalidated them.
#[derive(Clone)]
pub struct ReadCache {
    entries: moka::sync::Cache<String, Arc<Cached>>,
    /// Stored tokens by hash (see [`crate::auth::lookup_token`]), kept for `TTL` at most.
    pub(crate) tokens: moka::sync::Cache<String, Arc<crate::auth::TokenOwner>>,
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
            tokens: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(TTL)
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
        self.tokens.invalidate_all();
    }

    /// Writes so far: a value read before a lookup and compared after it tells whether a
    /// write ran meanwhile.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

/// The cache key of a cacheable request, before its viewer is known: its URI and the headers
/// a response is built from (links use the host and scheme the client sees); and whether it
/// carries a token (else it is anonymous).
fn key(req: &Request) -> Option<(String, bool)> {
    if req.method() != Method::GET {
        return None;
    }
    let h = req.headers();
    if h.contains_key("cookie") {
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
    Some((
        format!(
            "{}\n{}\n{}\n{}",
            req.uri(),
            header("host"),
            header("x-forwarded-host"),
            header("x-forwarded-proto")
        ),
        h.contains_key("authorization"),
    ))
}

/// The full key: who the response is for, then the request's key.
fn viewer_key(caller: Option<&crate::auth::Caller>, key: &str) -> String {
    match caller {
        None => format!("~anonymous\n{key}"),
        Some(c) => format!("@{}\n{}\n{key}", c.name, c.is_admin),
    }
}

/// Empties this replica's caches whenever another replica announces a change (PostgreSQL
/// LISTEN/NOTIFY), and after the notice connection was lost; returns at once on SQLite.
pub async fn follow_changes(state: AppState) {
    loop {
        let mut listener = match state.store.change_listener().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other replicas' changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Anything may have changed while no one listened.
        state.read_cache.invalidate();
        loop {
            if let Err(e) = listener.changed().await {
                tracing::warn!(error = %e, "lost the change notices; listening again");
                break;
            }
            state.read_cache.invalidate();
        }
        state.read_cache.invalidate();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
    let key = match key(&req).filter(|_| state.config.read_cache) {
        Some((key, false)) => Some(viewer_key(None, &key)),
        // A token that does not resolve (malformed, unknown, expired) is answered uncached.
        Some((key, true)) => match crate::auth::bearer_caller(&state, req.headers()).await {
            Ok(Some(caller)) => Some(viewer_key(Some(&caller), &key)),
            _ => None,
        },
        None => None,
    };
    let Some(key) = key else {
        let write = invalidates(&req);
        let resp = next.run(req).await;
        if write {
            cache.invalidate();
            // Before the client hears back, so that its next read through another replica
            // finds that replica's cache emptied too.
            if let Err(e) = state.store.announce_change().await {
                tracing::warn!(error = %e, "cannot tell the other replicas of a change");
            }
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
    fn only_metadata_reads_are_kept_and_per_viewer() {
        let get = |uri: &str, h: &[(&str, &str)]| key(&req(Method::GET, uri, h));
        assert!(!get("/api/models?search=x", &[("host", "a")]).unwrap().1);
        assert!(get("/api/datasets/ns/n/tree/main", &[]).is_some());
        // A token is cached under its viewer; browser sessions, background-computed results
        // and other paths are never cached.
        assert!(
            get("/api/models", &[("authorization", "Bearer t")])
                .unwrap()
                .1
        );
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
        // Viewers never share an entry.
        let who = |name: &str, is_admin: bool| crate::auth::Caller {
            name: name.into(),
            is_admin,
            can_write: false,
        };
        let keys = [
            viewer_key(None, "k"),
            viewer_key(Some(&who("alice", false)), "k"),
            viewer_key(Some(&who("alice", true)), "k"),
            viewer_key(Some(&who("bob", false)), "k"),
        ];
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
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
