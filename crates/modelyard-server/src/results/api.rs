//! The results API: verified results, leaderboards, comparisons and contrast runs.

use axum::extract::{Path, Query, State};
use axum::Json;
use modelyard_core::RepoKind;
use modelyard_store::{ResultFilter, ResultRow};
use serde::Deserialize;
use serde_json::{json, Value};

use super::board::{board, visible, Board};
use super::compare::{compare, split_ref, Comparison};
use super::runs::{run, Run, RunsBody};
use crate::api::{fmt_date, readable};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn result_json(r: &ResultRow) -> Value {
    json!({
        "id": r.id, "job_id": r.job_id,
        "model": r.model_id.to_string(), "model_commit": r.model_commit, "model_sha256": r.model_sha256,
        "dataset": r.dataset_id.to_string(), "dataset_commit": r.dataset_commit,
        "split": r.split, "task": r.task, "samples": r.samples, "metrics": r.metrics,
        "latency_p50_ms": r.latency_p50_ms, "latency_p95_ms": r.latency_p95_ms,
        "throughput": r.throughput, "hardware": r.hardware, "verified": true,
        "created_at": fmt_date(r.created_at),
    })
}

#[derive(Deserialize, Default)]
pub struct ResultsQuery {
    pub model: Option<String>,
    pub dataset: Option<String>,
    pub split: Option<String>,
    pub task: Option<String>,
}

/// `GET /api/results?model=NS/NAME&dataset=NS/NAME&split=&task=`.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ResultsQuery>,
) -> AppResult<Json<Value>> {
    let mut f = ResultFilter {
        split: q.split.clone(),
        task: q.task.clone(),
        ..ResultFilter::default()
    };
    if let Some(m) = &q.model {
        let (ns, name, _) = split_ref(m)?;
        f.model_repo = Some(
            readable(&state, &auth, RepoKind::Model, ns, name)
                .await?
                .uid,
        );
    }
    if let Some(d) = &q.dataset {
        let (ns, name, _) = split_ref(d)?;
        f.dataset_repo = Some(
            readable(&state, &auth, RepoKind::Dataset, ns, name)
                .await?
                .uid,
        );
    }
    let rows = state.store.results(&f).await?;
    Ok(Json(Value::Array(
        rows.iter()
            .filter(|r| {
                visible(&auth, r.model_private, &r.model_owner)
                    && visible(&auth, r.dataset_private, &r.dataset_owner)
            })
            .map(result_json)
            .collect(),
    )))
}

/// `GET /api/results/{id}`: one result with its full evaluation report.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    let rows = state
        .store
        .results(&ResultFilter {
            id: Some(id),
            ..ResultFilter::default()
        })
        .await?;
    let r = rows
        .iter()
        .find(|r| r.id == id)
        .filter(|r| {
            visible(&auth, r.model_private, &r.model_owner)
                && visible(&auth, r.dataset_private, &r.dataset_owner)
        })
        .ok_or_else(|| AppError::entry_not_found(format!("result {id} not found")))?;
    let mut v = result_json(r);
    v["report"] = state.store.result_report(id).await?.unwrap_or(Value::Null);
    Ok(Json(v))
}

/// `GET /api/leaderboards`: every (dataset, split, task) with verified results.
pub async fn boards(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    let rows = state.store.boards().await?;
    Ok(Json(Value::Array(
        rows.iter()
            .filter(|b| visible(&auth, b.dataset_private, &b.dataset_owner))
            .map(|b| {
                json!({"dataset": b.dataset_id.to_string(), "split": b.split, "task": b.task,
                       "results": b.results, "models": b.models})
            })
            .collect(),
    )))
}

#[derive(Deserialize, Default)]
pub struct BoardQuery {
    pub split: Option<String>,
    pub task: Option<String>,
    pub metric: Option<String>,
}

/// Loads the leaderboard of a dataset the caller may read.
pub async fn load_board(
    state: &AppState,
    auth: &Auth,
    ns: &str,
    name: &str,
    q: &BoardQuery,
) -> AppResult<Board> {
    let dataset = readable(state, auth, RepoKind::Dataset, ns, name).await?;
    board(
        state,
        auth,
        &dataset,
        q.split.as_deref(),
        q.task.as_deref(),
        q.metric.as_deref(),
    )
    .await
}

/// `GET /api/leaderboards/{ns}/{name}?split=&task=&metric=`.
pub async fn leaderboard(
    State(state): State<AppState>,
    auth: Auth,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BoardQuery>,
) -> AppResult<Json<Board>> {
    Ok(Json(load_board(&state, &auth, &ns, &name, &q).await?))
}

#[derive(Deserialize, Default)]
pub struct CompareQuery {
    /// Comma-separated `ns/name[@rev]`.
    pub models: Option<String>,
    /// Comma-separated `ns/name`.
    pub datasets: Option<String>,
    /// Set by the compare page's form after a contrast run: how many evaluations it queued.
    pub submitted: Option<usize>,
}

pub fn list_param(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `GET /api/compare?models=A,B,C&datasets=X,Y`.
pub async fn compare_models(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<CompareQuery>,
) -> AppResult<Json<Comparison>> {
    let models = list_param(&q.models);
    let datasets = list_param(&q.datasets);
    Ok(Json(compare(&state, &auth, &models, &datasets).await?))
}

/// `POST /api/compare/runs`: `{models, datasets, split?, task?, eval?}`.
pub async fn contrast_runs(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<RunsBody>,
) -> AppResult<Json<Vec<Run>>> {
    Ok(Json(run(&state, &auth, &body).await?))
}
