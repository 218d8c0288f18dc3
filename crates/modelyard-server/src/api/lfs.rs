//! The git-LFS batch API and its self-authenticating upload links.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::TryStreamExt;
use hmac::{Hmac, Mac};
use modelyard_blob::{Expect, Sha256};
use modelyard_core::RepoKind;
use serde::Deserialize;
use serde_json::{json, Value};

use super::writable;
use crate::auth::{constant_time_eq, Auth};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How long an upload link stays valid.
const LINK_TTL_SECS: i64 = 24 * 3600;

#[derive(Deserialize)]
pub struct BatchBody {
    pub operation: String,
    #[serde(default)]
    pub objects: Vec<BatchObject>,
}

#[derive(Deserialize)]
pub struct BatchObject {
    pub oid: String,
    pub size: i64,
}

#[derive(Deserialize)]
pub struct LfsRepoParams {
    pub ns: String,
    /// `name.git`, as git-LFS addresses repositories.
    pub name_git: String,
}

/// `POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch` (upload only): objects already
/// stored get no actions; the others get a signed `PUT` link and a verify link.
pub async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(kind): Extension<RepoKind>,
    Path(p): Path<LfsRepoParams>,
    auth: Auth,
    Json(b): Json<BatchBody>,
) -> AppResult<Response> {
    let name = p.name_git.strip_suffix(".git").unwrap_or(&p.name_git);
    writable(&state, &auth, kind, &p.ns, name).await?;
    if b.operation != "upload" {
        return Err(AppError::bad_request(
            "only the upload operation is supported; download files through /resolve",
        ));
    }
    let base = state.base_url(&headers);
    let expires = chrono::Utc::now().timestamp() + LINK_TTL_SECS;
    let mut objects = Vec::with_capacity(b.objects.len());
    for o in &b.objects {
        let Ok(oid) = Sha256::parse(&o.oid) else {
            objects.push(json!({"oid": o.oid, "size": o.size,
                "error": {"code": 422, "message": "oid must be a SHA-256 (64 lowercase hex digits)"}}));
            continue;
        };
        if o.size < 0 || o.size as u64 > state.config.max_file_bytes {
            objects.push(json!({"oid": o.oid, "size": o.size,
                "error": {"code": 422, "message": format!("size must be between 0 and {}", state.config.max_file_bytes)}}));
            continue;
        }
        if state.store.blob_size(oid.as_str()).await? == Some(o.size) {
            objects.push(json!({"oid": o.oid, "size": o.size}));
            continue;
        }
        let sig = sign(&state, oid.as_str(), o.size, expires);
        objects.push(json!({
            "oid": o.oid, "size": o.size, "authenticated": true,
            "actions": {
                "upload": {"href": format!("{base}/api/lfs/objects/{oid}?size={}&expires={expires}&sig={sig}", o.size),
                           "expires_in": LINK_TTL_SECS},
                "verify": {"href": format!("{base}/api/lfs/verify")},
            }
        }));
    }
    let body = json!({ "transfer": "basic", "objects": objects, "hash_algo": "sha256" });
    Ok((
        [("content-type", "application/vnd.git-lfs+json")],
        Json(body),
    )
        .into_response())
}

fn sign(state: &AppState, oid: &str, size: i64, expires: i64) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(&state.secret[..]).expect("any key size works");
    mac.update(format!("lfs-upload\0{oid}\0{size}\0{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Deserialize)]
pub struct UploadQuery {
    pub size: i64,
    pub expires: i64,
    pub sig: String,
}

/// `PUT /api/lfs/objects/{oid}`: the link itself authenticates the upload (the Hub client
/// sends no token here). The body is streamed and kept only if it hashes to `oid`.
pub async fn upload(
    State(state): State<AppState>,
    Path(oid): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    let oid = Sha256::parse(&oid)?;
    let expected = sign(&state, oid.as_str(), q.size, q.expires);
    if !constant_time_eq(expected.as_bytes(), q.sig.as_bytes()) {
        return Err(AppError::unauthorized("upload link signature is invalid"));
    }
    if q.expires < chrono::Utc::now().timestamp() {
        return Err(AppError::unauthorized(
            "upload link has expired; ask the batch API for a new one",
        ));
    }
    if let Some(len) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    {
        if len != q.size {
            return Err(AppError::bad_request(format!(
                "Content-Length is {len} but the object has {} bytes",
                q.size
            )));
        }
    }
    if state.store.blob_size(oid.as_str()).await? == Some(q.size) {
        return Ok(StatusCode::OK.into_response());
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let stored = state
        .blobs
        .put(
            stream,
            Expect {
                sha256: Some(oid.clone()),
                size: Some(q.size as u64),
                max_size: Some(state.config.max_file_bytes),
                git_sha1: false,
            },
        )
        .await
        .inspect_err(|e| tracing::warn!(oid = %oid, error = %e, "lfs upload rejected"))?;
    state
        .store
        .record_blob(stored.sha256.as_str(), stored.size as i64)
        .await?;
    tracing::info!(oid = %oid, size = stored.size, "lfs object stored");
    Ok(StatusCode::OK.into_response())
}

/// `POST /api/lfs/verify`: 200 when the object is stored with that size.
pub async fn verify(
    State(state): State<AppState>,
    auth: Auth,
    Json(b): Json<Value>,
) -> AppResult<Json<Value>> {
    auth.require()?;
    let oid = b.get("oid").and_then(Value::as_str).unwrap_or_default();
    let size = b.get("size").and_then(Value::as_i64);
    match state.store.blob_size(oid).await? {
        Some(s) if size.is_none_or(|want| want == s) => Ok(Json(json!({"oid": oid, "size": s}))),
        _ => Err(AppError::entry_not_found(format!(
            "LFS object {oid} is not stored"
        ))),
    }
}
