//! Immutable commits, their trees, branches and tags, and the blob registry.

use sqlx::{Any, Row, Transaction};

use crate::rows::{CommitRow, RefRow};
use crate::{is_unique_violation, now_ms, Result, Store, StoreError};

/// One file of a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub sha256: String,
    pub size: i64,
    /// The git blob SHA-1 for regular files; the SHA-1 of the LFS pointer for LFS files.
    pub git_oid: String,
    pub lfs: bool,
}

impl TreeEntry {
    fn from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            path: r.try_get("path")?,
            sha256: r.try_get("sha256")?,
            size: r.try_get("size")?,
            git_oid: r.try_get("git_oid")?,
            lfs: r.try_get::<i64, _>("lfs")? != 0,
        })
    }
}

/// One change of a commit, applied in order on top of the parent's tree.
#[derive(Debug, Clone)]
pub enum CommitOp {
    Put(TreeEntry),
    DeleteFile(String),
    /// Deletes every file under this folder (`""` is not allowed).
    DeleteFolder(String),
}

/// A commit to land on a branch.
#[derive(Debug, Clone)]
pub struct NewCommit {
    pub id: String,
    pub repo_uid: String,
    pub branch: String,
    /// The head the commit was built on; the branch must still point there.
    pub parent: String,
    pub author: String,
    pub title: String,
    pub message: String,
    pub ops: Vec<CommitOp>,
}

#[expect(clippy::too_many_arguments, reason = "one column per argument")]
pub(crate) async fn insert_commit(
    tx: &mut Transaction<'_, Any>,
    repo_uid: &str,
    id: &str,
    parent: Option<&str>,
    author: &str,
    title: &str,
    message: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO commits (id, repo_id, parent_id, author, title, message, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(repo_uid)
    .bind(parent)
    .bind(author)
    .bind(title)
    .bind(message)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn upsert_entry(
    tx: &mut Transaction<'_, Any>,
    commit: &str,
    e: &TreeEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tree_entries (commit_id, path, sha256, size, git_oid, lfs) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (commit_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, \
         git_oid = excluded.git_oid, lfs = excluded.lfs",
    )
    .bind(commit)
    .bind(&e.path)
    .bind(&e.sha256)
    .bind(e.size)
    .bind(&e.git_oid)
    .bind(e.lfs as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every proper ancestor folder of `path`: `a/b/c` → `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

impl Store {
    /// Lands a commit: copies the parent's tree, applies the ops, and moves the branch from
    /// `parent` to the new commit only if it still points at `parent` (else `Stale`).
    pub async fn create_commit(&self, c: &NewCommit) -> Result<CommitRow> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so SQLite takes its write lock up front.
        insert_commit(
            &mut tx,
            &c.repo_uid,
            &c.id,
            Some(&c.parent),
            &c.author,
            &c.title,
            &c.message,
            now,
        )
        .await?;
        sqlx::query(
            "INSERT INTO tree_entries (commit_id, path, sha256, size, git_oid, lfs) \
             SELECT $1, path, sha256, size, git_oid, lfs FROM tree_entries WHERE commit_id = $2",
        )
        .bind(&c.id)
        .bind(&c.parent)
        .execute(&mut *tx)
        .await?;
        for op in &c.ops {
            match op {
                CommitOp::Put(e) => {
                    for folder in ancestors(&e.path) {
                        if self.tx_has_file(&mut tx, &c.id, folder).await? {
                            return Err(StoreError::Invalid(format!(
                                "cannot add {:?}: {folder:?} is a file",
                                e.path
                            )));
                        }
                    }
                    if self.tx_count_under(&mut tx, &c.id, &e.path).await? > 0 {
                        return Err(StoreError::Invalid(format!(
                            "cannot add {:?}: a folder of that name exists",
                            e.path
                        )));
                    }
                    upsert_entry(&mut tx, &c.id, e).await?;
                }
                CommitOp::DeleteFile(p) => {
                    let done =
                        sqlx::query("DELETE FROM tree_entries WHERE commit_id = $1 AND path = $2")
                            .bind(&c.id)
                            .bind(p)
                            .execute(&mut *tx)
                            .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("file {p:?}")));
                    }
                }
                CommitOp::DeleteFolder(f) => {
                    let prefix = format!("{f}/");
                    let done = sqlx::query(
                        "DELETE FROM tree_entries WHERE commit_id = $1 AND substr(path, 1, CAST($2 AS INTEGER)) = $3",
                    )
                    .bind(&c.id)
                    .bind(prefix.chars().count() as i64)
                    .bind(&prefix)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("folder {f:?}")));
                    }
                }
            }
        }
        let moved = sqlx::query(
            "UPDATE refs SET commit_id = $1 WHERE repo_id = $2 AND kind = 'branch' AND name = $3 AND commit_id = $4",
        )
        .bind(&c.id)
        .bind(&c.repo_uid)
        .bind(&c.branch)
        .bind(&c.parent)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            drop(tx);
            let actual = self
                .branch_head(&c.repo_uid, &c.branch)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("branch {:?}", c.branch)))?;
            return Err(StoreError::Stale {
                branch: c.branch.clone(),
                expected: c.parent.clone(),
                actual,
            });
        }
        sqlx::query("UPDATE repos SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&c.repo_uid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CommitRow {
            id: c.id.clone(),
            parent_id: Some(c.parent.clone()),
            author: c.author.clone(),
            title: c.title.clone(),
            message: c.message.clone(),
            created_at: now,
        })
    }

    async fn tx_has_file(
        &self,
        tx: &mut Transaction<'_, Any>,
        commit: &str,
        path: &str,
    ) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS x FROM tree_entries WHERE commit_id = $1 AND path = $2")
                .bind(commit)
                .bind(path)
                .fetch_optional(&mut **tx)
                .await?
                .is_some(),
        )
    }

    async fn tx_count_under(
        &self,
        tx: &mut Transaction<'_, Any>,
        commit: &str,
        folder: &str,
    ) -> Result<i64> {
        let prefix = format!("{folder}/");
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM tree_entries WHERE commit_id = $1 AND substr(path, 1, CAST($2 AS INTEGER)) = $3",
        )
        .bind(commit)
        .bind(prefix.chars().count() as i64)
        .bind(&prefix)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?)
    }

    pub async fn branch_head(&self, repo_uid: &str, branch: &str) -> Result<Option<String>> {
        Ok(self
            .find_ref(repo_uid, "branch", branch)
            .await?
            .map(|r| r.commit_id))
    }

    async fn find_ref(&self, repo_uid: &str, kind: &str, name: &str) -> Result<Option<RefRow>> {
        let row = sqlx::query(
            "SELECT kind, name, commit_id FROM refs WHERE repo_id = $1 AND kind = $2 AND name = $3",
        )
        .bind(repo_uid)
        .bind(kind)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ref_from_row(&r)).transpose()?)
    }

    /// Resolves a branch, then a tag, then a full commit id of this repo, to a commit id.
    pub async fn resolve_revision(&self, repo_uid: &str, rev: &str) -> Result<Option<String>> {
        if let Some(head) = self.branch_head(repo_uid, rev).await? {
            return Ok(Some(head));
        }
        if let Some(tag) = self.find_ref(repo_uid, "tag", rev).await? {
            return Ok(Some(tag.commit_id));
        }
        if modelyard_core::CommitId::looks_like(rev) {
            return Ok(self.commit(repo_uid, rev).await?.map(|c| c.id));
        }
        Ok(None)
    }

    pub async fn commit(&self, repo_uid: &str, id: &str) -> Result<Option<CommitRow>> {
        let row = sqlx::query("SELECT * FROM commits WHERE repo_id = $1 AND id = $2")
            .bind(repo_uid)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| CommitRow::from_row(&r)).transpose()?)
    }

    /// History from `head` backwards: `skip` commits skipped, at most `limit` returned.
    pub async fn history(
        &self,
        repo_uid: &str,
        head: &str,
        skip: i64,
        limit: i64,
    ) -> Result<Vec<CommitRow>> {
        let rows = sqlx::query(
            "WITH RECURSIVE h(id, depth) AS ( \
               SELECT id, 0 FROM commits WHERE repo_id = $1 AND id = $2 \
               UNION ALL \
               SELECT c.parent_id, h.depth + 1 FROM commits c JOIN h ON c.id = h.id \
               WHERE c.parent_id IS NOT NULL AND c.repo_id = $1) \
             SELECT c.* FROM h JOIN commits c ON c.id = h.id AND c.repo_id = $1 \
             ORDER BY h.depth LIMIT $3 OFFSET $4",
        )
        .bind(repo_uid)
        .bind(head)
        .bind(limit)
        .bind(skip)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(CommitRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Files of a commit under `folder` (`""` = everything), sorted by path.
    pub async fn tree(&self, commit: &str, folder: &str) -> Result<Vec<TreeEntry>> {
        let rows = if folder.is_empty() {
            sqlx::query("SELECT * FROM tree_entries WHERE commit_id = $1 ORDER BY path")
                .bind(commit)
                .fetch_all(&self.pool)
                .await?
        } else {
            let prefix = format!("{folder}/");
            sqlx::query(
                "SELECT * FROM tree_entries WHERE commit_id = $1 AND substr(path, 1, CAST($2 AS INTEGER)) = $3 ORDER BY path",
            )
            .bind(commit)
            .bind(prefix.chars().count() as i64)
            .bind(&prefix)
            .fetch_all(&self.pool)
            .await?
        };
        Ok(rows
            .iter()
            .map(TreeEntry::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    pub async fn entry(&self, commit: &str, path: &str) -> Result<Option<TreeEntry>> {
        let row = sqlx::query("SELECT * FROM tree_entries WHERE commit_id = $1 AND path = $2")
            .bind(commit)
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| TreeEntry::from_row(&r)).transpose()?)
    }

    pub async fn refs(&self, repo_uid: &str) -> Result<Vec<RefRow>> {
        let rows = sqlx::query(
            "SELECT kind, name, commit_id FROM refs WHERE repo_id = $1 ORDER BY kind, name",
        )
        .bind(repo_uid)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(ref_from_row).collect::<sqlx::Result<_>>()?)
    }

    /// Creates a branch or tag at `commit`; a name already used by either is a conflict.
    pub async fn create_ref(
        &self,
        repo_uid: &str,
        kind: &str,
        name: &str,
        commit: &str,
    ) -> Result<()> {
        let other = if kind == "branch" { "tag" } else { "branch" };
        if self.find_ref(repo_uid, other, name).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a {other} named {name:?} already exists"
            )));
        }
        sqlx::query("INSERT INTO refs (repo_id, kind, name, commit_id) VALUES ($1, $2, $3, $4)")
            .bind(repo_uid)
            .bind(kind)
            .bind(name)
            .bind(commit)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("{kind} {name:?} already exists"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    pub async fn delete_ref(&self, repo_uid: &str, kind: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM refs WHERE repo_id = $1 AND kind = $2 AND name = $3")
            .bind(repo_uid)
            .bind(kind)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a verified blob (idempotent).
    pub async fn record_blob(&self, sha256: &str, size: i64) -> Result<()> {
        sqlx::query("INSERT INTO blobs (sha256, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
            .bind(sha256)
            .bind(size)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn blob_size(&self, sha256: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT size FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("size")).transpose()?)
    }
}

fn ref_from_row(r: &sqlx::any::AnyRow) -> sqlx::Result<RefRow> {
    Ok(RefRow {
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        commit_id: r.try_get("commit_id")?,
    })
}

/// A branch head that holds a blob: what a worker's cached blob belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHolder {
    pub sha256: String,
    pub repo_uid: String,
    /// `model` or `dataset`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub private: bool,
    pub owner: String,
    pub branch: String,
    pub commit: String,
    pub path: String,
    pub size: i64,
}

impl Store {
    /// The branch heads whose trees hold any of `sha256s` (at most 500 per call).
    pub async fn blob_holders(&self, sha256s: &[String]) -> Result<Vec<BlobHolder>> {
        if sha256s.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = &sha256s[..sha256s.len().min(500)];
        let marks: Vec<String> = (1..=hashes.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT te.sha256, te.path, te.size, f.name AS branch, f.commit_id, r.id AS repo_uid, \
             r.kind, r.namespace, r.name AS repo_name, r.private, r.owner \
             FROM tree_entries te JOIN refs f ON f.commit_id = te.commit_id AND f.kind = 'branch' \
             JOIN repos r ON r.id = f.repo_id WHERE te.sha256 IN ({}) \
             ORDER BY r.kind, r.namespace, r.name, f.name, te.path",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for h in hashes {
            q = q.bind(h);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(BlobHolder {
                    sha256: r.try_get("sha256")?,
                    repo_uid: r.try_get("repo_uid")?,
                    kind: r.try_get("kind")?,
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("repo_name")?,
                    private: r.try_get::<i64, _>("private")? != 0,
                    owner: r.try_get("owner")?,
                    branch: r.try_get("branch")?,
                    commit: r.try_get("commit_id")?,
                    path: r.try_get("path")?,
                    size: r.try_get("size")?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }
}
