//! Repositories: create, delete, move, settings, info and listing (Hub-compatible shapes).

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use modelyard_core::{RepoId, RepoKind};
use modelyard_store::{ListQuery, RepoRow, RepoSort};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{fmt_date, readable, repo_url, resolve, truthy, writable, RepoParams, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::repo_ops;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBody {
    pub name: String,
    pub organization: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub private: Option<bool>,
    pub visibility: Option<String>,
}

fn parse_kind(kind: Option<&str>) -> AppResult<RepoKind> {
    match kind {
        None | Some("model") => Ok(RepoKind::Model),
        Some("dataset") => Ok(RepoKind::Dataset),
        Some(other) => Err(AppError::bad_request(format!(
            "repo type {other:?} is not supported: use \"model\" or \"dataset\""
        ))),
    }
}

/// `POST /api/repos/create`. An existing repo is a 409 that still carries its `url`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Auth,
    Json(b): Json<CreateBody>,
) -> AppResult<Response> {
    let caller = auth.require_write()?.clone();
    let kind = parse_kind(b.kind.as_deref())?;
    let (ns, name) = match (&b.organization, b.name.split_once('/')) {
        (Some(org), _) => (org.clone(), b.name.clone()),
        (None, Some((ns, name))) => (ns.to_owned(), name.to_owned()),
        (None, None) => (caller.name.clone(), b.name.clone()),
    };
    let id = RepoId::new(&ns, &name)?;
    let private = match b.visibility.as_deref() {
        Some("private") => true,
        Some("public") => false,
        Some(v) => return Err(AppError::bad_request(format!("unknown visibility {v:?}"))),
        None => b.private.unwrap_or(false),
    };
    let url = repo_url(&state.base_url(&headers), kind, &id);
    if let Some(existing) = state.store.repo(kind, &id).await? {
        if super::can_read(&auth, &existing) {
            let body = json!({"url": url, "error": format!("You already created this {} repo", kind.as_str())});
            return Ok((
                StatusCode::CONFLICT,
                [("x-error-code", "RepoExists")],
                Json(body),
            )
                .into_response());
        }
    }
    if ns != caller.name && !caller.is_admin {
        return Err(AppError::forbidden(format!(
            "{} may not create repos in the namespace {ns:?}",
            caller.name
        )));
    }
    if state.store.user(&ns).await?.is_none() {
        return Err(AppError::bad_request(format!(
            "namespace {ns:?} is not a user"
        )));
    }
    repo_ops::create_repo(&state, kind, &id, private, &ns).await?;
    tracing::info!(repo = %id, kind = kind.as_str(), private, user = %caller.name, "repo created");
    Ok(Json(json!({ "url": url, "name": id.to_string(), "id": id.to_string() })).into_response())
}

#[derive(Deserialize)]
pub struct DeleteBody {
    pub name: String,
    pub organization: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `DELETE /api/repos/delete`.
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Json(b): Json<DeleteBody>,
) -> AppResult<Json<Value>> {
    let caller = auth.require_write()?;
    let kind = parse_kind(b.kind.as_deref())?;
    let (ns, name) = match (&b.organization, b.name.split_once('/')) {
        (Some(org), _) => (org.clone(), b.name.clone()),
        (None, Some((ns, name))) => (ns.to_owned(), name.to_owned()),
        (None, None) => (caller.name.clone(), b.name.clone()),
    };
    let repo = writable(&state, &auth, kind, &ns, &name).await?;
    state.store.delete_repo(&repo.uid).await?;
    tracing::info!(repo = %repo.id, user = %caller.name, "repo deleted");
    Ok(Json(json!({ "deleted": repo.id.to_string() })))
}

#[derive(Deserialize)]
pub struct MoveBody {
    #[serde(rename = "fromRepo")]
    pub from_repo: String,
    #[serde(rename = "toRepo")]
    pub to_repo: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `POST /api/repos/move`: rename within namespaces the caller may write to.
pub async fn move_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Auth,
    Json(b): Json<MoveBody>,
) -> AppResult<Json<Value>> {
    let caller = auth.require_write()?.clone();
    let kind = parse_kind(b.kind.as_deref())?;
    let from: RepoId = b.from_repo.parse()?;
    let to: RepoId = b.to_repo.parse()?;
    let repo = writable(&state, &auth, kind, from.namespace(), from.name()).await?;
    if to.namespace() != repo.owner && !caller.is_admin {
        return Err(AppError::forbidden(
            "repos can only be renamed within their owner's namespace",
        ));
    }
    state.store.rename_repo(&repo.uid, &to).await?;
    tracing::info!(from = %from, to = %to, user = %caller.name, "repo moved");
    Ok(Json(
        json!({ "url": repo_url(&state.base_url(&headers), kind, &to) }),
    ))
}

#[derive(Deserialize)]
pub struct SettingsBody {
    pub private: Option<bool>,
    pub visibility: Option<String>,
}

/// `PUT /api/{models|datasets}/{ns}/{name}/settings`.
pub async fn settings(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RepoParams>,
    auth: Auth,
    Json(b): Json<SettingsBody>,
) -> AppResult<Json<Value>> {
    let repo = writable(&state, &auth, kind, &p.ns, &p.name).await?;
    let private = match b.visibility.as_deref() {
        Some("private") => Some(true),
        Some("public") => Some(false),
        Some(v) => return Err(AppError::bad_request(format!("unknown visibility {v:?}"))),
        None => b.private,
    };
    if let Some(private) = private {
        state.store.set_private(&repo.uid, private).await?;
    }
    Ok(Json(json!({ "private": private.unwrap_or(repo.private) })))
}

#[derive(Deserialize, Default)]
pub struct InfoQuery {
    pub blobs: Option<String>,
}

/// `GET /api/{models|datasets}/{ns}/{name}`: info at the default branch.
pub async fn info(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RepoParams>,
    Query(q): Query<InfoQuery>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    info_at(&state, &repo, "main", truthy(q.blobs.as_deref())).await
}

/// `GET /api/{models|datasets}/{ns}/{name}/revision/{rev}`.
pub async fn info_revision(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<RevParams>,
    Query(q): Query<InfoQuery>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, kind, &p.ns, &p.name).await?;
    info_at(&state, &repo, &p.rev, truthy(q.blobs.as_deref())).await
}

async fn info_at(
    state: &AppState,
    repo: &RepoRow,
    rev: &str,
    blobs: bool,
) -> AppResult<Json<Value>> {
    let sha = resolve(state, repo, rev).await?;
    let commit = state.store.commit(&repo.uid, &sha).await?;
    let files = state.store.tree(&sha, "").await?;
    let siblings: Vec<Value> = files
        .iter()
        .map(|f| {
            if !blobs {
                return json!({ "rfilename": f.path });
            }
            let mut v = json!({ "rfilename": f.path, "size": f.size, "blobId": f.git_oid });
            if f.lfs {
                v["lfs"] = json!({"sha256": f.sha256, "size": f.size,
                    "pointerSize": modelyard_core::hash::lfs_pointer(&f.sha256, f.size as u64).len()});
            }
            v
        })
        .collect();
    let mut v = repo_summary(repo);
    v["sha"] = json!(sha);
    v["siblings"] = Value::Array(siblings);
    if let Some(c) = commit {
        v["lastModified"] = json!(fmt_date(c.created_at));
    }
    Ok(Json(v))
}

/// The fields of a repo shared by listings and info.
pub fn repo_summary(repo: &RepoRow) -> Value {
    let card: Value = repo
        .card_json
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    let mut v = json!({
        "_id": repo.uid,
        "id": repo.id.to_string(),
        "author": repo.id.namespace(),
        "private": repo.private,
        "gated": false,
        "disabled": false,
        "downloads": repo.downloads,
        "likes": 0,
        "tags": repo.tags,
        "createdAt": fmt_date(repo.created_at),
        "lastModified": fmt_date(repo.updated_at),
        "cardData": card,
        "cardError": repo.card_error,
        "license": repo.license,
    });
    if repo.kind == RepoKind::Model {
        v["modelId"] = json!(repo.id.to_string());
        v["pipeline_tag"] = json!(repo.pipeline_tag);
        v["library_name"] = json!(repo.library_name);
    } else {
        v["task"] = json!(repo.pipeline_tag);
    }
    v
}

/// `GET /api/models` and `GET /api/datasets`: filtered, sorted, cursor-paginated with `Link`.
pub async fn list(
    State(state): State<AppState>,
    Extension(kind): Extension<RepoKind>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    auth: Auth,
) -> AppResult<Response> {
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> = url_pairs(&raw);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let sort = match get("sort").as_deref() {
        None
        | Some("lastModified")
        | Some("createdAt")
        | Some("recent")
        | Some("trendingScore") => RepoSort::Recent,
        Some("downloads") | Some("likes") => RepoSort::Downloads,
        Some(other) => return Err(AppError::bad_request(format!("unknown sort {other:?}"))),
    };
    let limit = match get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| AppError::bad_request("limit must be a number"))?
            .clamp(1, 1000),
        None => 100,
    };
    let after = get("cursor").map(|c| decode_cursor(&c)).transpose()?;
    let (min_parameters, max_parameters) = match get("parameters").filter(|s| !s.is_empty()) {
        Some(r) => parameter_range(&r)?,
        None => (None, None),
    };
    let q = ListQuery {
        // The Hub's own list parameters, plus a parameter range (`10M-100M`) of modelyard's.
        filters: modelyard_store::RepoFilters {
            task: get("pipeline_tag").filter(|s| !s.is_empty()),
            license: get("license").filter(|s| !s.is_empty()),
            library: get("library").filter(|s| !s.is_empty()),
            min_parameters,
            max_parameters,
        },
        kind,
        viewer: auth.name().map(str::to_owned),
        viewer_is_admin: auth.is_admin(),
        search: get("search").filter(|s| !s.is_empty()),
        author: get("author").filter(|s| !s.is_empty()),
        tags: pairs
            .iter()
            .filter(|(k, _)| k == "filter")
            .map(|(_, v)| v.clone())
            .collect(),
        sort,
        limit,
        after,
    };
    let page = state.store.list_repos(&q).await?;
    let items: Vec<Value> = page.repos.iter().map(repo_summary).collect();
    let mut resp = Json(Value::Array(items)).into_response();
    if let Some(next) = page.next {
        let mut kept: Vec<(String, String)> =
            pairs.into_iter().filter(|(k, _)| k != "cursor").collect();
        kept.push(("cursor".into(), encode_cursor(&next)));
        let qs = kept
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let link = format!(
            "<{}/api/{}?{qs}>; rel=\"next\"",
            state.base_url(&headers),
            kind.plural()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert("link", v);
        }
    }
    Ok(resp)
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Decodes `a=1&b=2&b=3` keeping repeated keys (the Hub sends `filter` several times).
pub fn url_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn encode_cursor((key, uid): &(i64, String)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}:{uid}"))
}

fn decode_cursor(s: &str) -> AppResult<(i64, String)> {
    let bad = || AppError::bad_request("invalid cursor");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (k, uid) = text.split_once(':').ok_or_else(bad)?;
    Ok((k.parse().map_err(|_| bad())?, uid.to_owned()))
}

/// `12`, `10K`, `10M`, `1.5B` as a count.
fn count(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, scale) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'B' | 'G' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    (v >= 0.0).then_some((v * scale) as i64)
}

/// `LO-HI` (either side may be empty) as bounds; a malformed range is a 400.
pub fn parameter_range(s: &str) -> Result<(Option<i64>, Option<i64>), AppError> {
    let bad = || AppError::bad_request(format!("parameter range {s:?}: expected e.g. 10M-100M"));
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let side = |v: &str| -> Result<Option<i64>, AppError> {
        if v.trim().is_empty() {
            Ok(None)
        } else {
            count(v).map(Some).ok_or_else(bad)
        }
    };
    Ok((side(lo)?, side(hi)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_ranges_read_like_the_page_writes_them() {
        assert_eq!(
            parameter_range("10M-100M").unwrap(),
            (Some(10_000_000), Some(100_000_000))
        );
        assert_eq!(parameter_range("1B-").unwrap(), (Some(1_000_000_000), None));
        assert_eq!(parameter_range("-1.5K").unwrap(), (None, Some(1500)));
        assert!(parameter_range("lots").is_err());
        assert!(parameter_range("x-10M").is_err());
    }
}
