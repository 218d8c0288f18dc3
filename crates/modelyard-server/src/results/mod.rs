//! Verified results: recorded when an `evaluate` job succeeds, ranked on leaderboards, set
//! side by side on the compare page, and requested in batches by contrast runs.

pub mod api;
pub mod board;
pub mod charts;
pub mod compare;
pub mod runs;

use modelyard_core::job::JobSpec;
use modelyard_core::{RepoId, RepoKind};
use modelyard_eval::EvalReport;
use modelyard_store::{JobRow, NewResult};
use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// `ns/name@commit` → the repository's uid and the commit.
async fn pinned(state: &AppState, kind: RepoKind, source: &str) -> AppResult<(String, String)> {
    let (id, commit) = source
        .split_once('@')
        .ok_or_else(|| AppError::internal(format!("input source {source:?} is not pinned")))?;
    let id: RepoId = id
        .parse()
        .map_err(|e| AppError::internal(format!("input source {source:?}: {e}")))?;
    let repo = state
        .store
        .repo(kind, &id)
        .await?
        .ok_or_else(|| AppError::entry_not_found(format!("{} was deleted or renamed", id)))?;
    Ok((repo.uid, commit.to_owned()))
}

/// Stores the report of a succeeded `evaluate` job as a verified result. A missing or
/// malformed report is an error: the job then fails rather than succeed unverified.
pub async fn record(
    state: &AppState,
    job: &JobRow,
    node: &str,
    report: Option<&Value>,
) -> AppResult<()> {
    let report = report.ok_or_else(|| AppError::bad_request("the evaluation sent no report"))?;
    let parsed: EvalReport = serde_json::from_value(report.clone())
        .map_err(|e| AppError::bad_request(format!("the evaluation report is malformed: {e}")))?;
    let spec: JobSpec = serde_json::from_str(&job.spec)
        .map_err(|e| AppError::internal(format!("job {} spec: {e}", job.id)))?;
    let source = |role: &str| {
        spec.inputs
            .iter()
            .find(|i| i.role == role)
            .map(|i| i.source.clone())
            .ok_or_else(|| AppError::internal(format!("job {} has no {role} input", job.id)))
    };
    let (model_repo, model_commit) = pinned(state, RepoKind::Model, &source("model")?).await?;
    let (dataset_repo, dataset_commit) =
        pinned(state, RepoKind::Dataset, &source("dataset")?).await?;
    let hw = &parsed.record.hardware;
    let hardware = format!("{} · {} cores · node {node}", hw.cpu, hw.cores);
    let stored = state
        .store
        .add_result(&NewResult {
            job_id: job.id,
            model_repo: &model_repo,
            model_commit: &model_commit,
            model_sha256: &parsed.record.model.sha256,
            dataset_repo: &dataset_repo,
            dataset_commit: &dataset_commit,
            split: &parsed.split,
            task: parsed.task.as_str(),
            samples: parsed.samples as i64,
            metrics: &parsed.metrics,
            latency_p50_ms: parsed.latency_ms.p50,
            latency_p95_ms: parsed.latency_ms.p95,
            throughput: parsed.throughput_per_s,
            hardware: &hardware,
            report,
        })
        .await?;
    if stored {
        tracing::info!(job.id = job.id, split = %parsed.split, task = %parsed.task,
            metrics = ?parsed.metrics, "verified result stored");
    }
    Ok(())
}
