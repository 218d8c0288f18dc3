//! Rows as the database holds them; the server turns them into API types.

use modelyard_core::{RepoId, RepoKind};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: i64,
}

impl UserRow {
    pub(crate) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            is_admin: r.try_get::<i64, _>("is_admin")? != 0,
            created_at: r.try_get("created_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub user_name: String,
    pub scope: String,
    pub label: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl TokenRow {
    pub(crate) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            user_name: r.try_get("user_name")?,
            scope: r.try_get("scope")?,
            label: r.try_get("label")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            last_used_at: r.try_get("last_used_at")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RepoRow {
    /// Stable internal id; survives renames.
    pub uid: String,
    pub kind: RepoKind,
    pub id: RepoId,
    pub private: bool,
    pub owner: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub downloads: i64,
    pub card_json: Option<String>,
    pub card_error: Option<String>,
    pub license: Option<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub tags: Vec<String>,
}

pub(crate) const REPO_COLUMNS: &str = "r.id, r.kind, r.namespace, r.name, r.private, r.owner, \
    r.created_at, r.updated_at, r.downloads, r.card_json, r.card_error, r.license, \
    r.pipeline_tag, r.library_name";

impl RepoRow {
    pub(crate) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let kind: String = r.try_get("kind")?;
        let ns: String = r.try_get("namespace")?;
        let name: String = r.try_get("name")?;
        let decode = |e: modelyard_core::ValidationError| sqlx::Error::Decode(Box::new(e));
        Ok(Self {
            uid: r.try_get("id")?,
            kind: kind.parse().map_err(decode)?,
            id: RepoId::new(&ns, &name).map_err(decode)?,
            private: r.try_get::<i64, _>("private")? != 0,
            owner: r.try_get("owner")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            downloads: r.try_get("downloads")?,
            card_json: r.try_get("card_json")?,
            card_error: r.try_get("card_error")?,
            license: r.try_get("license")?,
            pipeline_tag: r.try_get("pipeline_tag")?,
            library_name: r.try_get("library_name")?,
            tags: Vec::new(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct CommitRow {
    pub id: String,
    pub parent_id: Option<String>,
    pub author: String,
    pub title: String,
    pub message: String,
    pub created_at: i64,
}

impl CommitRow {
    pub(crate) fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            parent_id: r.try_get("parent_id")?,
            author: r.try_get("author")?,
            title: r.try_get("title")?,
            message: r.try_get("message")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A branch or tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRow {
    /// `"branch"` or `"tag"`.
    pub kind: String,
    pub name: String,
    pub commit_id: String,
}
