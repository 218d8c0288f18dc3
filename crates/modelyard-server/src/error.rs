//! One error type for every handler: an HTTP status, the Hub's `X-Error-Code`, and one JSON shape.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelyard_blob::BlobError;
use modelyard_core::ValidationError;
use modelyard_store::StoreError;

/// An error answered as `{"error": {"code", "message"}}`, plus `X-Error-Code` for the Hub client.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Commit a missing file was looked up at (`X-Repo-Commit` on 404s of `resolve`).
    pub repo_commit: Option<String>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            repo_commit: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }
    pub fn repo_not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            format!("repository {what} not found (or you have no access to it)"),
        )
    }
    pub fn revision_not_found(rev: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RevisionNotFound",
            format!("revision {rev:?} not found"),
        )
    }
    pub fn entry_not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "EntryNotFound", what)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", message)
    }
    pub fn with_commit(mut self, commit: &str) -> Self {
        self.repo_commit = Some(commit.to_owned());
        self
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() {
            tracing::error!(error = %self.message, status = self.status.as_u16(), "request failed");
            "internal server error; the details are in the server log".to_owned()
        } else {
            self.message
        };
        let body = serde_json::json!({ "error": { "code": self.code, "message": message } });
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert("x-error-code", HeaderValue::from_static(self.code));
        if let Ok(v) = HeaderValue::from_str(&message.replace(['\r', '\n'], " ")) {
            headers.insert("x-error-message", v);
        }
        if let Some(c) = self
            .repo_commit
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert("x-repo-commit", c);
        }
        resp
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::bad_request(e.0)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::entry_not_found(format!("{what} not found")),
            StoreError::Conflict(m) => AppError::conflict(m),
            e @ StoreError::Stale { .. } => AppError::conflict(e.to_string()),
            StoreError::Invalid(m) => AppError::bad_request(m),
            e => AppError::internal(e.to_string()),
        }
    }
}

impl From<BlobError> for AppError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::BadHash(_)
            | BlobError::HashMismatch { .. }
            | BlobError::SizeMismatch { .. } => AppError::bad_request(e.to_string()),
            BlobError::TooLarge { .. } => {
                AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "TooLarge", e.to_string())
            }
            BlobError::Interrupted(_) => AppError::bad_request(e.to_string()),
            BlobError::NotFound(_) => AppError::entry_not_found(e.to_string()),
            BlobError::BadRange { size, .. } => AppError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RangeNotSatisfiable",
                format!("requested range is outside the file of {size} bytes"),
            ),
            BlobError::Io(_) => AppError::internal(e.to_string()),
        }
    }
}
