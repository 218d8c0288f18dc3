//! Pages of the computing subsystem: your jobs, one job with live logs, and the cluster.

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use modelyard_store::JobFilter;
use serde_json::{json, Value};

use super::{render, PageError};
use crate::api::fmt_date;
use crate::auth::Auth;
use crate::error::AppError;
use crate::master::jobs_api::job_json;
use crate::state::AppState;

/// Pages that need a logged-in user send others to the log-in form, then back.
fn to_login(uri: &Uri) -> Response {
    let next =
        percent_encoding::utf8_percent_encode(uri.path(), percent_encoding::NON_ALPHANUMERIC);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

pub async fn jobs_page(
    State(state): State<AppState>,
    auth: Auth,
    uri: Uri,
) -> Result<Response, PageError> {
    let Some(user) = auth.name() else {
        return Ok(to_login(&uri));
    };
    let owner = if auth.is_admin() {
        None
    } else {
        Some(user.to_owned())
    };
    let jobs = state
        .store
        .jobs(&JobFilter {
            owner,
            state: None,
            limit: 200,
        })
        .await
        .map_err(AppError::from)?;
    let eta = if jobs.iter().any(|j| j.state == "queued") {
        crate::predict::queue_eta(&state).await
    } else {
        Default::default()
    };
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| crate::master::jobs_api::with_eta(job_json(j), &eta))
        .collect();
    Ok(render(&state, &auth, "jobs.html", json!({ "jobs": jobs }))?.into_response())
}

pub async fn job_page(
    State(state): State<AppState>,
    auth: Auth,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    let Some(user) = auth.name() else {
        return Ok(to_login(&uri));
    };
    let job = state
        .store
        .job(id)
        .await
        .map_err(AppError::from)?
        .filter(|j| auth.is_admin() || j.owner == user)
        .ok_or_else(|| PageError(AppError::entry_not_found(format!("job {id} not found"))))?;
    let finished = matches!(job.state.as_str(), "succeeded" | "failed" | "cancelled");
    // Finished jobs show their output here; running ones stream it into the page.
    let log: String = if finished {
        state
            .store
            .logs(id, job.attempt, -1)
            .await
            .map_err(AppError::from)?
            .iter()
            .map(|l| l.text.as_str())
            .collect()
    } else {
        String::new()
    };
    let metrics = state
        .store
        .metrics(id, job.attempt)
        .await
        .map_err(AppError::from)?;
    let metrics: Vec<Value> = metrics
        .into_iter()
        .map(|(step, name, value)| json!({"step": step, "name": name, "value": value}))
        .collect();
    let node = match &job.node_id {
        Some(n) => state
            .store
            .nodes()
            .await
            .map_err(AppError::from)?
            .into_iter()
            .find(|x| &x.id == n)
            .map(|x| x.name),
        None => None,
    };
    Ok(render(&state, &auth, "job.html", json!({
        "job": job_json(&job), "finished": finished, "log": log, "metrics": metrics, "node": node,
    }))?
    .into_response())
}

pub async fn cluster_page(
    State(state): State<AppState>,
    auth: Auth,
    uri: Uri,
) -> Result<Response, PageError> {
    if auth.name().is_none() {
        return Ok(to_login(&uri));
    }
    let nodes = state.store.nodes().await.map_err(AppError::from)?;
    let active = state.store.active_jobs().await.map_err(AppError::from)?;
    let queued = state.store.queued_jobs(200).await.map_err(AppError::from)?;
    let mut views = Vec::with_capacity(nodes.len());
    for n in &nodes {
        let inv: Value = serde_json::from_str(&n.inventory).unwrap_or(Value::Null);
        let jobs: Vec<i64> = active
            .iter()
            .filter(|j| j.node_id.as_deref() == Some(n.id.as_str()))
            .map(|j| j.id)
            .collect();
        let cached =
            crate::master::cache_view::cached_repos(&state, &auth, n.cache_json.as_deref()).await;
        views.push(json!({"name": n.name, "state": n.state, "cpus": inv["cpus"], "gpus": inv["gpus"].as_array().map(|g| g.len()).unwrap_or(0),
               "gflops": format!("{:.1}", inv["gflops"].as_f64().unwrap_or(0.0)), "commands": inv["allow_commands"],
               "jobs": jobs, "last_heartbeat": fmt_date(n.last_heartbeat), "cached": cached}));
    }
    let nodes = views;
    let eta = crate::predict::queue_eta(&state).await;
    let queue: Vec<Value> = queued
        .iter()
        .map(|j| {
            let (start, finish) = eta.get(&j.id).map_or((None, None), |(s, f)| {
                (Some(fmt_date(*s)), Some(fmt_date(*f)))
            });
            json!({"id": j.id, "owner": j.owner, "kind": j.kind, "created": fmt_date(j.created_at),
                   "predicted_s": crate::predict::stored(j).map(|p| p.reference_s),
                   "start": start, "finish": finish})
        })
        .collect();
    Ok(render(
        &state,
        &auth,
        "cluster.html",
        json!({ "nodes": nodes, "queue": queue, "running": active.len() }),
    )?
    .into_response())
}
