//! Sign-up, login, `whoami-v2` and token management.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{hash_password, issue_token, verify_password, Auth};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Names that would shadow a top-level page or API path if used as a namespace.
pub const RESERVED_NAMES: &[&str] = &[
    "api",
    "datasets",
    "models",
    "spaces",
    "login",
    "logout",
    "signup",
    "settings",
    "static",
    "healthz",
    "metrics",
    "new",
    "search",
    "docs",
    "jobs",
    "cluster",
    "leaderboards",
    "compare",
    "admin",
    "assets",
];

/// Checks a new user name: the Hub's rules for namespaces, minus reserved words.
pub fn validate_user_name(name: &str) -> AppResult<()> {
    modelyard_core::repo::validate_part("user name", name)?;
    if RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(AppError::bad_request(format!(
            "{name:?} is reserved; pick another name"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct SignupBody {
    pub username: String,
    pub password: String,
}

pub async fn signup(
    State(state): State<AppState>,
    Json(b): Json<SignupBody>,
) -> AppResult<Json<Value>> {
    validate_user_name(&b.username)?;
    if b.password.len() < 8 {
        return Err(AppError::bad_request(
            "password must be at least 8 characters long",
        ));
    }
    let hash = hash_password(&b.password)?;
    state
        .store
        .create_user(&b.username, Some(&hash), false)
        .await?;
    tracing::info!(user = %b.username, "user signed up");
    Ok(Json(json!({ "name": b.username })))
}

#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_label() -> String {
    "login".into()
}
fn default_scope() -> String {
    "write".into()
}

/// Exchanges a name and password for a new API token.
pub async fn login(
    State(state): State<AppState>,
    Json(b): Json<LoginBody>,
) -> AppResult<Json<Value>> {
    let user = state.store.user(&b.username).await?;
    let ok = user
        .as_ref()
        .and_then(|u| u.password_hash.as_deref())
        .is_some_and(|h| verify_password(&b.password, h));
    if !ok {
        return Err(AppError::unauthorized("wrong user name or password"));
    }
    let (token, row) = issue_token(&state, &b.username, &b.scope, &b.label, None).await?;
    Ok(Json(
        json!({ "token": token, "id": row.id, "scope": row.scope, "name": b.username }),
    ))
}

pub async fn whoami(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    let caller = auth.require()?;
    let user = state
        .store
        .user(&caller.name)
        .await?
        .ok_or_else(|| AppError::unauthorized("user no longer exists"))?;
    Ok(Json(json!({
        "type": "user",
        "id": user.name,
        "name": user.name,
        "fullname": user.name,
        "email": null,
        "isAdmin": user.is_admin,
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {
            "displayName": "api", "role": if caller.can_write { "write" } else { "read" }}},
    })))
}

#[derive(Deserialize)]
pub struct NewTokenBody {
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Lifetime in seconds; none means it does not expire.
    pub expires_in: Option<i64>,
}

pub async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    Json(b): Json<NewTokenBody>,
) -> AppResult<Json<Value>> {
    let caller = auth.require_write()?;
    let expires = b.expires_in.map(|s| modelyard_store::now_ms() + s * 1000);
    let (token, row) = issue_token(&state, &caller.name, &b.scope, &b.label, expires).await?;
    Ok(Json(
        json!({ "token": token, "id": row.id, "scope": row.scope, "label": row.label }),
    ))
}

pub async fn list_tokens(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    let caller = auth.require()?;
    let rows = state.store.tokens_of(&caller.name).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|t| {
            json!({"id": t.id, "label": t.label, "scope": t.scope,
            "createdAt": super::fmt_date(t.created_at),
            "expiresAt": t.expires_at.map(super::fmt_date),
            "lastUsedAt": t.last_used_at.map(super::fmt_date)})
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

pub async fn delete_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let caller = auth.require_write()?;
    if !state.store.delete_token(&caller.name, &id).await? {
        return Err(AppError::entry_not_found(format!("token {id} not found")));
    }
    Ok(Json(json!({ "deleted": id })))
}
