//! Dataset summaries for the dataset page (splits, row counts, label distribution, a preview),
//! computed in the background once per commit by the evaluator's own readers.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::state::AppState;

/// Datasets larger than this are not copied out of the blob store to be summarized.
const MAX_BYTES: i64 = 4 << 30;

fn in_flight() -> &'static Mutex<HashSet<String>> {
    static SET: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SET.get_or_init(Default::default)
}

/// Starts summarizing `commit` unless it is summarized or being summarized.
pub fn ensure(state: &AppState, commit: &str) {
    if !in_flight()
        .lock()
        .expect("the in-flight set is never poisoned")
        .insert(commit.to_owned())
    {
        return;
    }
    let state = state.clone();
    let commit = commit.to_owned();
    tokio::spawn(async move {
        let done = match state.store.dataset_summary(&commit).await {
            Ok(Some(_)) => Ok(()),
            _ => {
                let result = compute(&state, &commit).await;
                if let Err(e) = &result {
                    tracing::warn!(commit = %commit, error = %e, "cannot summarize the dataset");
                }
                state
                    .store
                    .put_dataset_summary(&commit, result.as_ref().map_err(String::as_str))
                    .await
            }
        };
        if let Err(e) = done {
            tracing::warn!(commit = %commit, error = %e, "cannot store the dataset summary");
        }
        in_flight()
            .lock()
            .expect("the in-flight set is never poisoned")
            .remove(&commit);
    });
}

/// Copies the commit's files into a temporary directory and reads them.
async fn compute(state: &AppState, commit: &str) -> Result<Value, String> {
    let tree = state
        .store
        .tree(commit, "")
        .await
        .map_err(|e| e.to_string())?;
    let total: i64 = tree.iter().map(|e| e.size).sum();
    if total > MAX_BYTES {
        return Err(format!(
            "the dataset is {total} bytes; summaries are made for datasets up to {MAX_BYTES}"
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for entry in tree.iter().filter(|e| e.path != ".gitattributes") {
        // Paths were validated when committed: relative, no `..`.
        let dest = dir.path().join(&entry.path);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| e.to_string())?;
        }
        let sha = modelyard_blob::Sha256::parse(&entry.sha256).map_err(|e| e.to_string())?;
        let mut stream = state
            .blobs
            .get(&sha, None)
            .await
            .map_err(|e| e.to_string())?;
        let mut file = tokio::fs::File::create(&dest)
            .await
            .map_err(|e| e.to_string())?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk.map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())?;
        }
        file.flush().await.map_err(|e| e.to_string())?;
    }
    let root = dir.path().to_owned();
    let summary = tokio::task::spawn_blocking(move || modelyard_eval::summary::summarize(&root))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    serde_json::to_value(summary).map_err(|e| e.to_string())
}
