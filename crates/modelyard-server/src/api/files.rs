//! Reading files: tree listings, `paths-info`, and `resolve` downloads with ETag and Range.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use modelyard_core::path::parse_folder;
use modelyard_core::{RepoKind, RepoPath};
use modelyard_store::{RepoRow, TreeEntry};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::repos::url_pairs;
use super::{readable, resolve, truthy, PathParams, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Entries per page of a tree listing (as on the Hub).
const TREE_PAGE: usize = 1000;

fn file_json(e: &TreeEntry) -> Value {
    let mut v = json!({ "type": "file", "oid": e.git_oid, "size": e.size, "path": e.path });
    if e.lfs {
        v["lfs"] = json!({ "oid": e.sha256, "size": e.size,
            "pointerSize": modelyard_core::hash::lfs_pointer(&e.sha256, e.size as u64).len() });
    }
    v
}

/// A folder's oid: a digest of what is below it, so it changes when its content does.
fn folder_oid(entries: &[&TreeEntry]) -> String {
    let mut h = Sha1::new();
    for e in entries {
        h.update(e.path.as_bytes());
        h.update([0]);
        h.update(e.git_oid.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The listing of `folder` at a commit: immediate children, or everything below.
pub fn list_folder(entries: &[TreeEntry], folder: &str, recursive: bool) -> Vec<Value> {
    let prefix = if folder.is_empty() {
        String::new()
    } else {
        format!("{folder}/")
    };
    let mut folders: BTreeMap<String, Vec<&TreeEntry>> = BTreeMap::new();
    let mut files = Vec::new();
    for e in entries.iter().filter(|e| e.path.starts_with(&prefix)) {
        let rest = &e.path[prefix.len()..];
        let mut parts: Vec<&str> = rest.split('/').collect();
        parts.pop();
        let mut acc = prefix.trim_end_matches('/').to_owned();
        for (depth, part) in parts.iter().enumerate() {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            if recursive || depth == 0 {
                folders.entry(acc.clone()).or_default().push(e);
            }
        }
        if recursive || !rest.contains('/') {
            files.push(e);
        }
    }
    let mut out: Vec<(String, Value)> = folders
        .iter()
        .map(|(path, inner)| {
            (
                path.clone(),
                json!({ "type": "directory", "oid": folder_oid(inner), "size": 0, "path": path }),
            )
        })
        .collect();
    out.extend(files.into_iter().map(|e| (e.path.clone(), file_json(e))));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

/// `GET /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]?recursive=&expand=`, paginated by `Link`.
pub async fn tree_root(
    state: State<AppState>,
    kind: Extension<RepoKind>,
    Path(p): Path<RevParams>,
    headers: HeaderMap,
    query: RawQuery,
    auth: Auth,
) -> AppResult<Response> {
    let p = PathParams {
        ns: p.ns,
        name: p.name,
        rev: p.rev,
        path: String::new(),
    };
    tree(state, kind, Path(p), headers, query, auth).await
}

pub async fn tree(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<PathParams>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    auth: Auth,
) -> AppResult<Response> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    let folder = parse_folder(&p.path)?;
    let pairs = url_pairs(raw.as_deref().unwrap_or(""));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let recursive = truthy(get("recursive"));
    let expand = truthy(get("expand"));
    let entries = state.store.tree(&commit, &folder).await?;
    if !folder.is_empty() && entries.is_empty() {
        return Err(AppError::entry_not_found(format!(
            "folder {folder:?} does not exist at {}",
            p.rev
        ))
        .with_commit(&commit));
    }
    let mut items = list_folder(&entries, &folder, recursive);
    let start: usize = get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let total = items.len();
    let items: Vec<Value> = items.drain(start.min(total)..).take(TREE_PAGE).collect();
    let mut items = items;
    if expand {
        if let Some(c) = state.store.commit(&repo.uid, &commit).await? {
            // Without per-file history, the commit listed is the one the listing was taken at.
            let last =
                json!({ "id": c.id, "title": c.title, "date": super::fmt_date(c.created_at) });
            for it in &mut items {
                it["lastCommit"] = last.clone();
            }
        }
    }
    let mut resp = Json(Value::Array(items)).into_response();
    if start + TREE_PAGE < total {
        let base = state.base_url(&headers);
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let path_part = if folder.is_empty() {
            String::new()
        } else {
            format!("/{}", enc(&folder))
        };
        let link = format!(
            "<{base}/api/{}/{}/tree/{}{path_part}?recursive={recursive}&expand={expand}&cursor={}>; rel=\"next\"",
            kind.plural(),
            repo.id,
            enc(&p.rev),
            start + TREE_PAGE
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
}

/// `POST /api/{type}s/{ns}/{name}/paths-info/{rev}`: entries for the paths that exist.
pub async fn paths_info(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
    body: String,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    let paths: Vec<String> = url_pairs(&body)
        .into_iter()
        .filter(|(k, _)| k == "paths")
        .map(|(_, v)| v)
        .collect();
    let entries = state.store.tree(&commit, "").await?;
    let mut out = Vec::new();
    for path in paths {
        let folder = parse_folder(&path)?;
        if let Some(e) = entries.iter().find(|e| e.path == folder) {
            out.push(file_json(e));
        } else {
            let prefix = format!("{folder}/");
            let inner: Vec<&TreeEntry> = entries
                .iter()
                .filter(|e| e.path.starts_with(&prefix))
                .collect();
            if !inner.is_empty() {
                out.push(json!({ "type": "directory", "oid": folder_oid(&inner), "size": 0, "path": folder }));
            }
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET|HEAD /{prefix}{ns}/{name}/resolve/{rev}/{path}`: the file, streamed from storage.
pub async fn resolve_file(
    State(state): State<AppState>,
    method: Method,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<PathParams>,
    headers: HeaderMap,
    auth: Auth,
) -> AppResult<Response> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    let path = RepoPath::parse(&p.path)?;
    let entry = state
        .store
        .entry(&commit, path.as_str())
        .await?
        .ok_or_else(|| {
            AppError::entry_not_found(format!("{path} does not exist at {}", p.rev))
                .with_commit(&commit)
        })?;
    serve_entry(&state, &repo, &commit, &entry, &method, &headers).await
}

/// How long a download redirect's pre-signed URL works (a resumed download re-asks).
const PRESIGNED_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Answers a download of one tree entry: headers the Hub client needs, `Range`, `If-None-Match`.
pub async fn serve_entry(
    state: &AppState,
    repo: &RepoRow,
    commit: &str,
    entry: &TreeEntry,
    method: &Method,
    headers: &HeaderMap,
) -> AppResult<Response> {
    let size = entry.size as u64;
    let etag = format!(
        "\"{}\"",
        if entry.lfs {
            &entry.sha256
        } else {
            &entry.git_oid
        }
    );
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header("x-repo-commit", commit)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\";",
                entry
                    .path
                    .rsplit('/')
                    .next()
                    .unwrap_or("file")
                    .replace(['"', '\\'], "_")
            ),
        );
    if entry.lfs {
        builder = builder
            .header("x-linked-etag", format!("\"{}\"", entry.sha256))
            .header("x-linked-size", size);
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok(builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("valid response"));
    }
    // LFS content straight from the object store, when configured: a cross-origin redirect
    // to a pre-signed URL with the metadata on the 302 itself, as the Hub client expects.
    if entry.lfs && state.config.download_redirect {
        let sha = modelyard_blob::Sha256::parse(&entry.sha256)?;
        if let Some(url) = state.blobs.presigned_get(&sha, PRESIGNED_TTL).await? {
            if method == Method::GET && !headers.contains_key(header::RANGE) {
                state.store.count_download(&repo.uid).await?;
            }
            return Ok(builder
                .status(StatusCode::FOUND)
                .header(header::LOCATION, url)
                .header(header::CONTENT_LENGTH, 0)
                .body(Body::empty())
                .expect("valid response"));
        }
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size),
        None => Ok(None),
    };
    let range = match range {
        Ok(r) => r,
        Err(Unsatisfiable) => {
            return Ok(builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .expect("valid response"))
        }
    };
    let (status, start, end) = match range {
        Some((a, b)) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {a}-{}/{size}", b - 1));
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        None => (StatusCode::OK, 0, size),
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_LENGTH, end - start);
    if method == Method::HEAD {
        return Ok(builder.body(Body::empty()).expect("valid response"));
    }
    if start == 0 {
        state.store.count_download(&repo.uid).await?;
    }
    let sha = modelyard_blob::Sha256::parse(&entry.sha256)?;
    let stream = state.blobs.get(&sha, Some(start..end)).await?;
    Ok(builder
        .body(Body::from_stream(stream))
        .expect("valid response"))
}

/// A `Range` that lies outside the file (answered with 416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range into a half-open interval. `Ok(None)` means "serve it all"
/// (several ranges, or a form we do not handle); `Err` means unsatisfiable.
pub fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
            if n == 0 {
                return Err(Unsatisfiable);
            }
            (size.saturating_sub(n), size)
        }
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
            let end = if b.is_empty() {
                size
            } else {
                b.parse::<u64>()
                    .map_err(|_| Unsatisfiable)?
                    .saturating_add(1)
                    .min(size)
            };
            (start, end)
        }
        (true, true) => return Ok(None),
    };
    if parsed.0 >= size || parsed.0 >= parsed.1 {
        return Err(Unsatisfiable);
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 100))));
        assert_eq!(parse_range("bytes=95-200", 100), Ok(Some((95, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=5-2", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }

    fn e(path: &str) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            sha256: "0".repeat(64),
            size: 1,
            git_oid: "1".repeat(40),
            lfs: false,
        }
    }

    #[test]
    fn folder_listing() {
        let entries = vec![e("README.md"), e("a/b/c.txt"), e("a/d.txt"), e("z.txt")];
        let top: Vec<String> = list_folder(&entries, "", false)
            .iter()
            .map(|v| {
                format!(
                    "{}:{}",
                    v["type"].as_str().unwrap(),
                    v["path"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(top, ["file:README.md", "directory:a", "file:z.txt"]);
        let a: Vec<String> = list_folder(&entries, "a", false)
            .iter()
            .map(|v| v["path"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(a, ["a/b", "a/d.txt"]);
        assert_eq!(list_folder(&entries, "", true).len(), 6);
    }
}
