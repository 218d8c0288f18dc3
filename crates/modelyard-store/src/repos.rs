//! Repositories: create (with an initial commit), look up, rename, delete, list and search.

use modelyard_core::{RepoId, RepoKind};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::commits::{insert_commit, TreeEntry};
use crate::rows::{RepoRow, REPO_COLUMNS};
use crate::{is_unique_violation, now_ms, Result, Store, StoreError};

/// A repository to create, with the first commit that every repo starts with.
#[derive(Debug, Clone)]
pub struct NewRepo {
    pub uid: String,
    pub kind: RepoKind,
    pub id: RepoId,
    pub private: bool,
    pub owner: String,
    pub initial_commit: String,
    pub initial_files: Vec<TreeEntry>,
}

/// How a repo listing is ordered; both are descending, like the Hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoSort {
    Recent,
    Downloads,
}

/// A listing request: every filter is optional; `viewer` sees their own private repos.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub kind: RepoKind,
    pub viewer: Option<String>,
    pub viewer_is_admin: bool,
    pub search: Option<String>,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub filters: RepoFilters,
    pub sort: RepoSort,
    pub limit: i64,
    /// Opaque position returned with the previous page: (sort key, repo uid).
    pub after: Option<(i64, String)>,
}

/// What a listing can narrow by besides tags: the card's fields, and the parameter count of any
/// model file on `main` (from its stored analysis).
#[derive(Debug, Clone, Default)]
pub struct RepoFilters {
    /// The card's `pipeline_tag`.
    pub task: Option<String>,
    pub license: Option<String>,
    /// The card's `library_name`.
    pub library: Option<String>,
    pub min_parameters: Option<i64>,
    pub max_parameters: Option<i64>,
}

pub struct RepoPage {
    pub repos: Vec<RepoRow>,
    /// Where the next page starts, if there is one.
    pub next: Option<(i64, String)>,
}

impl Store {
    /// Creates a repo, its initial commit and its `main` branch in one transaction.
    pub async fn create_repo(&self, new: &NewRepo) -> Result<RepoRow> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO repos (id, kind, namespace, name, private, owner, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&new.uid)
        .bind(new.kind.as_str())
        .bind(new.id.namespace())
        .bind(new.id.name())
        .bind(new.private as i64)
        .bind(&new.owner)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict(format!("{} {} already exists", new.kind.as_str(), new.id))
            } else {
                e.into()
            });
        }
        insert_commit(
            &mut tx,
            &new.uid,
            &new.initial_commit,
            None,
            &new.owner,
            "initial commit",
            "",
            now,
        )
        .await?;
        for e in &new.initial_files {
            crate::commits::upsert_entry(&mut tx, &new.initial_commit, e).await?;
        }
        sqlx::query(
            "INSERT INTO refs (repo_id, kind, name, commit_id) VALUES ($1, 'branch', 'main', $2)",
        )
        .bind(&new.uid)
        .bind(&new.initial_commit)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.repo_by_uid(&new.uid)
            .await?
            .ok_or_else(|| StoreError::NotFound("repo".into()))
    }

    /// The repo with this kind and id, whoever may see it; visibility is the caller's check.
    pub async fn repo(&self, kind: RepoKind, id: &RepoId) -> Result<Option<RepoRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REPO_COLUMNS} FROM repos r WHERE r.kind = $1 AND r.namespace = $2 AND r.name = $3"
        ))
        .bind(kind.as_str())
        .bind(id.namespace())
        .bind(id.name())
        .fetch_optional(&self.pool)
        .await?;
        self.with_tags(row).await
    }

    pub async fn repo_by_uid(&self, uid: &str) -> Result<Option<RepoRow>> {
        let row = sqlx::query(&format!(
            "SELECT {REPO_COLUMNS} FROM repos r WHERE r.id = $1"
        ))
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        self.with_tags(row).await
    }

    async fn with_tags(&self, row: Option<AnyRow>) -> Result<Option<RepoRow>> {
        let Some(row) = row else { return Ok(None) };
        let mut repo = RepoRow::from_row(&row)?;
        repo.tags = self.tags_of(&repo.uid).await?;
        Ok(Some(repo))
    }

    /// Loads the tags of a page of repos in one query.
    async fn fill_tags(&self, repos: &mut [RepoRow]) -> Result<()> {
        if repos.is_empty() {
            return Ok(());
        }
        let marks: Vec<String> = (1..=repos.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT repo_id, tag FROM repo_tags WHERE repo_id IN ({}) ORDER BY tag",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in repos.iter() {
            q = q.bind(r.uid.clone());
        }
        let mut by_repo: std::collections::HashMap<String, Vec<String>> = Default::default();
        for row in q.fetch_all(&self.pool).await? {
            by_repo
                .entry(row.try_get("repo_id")?)
                .or_default()
                .push(row.try_get("tag")?);
        }
        for r in repos.iter_mut() {
            r.tags = by_repo.remove(&r.uid).unwrap_or_default();
        }
        Ok(())
    }

    async fn tags_of(&self, uid: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT tag FROM repo_tags WHERE repo_id = $1 ORDER BY tag")
            .bind(uid)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("tag"))
            .collect::<sqlx::Result<_>>()?)
    }

    pub async fn rename_repo(&self, uid: &str, to: &RepoId) -> Result<()> {
        sqlx::query("UPDATE repos SET namespace = $1, name = $2, updated_at = $3 WHERE id = $4")
            .bind(to.namespace())
            .bind(to.name())
            .bind(now_ms())
            .bind(uid)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("{to} already exists"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub async fn set_private(&self, uid: &str, private: bool) -> Result<()> {
        sqlx::query("UPDATE repos SET private = $1 WHERE id = $2")
            .bind(private as i64)
            .bind(uid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a repo with its commits, trees and refs. Blobs stay until garbage collection.
    pub async fn delete_repo(&self, uid: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM tree_entries WHERE commit_id IN (SELECT id FROM commits WHERE repo_id = $1)",
            "DELETE FROM refs WHERE repo_id = $1",
            "DELETE FROM commits WHERE repo_id = $1",
            "DELETE FROM repo_tags WHERE repo_id = $1",
            "DELETE FROM repos WHERE id = $1",
        ] {
            sqlx::query(sql).bind(uid).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores what was parsed from the repo's card (or the card error) for filtering.
    pub async fn set_card(
        &self,
        uid: &str,
        card: Result<&modelyard_core::CardData, &str>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let (json, error, license, task, library, tags) = match card {
            Ok(c) => (
                Some(c.raw.to_string()),
                None,
                c.license.clone(),
                c.pipeline_tag.clone(),
                c.library_name.clone(),
                c.tags.clone(),
            ),
            Err(e) => (None, Some(e.to_owned()), None, None, None, Vec::new()),
        };
        sqlx::query(
            "UPDATE repos SET card_json = $1, card_error = $2, license = $3, pipeline_tag = $4, \
             library_name = $5 WHERE id = $6",
        )
        .bind(json)
        .bind(error)
        .bind(license)
        .bind(task)
        .bind(library)
        .bind(uid)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM repo_tags WHERE repo_id = $1")
            .bind(uid)
            .execute(&mut *tx)
            .await?;
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        for tag in tags {
            sqlx::query("INSERT INTO repo_tags (repo_id, tag) VALUES ($1, $2)")
                .bind(uid)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn count_download(&self, uid: &str) -> Result<()> {
        sqlx::query("UPDATE repos SET downloads = downloads + 1 WHERE id = $1")
            .bind(uid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One page of the repos `q.viewer` may see, filtered and sorted, with a cursor.
    pub async fn list_repos(&self, q: &ListQuery) -> Result<RepoPage> {
        let key = match q.sort {
            RepoSort::Recent => "r.updated_at",
            RepoSort::Downloads => "r.downloads",
        };
        let mut sql =
            format!("SELECT {REPO_COLUMNS}, {key} AS sort_key FROM repos r WHERE r.kind = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let mut binds: Vec<Bind> = vec![Bind::S(q.kind.as_str().to_owned())];
        if !q.viewer_is_admin {
            match &q.viewer {
                Some(v) => {
                    sql += &format!(" AND (r.private = 0 OR r.owner = {})", next());
                    binds.push(Bind::S(v.clone()));
                }
                None => sql += " AND r.private = 0",
            }
        }
        if let Some(s) = &q.search {
            // instr() would be SQLite-only; position() is PostgreSQL-only. Compare lowercase
            // substrings through LIKE with the wildcards escaped.
            sql += &format!(
                " AND LOWER(r.namespace || '/' || r.name) LIKE {} ESCAPE '\\'",
                next()
            );
            binds.push(Bind::S(format!("%{}%", escape_like(&s.to_lowercase()))));
        }
        if let Some(a) = &q.author {
            sql += &format!(" AND r.namespace = {}", next());
            binds.push(Bind::S(a.clone()));
        }
        for t in &q.tags {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM repo_tags t WHERE t.repo_id = r.id AND t.tag = {})",
                next()
            );
            binds.push(Bind::S(t.clone()));
        }
        let f = &q.filters;
        for (column, value) in [
            ("r.pipeline_tag", &f.task),
            ("r.license", &f.license),
            ("r.library_name", &f.library),
        ] {
            if let Some(v) = value {
                sql += &format!(" AND LOWER({column}) = {}", next());
                binds.push(Bind::S(v.to_lowercase()));
            }
        }
        if f.min_parameters.is_some() || f.max_parameters.is_some() {
            let (lo, hi) = (next(), next());
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM refs b \
                 JOIN tree_entries te ON te.commit_id = b.commit_id \
                 JOIN analyses a ON a.sha256 = te.sha256 \
                 WHERE b.repo_id = r.id AND b.kind = 'branch' AND b.name = 'main' \
                 AND a.parameters >= {lo} AND a.parameters <= {hi})"
            );
            binds.push(Bind::I(f.min_parameters.unwrap_or(0)));
            binds.push(Bind::I(f.max_parameters.unwrap_or(i64::MAX)));
        }
        if let Some((k, uid)) = &q.after {
            let (a, b, c) = (next(), next(), next());
            sql += &format!(" AND ({key} < {a} OR ({key} = {b} AND r.id > {c}))");
            binds.extend([Bind::I(*k), Bind::I(*k), Bind::S(uid.clone())]);
        }
        sql += &format!(" ORDER BY {key} DESC, r.id ASC LIMIT {}", next());
        binds.push(Bind::I(q.limit + 1));

        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::S(s) => query.bind(s),
                Bind::I(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut repos = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for r in &rows {
            repos.push(RepoRow::from_row(r)?);
            keys.push(r.try_get::<i64, _>("sort_key")?);
        }
        self.fill_tags(&mut repos).await?;
        let next = if repos.len() as i64 > q.limit {
            repos.truncate(q.limit as usize);
            let last = repos.last().expect("limit is at least 1");
            Some((keys[repos.len() - 1], last.uid.clone()))
        } else {
            None
        };
        Ok(RepoPage { repos, next })
    }
}

enum Bind {
    S(String),
    I(i64),
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
