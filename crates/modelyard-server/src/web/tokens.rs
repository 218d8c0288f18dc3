//! The access-token page: a user's tokens (API tokens and browser sessions), a form that issues
//! one and shows it once, and revocation.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{render, PageError};
use crate::api::fmt_date;
use crate::auth::{form_caller, issue_token, page_csrf, Auth};
use crate::error::AppError;
use crate::state::AppState;

const PAGE: &str = "/settings/tokens";

/// The page, with `extra` (a new token, or an error) merged into its context.
async fn tokens_view(
    state: &AppState,
    auth: &Auth,
    csrf: String,
    extra: Value,
) -> Result<axum::response::Html<String>, PageError> {
    let user = auth
        .name()
        .ok_or_else(|| AppError::unauthorized("log in to manage tokens"))?;
    let now = modelyard_store::now_ms();
    let tokens: Vec<Value> = state
        .store
        .tokens_of(user)
        .await
        .map_err(AppError::from)?
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "label": t.label,
                "scope": t.scope,
                "created": fmt_date(t.created_at)[..10].to_owned(),
                "expires": t.expires_at.map(|e| fmt_date(e)[..10].to_owned()),
                "expired": t.expires_at.is_some_and(|e| e <= now),
                "last_used": t.last_used_at.map(|e| fmt_date(e)[..16].replace('T', " ")),
            })
        })
        .collect();
    let mut ctx = json!({ "csrf": csrf, "tokens": tokens });
    if let (Value::Object(m), Value::Object(e)) = (&mut ctx, extra) {
        m.extend(e);
    }
    render(state, auth, "tokens.html", ctx)
}

/// `GET /settings/tokens`.
pub async fn tokens_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Auth,
) -> Result<Response, PageError> {
    let Some(csrf) = page_csrf(&state, &headers, &auth) else {
        return Ok(Redirect::to(&format!("/login?next={PAGE}")).into_response());
    };
    Ok(tokens_view(&state, &auth, csrf, Value::Null)
        .await?
        .into_response())
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    pub csrf: String,
    pub label: String,
    pub scope: String,
    /// Days until it expires; empty for never.
    #[serde(default)]
    pub expires_days: String,
}

/// `POST /settings/tokens`: issues a token and shows it once; it is stored only as a hash.
pub async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<NewTokenForm>,
) -> Result<Response, PageError> {
    let caller = form_caller(&state, &headers, &f.csrf).await?;
    let auth = Auth(Some(caller.clone()));
    let label = f.label.trim();
    let expires = match f.expires_days.trim() {
        "" => Ok(None),
        d => match d.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Ok(Some(modelyard_store::now_ms() + days * 86_400_000))
            }
            _ => Err(AppError::bad_request(format!(
                "expiry must be a whole number of days from 1 to 3650, not {d:?}"
            ))),
        },
    };
    let issued = match expires {
        Ok(_) if label.is_empty() || label.len() > 100 => Err(AppError::bad_request(
            "give the token a name of 1 to 100 characters",
        )),
        Ok(exp) => issue_token(&state, &caller.name, &f.scope, label, exp).await,
        Err(e) => Err(e),
    };
    match issued {
        Ok((token, row)) => {
            let extra =
                json!({ "new_token": token, "new_label": row.label, "new_scope": row.scope });
            Ok(tokens_view(&state, &auth, f.csrf, extra)
                .await?
                .into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let extra = json!({ "error": e.message, "label": f.label });
            let page = tokens_view(&state, &auth, f.csrf, extra).await?;
            Ok((e.status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    pub csrf: String,
}

/// `POST /settings/tokens/{id}/revoke`: the token stops working at once.
pub async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let caller = form_caller(&state, &headers, &f.csrf).await?;
    if !state
        .store
        .delete_token(&caller.name, &id)
        .await
        .map_err(AppError::from)?
    {
        return Err(AppError::entry_not_found(format!("token {id} not found")).into());
    }
    Ok(Redirect::to(PAGE).into_response())
}
