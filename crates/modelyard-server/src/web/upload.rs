//! Creating a repository and uploading files from the browser: the "New" page and the repo
//! page's upload form. Files stream from the multipart body into blob storage, one at a time,
//! and land as one commit on `main`, as a push through the API would.

use axum::extract::{Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::TryStreamExt;
use modelyard_blob::Expect;
use modelyard_core::{RepoId, RepoKind, RepoPath};
use modelyard_store::{CommitOp, TreeEntry};
use serde::Deserialize;
use serde_json::json;

use super::{render, PageError};
use crate::api::commit::{is_lfs_pattern, LFS_THRESHOLD};
use crate::api::RepoParams;
use crate::auth::{form_caller, Auth, Caller};
use crate::error::AppError;
use crate::repo_ops::{self, CommitRequest};
use crate::state::AppState;

/// `GET /new`: the form that creates a model or dataset repository.
pub async fn new_repo_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Auth,
) -> Result<Response, PageError> {
    let Some(token) = crate::auth::page_csrf(&state, &headers, &auth) else {
        return Ok(Redirect::to("/login?next=/new").into_response());
    };
    Ok(render(
        &state,
        &auth,
        "new.html",
        json!({"csrf": token, "kind": "model", "private": false}),
    )?
    .into_response())
}

#[derive(Deserialize)]
pub struct NewRepoForm {
    pub csrf: String,
    pub kind: String,
    pub name: String,
    /// A checkbox: present when ticked.
    pub private: Option<String>,
}

/// `POST /new`: creates `caller/name` and opens its page; a bad or taken name shows the form
/// again with the reason.
pub async fn new_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<NewRepoForm>,
) -> Result<Response, PageError> {
    let caller = form_caller(&state, &headers, &f.csrf).await?;
    let kind = if f.kind == "dataset" {
        RepoKind::Dataset
    } else {
        RepoKind::Model
    };
    let private = f.private.is_some();
    let created = match RepoId::new(&caller.name, f.name.trim()) {
        Ok(id) => repo_ops::create_repo(&state, kind, &id, private, &caller.name).await,
        Err(e) => Err(AppError::from(e)),
    };
    match created {
        Ok(repo) => Ok(Redirect::to(&format!("/{}{}", kind.url_prefix(), repo.id)).into_response()),
        Err(e) => {
            let auth = Auth(Some(caller));
            let page = render(
                &state,
                &auth,
                "new.html",
                json!({
                    "csrf": f.csrf,
                    "kind": kind.as_str(),
                    "name": f.name,
                    "private": private,
                    "error": e.message,
                }),
            )?;
            Ok((e.status, page).into_response())
        }
    }
}

/// `POST /{ns}/{name}/upload` (and under `/datasets/`): the files of a multipart form, after
/// its `csrf` field, committed to `main`.
pub async fn upload_model(
    state: State<AppState>,
    headers: HeaderMap,
    p: Path<RepoParams>,
    form: Multipart,
) -> Result<Response, PageError> {
    upload(state, headers, RepoKind::Model, p, form).await
}

pub async fn upload_dataset(
    state: State<AppState>,
    headers: HeaderMap,
    p: Path<RepoParams>,
    form: Multipart,
) -> Result<Response, PageError> {
    upload(state, headers, RepoKind::Dataset, p, form).await
}

async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    kind: RepoKind,
    Path(p): Path<RepoParams>,
    mut form: Multipart,
) -> Result<Response, PageError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        AppError::bad_request(format!("the upload was cut off or malformed: {e}"))
    };
    // The CSRF field comes first (the form puts it there), so nothing is stored for a forged
    // or logged-out request.
    let first = form.next_field().await.map_err(bad)?;
    let token = match first {
        Some(f) if f.name() == Some("csrf") => f.text().await.map_err(bad)?,
        _ => {
            return Err(
                AppError::forbidden("the form's CSRF token is missing; reload the page").into(),
            )
        }
    };
    let caller: Caller = form_caller(&state, &headers, &token).await?;
    let auth = Auth(Some(caller.clone()));
    let repo = crate::api::writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let mut ops = Vec::new();
    let mut title = String::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("message") => title = field.text().await.map_err(bad)?.trim().to_owned(),
            Some("files") => {
                let Some(name) = field
                    .file_name()
                    .map(str::to_owned)
                    .filter(|n| !n.is_empty())
                else {
                    continue; // the browser sends an empty part when no file was chosen
                };
                let path = RepoPath::parse(&name).map_err(AppError::from)?;
                ops.push(CommitOp::Put(
                    store_field(&state, path.as_str(), field).await?,
                ));
            }
            _ => {}
        }
    }
    if ops.is_empty() {
        return Err(AppError::bad_request("choose at least one file to upload").into());
    }
    if title.is_empty() {
        title = format!("Upload {} file(s) from the web page", ops.len());
    }
    repo_ops::commit(
        &state,
        &repo,
        CommitRequest {
            branch: "main".into(),
            expected_parent: None,
            author: caller.name.clone(),
            title,
            message: String::new(),
            ops,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("/{}{}", kind.url_prefix(), repo.id)).into_response())
}

/// Streams one file part into blob storage: an LFS entry for model and data formats, large
/// files and binary content (a NUL byte in its first chunk), else a regular file, as the
/// Hub's pre-upload rules decide.
async fn store_field(
    state: &AppState,
    path: &str,
    field: axum::extract::multipart::Field<'_>,
) -> Result<TreeEntry, AppError> {
    let mut first = true;
    let mut binary = false;
    let body = field.map_err(std::io::Error::other).inspect_ok(|chunk| {
        if first {
            binary = chunk.contains(&0);
            first = false;
        }
    });
    let pattern = is_lfs_pattern(path);
    let stored = state
        .blobs
        .put(
            Box::pin(body),
            Expect {
                git_sha1: !pattern,
                max_size: Some(state.config.max_file_bytes),
                ..Default::default()
            },
        )
        .await?;
    state
        .store
        .record_blob(stored.sha256.as_str(), stored.size as i64)
        .await?;
    let regular = !pattern && !binary && stored.size <= LFS_THRESHOLD;
    Ok(match stored.git_sha1.filter(|_| regular) {
        Some(git_oid) => TreeEntry {
            path: path.to_owned(),
            sha256: stored.sha256.to_string(),
            size: stored.size as i64,
            git_oid,
            lfs: false,
        },
        None => repo_ops::lfs_entry(path, stored.sha256.as_str(), stored.size as i64),
    })
}
