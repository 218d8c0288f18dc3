//! Shared state of the running hub: store, blobs, configuration, signing key, templates.

use std::sync::Arc;

use axum::http::HeaderMap;
use modelyard_blob::BlobStore;
use modelyard_store::Store;

use crate::config::ServerConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub blobs: BlobStore,
    pub config: Arc<ServerConfig>,
    /// Key for self-authenticating links (LFS upload URLs).
    pub secret: Arc<[u8; 32]>,
    pub templates: Arc<minijinja::Environment<'static>>,
    pub master: Arc<crate::master::Master>,
    /// The background model analyzer's queue, set when the server starts it.
    pub analysis: Arc<std::sync::OnceLock<crate::analysis::Queue>>,
    /// The runtime predictor, refitted from the store's observations.
    pub runtime: Arc<crate::predict::Runtime>,
    /// Anonymous metadata reads served from memory.
    pub read_cache: crate::read_cache::ReadCache,
}

impl AppState {
    /// The base URL as the client sees it: the configured public URL, else from `Host`.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get("host"))
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| self.config.bind.to_string());
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        format!("{proto}://{host}")
    }
}
