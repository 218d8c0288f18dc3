//! Repository operations shared by the API and the web pages: create, commit, card refresh.

use bytes::Bytes;
use futures_util::stream;
use modelyard_blob::{Expect, Stored};
use modelyard_core::{CommitId, RepoId, RepoKind};
use modelyard_store::{CommitOp, CommitRow, NewCommit, NewRepo, RepoRow, StoreError, TreeEntry};
use sha1::{Digest, Sha1};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The `.gitattributes` every new repo starts with (as on the Hub): large binary formats via LFS.
pub const GITATTRIBUTES: &str = "*.bin filter=lfs diff=lfs merge=lfs -text\n\
*.onnx filter=lfs diff=lfs merge=lfs -text\n\
*.safetensors filter=lfs diff=lfs merge=lfs -text\n\
*.pt filter=lfs diff=lfs merge=lfs -text\n\
*.pth filter=lfs diff=lfs merge=lfs -text\n\
*.ckpt filter=lfs diff=lfs merge=lfs -text\n\
*.h5 filter=lfs diff=lfs merge=lfs -text\n\
*.parquet filter=lfs diff=lfs merge=lfs -text\n\
*.arrow filter=lfs diff=lfs merge=lfs -text\n\
*.gz filter=lfs diff=lfs merge=lfs -text\n\
*.zip filter=lfs diff=lfs merge=lfs -text\n";

/// The largest README read to refresh a card.
const MAX_CARD_BYTES: u64 = 1 << 20;

/// A fresh commit id: SHA-1 over what the commit is plus a random nonce, so ids never repeat.
pub fn new_commit_id(repo_uid: &str, parent: Option<&str>, author: &str, title: &str) -> String {
    let mut h = Sha1::new();
    for part in [repo_uid, parent.unwrap_or(""), author, title] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(
        chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_le_bytes(),
    );
    h.update(rand::random::<[u8; 16]>());
    CommitId::from_bytes(h.finalize().into()).to_string()
}

/// Stores small in-memory content (an inline commit file) as a regular, non-LFS entry.
pub async fn store_inline(state: &AppState, path: &str, content: Vec<u8>) -> AppResult<TreeEntry> {
    let stored: Stored = state
        .blobs
        .put(
            stream::iter([Ok::<_, std::io::Error>(Bytes::from(content))]),
            Expect {
                git_sha1: true,
                max_size: Some(state.config.max_file_bytes),
                ..Default::default()
            },
        )
        .await?;
    state
        .store
        .record_blob(stored.sha256.as_str(), stored.size as i64)
        .await?;
    Ok(TreeEntry {
        path: path.to_owned(),
        sha256: stored.sha256.to_string(),
        size: stored.size as i64,
        git_oid: stored
            .git_sha1
            .ok_or_else(|| AppError::internal("git sha1 missing"))?,
        lfs: false,
    })
}

/// A tree entry for an already uploaded (LFS) blob; its git oid is that of its pointer file.
pub fn lfs_entry(path: &str, sha256: &str, size: i64) -> TreeEntry {
    let pointer = modelyard_core::hash::lfs_pointer(sha256, size as u64);
    TreeEntry {
        path: path.to_owned(),
        sha256: sha256.to_owned(),
        size,
        git_oid: modelyard_core::hash::git_blob_sha1(pointer.as_bytes()),
        lfs: true,
    }
}

/// Creates a repo with its first commit holding `.gitattributes`, like the Hub.
pub async fn create_repo(
    state: &AppState,
    kind: RepoKind,
    id: &RepoId,
    private: bool,
    owner: &str,
) -> AppResult<RepoRow> {
    let uid = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let attrs = store_inline(state, ".gitattributes", GITATTRIBUTES.as_bytes().to_vec()).await?;
    let repo = state
        .store
        .create_repo(&NewRepo {
            initial_commit: new_commit_id(&uid, None, owner, "initial commit"),
            uid,
            kind,
            id: id.clone(),
            private,
            owner: owner.to_owned(),
            initial_files: vec![attrs],
        })
        .await?;
    Ok(repo)
}

/// What a client asked to commit on a branch.
pub struct CommitRequest {
    pub branch: String,
    /// The parent the client expects (a prefix of the head's id, as the Hub allows); a
    /// mismatch is a 409. Without it the commit lands on whatever the head is.
    pub expected_parent: Option<String>,
    pub author: String,
    pub title: String,
    pub message: String,
    pub ops: Vec<CommitOp>,
}

/// Lands a commit on a branch, never losing a concurrent update, and refreshes the card.
pub async fn commit(state: &AppState, repo: &RepoRow, req: CommitRequest) -> AppResult<CommitRow> {
    for attempt in 0.. {
        let head = state
            .store
            .branch_head(&repo.uid, &req.branch)
            .await?
            .ok_or_else(|| AppError::revision_not_found(&req.branch))?;
        if let Some(expected) = &req.expected_parent {
            if !head.starts_with(expected.as_str()) || expected.len() < 5 {
                return Err(AppError::conflict(format!(
                    "branch {} is at {head}, not at the expected parent {expected}; pull and retry",
                    req.branch
                )));
            }
        }
        let new = NewCommit {
            id: new_commit_id(&repo.uid, Some(&head), &req.author, &req.title),
            repo_uid: repo.uid.clone(),
            branch: req.branch.clone(),
            parent: head,
            author: req.author.clone(),
            title: req.title.clone(),
            message: req.message.clone(),
            ops: req.ops.clone(),
        };
        match state.store.create_commit(&new).await {
            Ok(row) => {
                tracing::info!(repo = %repo.id, commit = %row.id, branch = %req.branch, files = req.ops.len(), "commit landed");
                crate::analysis::after_commit(state, repo, &row.id, &req.ops);
                if repo.kind == RepoKind::Dataset && req.branch == "main" {
                    crate::datasets::ensure(state, &row.id);
                }
                if req.branch == "main" && touches_readme(&req.ops) {
                    refresh_card(state, repo, &row.id).await?;
                }
                return Ok(row);
            }
            Err(StoreError::Stale { .. }) if req.expected_parent.is_none() && attempt < 8 => continue,
            Err(StoreError::Stale { branch, actual, .. }) => {
                return Err(AppError::conflict(format!(
                    "branch {branch} moved to {actual} while this commit was prepared; pull and retry"
                )))
            }
            Err(StoreError::NotFound(what)) => {
                return Err(AppError::entry_not_found(format!("{what} does not exist, so it cannot be deleted")))
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

fn touches_readme(ops: &[CommitOp]) -> bool {
    ops.iter().any(|op| match op {
        CommitOp::Put(e) => e.path == "README.md",
        CommitOp::DeleteFile(p) => p == "README.md",
        CommitOp::DeleteFolder(_) => false,
    })
}

/// Re-parses `README.md` at `commit` into the repo's card fields; a bad card is recorded as
/// a card error, never a failed request.
pub async fn refresh_card(state: &AppState, repo: &RepoRow, commit: &str) -> AppResult<()> {
    let Some(entry) = state.store.entry(commit, "README.md").await? else {
        state
            .store
            .set_card(&repo.uid, Ok(&Default::default()))
            .await?;
        if repo.kind == RepoKind::Model {
            state
                .store
                .set_self_reported(&repo.uid, commit, &[])
                .await?;
        }
        return Ok(());
    };
    let text = read_small(state, &entry.sha256, MAX_CARD_BYTES).await?;
    let parsed = match text {
        Some(t) => modelyard_core::parse_card(&t).map_err(|e| e.to_string()),
        None => Err("README.md is larger than 1 MiB or not UTF-8".to_owned()),
    };
    if let Err(e) = &parsed {
        tracing::warn!(repo = %repo.id, error = %e, "card error");
    }
    state
        .store
        .set_card(&repo.uid, parsed.as_ref().map_err(String::as_str))
        .await?;
    if repo.kind == RepoKind::Model {
        let claims = parsed
            .ok()
            .and_then(|c| c.model_index)
            .map(|mi| modelyard_core::model_index::self_reported(&mi))
            .unwrap_or_default();
        state
            .store
            .set_self_reported(&repo.uid, commit, &claims)
            .await?;
    }
    Ok(())
}

/// Reads a small blob as UTF-8 text; `None` if it is larger than `limit` or not text.
pub async fn read_small(state: &AppState, sha256: &str, limit: u64) -> AppResult<Option<String>> {
    use futures_util::StreamExt;
    let sha = modelyard_blob::Sha256::parse(sha256)?;
    match state.blobs.size(&sha).await? {
        Some(n) if n <= limit => {}
        _ => return Ok(None),
    }
    let mut out = Vec::new();
    let mut s = state.blobs.get(&sha, None).await?;
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.map_err(|e| AppError::internal(e.to_string()))?);
    }
    Ok(String::from_utf8(out).ok())
}
