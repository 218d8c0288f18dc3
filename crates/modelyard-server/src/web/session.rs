//! Browser sessions: log-in and sign-up forms that set a read-only session cookie, and log-out.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::{render, PageError};
use crate::auth::{
    hash_password, hash_token, issue_token, session_cookie, verify_password, Auth, SESSION_COOKIE,
};
use crate::error::AppError;
use crate::state::AppState;

/// How long a browser session lasts.
const SESSION_SECS: i64 = 30 * 24 * 3600;

#[derive(Deserialize, Default)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// Only local paths are followed after logging in (no open redirects).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

pub async fn login_form(
    state: State<AppState>,
    auth: Auth,
    q: Query<NextQuery>,
) -> Result<Html<String>, PageError> {
    form_page(state, auth, q, "login")
}

pub async fn signup_form(
    state: State<AppState>,
    auth: Auth,
    q: Query<NextQuery>,
) -> Result<Html<String>, PageError> {
    form_page(state, auth, q, "signup")
}

/// The one form behind `GET /login` and `GET /signup`.
fn form_page(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<NextQuery>,
    mode: &str,
) -> Result<Html<String>, PageError> {
    render(
        &state,
        &auth,
        "login.html",
        json!({ "next": safe_next(q.next.as_deref()), "mode": mode }),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    pub next: Option<String>,
}

async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    next: &str,
) -> Result<Response, PageError> {
    let expires = modelyard_store::now_ms() + SESSION_SECS * 1000;
    let (token, _) = issue_token(state, user, "read", "web session", Some(expires)).await?;
    let secure = if state.base_url(headers).starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={SESSION_SECS}{secure}"
    );
    let mut resp = Redirect::to(next).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| AppError::internal(e.to_string()))?,
    );
    Ok(resp)
}

fn form_error(
    state: &AppState,
    mode: &str,
    next: &str,
    status: StatusCode,
    message: &str,
) -> Result<Response, PageError> {
    let page = render(
        state,
        &Auth(None),
        "login.html",
        json!({ "next": next, "mode": mode, "error": message }),
    )?;
    Ok((status, page).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(f.next.as_deref());
    let user = state
        .store
        .user(&f.username)
        .await
        .map_err(AppError::from)?;
    let ok = user
        .as_ref()
        .and_then(|u| u.password_hash.as_deref())
        .is_some_and(|h| verify_password(&f.password, h));
    if !ok {
        return form_error(
            &state,
            "login",
            &next,
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
        );
    }
    start_session(&state, &headers, &f.username, &next).await
}

pub async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let next = safe_next(f.next.as_deref());
    if let Err(e) = crate::api::users::validate_user_name(&f.username) {
        return form_error(&state, "signup", &next, StatusCode::BAD_REQUEST, &e.message);
    }
    if f.password.len() < 8 {
        return form_error(
            &state,
            "signup",
            &next,
            StatusCode::BAD_REQUEST,
            "The password must be at least 8 characters long.",
        );
    }
    let hash = hash_password(&f.password)?;
    if let Err(e) = state
        .store
        .create_user(&f.username, Some(&hash), false)
        .await
    {
        return form_error(
            &state,
            "signup",
            &next,
            StatusCode::CONFLICT,
            &AppError::from(e).message,
        );
    }
    tracing::info!(user = %f.username, "user signed up on the web");
    start_session(&state, &headers, &f.username, &next).await
}

/// Ends the session: the token is revoked, not just forgotten by the browser.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if let Some(token) = session_cookie(&headers) {
        if let Some((tok, user)) = state
            .store
            .token_by_hash(&hash_token(&token))
            .await
            .map_err(AppError::from)?
        {
            state
                .store
                .delete_token(&user.name, &tok.id)
                .await
                .map_err(AppError::from)?;
        }
    }
    let mut resp = Redirect::to("/").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("modelyard_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(resp)
}
