//! Callers: API tokens (only their SHA-256 is stored), password hashing, and access checks.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Who is calling, from a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub is_admin: bool,
    /// Token scope allows writes.
    pub can_write: bool,
}

/// The caller, if a token was sent. A token that is sent but invalid or expired is a 401,
/// never a silent downgrade to anonymous.
#[derive(Debug, Clone)]
pub struct Auth(pub Option<Caller>);

impl Auth {
    pub fn require(&self) -> AppResult<&Caller> {
        self.0.as_ref().ok_or_else(|| {
            AppError::unauthorized("this needs a token: send 'Authorization: Bearer <token>'")
        })
    }

    pub fn require_write(&self) -> AppResult<&Caller> {
        let c = self.require()?;
        if !c.can_write {
            return Err(AppError::forbidden(
                "this token is read-only; create a token with the write scope",
            ));
        }
        Ok(c)
    }

    pub fn name(&self) -> Option<&str> {
        self.0.as_ref().map(|c| c.name.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.0.as_ref().is_some_and(|c| c.is_admin)
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // Browsers send the session cookie. It is honoured only on safe methods, so a page
            // on another site cannot make a logged-in browser change anything (no CSRF).
            let safe = matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            );
            return match session_cookie(&parts.headers).filter(|_| safe) {
                // Sessions read; writes go through API tokens.
                Some(token) => Ok(Auth(caller_for(state, &token).await?.map(|c| Caller {
                    can_write: false,
                    ..c
                }))),
                None => Ok(Auth(None)),
            };
        };
        let token = bearer(value).ok_or_else(|| {
            AppError::unauthorized("the Authorization header must be 'Bearer <token>'")
        })?;
        let Some(found) = lookup_token(state, token).await? else {
            return Err(AppError::unauthorized("invalid token"));
        };
        if found
            .0
            .expires_at
            .is_some_and(|t| t <= modelyard_store::now_ms())
        {
            return Err(AppError::unauthorized(
                "this token has expired; create a new one",
            ));
        }
        Ok(Auth(Some(caller_of(&found))))
    }
}

/// The CSRF token a browser session's forms carry: an HMAC of the session token under the
/// server's secret, so another site can neither read nor forge it.
pub fn csrf_token(state: &AppState, session: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(&state.secret[..]).expect("any key size works");
    mac.update(b"csrf:");
    mac.update(session.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The CSRF token for the forms of a page shown to a logged-in browser, or `None` (no session,
/// or a caller authenticated otherwise).
pub fn page_csrf(state: &AppState, headers: &axum::http::HeaderMap, auth: &Auth) -> Option<String> {
    session_cookie(headers)
        .filter(|_| auth.name().is_some())
        .map(|s| csrf_token(state, &s))
}

/// The caller behind a form posted from a browser: its session cookie and the form's CSRF
/// field must match. Such a caller may write, like the owner of a write token.
pub async fn form_caller(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    csrf: &str,
) -> AppResult<Caller> {
    let session = session_cookie(headers)
        .ok_or_else(|| AppError::unauthorized("log in to submit this form"))?;
    if !constant_time_eq(csrf_token(state, &session).as_bytes(), csrf.as_bytes()) {
        return Err(AppError::forbidden(
            "the form's CSRF token does not match this session; reload the page",
        ));
    }
    let caller = caller_for(state, &session)
        .await?
        .ok_or_else(|| AppError::unauthorized("the session has expired; log in again"))?;
    Ok(Caller {
        can_write: true,
        ..caller
    })
}

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "modelyard_session";

/// The session token from the `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// How stale a token's "last used" time may be.
const LAST_USED_RESOLUTION_MS: i64 = 3_600_000;

/// Records a token's use to the hour: one write per token and hour, off the request's path.
fn note_use(state: &AppState, tok: &modelyard_store::TokenRow, now: i64) {
    if tok
        .last_used_at
        .is_none_or(|t| now - t > LAST_USED_RESOLUTION_MS)
    {
        let (store, id) = (state.store.clone(), tok.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id, now).await {
                tracing::warn!(error = %e, "cannot record a token's use");
            }
        });
    }
}

/// A token and its user, as stored.
pub type TokenOwner = (modelyard_store::TokenRow, modelyard_store::UserRow);

/// The stored token `token` and its user, expired or not. Found tokens are kept for up to a
/// second in the replica's token cache (emptied by every write through the replica, a revocation
/// included), so a client's burst of reads checks its token once, not once per request.
pub async fn lookup_token(
    state: &AppState,
    token: &str,
) -> AppResult<Option<std::sync::Arc<TokenOwner>>> {
    let hash = hash_token(token);
    let cached = state.config.read_cache;
    if let Some(hit) = state.read_cache.tokens.get(&hash).filter(|_| cached) {
        return Ok(Some(hit));
    }
    let writes = state.read_cache.writes();
    let Some(found) = state.store.token_by_hash(&hash).await? else {
        return Ok(None);
    };
    note_use(state, &found.0, modelyard_store::now_ms());
    let found = std::sync::Arc::new(found);
    // Read while a write ran (perhaps this token's revocation): used once, not kept.
    if cached && state.read_cache.writes() == writes {
        state.read_cache.tokens.insert(hash, found.clone());
    }
    Ok(Some(found))
}

fn caller_of((tok, user): &TokenOwner) -> Caller {
    Caller {
        name: user.name.clone(),
        is_admin: user.is_admin,
        can_write: tok.scope == "write",
    }
}

/// The caller behind a request's `Authorization: Bearer` token: `None` without one, or when it
/// is malformed, unknown or expired (the handler then answers why).
pub async fn bearer_caller(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> AppResult<Option<Caller>> {
    match headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(bearer)
    {
        Some(token) => caller_for(state, token).await,
        None => Ok(None),
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer(value: &axum::http::HeaderValue) -> Option<&str> {
    let v = value.to_str().ok()?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(token.trim())
}

/// The caller a token stands for; an unknown or expired one stands for no one.
async fn caller_for(state: &AppState, token: &str) -> AppResult<Option<Caller>> {
    let now = modelyard_store::now_ms();
    Ok(lookup_token(state, token)
        .await?
        .filter(|f| f.0.expires_at.is_none_or(|t| t > now))
        .map(|f| caller_of(&f)))
}

/// Compares secrets without an early exit, so timing does not reveal how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh API token: `my_` and 40 random letters and digits (238 bits).
pub fn new_token() -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("my_{body}")
}

/// Tokens are random and long, so a plain SHA-256 is a safe way to store them.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("hashing password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates a token for `user` and stores its hash; returns the token, shown once.
pub async fn issue_token(
    state: &AppState,
    user: &str,
    scope: &str,
    label: &str,
    expires_at: Option<i64>,
) -> AppResult<(String, modelyard_store::TokenRow)> {
    if scope != "read" && scope != "write" {
        return Err(AppError::bad_request(format!(
            "unknown scope {scope:?}: use \"read\" or \"write\""
        )));
    }
    let token = new_token();
    let id = format!("{:016x}", rand::random::<u64>());
    let row = state
        .store
        .create_token(&id, user, &hash_token(&token), scope, label, expires_at)
        .await?;
    Ok((token, row))
}
