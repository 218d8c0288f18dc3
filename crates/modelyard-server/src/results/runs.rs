//! Contrast runs: evaluate every model on every dataset, submitting only the evaluations that
//! have no verified result (or pending job) for the same commits yet.

use modelyard_core::job::{JobKind, JobSpec};
use modelyard_core::RepoKind;
use modelyard_eval::Task;
use modelyard_store::{JobFilter, ResultFilter};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::compare::split_ref;
use crate::api::{readable, resolve};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::master::jobs_api::{submit_job, SubmitBody};
use crate::state::AppState;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RunsBody {
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    pub split: Option<String>,
    pub task: Option<String>,
    /// More `eval` options for the submitted jobs (preprocessing, batch_size, limit).
    pub eval: Option<Value>,
}

/// One (model, dataset) pair of a contrast run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub model: String,
    pub dataset: String,
    pub model_commit: String,
    pub dataset_commit: String,
    pub split: String,
    pub task: String,
    /// `verified` (reused), `pending` (an earlier job is still running) or `submitted`.
    pub status: &'static str,
    pub result_id: Option<i64>,
    pub job_id: Option<i64>,
}

/// Whether a job evaluates exactly these pins.
fn same_evaluation(spec: &JobSpec, model: &str, dataset: &str, split: &str, task: &str) -> bool {
    let has = |role: &str, src: &str| {
        spec.inputs
            .iter()
            .any(|i| i.role == role && i.source == src)
    };
    let eval = spec.eval.clone().unwrap_or(Value::Null);
    spec.kind == JobKind::Evaluate
        && has("model", model)
        && has("dataset", dataset)
        && eval.get("split").and_then(Value::as_str).unwrap_or("test") == split
        && eval.get("task").and_then(Value::as_str) == Some(task)
}

/// Plans and submits a contrast run.
pub async fn run(state: &AppState, auth: &Auth, body: &RunsBody) -> AppResult<Vec<Run>> {
    let caller = auth.require_write()?.clone();
    if body.models.is_empty() || body.datasets.is_empty() {
        return Err(AppError::bad_request(
            "name at least one model and one dataset",
        ));
    }
    if body.models.len() * body.datasets.len() > 100 {
        return Err(AppError::bad_request(
            "at most 100 evaluations per contrast run",
        ));
    }
    let split = body.split.clone().unwrap_or_else(|| "test".into());
    let mine = state
        .store
        .jobs(&JobFilter {
            owner: Some(caller.name.clone()),
            state: None,
            limit: 1000,
        })
        .await?;
    let pending: Vec<(i64, JobSpec)> = mine
        .iter()
        .filter(|j| matches!(j.state.as_str(), "queued" | "assigned" | "running"))
        .filter_map(|j| Some((j.id, serde_json::from_str(&j.spec).ok()?)))
        .collect();
    let mut runs = Vec::new();
    for m in &body.models {
        let (mns, mname, mrev) = split_ref(m)?;
        let model = readable(state, auth, RepoKind::Model, mns, mname).await?;
        let mcommit = resolve(state, &model, mrev).await?;
        for d in &body.datasets {
            let (dns, dname, drev) = split_ref(d)?;
            let dataset = readable(state, auth, RepoKind::Dataset, dns, dname).await?;
            let dcommit = resolve(state, &dataset, drev).await?;
            let task = body
                .task
                .clone()
                .or(dataset.pipeline_tag.clone())
                .or(model.pipeline_tag.clone())
                .filter(|t| t.parse::<Task>().is_ok())
                .ok_or_else(|| {
                    AppError::bad_request(format!(
                        "cannot tell the task of {} on {}: pass `task`",
                        model.id, dataset.id
                    ))
                })?;
            let msrc = format!("{}@{mcommit}", model.id);
            let dsrc = format!("{}@{dcommit}", dataset.id);
            let mut r = Run {
                model: model.id.to_string(),
                dataset: dataset.id.to_string(),
                model_commit: mcommit.clone(),
                dataset_commit: dcommit.clone(),
                split: split.clone(),
                task: task.clone(),
                status: "submitted",
                result_id: None,
                job_id: None,
            };
            let done = state
                .store
                .results(&ResultFilter {
                    model_repo: Some(model.uid.clone()),
                    model_commit: Some(mcommit.clone()),
                    dataset_commit: Some(dcommit.clone()),
                    split: Some(split.clone()),
                    task: Some(task.clone()),
                    ..ResultFilter::default()
                })
                .await?;
            if let Some(found) = done.first() {
                r.status = "verified";
                r.result_id = Some(found.id);
                r.job_id = Some(found.job_id);
            } else if let Some((id, _)) = pending
                .iter()
                .find(|(_, s)| same_evaluation(s, &msrc, &dsrc, &split, &task))
            {
                r.status = "pending";
                r.job_id = Some(*id);
            } else {
                let mut eval = body.eval.clone().unwrap_or_else(|| json!({}));
                if !eval.is_object() {
                    return Err(AppError::bad_request("`eval` must be an object"));
                }
                eval["task"] = json!(task);
                eval["split"] = json!(split);
                let job = submit_job(
                    state,
                    auth,
                    &SubmitBody {
                        kind: Some("evaluate".into()),
                        model: Some(msrc),
                        dataset: Some(dsrc),
                        eval: Some(eval),
                        ..SubmitBody::default()
                    },
                )
                .await?;
                r.job_id = Some(job.id);
            }
            runs.push(r);
        }
    }
    Ok(runs)
}
