//! Pages of the computing subsystem: your jobs, one job with live logs, and the cluster.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use modelyard_store::{JobFilter, JobRow, RankRow};
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

/// Job `id` if the caller owns it (or is an admin); anyone else gets the same 404 as for a job
/// that does not exist.
async fn visible_job(state: &AppState, auth: &Auth, id: i64) -> Result<JobRow, PageError> {
    state
        .store
        .job(id)
        .await
        .map_err(AppError::from)?
        .filter(|j| auth.is_admin() || auth.name() == Some(j.owner.as_str()))
        .ok_or_else(|| PageError(AppError::entry_not_found(format!("job {id} not found"))))
}

pub async fn job_page(
    State(state): State<AppState>,
    auth: Auth,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    if auth.name().is_none() {
        return Ok(to_login(&uri));
    }
    let job = visible_job(&state, &auth, id).await?;
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
    // A chart for every metric reported at more than one step.
    let mut steps: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, name, _) in &metrics {
        *steps.entry(name.as_str()).or_default() += 1;
    }
    let charts: Vec<Value> = steps
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(name, _)| {
            json!({
                "name": name,
                "url": format!(
                    "/jobs/{id}/metrics.svg?name={}",
                    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                ),
            })
        })
        .collect();
    let metrics: Vec<Value> = metrics
        .iter()
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
    Ok(render(
        &state,
        &auth,
        "job.html",
        json!({
            "job": job_json(&job), "finished": finished, "log": log, "metrics": metrics,
            "charts": charts, "node": node,
            "ranks": crate::master::jobs_api::ranks_json(&state, &job).await?,
        }),
    )?
    .into_response())
}

#[derive(serde::Deserialize)]
pub struct MetricChartQuery {
    pub name: String,
}

/// `GET /jobs/{id}/metrics.svg?name=loss`: one metric of the job's current attempt against
/// its steps.
pub async fn metric_chart(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<MetricChartQuery>,
) -> Result<Response, PageError> {
    auth.require().map_err(PageError)?;
    let job = visible_job(&state, &auth, id).await?;
    let points: Vec<(f64, f64)> = state
        .store
        .metrics(id, job.attempt)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .filter(|(_, name, _)| *name == q.name)
        .map(|(step, _, value)| (step as f64, value))
        .collect();
    let title = format!("job #{id} · {}", q.name);
    Ok(super::results::svg(crate::results::charts::curve(
        &title, &q.name, &points,
    )))
}

/// How far back the utilisation chart looks, and how many points each line has.
const UTILISATION_MINUTES: i64 = 60;
const UTILISATION_POINTS: i64 = 60;

/// `GET /cluster/utilization.svg`: each node's share of CPUs held by jobs over the last hour,
/// rebuilt from when its jobs started and finished.
pub async fn utilization_chart(State(state): State<AppState>) -> Result<Response, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let since = now - UTILISATION_MINUTES * 60_000;
    let nodes = state.store.nodes().await.map_err(AppError::from)?;
    let jobs = state
        .store
        .jobs_on_nodes_since(since, 100_000)
        .await
        .map_err(AppError::from)?;
    let ranks = state
        .store
        .ranks_of_jobs_since(since, 100_000)
        .await
        .map_err(AppError::from)?;
    let holdings = holdings(&jobs, &ranks, now);
    let series: Vec<(String, Vec<(f64, f64)>)> = nodes
        .iter()
        .map(|n| {
            let inv: Value = serde_json::from_str(&n.inventory).unwrap_or(Value::Null);
            let cpus = inv["cpus"].as_f64().unwrap_or(1.0).max(1.0);
            let held = holdings.get(n.id.as_str()).map_or(&[][..], Vec::as_slice);
            let points = occupancy(held, since, now, UTILISATION_POINTS, cpus);
            (n.name.clone(), points)
        })
        .collect();
    Ok(super::results::svg(crate::results::charts::timelines(
        "CPU held by jobs, per node",
        "CPUs in use",
        UTILISATION_MINUTES as f64,
        &series,
    )))
}

/// What each node held, by node id, as `(start, end, cpus)` of the jobs that ran there: a
/// single-node job on its node with the CPUs it asked for, each rank of a multi-node job on that
/// rank's node with the CPUs its part holds (over the job's run: ranks start and end together).
fn holdings<'a>(
    jobs: &'a [JobRow],
    ranks: &'a [RankRow],
    now: i64,
) -> HashMap<&'a str, Vec<(i64, i64, f64)>> {
    let mut parts_of: HashMap<(i64, i64), Vec<&RankRow>> = HashMap::new();
    for r in ranks {
        parts_of.entry((r.job_id, r.attempt)).or_default().push(r);
    }
    let mut by_node: HashMap<&str, Vec<(i64, i64, f64)>> = HashMap::new();
    for j in jobs {
        let Some(start) = j.started_at else { continue };
        let span = (start, j.finished_at.unwrap_or(now));
        let parts = parts_of.remove(&(j.id, j.attempt)).unwrap_or_default();
        if parts.is_empty() {
            let spec: Value = serde_json::from_str(&j.spec).unwrap_or(Value::Null);
            let need = spec["resources"]["cpus"].as_f64().unwrap_or(1.0);
            if let Some(node) = j.node_id.as_deref() {
                by_node
                    .entry(node)
                    .or_default()
                    .push((span.0, span.1, need));
            }
        }
        for r in parts {
            let held: Value = serde_json::from_str(&r.resources).unwrap_or(Value::Null);
            let need = held["cpus"].as_f64().unwrap_or(1.0);
            by_node
                .entry(r.node_id.as_str())
                .or_default()
                .push((span.0, span.1, need));
        }
    }
    by_node
}

/// The mean share of `cpus` held by `(start, end, cpus)` jobs in each of `buckets` equal
/// slices of `[since, now)` (milliseconds), as (minutes before `now` of the slice's middle,
/// share): a job shorter than a slice still shows, in proportion.
fn occupancy(
    held: &[(i64, i64, f64)],
    since: i64,
    now: i64,
    buckets: i64,
    cpus: f64,
) -> Vec<(f64, f64)> {
    (0..buckets)
        .map(|i| {
            let (b0, b1) = (
                since + (now - since) * i / buckets,
                since + (now - since) * (i + 1) / buckets,
            );
            let width = (b1 - b0).max(1) as f64;
            let used: f64 = held
                .iter()
                .map(|(a, b, c)| c * ((*b).min(b1) - (*a).max(b0)).max(0) as f64 / width)
                .sum();
            let mid = (b0 + b1) / 2;
            (
                (mid - now) as f64 / 60_000.0,
                (used / cpus.max(1.0)).min(1.0),
            )
        })
        .collect()
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
    let mut by_node = crate::master::jobs_api::jobs_by_node(&state).await?;
    let running: std::collections::HashSet<i64> = by_node.values().flatten().copied().collect();
    let queued = state.store.queued_jobs(200).await.map_err(AppError::from)?;
    let mut views = Vec::with_capacity(nodes.len());
    for n in &nodes {
        let inv: Value = serde_json::from_str(&n.inventory).unwrap_or(Value::Null);
        let jobs = by_node.remove(&n.id).unwrap_or_default();
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
        json!({ "nodes": nodes, "queue": queue, "running": running.len() }),
    )?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::{holdings, occupancy};
    use modelyard_store::{JobRow, RankRow};

    fn job(id: i64, node: &str, cpus: u32, span: (i64, Option<i64>)) -> JobRow {
        JobRow {
            id,
            owner: "alice".into(),
            kind: "command".into(),
            spec: format!(r#"{{"resources":{{"cpus":{cpus},"memory_mb":0,"gpus":0}}}}"#),
            state: "running".into(),
            attempt: 1,
            max_attempts: 3,
            node_id: Some(node.into()),
            cancel_requested: false,
            exit_code: None,
            reason: None,
            created_at: 0,
            assigned_at: Some(span.0),
            started_at: Some(span.0),
            finished_at: span.1,
            gpus: vec![],
            output_commit: None,
            prediction: None,
        }
    }

    fn rank(job: i64, rank: i64, node: &str, cpus: u32) -> RankRow {
        RankRow {
            job_id: job,
            attempt: 1,
            rank,
            node_id: node.into(),
            gpus: vec![],
            resources: format!(r#"{{"cpus":{cpus},"memory_mb":0,"gpus":1}}"#),
            state: "running".into(),
            exit_code: None,
            reason: None,
            port: None,
        }
    }

    #[test]
    fn a_multi_node_job_holds_cpus_on_every_node_it_runs_on() {
        // Job 1 on n0 alone; job 2 over n0 (rank 0, 3 CPUs) and n1 (rank 1, 2 CPUs), still
        // running; job 3's ranks belong to an older attempt and do not count.
        let jobs = [
            job(1, "n0", 4, (0, Some(10))),
            job(2, "n0", 5, (5, None)),
            job(3, "n2", 1, (0, Some(10))),
        ];
        let mut stale = rank(3, 1, "n1", 8);
        stale.attempt = 0;
        let ranks = [rank(2, 0, "n0", 3), rank(2, 1, "n1", 2), stale];
        let mut got = holdings(&jobs, &ranks, 100);
        for v in got.values_mut() {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        assert_eq!(got["n0"], [(0, 10, 4.0), (5, 100, 3.0)]);
        assert_eq!(got["n1"], [(5, 100, 2.0)]);
        assert_eq!(got["n2"], [(0, 10, 1.0)]);
    }

    #[test]
    fn occupancy_averages_what_jobs_held_over_each_slice() {
        // Four CPUs over 40 s in four slices: one 2-CPU job for the first 20 s, a 4-CPU job
        // from 25 s on (still running), and a 1-CPU job of 1 s inside the last slice.
        let held = [
            (0, 20_000, 2.0),
            (25_000, 40_000, 4.0),
            (35_000, 36_000, 1.0),
        ];
        let got: Vec<f64> = occupancy(&held, 0, 40_000, 4, 4.0)
            .iter()
            .map(|(_, v)| (v * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(got, [0.5, 0.5, 0.5, 1.0]);
        let x: Vec<f64> = occupancy(&held, 0, 40_000, 4, 4.0)
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(x, [-35.0 / 60.0, -25.0 / 60.0, -15.0 / 60.0, -5.0 / 60.0]);
    }
}
