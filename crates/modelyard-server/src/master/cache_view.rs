//! A worker's cache inventory as people read it: the model and dataset commits (branch heads)
//! its cached blobs belong to, instead of content hashes. Private repositories the viewer
//! cannot read are counted, never named.

use std::collections::BTreeMap;

use modelyard_core::protocol::CacheItem;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::state::AppState;

/// `{"repos": [{repo, kind, branch, commit, files, bytes}], "other_blobs", "other_bytes",
/// "total_bytes"}` for a node's reported `cache_json`.
pub async fn cached_repos(state: &AppState, auth: &Auth, cache_json: Option<&str>) -> Value {
    let items: Vec<CacheItem> = cache_json
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let total: u64 = items.iter().map(|i| i.size).sum();
    let mut holders = Vec::new();
    for chunk in items.chunks(500) {
        let hashes: Vec<String> = chunk.iter().map(|i| i.sha256.clone()).collect();
        match state.store.blob_holders(&hashes).await {
            Ok(h) => holders.extend(h),
            Err(e) => tracing::warn!(error = %e, "cannot map cached blobs to commits"),
        }
    }
    let visible = |h: &modelyard_store::BlobHolder| {
        !h.private || auth.is_admin() || auth.name() == Some(h.owner.as_str())
    };
    // (kind, repo, branch) → (commit, files, bytes)
    let mut repos: BTreeMap<(String, String, String), (String, u64, u64)> = BTreeMap::new();
    let mut named = std::collections::HashSet::new();
    for h in holders.iter().filter(|h| visible(h)) {
        let e = repos
            .entry((
                h.kind.clone(),
                format!("{}/{}", h.namespace, h.name),
                h.branch.clone(),
            ))
            .or_insert_with(|| (h.commit.clone(), 0, 0));
        e.1 += 1;
        e.2 += h.size.max(0) as u64;
        named.insert(h.sha256.clone());
    }
    let others: Vec<&CacheItem> = items
        .iter()
        .filter(|i| !named.contains(&i.sha256))
        .collect();
    json!({
        "repos": repos.into_iter().map(|((kind, repo, branch), (commit, files, bytes))| json!({
            "kind": kind, "repo": repo, "branch": branch, "commit": commit,
            "files": files, "bytes": bytes, "size_h": crate::web::human_size(bytes as i64),
        })).collect::<Vec<_>>(),
        "other_blobs": others.len(),
        "other_bytes": others.iter().map(|i| i.size).sum::<u64>(),
        "other_size_h": crate::web::human_size(others.iter().map(|i| i.size).sum::<u64>() as i64),
        "total_bytes": total,
    })
}
