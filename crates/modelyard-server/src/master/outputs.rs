//! Job outputs: workers upload the files of a finished command job, and the master commits
//! them to the job's output repo branch when the attempt succeeds.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use futures_util::TryStreamExt;
use modelyard_blob::Expect;
use modelyard_core::job::JobSpec;
use modelyard_core::{RepoId, RepoKind, RepoPath};
use modelyard_store::{CommitOp, JobRow};
use serde::Deserialize;
use serde_json::{json, Value};

use super::cluster_api::NodeAuth;
use crate::error::{AppError, AppResult};
use crate::repo_ops::{self, CommitRequest};
use crate::state::AppState;

/// The most output files one attempt may upload.
pub const MAX_OUTPUT_FILES: usize = 1000;

#[derive(Deserialize)]
pub struct OutputQuery {
    pub attempt: i64,
    pub path: String,
}

/// `PUT /api/cluster/jobs/{id}/outputs?attempt=N&path=P`: one output file of an attempt,
/// fenced by the attempt number like the events.
pub async fn upload(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(job): Path<i64>,
    Query(q): Query<OutputQuery>,
    body: Body,
) -> AppResult<Json<Value>> {
    if !state
        .store
        .attempt_is_current(job, q.attempt, &node.id)
        .await?
    {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "StaleAttempt",
            format!(
                "attempt {} of job {job} is not current on this node",
                q.attempt
            ),
        ));
    }
    let path = RepoPath::parse(&q.path)?;
    let known = state.store.job_outputs(job, q.attempt).await?;
    if known.len() >= MAX_OUTPUT_FILES && !known.iter().any(|o| o.path == path.as_str()) {
        return Err(AppError::bad_request(format!(
            "a job may upload at most {MAX_OUTPUT_FILES} output files"
        )));
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let stored = state
        .blobs
        .put(
            stream,
            Expect {
                max_size: Some(state.config.max_file_bytes),
                ..Default::default()
            },
        )
        .await
        .inspect_err(
            |e| tracing::warn!(job.id = job, path = %path, error = %e, "job output rejected"),
        )?;
    state
        .store
        .record_blob(stored.sha256.as_str(), stored.size as i64)
        .await?;
    state
        .store
        .record_job_output(
            job,
            q.attempt,
            path.as_str(),
            stored.sha256.as_str(),
            stored.size as i64,
        )
        .await?;
    tracing::info!(job.id = job, attempt = q.attempt, path = %path, size = stored.size, "job output stored");
    Ok(Json(json!({ "ok": true })))
}

/// Commits the outputs of `attempt` to the job's output branch, if the spec names one and the
/// attempt uploaded any; returns the new commit id. Runs before the attempt is finished, so a
/// job seen as succeeded already carries its `output_commit`.
pub async fn commit_outputs(
    state: &AppState,
    job: &JobRow,
    attempt: i64,
) -> AppResult<Option<String>> {
    if let Some(done) = &job.output_commit {
        return Ok(Some(done.clone()));
    }
    let spec: JobSpec = serde_json::from_str(&job.spec)
        .map_err(|e| AppError::internal(format!("job {} spec: {e}", job.id)))?;
    let Some(output) = spec.output else {
        return Ok(None);
    };
    let files = state.store.job_outputs(job.id, attempt).await?;
    if files.is_empty() {
        return Ok(None);
    }
    let (ns, name) = output
        .repo
        .split_once('/')
        .ok_or_else(|| AppError::bad_request(format!("{:?} must be NS/NAME", output.repo)))?;
    let id = RepoId::new(ns, name).map_err(|_| AppError::repo_not_found(&output.repo))?;
    let repo = state
        .store
        .repo(RepoKind::Model, &id)
        .await?
        .ok_or_else(|| AppError::repo_not_found(&id))?;
    let ops = files
        .iter()
        .map(|f| CommitOp::Put(repo_ops::lfs_entry(&f.path, &f.sha256, f.size)))
        .collect();
    let row = repo_ops::commit(
        state,
        &repo,
        CommitRequest {
            branch: output.branch.clone(),
            expected_parent: None,
            author: job.owner.clone(),
            title: format!("Outputs of job {}", job.id),
            message: String::new(),
            ops,
        },
    )
    .await?;
    state.store.set_output_commit(job.id, &row.id).await?;
    tracing::info!(job.id = job.id, repo = %repo.id, commit = %row.id, files = files.len(), "job outputs committed");
    Ok(Some(row.id))
}
