//! The JSON API, native and Hugging Face compatible, over one repository/commit core.

pub mod commit;
pub mod files;
pub mod lfs;
pub mod refs;
pub mod repos;
pub mod users;

use modelyard_core::{RepoId, RepoKind};
use modelyard_store::RepoRow;
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `{ns}/{name}` captured from a path.
#[derive(Debug, Deserialize)]
pub struct RepoParams {
    pub ns: String,
    pub name: String,
}

/// `{ns}/{name}/.../{rev}` captured from a path.
#[derive(Debug, Deserialize)]
pub struct RevParams {
    pub ns: String,
    pub name: String,
    pub rev: String,
}

/// `{ns}/{name}/.../{rev}/{*path}` captured from a path.
#[derive(Debug, Deserialize)]
pub struct PathParams {
    pub ns: String,
    pub name: String,
    pub rev: String,
    pub path: String,
}

/// Whether `auth` may read `repo`.
pub fn can_read(auth: &Auth, repo: &RepoRow) -> bool {
    !repo.private || auth.is_admin() || auth.name() == Some(repo.owner.as_str())
}

/// Loads a repo the caller may read. Missing and private-without-access look the same (404).
pub async fn readable(
    state: &AppState,
    auth: &Auth,
    kind: RepoKind,
    ns: &str,
    name: &str,
) -> AppResult<RepoRow> {
    let id = RepoId::new(ns, name).map_err(|_| AppError::repo_not_found(format!("{ns}/{name}")))?;
    match state.store.repo(kind, &id).await? {
        Some(repo) if can_read(auth, &repo) => Ok(repo),
        _ => Err(AppError::repo_not_found(&id)),
    }
}

/// Loads a repo the caller may write: its owner or an admin, with a write-scoped token.
pub async fn writable(
    state: &AppState,
    auth: &Auth,
    kind: RepoKind,
    ns: &str,
    name: &str,
) -> AppResult<RepoRow> {
    let caller = auth.require()?.clone();
    let repo = readable(state, auth, kind, ns, name).await?;
    if !(caller.is_admin || caller.name == repo.owner) {
        return Err(AppError::forbidden(format!(
            "{} may not write to {}",
            caller.name, repo.id
        )));
    }
    auth.require_write()?;
    Ok(repo)
}

/// Resolves a branch, tag or commit id of `repo` to a commit id.
pub async fn resolve(state: &AppState, repo: &RepoRow, rev: &str) -> AppResult<String> {
    state
        .store
        .resolve_revision(&repo.uid, rev)
        .await?
        .ok_or_else(|| AppError::revision_not_found(rev))
}

/// Dates as the Hub client parses them: RFC 3339 in UTC with a `Z`.
pub fn fmt_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Hub-style booleans: `true`, `True`, `1`.
pub fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The web URL of a repo, e.g. `http://host/alice/m` or `http://host/datasets/alice/d`.
pub fn repo_url(base: &str, kind: RepoKind, id: &RepoId) -> String {
    format!("{base}/{}{id}", kind.url_prefix())
}
