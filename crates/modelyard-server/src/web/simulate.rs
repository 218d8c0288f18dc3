//! The scheduling simulator in the browser: a job trace kept as a file of a dataset repository
//! is replayed through every policy on a simulated cluster, with the summary table and the job
//! completion time CDF chart; the same code as `modelyard simulate` and the live master.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use modelyard_core::{RepoKind, RepoPath};
use modelyard_sched::sim::{self, cluster::ClusterSpec, report, trace, SimConfig};
use modelyard_sched::{GaConfig, PolicyKind, PolicyOptions};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use super::{render, PageError};
use crate::api::{readable, resolve};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Jobs one page may replay (the CLI has no limit); a few seconds of one core in a release build.
const MAX_JOBS: usize = 5_000;
/// Rows read from a trace before the page gives up (the jobs are sorted by submission first).
const MAX_TRACE_ROWS: usize = 500_000;

/// The form: which trace, and the simulated cluster. Empty fields take their defaults.
#[derive(Deserialize, Default, Debug)]
pub struct SimQuery {
    /// `namespace/name` of a dataset repository.
    #[serde(default)]
    pub trace: String,
    /// The trace's path in the repository (main branch).
    #[serde(default)]
    pub file: String,
    #[serde(default)]
    pub jobs: String,
    #[serde(default)]
    pub nodes: String,
    #[serde(default)]
    pub gpus_per_node: String,
    #[serde(default)]
    pub sigma: String,
    #[serde(default)]
    pub seed: String,
}

/// The validated settings of one replay.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    jobs: usize,
    nodes: usize,
    gpus_per_node: u32,
    sigma: f64,
    seed: u64,
}

fn field<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    value: &str,
    name: &str,
    default: T,
    (lo, hi): (T, T),
) -> AppResult<T> {
    let v = match value.trim() {
        "" => default,
        s => s
            .parse()
            .map_err(|_| AppError::bad_request(format!("{name} must be a number, not {s:?}")))?,
    };
    if !(lo <= v && v <= hi) {
        return Err(AppError::bad_request(format!(
            "{name} must be between {lo} and {hi}"
        )));
    }
    Ok(v)
}

impl SimQuery {
    fn settings(&self) -> AppResult<Settings> {
        Ok(Settings {
            jobs: field(&self.jobs, "jobs", 1_000, (1, MAX_JOBS))?,
            nodes: field(&self.nodes, "nodes", 16, (1, 500))?,
            gpus_per_node: field(&self.gpus_per_node, "GPUs per node", 8, (1, 64))?,
            sigma: field(&self.sigma, "prediction error σ", 0.5, (0.0, 3.0))?,
            seed: field(&self.seed, "seed", 1, (0, u64::MAX))?,
        })
    }
}

/// One replay's numbers and chart.
struct Replay {
    /// Jobs replayed (the trace may have fewer than asked for).
    jobs: usize,
    gpus: u64,
    rows: Vec<report::Summary>,
    svg: String,
}

/// Replays by trace content and settings: the table and its chart are one request apart.
fn replays() -> &'static moka::sync::Cache<String, Arc<Replay>> {
    static CACHE: OnceLock<moka::sync::Cache<String, Arc<Replay>>> = OnceLock::new();
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(32)
            .time_to_idle(Duration::from_secs(3600))
            .build()
    })
}

/// One replay at a time per server: they hold a core for seconds.
fn running() -> &'static tokio::sync::Semaphore {
    static GATE: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    GATE.get_or_init(|| tokio::sync::Semaphore::new(1))
}

/// Finds the trace the caller may read, then answers from the cache or replays it.
async fn replay(state: &AppState, auth: &Auth, q: &SimQuery) -> AppResult<Arc<Replay>> {
    let settings = q.settings()?;
    let (ns, name) = q.trace.trim().split_once('/').ok_or_else(|| {
        AppError::bad_request("name the trace's dataset repository as namespace/name")
    })?;
    let repo = readable(state, auth, RepoKind::Dataset, ns, name).await?;
    let commit = resolve(state, &repo, "main").await?;
    let path = RepoPath::parse(q.file.trim())?;
    let entry = state
        .store
        .entry(&commit, path.as_str())
        .await?
        .ok_or_else(|| AppError::entry_not_found(format!("{path} is not in {} (main)", repo.id)))?;
    let key = format!("{}|{settings:?}", entry.sha256);
    if let Some(r) = replays().get(&key) {
        return Ok(r);
    }
    let _permit = running()
        .acquire()
        .await
        .map_err(|_| AppError::internal("the simulator is shutting down"))?;
    if let Some(r) = replays().get(&key) {
        return Ok(r);
    }
    let jobs = read_trace(state, &entry.sha256, &path).await?;
    let r = tokio::task::spawn_blocking(move || run(jobs, &settings))
        .await
        .map_err(|e| AppError::internal(format!("the simulation failed: {e}")))??;
    let r = Arc::new(r);
    replays().insert(key, r.clone());
    Ok(r)
}

/// Streams the blob line by line into the trace reader; only parsed jobs are kept.
async fn read_trace(
    state: &AppState,
    sha256: &str,
    path: &RepoPath,
) -> AppResult<Vec<trace::TraceJob>> {
    let sha = modelyard_blob::Sha256::parse(sha256)
        .map_err(|e| AppError::internal(format!("stored hash {sha256}: {e}")))?;
    let stream = state
        .blobs
        .get(&sha, None)
        .await
        .map_err(|e| AppError::internal(e.to_string()))?;
    let mut lines =
        tokio_util::io::StreamReader::new(stream.map_err(std::io::Error::other)).lines();
    let bad = |e: trace::TraceError| AppError::bad_request(format!("{path}: {e}"));
    let io = |e: std::io::Error| AppError::bad_request(format!("{path}: {e}"));
    let header = lines.next_line().await.map_err(io)?.unwrap_or_default();
    let mut reader = trace::TraceReader::new(&header).map_err(bad)?;
    while let Some(line) = lines.next_line().await.map_err(io)? {
        reader.push(&line).map_err(bad)?;
        if reader.len() > MAX_TRACE_ROWS {
            return Err(AppError::bad_request(format!(
                "{path} has more than {MAX_TRACE_ROWS} jobs; replay it with `modelyard simulate`"
            )));
        }
    }
    if reader.is_empty() {
        return Err(AppError::bad_request(format!("{path} has no jobs")));
    }
    Ok(reader.finish())
}

/// Every policy on the same jobs and cluster, as `modelyard simulate --policy all` does.
fn run(jobs: Vec<trace::TraceJob>, s: &Settings) -> AppResult<Replay> {
    let t = trace::first_n(jobs, Some(s.jobs));
    let cfg = SimConfig {
        cluster: ClusterSpec::uniform(s.nodes, s.gpus_per_node),
        datasets: Default::default(),
        error_sigma: s.sigma,
        seed: s.seed,
    };
    let opts = PolicyOptions {
        ga: GaConfig {
            seed: s.seed,
            ..GaConfig::default()
        },
        delay: Default::default(),
    };
    let jobs = sim::prepare(&t, &cfg);
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for kind in PolicyKind::ALL {
        let (summary, jct) = sim::run_policy(&jobs, &cfg, kind, &opts);
        rows.push(summary);
        curves.push((kind.name().to_owned(), jct));
    }
    let svg = sim::svg::jct_cdf_svg(&curves).map_err(AppError::internal)?;
    Ok(Replay {
        jobs: jobs.len(),
        gpus: cfg.cluster.total_gpus(),
        rows,
        svg,
    })
}

/// `GET /cluster/simulate`: the form, and with a trace named, the replay's table and chart.
pub async fn simulate_page(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SimQuery>,
) -> Result<Response, PageError> {
    let mut ctx = json!({ "q": {
        "trace": q.trace, "file": q.file, "jobs": q.jobs, "nodes": q.nodes,
        "gpus_per_node": q.gpus_per_node, "sigma": q.sigma, "seed": q.seed,
    }, "max_jobs": MAX_JOBS });
    if q.trace.trim().is_empty() {
        return Ok(render(&state, &auth, "simulate.html", ctx)?.into_response());
    }
    match replay(&state, &auth, &q).await {
        Ok(r) => {
            let chart = super::browse::query_string(&[
                ("trace", q.trace.trim()),
                ("file", q.file.trim()),
                ("jobs", q.jobs.trim()),
                ("nodes", q.nodes.trim()),
                ("gpus_per_node", q.gpus_per_node.trim()),
                ("sigma", q.sigma.trim()),
                ("seed", q.seed.trim()),
            ]);
            let fifo = r
                .rows
                .iter()
                .find(|s| s.policy == "fifo")
                .map(|s| s.mean_jct_s);
            let rows: Vec<_> = r
                .rows
                .iter()
                .map(|s| {
                    json!({
                        "summary": s,
                        "vs_fifo": fifo.filter(|f| *f > 0.0).map(|f| s.mean_jct_s / f),
                    })
                })
                .collect();
            ctx["result"] = json!({
                "jobs": r.jobs, "gpus": r.gpus, "rows": rows,
                "chart": format!("/cluster/simulate.svg?{chart}"),
            });
            Ok(render(&state, &auth, "simulate.html", ctx)?.into_response())
        }
        // A trace that cannot be read or settings out of range: the form again, with why.
        Err(e) if e.status.is_client_error() => {
            ctx["error"] = json!(e.message);
            let page = render(&state, &auth, "simulate.html", ctx)?;
            Ok((e.status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /cluster/simulate.svg`: the replay's job completion time CDF, one curve per policy.
pub async fn simulate_chart(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SimQuery>,
) -> Result<Response, PageError> {
    let r = replay(&state, &auth, &q).await?;
    Ok(super::results::svg(r.svg.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn settings_default_and_refuse_out_of_range() {
        let q = SimQuery::default();
        assert_eq!(
            q.settings().unwrap(),
            Settings {
                jobs: 1000,
                nodes: 16,
                gpus_per_node: 8,
                sigma: 0.5,
                seed: 1
            }
        );
        let bad = |q: SimQuery| q.settings().unwrap_err().message;
        assert_eq!(
            bad(SimQuery {
                jobs: "6000".into(),
                ..Default::default()
            }),
            "jobs must be between 1 and 5000"
        );
        assert_eq!(
            bad(SimQuery {
                sigma: "lots".into(),
                ..Default::default()
            }),
            "prediction error σ must be a number, not \"lots\""
        );
        assert_eq!(
            StatusCode::BAD_REQUEST,
            SimQuery {
                nodes: "0".into(),
                ..Default::default()
            }
            .settings()
            .unwrap_err()
            .status
        );
    }
}
