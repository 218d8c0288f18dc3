//! The job API for users: submit (pinned to commit ids), list, get, cancel, logs (with live
//! follow over server-sent events), and the node list.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use modelyard_core::job::{JobInput, JobKind, JobOutput, JobSpec, Resources};
use modelyard_core::RepoKind;
use modelyard_store::{JobFilter, JobRow};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{fmt_date, readable, resolve, writable};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

#[derive(Deserialize, Default, Clone)]
pub struct SubmitBody {
    pub kind: Option<String>,
    pub command: Option<String>,
    /// `ns/name[@rev]` of a model repo whose files become inputs under `model/`.
    pub model: Option<String>,
    /// `ns/name[@rev]` of a dataset repo whose files become inputs under `dataset/`.
    pub dataset: Option<String>,
    pub eval: Option<Value>,
    pub resources: Option<Resources>,
    pub timeout_s: Option<u64>,
    pub max_attempts: Option<i64>,
    /// For command jobs: a model repo branch that receives the job's output files.
    pub output: Option<JobOutput>,
    /// For command jobs: the work done with the model, so the job can be predicted.
    pub workload: Option<crate::predict::WorkloadHint>,
}

/// Checks at submission that the caller may write the output repo and that its branch exists.
async fn check_output(state: &AppState, auth: &Auth, output: &JobOutput) -> AppResult<()> {
    let (ns, name) = output.repo.split_once('/').ok_or_else(|| {
        AppError::bad_request(format!("output repo {:?} must be NS/NAME", output.repo))
    })?;
    let repo = writable(state, auth, RepoKind::Model, ns, name).await?;
    if state
        .store
        .branch_head(&repo.uid, &output.branch)
        .await?
        .is_none()
    {
        return Err(AppError::bad_request(format!(
            "output branch {:?} does not exist in {}",
            output.branch, repo.id
        )));
    }
    Ok(())
}

/// Pins `ns/name[@rev]` to a commit and lists its files as job inputs.
async fn inputs_of(
    state: &AppState,
    auth: &Auth,
    kind: RepoKind,
    spec: &str,
    role: &str,
) -> AppResult<Vec<JobInput>> {
    let (id, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let (ns, name) = id
        .split_once('/')
        .ok_or_else(|| AppError::bad_request(format!("{spec:?} must be NS/NAME[@REV]")))?;
    let repo = readable(state, auth, kind, ns, name).await?;
    let commit = resolve(state, &repo, rev).await?;
    let files = state.store.tree(&commit, "").await?;
    Ok(files
        .into_iter()
        .filter(|f| f.path != ".gitattributes")
        .map(|f| JobInput {
            role: role.into(),
            source: format!("{}@{commit}", repo.id),
            path: f.path,
            sha256: f.sha256,
            size: f.size as u64,
        })
        .collect())
}

pub fn job_json(j: &JobRow) -> Value {
    let spec: Value = serde_json::from_str(&j.spec).unwrap_or(Value::Null);
    json!({
        "id": j.id, "owner": j.owner, "kind": j.kind, "state": j.state, "attempt": j.attempt,
        "max_attempts": j.max_attempts, "node_id": j.node_id, "exit_code": j.exit_code, "reason": j.reason,
        "cancel_requested": j.cancel_requested,
        "gpus": j.gpus,
        "output_commit": j.output_commit,
        "created_at": fmt_date(j.created_at), "assigned_at": j.assigned_at.map(fmt_date),
        "started_at": j.started_at.map(fmt_date), "finished_at": j.finished_at.map(fmt_date),
        "spec": spec,
        "prediction": j.prediction.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
        "expected_finish_at": matches!(j.state.as_str(), "assigned" | "running")
            .then(|| crate::predict::expected_finish(j)).flatten().map(fmt_date),
    })
}

/// Adds the estimated start and finish of queued jobs to their JSON.
pub fn with_eta(mut v: Value, eta: &std::collections::BTreeMap<i64, (i64, i64)>) -> Value {
    if let Some((start, finish)) = v["id"].as_i64().and_then(|id| eta.get(&id)) {
        v["estimated_start_at"] = json!(fmt_date(*start));
        v["expected_finish_at"] = json!(fmt_date(*finish));
    }
    v
}

/// `POST /api/jobs`.
pub async fn submit(
    State(state): State<AppState>,
    auth: Auth,
    Json(b): Json<SubmitBody>,
) -> AppResult<Json<Value>> {
    let job = submit_job(&state, &auth, &b).await?;
    Ok(Json(job_json(&job)))
}

/// Checks a submission, pins its inputs to commits and queues it, predicted where it can be.
pub async fn submit_job(state: &AppState, auth: &Auth, b: &SubmitBody) -> AppResult<JobRow> {
    let caller = auth.require_write()?.clone();
    let (spec, max_attempts) = job_spec(state, auth, b).await?;
    let spec_json = serde_json::to_string(&spec).map_err(|e| AppError::internal(e.to_string()))?;
    let mut job = state
        .store
        .create_job(&caller.name, spec.kind.as_str(), &spec_json, max_attempts)
        .await?;
    if let Some(p) = crate::predict::predict_job(state, &job, b.workload.as_ref()).await {
        job.prediction = serde_json::to_string(&p).ok();
    }
    tracing::info!(job.id = job.id, kind = spec.kind.as_str(), user = %caller.name, "job submitted");
    state.master.wake_scheduler();
    Ok(job)
}

/// Checks a submission and builds its spec, inputs pinned to commits; and its attempts. Needs
/// read access to the inputs only: submitting (not predicting) also needs a write token.
pub async fn job_spec(state: &AppState, auth: &Auth, b: &SubmitBody) -> AppResult<(JobSpec, i64)> {
    let kind: JobKind = b
        .kind
        .as_deref()
        .unwrap_or(if b.command.is_some() {
            "command"
        } else {
            "evaluate"
        })
        .parse()?;
    if kind == JobKind::Command && b.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(AppError::bad_request(
            "a command job needs a non-empty `command`",
        ));
    }
    if kind == JobKind::Evaluate && (b.model.is_none() || b.dataset.is_none()) {
        return Err(AppError::bad_request(
            "an evaluate job needs `model` and `dataset`",
        ));
    }
    if let Some(output) = &b.output {
        if kind != JobKind::Command {
            return Err(AppError::bad_request(
                "only command jobs can commit their outputs",
            ));
        }
        check_output(state, auth, output).await?;
    }
    let mut inputs = Vec::new();
    if let Some(m) = &b.model {
        inputs.extend(inputs_of(state, auth, RepoKind::Model, m, "model").await?);
    }
    if let Some(d) = &b.dataset {
        inputs.extend(inputs_of(state, auth, RepoKind::Dataset, d, "dataset").await?);
    }
    let resources = b.resources.unwrap_or(Resources {
        cpus: 1,
        memory_mb: 0,
        gpus: 0,
    });
    if resources.cpus == 0 {
        return Err(AppError::bad_request("a job needs at least one CPU"));
    }
    let spec = JobSpec {
        kind,
        command: b.command.clone(),
        eval: b.eval.clone(),
        inputs,
        resources,
        timeout_s: b.timeout_s.unwrap_or(3600).clamp(1, 7 * 24 * 3600),
        output: b.output.clone(),
    };
    if b.workload.is_some() && kind != JobKind::Command {
        return Err(AppError::bad_request(
            "`workload` describes command jobs; evaluations are predicted from their dataset",
        ));
    }
    Ok((spec, b.max_attempts.unwrap_or(3).clamp(1, 20)))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    pub state: Option<String>,
    /// Admins: every user's jobs.
    pub all: Option<bool>,
    pub limit: Option<i64>,
}

/// `GET /api/jobs`: the caller's jobs, newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> AppResult<Json<Value>> {
    let caller = auth.require()?;
    let owner = if caller.is_admin && q.all.unwrap_or(false) {
        None
    } else {
        Some(caller.name.clone())
    };
    let jobs = state
        .store
        .jobs(&JobFilter {
            owner,
            state: q.state.clone(),
            limit: q.limit.unwrap_or(100),
        })
        .await?;
    let eta = if jobs.iter().any(|j| j.state == "queued") {
        crate::predict::queue_eta(&state).await
    } else {
        Default::default()
    };
    Ok(Json(Value::Array(
        jobs.iter().map(|j| with_eta(job_json(j), &eta)).collect(),
    )))
}

async fn visible_job(state: &AppState, auth: &Auth, id: i64) -> AppResult<JobRow> {
    let caller = auth.require()?;
    match state.store.job(id).await? {
        Some(j) if caller.is_admin || j.owner == caller.name => Ok(j),
        _ => Err(AppError::entry_not_found(format!("job {id} not found"))),
    }
}

/// `GET /api/jobs/{id}`, with the latest attempt's metrics.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    let job = visible_job(&state, &auth, id).await?;
    let metrics = state.store.metrics(id, job.attempt).await?;
    let mut v = job_json(&job);
    v["ranks"] = ranks_json(&state, &job).await?;
    if job.state == "queued" {
        v = with_eta(v, &crate::predict::queue_eta(&state).await);
    }
    v["metrics"] = Value::Array(
        metrics
            .into_iter()
            .map(|(step, name, value)| json!({"step": step, "name": name, "value": value}))
            .collect(),
    );
    Ok(Json(v))
}

/// The ranks of a multi-node job's current attempt, with their nodes' names: `[]` for a job
/// on one node.
pub async fn ranks_json(state: &AppState, job: &JobRow) -> AppResult<Value> {
    let ranks = state.store.gang_ranks(job.id, job.attempt).await?;
    if ranks.is_empty() {
        return Ok(json!([]));
    }
    let nodes = state.store.nodes().await?;
    let name = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.to_owned(), |n| n.name.clone())
    };
    Ok(Value::Array(
        ranks
            .iter()
            .map(|r| {
                json!({"rank": r.rank, "node": name(&r.node_id), "gpus": r.gpus,
                       "state": r.state, "exit_code": r.exit_code, "reason": r.reason})
            })
            .collect(),
    ))
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> AppResult<Json<Value>> {
    auth.require_write()?;
    visible_job(&state, &auth, id).await?;
    let job = state
        .store
        .cancel_job(id)
        .await?
        .ok_or_else(|| AppError::conflict(format!("job {id} has already finished")))?;
    if let Some(node) = &job.node_id {
        state.master.wake_node(node);
    }
    tracing::info!(job.id = id, "job cancel requested");
    Ok(Json(job_json(&job)))
}

#[derive(Deserialize, Default)]
pub struct LogQuery {
    pub follow: Option<bool>,
    pub attempt: Option<i64>,
}

/// `GET /api/jobs/{id}/logs`: output of the latest attempt as JSON, or with `follow=true` as
/// server-sent events (`log` events, then one `end` event with the final state).
pub async fn logs(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> AppResult<Response> {
    let job = visible_job(&state, &auth, id).await?;
    if !q.follow.unwrap_or(false) {
        let attempt = q.attempt.unwrap_or(job.attempt);
        let rows = state.store.logs(id, attempt, -1).await?;
        let items: Vec<Value> = rows
            .iter()
            .map(
                |r| json!({"attempt": r.attempt, "seq": r.seq, "stream": r.stream, "text": r.text}),
            )
            .collect();
        return Ok(Json(Value::Array(items)).into_response());
    }
    Ok(Sse::new(follow(state, id))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn follow(state: AppState, id: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(
        (state, -1i64, 0i64, false),
        move |(state, mut after, mut attempt, done)| async move {
            if done {
                return None;
            }
            loop {
                let Ok(Some(job)) = state.store.job(id).await else {
                    return Some((
                        Ok(Event::default()
                            .event("end")
                            .data("{\"state\":\"unknown\"}")),
                        (state, after, attempt, true),
                    ));
                };
                if job.attempt != attempt {
                    attempt = job.attempt;
                    after = -1;
                }
                let rows = state
                    .store
                    .logs(id, attempt, after)
                    .await
                    .unwrap_or_default();
                if !rows.is_empty() {
                    after = rows.last().map(|r| r.seq).unwrap_or(after);
                    let data = rows
                    .iter()
                    .map(|r| json!({"attempt": r.attempt, "seq": r.seq, "stream": r.stream, "text": r.text}).to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                    return Some((
                        Ok(Event::default().event("log").data(data)),
                        (state, after, attempt, false),
                    ));
                }
                if job.state == "succeeded" || job.state == "failed" || job.state == "cancelled" {
                    let data = json!({"state": job.state, "exit_code": job.exit_code, "reason": job.reason}).to_string();
                    return Some((
                        Ok(Event::default().event("end").data(data)),
                        (state, after, attempt, true),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    )
}

/// The assigned or running jobs on each node (by node id), multi-node jobs on every node
/// that holds an unfinished rank of them.
pub async fn jobs_by_node(
    state: &AppState,
) -> AppResult<std::collections::HashMap<String, Vec<i64>>> {
    let mut by_node: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for j in state.store.active_jobs().await? {
        if let Some(n) = j.node_id {
            by_node.entry(n).or_default().push(j.id);
        }
    }
    for r in state.store.active_ranks().await? {
        let jobs = by_node.entry(r.node_id).or_default();
        if !jobs.contains(&r.job_id) {
            jobs.push(r.job_id);
        }
    }
    for jobs in by_node.values_mut() {
        jobs.sort_unstable();
    }
    Ok(by_node)
}

/// `GET /api/cluster/nodes`.
pub async fn nodes(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    auth.require()?;
    let nodes = state.store.nodes().await?;
    let mut by_node = jobs_by_node(&state).await?;
    let mut items: Vec<Value> = Vec::with_capacity(nodes.len());
    for n in &nodes {
        let inv: Value = serde_json::from_str(&n.inventory).unwrap_or(Value::Null);
        let jobs = by_node.remove(&n.id).unwrap_or_default();
        let cached = super::cache_view::cached_repos(&state, &auth, n.cache_json.as_deref()).await;
        items.push(json!({"id": n.id, "name": n.name, "state": n.state, "inventory": inv,
               "last_heartbeat": fmt_date(n.last_heartbeat), "registered_at": fmt_date(n.registered_at),
               "free": n.free_json.as_deref().and_then(|f| serde_json::from_str::<Value>(f).ok()),
               "cache": n.cache_json.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()),
               "cached": cached,
               "jobs": jobs}));
    }
    Ok(Json(Value::Array(items)))
}
