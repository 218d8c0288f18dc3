//! Model structure analysis in the hub: a background queue (once per content hash), the
//! analysis and structure-compare endpoints, and the model page's analysis panel.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use futures_util::StreamExt;
use modelyard_analyze::{AnalyzeError, ModelFeatures, Safety};
use modelyard_blob::{BlobStore, Sha256};
use modelyard_core::{RepoId, RepoKind};
use modelyard_store::{AnalysisRow, AnalysisStatus, CommitOp, NewAnalysis, RepoRow, TreeEntry};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::sync::mpsc;

use crate::api::{fmt_date, readable, resolve, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Files waiting for analysis; past this, new work is dropped until the next restart scan.
const QUEUE_DEPTH: usize = 1024;

/// What the analyzer looks at: one model file, or a sharded safetensors index with its shards.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: String,
    /// SHA-256 of the file at `path`.
    pub sha256: String,
    /// What the analysis is stored under: the file's SHA-256, or for an index a hash over the
    /// index and the safetensors files beside it (their names and contents decide the result).
    pub key: String,
    pub size: i64,
    /// For an index: `(path relative to the index's folder, sha256)` of candidate shards.
    pub shards: Option<Vec<(String, String)>>,
}

fn is_index(path: &str) -> bool {
    path.to_ascii_lowercase()
        .ends_with(".safetensors.index.json")
}

/// Whether the analyzer handles a file of this name.
pub fn analysable(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    is_index(&lower)
        || [
            ".onnx",
            ".safetensors",
            ".bin",
            ".pt",
            ".pth",
            ".ckpt",
            ".pkl",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// The analysable files of a commit's tree, sorted by path.
pub fn targets(tree: &[TreeEntry]) -> Vec<Target> {
    tree.iter()
        .filter(|e| analysable(&e.path))
        .map(|e| {
            if !is_index(&e.path) {
                return Target {
                    path: e.path.clone(),
                    sha256: e.sha256.clone(),
                    key: e.sha256.clone(),
                    size: e.size,
                    shards: None,
                };
            }
            let folder = e.path.rsplit_once('/').map(|(f, _)| format!("{f}/"));
            let folder = folder.unwrap_or_default();
            let shards: Vec<(String, String)> = tree
                .iter()
                .filter(|s| s.path.starts_with(&folder) && s.path.ends_with(".safetensors"))
                .map(|s| (s.path[folder.len()..].to_owned(), s.sha256.clone()))
                .collect();
            let mut h = sha2::Sha256::new();
            h.update(b"safetensors-index\0");
            h.update(e.sha256.as_bytes());
            for (p, s) in &shards {
                h.update([0]);
                h.update(p.as_bytes());
                h.update([0]);
                h.update(s.as_bytes());
            }
            Target {
                path: e.path.clone(),
                sha256: e.sha256.clone(),
                key: hex::encode(h.finalize()),
                size: e.size,
                shards: Some(shards),
            }
        })
        .collect()
}

/// The running analyzer of one hub: its queue and the keys queued or in progress.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Target>,
    pending: Arc<Mutex<HashSet<String>>>,
}

/// Queues by data directory. `AppState` has no slot for the queue, so commits find it here;
/// a hub that runs no analyzer (tests, `admin` commands) simply queues nothing.
fn queues() -> &'static Mutex<HashMap<PathBuf, Queue>> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Queue>>> = OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

fn queue_of(state: &AppState) -> Option<Queue> {
    queues().lock().ok()?.get(&state.config.data_dir).cloned()
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
    if let Ok(mut q) = queues().lock() {
        q.insert(state.config.data_dir.clone(), queue.clone());
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
async fn enqueue(state: &AppState, targets: &[Target], wait: bool) -> usize {
    let Some(queue) = queue_of(state) else {
        return 0;
    };
    let mut queued = 0;
    for t in targets {
        if matches!(state.store.analysis(&t.key).await, Ok(Some(_))) {
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

/// Analyses one target and stores the outcome; failures of the file become stored errors.
async fn run(state: &AppState, t: &Target) {
    if matches!(state.store.analysis(&t.key).await, Ok(Some(_))) {
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

/// One file's analysis as the API shows it.
fn file_json(t: &Target, row: Option<&AnalysisRow>) -> Value {
    let status = row.map_or("pending", |r| r.status.as_str());
    json!({
        "path": t.path,
        "sha256": t.sha256,
        "size": t.size,
        "status": status,
        "format": row.and_then(|r| r.format.clone()),
        "features": row.and_then(|r| r.features.clone()),
        "error": row.and_then(|r| r.error.clone()),
        "unsafe_imports": row.and_then(|r| r.features.as_ref())
            .and_then(|f| f["safety"]["imports"].as_array().cloned())
            .unwrap_or_default(),
        "analyzed_at": row.map(|r| fmt_date(r.created_at)),
        "attempts": row.map_or(0, |r| r.attempts),
    })
}

async fn lookup(state: &AppState, targets: &[Target]) -> AppResult<Vec<Option<AnalysisRow>>> {
    let mut rows = Vec::with_capacity(targets.len());
    for t in targets {
        rows.push(state.store.analysis(&t.key).await?);
    }
    Ok(rows)
}

/// `GET /api/models/{ns}/{name}/analysis/{rev}`: every analysable file at `rev`.
pub async fn file_analyses(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<RevParams>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, RepoKind::Model, &p.ns, &p.name).await?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    let targets = targets(&state.store.tree(&commit, "").await?);
    let rows = lookup(&state, &targets).await?;
    let missing: Vec<Target> = targets
        .iter()
        .zip(&rows)
        .filter(|(_, r)| r.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    if !missing.is_empty() {
        // Self-healing: a file dropped by a full queue is queued again when someone asks.
        enqueue(&state, &missing, false).await;
    }
    let files: Vec<Value> = targets
        .iter()
        .zip(&rows)
        .map(|(t, r)| file_json(t, r.as_ref()))
        .collect();
    Ok(Json(json!({
        "id": repo.id.to_string(),
        "revision": p.rev,
        "commit": commit,
        "files": files,
    })))
}

#[derive(Deserialize)]
pub struct CompareQuery {
    pub a: String,
    pub b: String,
    pub file_a: Option<String>,
    pub file_b: Option<String>,
}

/// One side of a comparison, loaded and checked.
struct Side {
    summary: Value,
    features: ModelFeatures,
}

async fn load_side(
    state: &AppState,
    auth: &Auth,
    spec: &str,
    file: Option<&str>,
) -> AppResult<Side> {
    let (repo, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let (ns, name) = repo.split_once('/').ok_or_else(|| {
        AppError::bad_request(format!("{spec:?} is not NAMESPACE/NAME[@REVISION]"))
    })?;
    RepoId::new(ns, name).map_err(|_| AppError::repo_not_found(repo))?;
    let repo = readable(state, auth, RepoKind::Model, ns, name).await?;
    let commit = resolve(state, &repo, rev).await?;
    let all = targets(&state.store.tree(&commit, "").await?);
    let target = match file {
        Some(f) => all.into_iter().find(|t| t.path == f).ok_or_else(|| {
            AppError::entry_not_found(format!("{}@{rev} has no analysable file {f:?}", repo.id))
        })?,
        None => all.into_iter().next().ok_or_else(|| {
            AppError::entry_not_found(format!("{}@{rev} has no model file to compare", repo.id))
        })?,
    };
    let where_ = format!("{}@{rev}:{}", repo.id, target.path);
    let row = match state.store.analysis(&target.key).await? {
        Some(r) => r,
        None => {
            enqueue(state, std::slice::from_ref(&target), false).await;
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "AnalysisPending",
                format!("the analysis of {where_} is still pending; retry in a few seconds"),
            ));
        }
    };
    let features = match (&row.status, &row.features) {
        (AnalysisStatus::Error, _) | (_, None) => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "AnalysisFailed",
                format!(
                    "{where_} could not be analysed: {}",
                    row.error.as_deref().unwrap_or("no features stored")
                ),
            ))
        }
        (_, Some(f)) => serde_json::from_value::<ModelFeatures>(f.clone())
            .map_err(|e| AppError::internal(format!("stored features of {where_}: {e}")))?,
    };
    Ok(Side {
        summary: json!({
            "id": repo.id.to_string(), "revision": rev, "commit": commit,
            "path": target.path, "sha256": target.sha256, "status": row.status.as_str(),
        }),
        features,
    })
}

/// `GET /api/compare/structure?a=NS/NAME@REV&b=NS/NAME@REV[&file_a=..&file_b=..]`: the
/// structural diff of the main model file of each (the first analysable one, or the named).
pub async fn compare_structure(
    State(state): State<AppState>,
    Query(q): Query<CompareQuery>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let a = load_side(&state, &auth, &q.a, q.file_a.as_deref()).await?;
    let b = load_side(&state, &auth, &q.b, q.file_b.as_deref()).await?;
    let d = modelyard_analyze::diff(&a.features, &b.features);
    let mut out = serde_json::to_value(&d).map_err(|e| AppError::internal(e.to_string()))?;
    out["a"] = a.summary;
    out["b"] = b.summary;
    Ok(Json(out))
}

/// `25.6 M`, `6.0 K`, `4.1 G`: counts as people read them.
pub fn human_count(n: u64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in units {
        if n as f64 >= scale {
            return format!("{:.1} {unit}", n as f64 / scale);
        }
    }
    n.to_string()
}

fn shape_text(io: &Value) -> String {
    let dims = io["shape"].as_array().map(|dims| {
        dims.iter()
            .map(|d| {
                d.as_u64()
                    .map_or_else(|| d.as_str().unwrap_or("?").to_owned(), |n| n.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    format!(
        "{}: {} [{}]",
        io["name"].as_str().unwrap_or("?"),
        io["dtype"].as_str().unwrap_or("?"),
        dims.unwrap_or_else(|| "unknown shape".into())
    )
}

/// The model page's analysis panel for a commit's tree: one entry per analysable file.
pub async fn panel(state: &AppState, tree: &[TreeEntry]) -> AppResult<Vec<Value>> {
    let targets = targets(tree);
    let rows = lookup(state, &targets).await?;
    Ok(targets
        .iter()
        .zip(&rows)
        .map(|(t, row)| {
            let Some(row) = row else {
                return json!({"path": t.path, "status": "pending"});
            };
            let f = row.features.clone().unwrap_or(Value::Null);
            let count = |v: &Value| v.as_u64().map(human_count);
            let params = f["parameters"]["total"].as_u64();
            let by_dtype: Vec<String> = f["parameters"]["by_dtype"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!("{k} {}", human_count(v["count"].as_u64().unwrap_or(0)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let list = |key: &str| -> Vec<String> {
                f[key]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
                    .unwrap_or_default()
            };
            let ios = |key: &str| -> Vec<String> {
                f[key]
                    .as_array()
                    .map(|a| a.iter().map(shape_text).collect())
                    .unwrap_or_default()
            };
            json!({
                "path": t.path,
                "status": row.status.as_str(),
                "error": row.error,
                "format": row.format,
                "params_h": params.map(human_count),
                "params": params,
                "by_dtype": by_dtype,
                "macs_h": count(&f["macs_per_sample"]),
                "flops_h": count(&f["flops_per_sample"]),
                "depth": f["depth"].as_u64(),
                "categories": list("op_categories"),
                "ops": list("op_histogram"),
                "inputs": ios("inputs"),
                "outputs": ios("outputs"),
                "opset": f["opset"].as_i64(),
                "producer": f["producer"].as_str(),
                "unsafe_imports": f["safety"]["imports"].as_array().cloned().unwrap_or_default(),
            })
        })
        .collect())
}
