//! Branches, tags, the refs listing and commit history.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use modelyard_core::{RefName, RepoKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{fmt_date, readable, resolve, writable, RepoParams, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `GET /api/{type}s/{ns}/{name}/refs`.
pub async fn list_refs(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RepoParams>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    let refs = state.store.refs(&repo.uid).await?;
    let pick = |k: &str, prefix: &str| -> Vec<Value> {
        refs.iter()
            .filter(|r| r.kind == k)
            .map(|r| json!({"name": r.name, "ref": format!("{prefix}{}", r.name), "targetCommit": r.commit_id}))
            .collect()
    };
    Ok(Json(json!({
        "branches": pick("branch", "refs/heads/"),
        "tags": pick("tag", "refs/tags/"),
        "converts": [],
    })))
}

#[derive(Deserialize, Default)]
pub struct BranchBody {
    #[serde(rename = "startingPoint")]
    pub starting_point: Option<String>,
}

/// `POST /api/{type}s/{ns}/{name}/branch/{branch}`; 409 if it exists.
pub async fn create_branch(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
    body: Option<Json<BranchBody>>,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let name = RefName::parse(&p.rev)?;
    let from = body
        .and_then(|b| b.0.starting_point)
        .unwrap_or_else(|| "main".into());
    let commit = resolve(&state, &repo, &from).await?;
    state
        .store
        .create_ref(&repo.uid, "branch", name.as_str(), &commit)
        .await?;
    tracing::info!(repo = %repo.id, branch = %name, commit = %commit, "branch created");
    Ok(Json(
        json!({ "name": name.as_str(), "targetCommit": commit }),
    ))
}

pub async fn delete_branch(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    if p.rev == "main" {
        return Err(AppError::bad_request("the main branch cannot be deleted"));
    }
    if !state.store.delete_ref(&repo.uid, "branch", &p.rev).await? {
        return Err(AppError::revision_not_found(&p.rev));
    }
    Ok(Json(json!({ "deleted": p.rev })))
}

#[derive(Deserialize)]
pub struct TagBody {
    pub tag: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// `POST /api/{type}s/{ns}/{name}/tag/{rev}` with `{"tag": ...}`: tags `rev`; 409 if it exists.
pub async fn create_tag(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
    Json(b): Json<TagBody>,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let name = RefName::parse(&b.tag)?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    state
        .store
        .create_ref(&repo.uid, "tag", name.as_str(), &commit)
        .await?;
    let _ = b.message;
    tracing::info!(repo = %repo.id, tag = %name, commit = %commit, "tag created");
    Ok(Json(
        json!({ "name": name.as_str(), "targetCommit": commit }),
    ))
}

pub async fn delete_tag(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    if !state.store.delete_ref(&repo.uid, "tag", &p.rev).await? {
        return Err(AppError::revision_not_found(&p.rev));
    }
    Ok(Json(json!({ "deleted": p.rev })))
}

#[derive(Deserialize, Default)]
pub struct CommitsQuery {
    pub p: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /api/{type}s/{ns}/{name}/commits/{rev}`: newest first, paginated by `Link`.
pub async fn list_commits(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    Query(q): Query<CommitsQuery>,
    headers: HeaderMap,
    auth: Auth,
) -> AppResult<Response> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    let head = resolve(&state, &repo, &p.rev).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let page = q.p.unwrap_or(0).max(0);
    let rows = state
        .store
        .history(&repo.uid, &head, page * limit, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|c| {
            json!({
                "id": c.id, "title": c.title, "message": c.message, "date": fmt_date(c.created_at),
                "authors": [{"user": c.author}], "parents": c.parent_id.iter().collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut resp = Json(Value::Array(items)).into_response();
    if more {
        let rev = percent_encoding::utf8_percent_encode(&p.rev, percent_encoding::NON_ALPHANUMERIC);
        let link = format!(
            "<{}/api/{}/{}/commits/{rev}?p={}&limit={limit}>; rel=\"next\"",
            state.base_url(&headers),
            kind.plural(),
            repo.id,
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
}
