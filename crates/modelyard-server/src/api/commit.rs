//! Uploads: preupload (inline or LFS?), `validate-yaml`, and the NDJSON commit endpoint.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use base64::Engine;
use futures_util::TryStreamExt;
use modelyard_core::{RepoKind, RepoPath};
use modelyard_store::CommitOp;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::{writable, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::repo_ops::{self, CommitRequest};
use crate::state::AppState;

/// Files larger than this go through LFS, as on the Hub.
pub const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;
/// The longest NDJSON line accepted (an inline file, base64-encoded).
const MAX_LINE: usize = 64 << 20;

#[derive(Deserialize)]
pub struct PreuploadBody {
    pub files: Vec<PreuploadFile>,
}

#[derive(Deserialize)]
pub struct PreuploadFile {
    pub path: String,
    #[serde(default)]
    pub sample: String,
    pub size: u64,
}

/// `POST /api/{type}s/{ns}/{name}/preupload/{rev}`: for each file, regular or LFS, and the oid
/// of what is at that path now (for no-op detection).
pub async fn preupload(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
    Json(b): Json<PreuploadBody>,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let head = state.store.resolve_revision(&repo.uid, &p.rev).await?;
    let mut out = Vec::with_capacity(b.files.len());
    for f in &b.files {
        let path = RepoPath::parse(&f.path)?;
        let sample = base64::engine::general_purpose::STANDARD
            .decode(&f.sample)
            .unwrap_or_default();
        let lfs = f.size > LFS_THRESHOLD || sample.contains(&0) || is_lfs_pattern(path.as_str());
        let current = match &head {
            Some(h) => state.store.entry(h, path.as_str()).await?,
            None => None,
        };
        let oid = current.map(|e| if e.lfs { e.sha256 } else { e.git_oid });
        out.push(json!({
            "path": f.path,
            "uploadMode": if lfs { "lfs" } else { "regular" },
            "shouldIgnore": false,
            "oid": oid,
        }));
    }
    Ok(Json(json!({ "files": out, "commitOid": head })))
}

/// Binary model and data formats always go through LFS, whatever their size.
pub fn is_lfs_pattern(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".bin",
        ".onnx",
        ".safetensors",
        ".pt",
        ".pth",
        ".ckpt",
        ".h5",
        ".parquet",
        ".arrow",
        ".gz",
        ".zip",
    ]
    .iter()
    .any(|ext| lower.ends_with(ext))
}

/// `POST /api/validate-yaml`: checks a card's front matter the way the server will read it.
pub async fn validate_yaml(Json(b): Json<Value>) -> AppResult<Json<Value>> {
    let content = b.get("content").and_then(Value::as_str).unwrap_or_default();
    match modelyard_core::parse_card(content) {
        Ok(_) => Ok(Json(json!({ "errors": [], "warnings": [] }))),
        Err(e) => Err(AppError::bad_request(e.to_string())),
    }
}

#[derive(Deserialize)]
struct Line {
    key: String,
    value: Value,
}

#[derive(Deserialize, Default)]
struct Header {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct InlineFile {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsFile {
    path: String,
    oid: String,
    size: Option<i64>,
}

#[derive(Deserialize)]
struct Deleted {
    path: String,
}

/// `POST /api/{type}s/{ns}/{name}/commit/{branch}`: NDJSON operations applied atomically.
/// The body is read line by line; inline files are stored as they arrive.
pub async fn commit(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    headers: HeaderMap,
    auth: Auth,
    body: Body,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let caller = auth.require_write()?.clone();
    if state.store.branch_head(&repo.uid, &p.rev).await?.is_none() {
        return Err(
            if state
                .store
                .resolve_revision(&repo.uid, &p.rev)
                .await?
                .is_some()
            {
                AppError::bad_request(format!(
                    "{:?} is not a branch; commits go on branches",
                    p.rev
                ))
            } else {
                AppError::revision_not_found(&p.rev)
            },
        );
    }
    let reader =
        tokio_util::io::StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let mut reader = tokio::io::BufReader::with_capacity(1 << 16, reader);
    let mut header: Option<Header> = None;
    let mut ops = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read_line_limited(&mut reader, &mut line).await?;
        if n == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let l: Line = serde_json::from_slice(&line)
            .map_err(|e| AppError::bad_request(format!("commit body: invalid NDJSON line: {e}")))?;
        let bad = |e: serde_json::Error| {
            AppError::bad_request(format!("commit body: {} entry: {e}", l.key))
        };
        match l.key.as_str() {
            "header" => header = Some(serde_json::from_value(l.value).map_err(bad)?),
            "file" => {
                let f: InlineFile = serde_json::from_value(l.value.clone()).map_err(bad)?;
                let path = RepoPath::parse(&f.path)?;
                let content = match f.encoding.as_deref() {
                    Some("base64") | None => base64::engine::general_purpose::STANDARD
                        .decode(f.content.as_bytes())
                        .map_err(|e| {
                            AppError::bad_request(format!("{}: invalid base64: {e}", f.path))
                        })?,
                    Some("utf-8") | Some("utf8") => f.content.into_bytes(),
                    Some(other) => {
                        return Err(AppError::bad_request(format!("unknown encoding {other:?}")))
                    }
                };
                ops.push(CommitOp::Put(
                    repo_ops::store_inline(&state, path.as_str(), content).await?,
                ));
            }
            "lfsFile" => {
                let f: LfsFile = serde_json::from_value(l.value.clone()).map_err(bad)?;
                let path = RepoPath::parse(&f.path)?;
                let oid = modelyard_blob::Sha256::parse(&f.oid)?;
                let stored = state.store.blob_size(oid.as_str()).await?.ok_or_else(|| {
                    AppError::bad_request(format!(
                        "{}: LFS object {oid} was never uploaded",
                        f.path
                    ))
                })?;
                if f.size.is_some_and(|s| s != stored) {
                    return Err(AppError::bad_request(format!(
                        "{}: LFS object {oid} has {stored} bytes, not {}",
                        f.path,
                        f.size.unwrap_or_default()
                    )));
                }
                ops.push(CommitOp::Put(repo_ops::lfs_entry(
                    path.as_str(),
                    oid.as_str(),
                    stored,
                )));
            }
            "deletedFile" => {
                let d: Deleted = serde_json::from_value(l.value.clone()).map_err(bad)?;
                ops.push(CommitOp::DeleteFile(RepoPath::parse(&d.path)?.to_string()));
            }
            "deletedFolder" => {
                let d: Deleted = serde_json::from_value(l.value.clone()).map_err(bad)?;
                let folder = modelyard_core::path::parse_folder(&d.path)?;
                if folder.is_empty() {
                    return Err(AppError::bad_request(
                        "deleting the root folder is not allowed",
                    ));
                }
                ops.push(CommitOp::DeleteFolder(folder));
            }
            other => {
                return Err(AppError::bad_request(format!(
                    "commit body: unknown key {other:?}"
                )))
            }
        }
    }
    let header =
        header.ok_or_else(|| AppError::bad_request("commit body: the header line is missing"))?;
    let title = if header.summary.trim().is_empty() {
        "Update files".to_owned()
    } else {
        header.summary
    };
    let row = repo_ops::commit(
        &state,
        &repo,
        CommitRequest {
            branch: p.rev.clone(),
            expected_parent: header.parent_commit,
            author: caller.name.clone(),
            title,
            message: header.description,
            ops,
        },
    )
    .await?;
    let url = format!(
        "{}/commit/{}",
        super::repo_url(&state.base_url(&headers), kind, &repo.id),
        row.id
    );
    Ok(Json(
        json!({ "success": true, "commitOid": row.id, "commitUrl": url, "hookOutput": "" }),
    ))
}

async fn read_line_limited<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
) -> AppResult<usize> {
    let mut total = 0;
    loop {
        let buf = r
            .fill_buf()
            .await
            .map_err(|e| AppError::bad_request(format!("commit body was cut off: {e}")))?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        out.extend_from_slice(&buf[..take]);
        r.consume(take);
        total += take;
        if out.len() > MAX_LINE {
            return Err(AppError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "TooLarge",
                "an inline file in the commit is too large; upload it through LFS",
            ));
        }
        if done {
            return Ok(total);
        }
    }
}
