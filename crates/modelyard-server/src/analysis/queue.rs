//! The background analyzer: a bounded queue of files, analysed one at a time off the runtime.

use super::{analysable, targets, Target, QUEUE_DEPTH};
use crate::state::AppState;
use futures_util::StreamExt;
use modelyard_analyze::{AnalyzeError, ModelFeatures, Safety};
use modelyard_blob::{BlobStore, Sha256};
use modelyard_core::RepoKind;
use modelyard_store::{AnalysisStatus, CommitOp, NewAnalysis, RepoRow};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The running analyzer of one hub: its queue and the keys queued or in progress.
#[derive(Clone)]
pub struct Queue {
    tx: mpsc::Sender<Target>,
    pending: Arc<Mutex<HashSet<String>>>,
}

/// The analyzer `start` set up for this hub; a process that runs none (`admin` commands)
/// simply queues nothing.
fn queue_of(state: &AppState) -> Option<Queue> {
    state.analysis.get().cloned()
}

fn scratch_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("analysis-tmp")
}

/// Starts the background analyzer: queues model files of every branch head that lack an
/// analysis (so restarts and old repos catch up), then analyses queued files one at a time.
pub fn start(state: AppState) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::channel::<Target>(QUEUE_DEPTH);
    let queue = Queue {
        tx,
        pending: Arc::default(),
    };
    if state.analysis.set(queue.clone()).is_err() {
        tracing::warn!("the analyzer was started twice; the second one gets no work");
    }
    tokio::spawn(async move {
        let scratch = scratch_dir(&state);
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        let catch_up = tokio::spawn(catch_up(state.clone()));
        while let Some(target) = rx.recv().await {
            run(&state, &target).await;
            if let Ok(mut p) = queue.pending.lock() {
                p.remove(&target.key);
            }
        }
        catch_up.abort();
    })
}

async fn catch_up(state: AppState) {
    let heads = match state.store.model_branch_heads().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "analysis catch-up could not list branch heads");
            return;
        }
    };
    let mut queued = 0usize;
    for commit in heads {
        queued += enqueue_commit_files(&state, &commit, true).await;
    }
    tracing::info!(files = queued, "analysis catch-up queued files");
}

/// After a commit landed: queues its model files for analysis without delaying the commit.
pub fn after_commit(state: &AppState, repo: &RepoRow, commit: &str, ops: &[CommitOp]) {
    let relevant = ops
        .iter()
        .any(|op| matches!(op, CommitOp::Put(e) if analysable(&e.path)));
    if repo.kind != RepoKind::Model || !relevant || queue_of(state).is_none() {
        return;
    }
    let (state, commit) = (state.clone(), commit.to_owned());
    tokio::spawn(async move {
        enqueue_commit_files(&state, &commit, false).await;
    });
}

/// Queues the analysable files of `commit` that have no stored analysis; returns how many.
async fn enqueue_commit_files(state: &AppState, commit: &str, wait: bool) -> usize {
    match state.store.tree(commit, "").await {
        Ok(tree) => enqueue(state, &targets(&tree), wait).await,
        Err(e) => {
            tracing::warn!(commit, error = %e, "cannot read a tree to queue analyses");
            0
        }
    }
}

/// Queues the targets that are neither analysed nor already queued. With `wait`, waits for
/// room in the queue (the start-up scan); without, a full queue drops the file for now.
pub(super) async fn enqueue(state: &AppState, targets: &[Target], wait: bool) -> usize {
    let Some(queue) = queue_of(state) else {
        return 0;
    };
    let mut queued = 0;
    for t in targets {
        if analysed_by_this_version(state, &t.key).await {
            continue;
        }
        let fresh = queue
            .pending
            .lock()
            .map(|mut p| p.insert(t.key.clone()))
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        let sent = if wait {
            queue.tx.send(t.clone()).await.map_err(|e| e.to_string())
        } else {
            queue.tx.try_send(t.clone()).map_err(|e| e.to_string())
        };
        if let Err(e) = sent {
            if let Ok(mut p) = queue.pending.lock() {
                p.remove(&t.key);
            }
            tracing::warn!(path = %t.path, sha256 = %t.sha256, error = %e, "analysis queue refused a file; it is retried on the next request or restart");
        } else {
            queued += 1;
        }
    }
    queued
}

/// Whether the file already has an analysis by this analyser (or a newer one: replicas of
/// mixed versions during an upgrade). One by an older analyser is redone.
async fn analysed_by_this_version(state: &AppState, key: &str) -> bool {
    matches!(
        state.store.analysis(key).await,
        Ok(Some(a)) if a.analyzer_version >= modelyard_analyze::ANALYZER_VERSION
    )
}

/// Analyses one target and stores the outcome; failures of the file become stored errors.
async fn run(state: &AppState, t: &Target) {
    if analysed_by_this_version(state, &t.key).await {
        return;
    }
    let started = std::time::Instant::now();
    let dir = scratch_dir(state).join(format!("{}-{:08x}", &t.key[..16], rand::random::<u32>()));
    let outcome = analyze_target(state, t, &dir).await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            // Our own trouble (scratch space, blob storage), not the file's: leave it pending.
            tracing::warn!(path = %t.path, sha256 = %t.sha256, error = %e, "analysis could not run");
            return;
        }
    };
    let scratch = format!("{}/", dir.display());
    let (status, features, error) = match outcome {
        Ok(f) => {
            let status = if matches!(f.safety, Some(Safety::Unsafe { .. })) {
                AnalysisStatus::Unsafe
            } else {
                AnalysisStatus::Ok
            };
            (status, serde_json::to_value(&f).ok(), None)
        }
        Err(e) => (AnalysisStatus::Error, None, Some(e.replace(&scratch, ""))),
    };
    let format = features
        .as_ref()
        .and_then(|f| f["format"].as_str())
        .map(str::to_owned);
    let stored = state
        .store
        .put_analysis(&NewAnalysis {
            sha256: &t.key,
            status,
            format: format.as_deref(),
            features: features.as_ref(),
            error: error.as_deref(),
            analyzer_version: modelyard_analyze::ANALYZER_VERSION,
            parameters: features
                .as_ref()
                .and_then(|f| f["parameters"]["total"].as_i64()),
        })
        .await;
    match stored {
        Ok(_) => {
            tracing::info!(path = %t.path, sha256 = %t.sha256, status = status.as_str(), ms = started.elapsed().as_millis() as u64, "model analysed")
        }
        Err(e) => tracing::warn!(path = %t.path, error = %e, "cannot store an analysis"),
    }
}

/// `Ok(Err(message))` when the file could not be analysed; `Err` when the hub could not run
/// the analysis at all.
async fn analyze_target(
    state: &AppState,
    t: &Target,
    dir: &Path,
) -> std::io::Result<Result<ModelFeatures, String>> {
    let sha = match Sha256::parse(&t.sha256) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let name = t.path.rsplit('/').next().unwrap_or(&t.path).to_owned();
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".onnx") && t.size as u64 > modelyard_analyze::MAX_ONNX_BYTES {
        return Ok(Err(AnalyzeError::TooLarge {
            what: "an ONNX model",
            size: t.size as u64,
            limit: modelyard_analyze::MAX_ONNX_BYTES,
        }
        .to_string()));
    }
    if lower.ends_with(".safetensors") {
        // Only the header and a bounded prefix are read: seek through the blob in place.
        let blobs = state.blobs.clone();
        let handle = tokio::runtime::Handle::current();
        let budget = modelyard_analyze::AnalyzeOptions::default().hash_budget_bytes;
        let size = t.size as u64;
        return blocking(move || {
            let r = BlobReader {
                blobs,
                sha,
                handle,
                pos: 0,
                size,
            };
            let mut r = std::io::BufReader::with_capacity(1 << 20, r);
            modelyard_analyze::analyze_safetensors_reader(&mut r, size, budget)
        })
        .await;
    }
    tokio::fs::create_dir_all(dir).await?;
    let file = dir.join(&name);
    copy_blob(&state.blobs, &sha, &file).await?;
    if let Some(shards) = &t.shards {
        let text = tokio::fs::read(&file).await?;
        let wanted: HashSet<String> = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| {
                v["weight_map"].as_object().map(|m| {
                    m.values()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        for (rel, sha) in shards.iter().filter(|(rel, _)| wanted.contains(rel)) {
            let Ok(sha) = Sha256::parse(sha) else {
                continue;
            };
            let dest = dir.join(rel);
            if let Some(parent) = dest.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            copy_blob(&state.blobs, &sha, &dest).await?;
        }
    }
    blocking(move || modelyard_analyze::analyze_path(&file)).await
}

/// Runs an analysis off the async runtime; a panic in it becomes an error message.
async fn blocking(
    f: impl FnOnce() -> Result<ModelFeatures, AnalyzeError> + Send + 'static,
) -> std::io::Result<Result<ModelFeatures, String>> {
    Ok(match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the analyzer failed on this file: {e}")),
    })
}

/// Streams a blob into a file (bounded memory).
async fn copy_blob(blobs: &BlobStore, sha: &Sha256, dest: &Path) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut stream = blobs.get(sha, None).await.map_err(std::io::Error::other)?;
    let mut out = tokio::fs::File::create(dest).await?;
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await
}

/// Blocking `Read + Seek` over a stored blob, one ranged read per call.
struct BlobReader {
    blobs: BlobStore,
    sha: Sha256,
    handle: tokio::runtime::Handle,
    pos: u64,
    size: u64,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.size.min(self.pos.saturating_add(buf.len() as u64));
        if end <= self.pos {
            return Ok(0);
        }
        let (blobs, sha, range) = (&self.blobs, &self.sha, self.pos..end);
        let n = self.handle.block_on(async {
            let mut s = blobs
                .get(sha, Some(range))
                .await
                .map_err(std::io::Error::other)?;
            let mut n = 0;
            while let Some(chunk) = s.next().await {
                let chunk = chunk?;
                let k = chunk.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&chunk[..k]);
                n += k;
            }
            Ok::<_, std::io::Error>(n)
        })?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}
