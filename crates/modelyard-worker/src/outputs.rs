//! Uploads a succeeded command job's `outputs/` files to the master before it reports the end.

use std::path::{Path, PathBuf};

use modelyard_core::protocol::AttemptRef;
use modelyard_core::RepoPath;

use crate::client::{ClientError, MasterClient};

/// The most output files one attempt uploads.
pub const MAX_OUTPUT_FILES: usize = 1000;

/// Why the outputs were not all uploaded.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The master no longer wants this attempt (409 StaleAttempt).
    #[error("stale attempt: {0}")]
    Stale(ClientError),
    #[error("{0}")]
    Failed(String),
}

/// Lists the regular files under `root` as `(repo path, file)`, skipping symlinks.
fn list_files(root: &Path) -> Result<Vec<(RepoPath, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = entry.path();
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .ok()
                    .and_then(Path::to_str)
                    .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))?;
                let repo_path = RepoPath::parse(rel)
                    .map_err(|e| format!("invalid output path {rel:?}: {e}"))?;
                out.push((repo_path, path));
                if out.len() > MAX_OUTPUT_FILES {
                    return Err(format!("more than {MAX_OUTPUT_FILES} output files"));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(out)
}

/// Uploads every regular file under `root`; returns how many.
pub async fn upload_outputs(
    client: &MasterClient,
    job: AttemptRef,
    root: &Path,
) -> Result<usize, UploadError> {
    let dir = root.to_path_buf();
    let files = tokio::task::spawn_blocking(move || list_files(&dir))
        .await
        .map_err(|e| UploadError::Failed(e.to_string()))?
        .map_err(UploadError::Failed)?;
    for (path, file) in &files {
        let opened = async {
            let f = tokio::fs::File::open(file).await?;
            let len = f.metadata().await?.len();
            Ok::<_, std::io::Error>((f, len))
        };
        let (f, len) = opened
            .await
            .map_err(|e| UploadError::Failed(format!("cannot read {path}: {e}")))?;
        match client.put_output(job, path.as_str(), f, len).await {
            Ok(()) => {
                tracing::info!(job.id = job.job_id, job.attempt = job.attempt, path = %path, "output uploaded");
            }
            Err(e) if e.status() == Some(409) && e.code() == Some("StaleAttempt") => {
                return Err(UploadError::Stale(e));
            }
            Err(e) => return Err(UploadError::Failed(format!("{path}: {e}"))),
        }
    }
    Ok(files.len())
}
