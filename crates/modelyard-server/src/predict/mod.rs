//! Runtime predictions in the hub: features of a job from its inputs' analyses and dataset
//! summaries, predictions for every kind of node when a job is submitted (stored with it), the
//! queue's estimated start and finish times, and learning from every finished job.

pub mod api;
pub mod features;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use modelyard_core::job::{JobKind, JobSpec};
use modelyard_core::protocol::Inventory;
use modelyard_predict::{Basis, Features, Node, Observation, Predictor, Structure, Work, Workload};
use modelyard_store::{JobRow, NodeRow};
use serde::{Deserialize, Serialize};

pub use features::{node_of, structure_of};

use crate::state::AppState;

/// Finished jobs the predictor learns from (the newest).
const KEEP_OBSERVATIONS: i64 = 5000;
/// How often the store is asked whether other replicas recorded new observations.
const REFRESH: Duration = Duration::from_secs(5);

/// What a command job may declare so that it can be predicted: the work it does with its model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadHint {
    #[serde(default)]
    pub work: Work,
    pub samples: f64,
    pub batch_size: Option<f64>,
    pub epochs: Option<f64>,
}

/// The prediction for one class of node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEstimate {
    pub class: String,
    /// Alive nodes of this class.
    pub nodes: Vec<String>,
    pub gflops: f64,
    pub seconds: f64,
    pub p10: f64,
    pub p90: f64,
    pub basis: Basis,
    pub observations: usize,
}

/// What is stored with a job at submission and served by `POST /api/predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPrediction {
    pub structure: Structure,
    pub workload: Workload,
    /// One estimate per class of alive node, fastest first.
    pub nodes: Vec<NodeEstimate>,
    /// Seconds on the node of median speed: what the scheduler plans with.
    pub reference_s: f64,
}

/// The learned predictor, rebuilt from the store's observations when they change.
#[derive(Default)]
pub struct Runtime {
    inner: Mutex<(Predictor, Option<(i64, Instant)>)>,
}

impl Runtime {
    /// Reloads the observations if another replica (or an earlier run) added some.
    async fn refresh(&self, state: &AppState) {
        {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if g.1.is_some_and(|(_, at)| at.elapsed() < REFRESH) {
                return;
            }
        }
        let count = match state.store.runtime_observation_count().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count runtime observations");
                return;
            }
        };
        let known = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .map(|(n, _)| n);
        if known == Some(count) {
            self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = Some((count, Instant::now()));
            return;
        }
        let rows = match state.store.runtime_observations(KEEP_OBSERVATIONS).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load runtime observations");
                return;
            }
        };
        let obs: Vec<Observation> = rows
            .iter()
            .filter_map(|r| {
                Some(Observation {
                    features: serde_json::from_str(&r.features).ok()?,
                    seconds: r.seconds,
                })
            })
            .collect();
        let n = obs.len();
        let predictor = tokio::task::spawn_blocking(move || Predictor::from_observations(obs))
            .await
            .unwrap_or_default();
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) =
            (predictor, Some((count, Instant::now())));
        tracing::debug!(observations = n, "runtime predictor refitted");
    }

    fn predict(&self, f: &Features) -> modelyard_predict::Prediction {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .predict(f)
    }

    fn invalidate(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1 = None;
    }
}

/// The structure of the model an evaluate (or hinted command) job runs: the analysis of its
/// `.onnx` (or other model) input.
async fn model_structure(
    state: &AppState,
    spec: &JobSpec,
) -> Result<(Structure, Option<u64>), String> {
    let wanted = spec
        .eval
        .as_ref()
        .and_then(|e| e.get("model_file"))
        .and_then(|v| v.as_str());
    let models: Vec<_> = spec.inputs.iter().filter(|i| i.role == "model").collect();
    let input = models
        .iter()
        .find(|i| wanted.is_some_and(|w| i.path == w))
        .or_else(|| models.iter().find(|i| i.path.ends_with(".onnx")))
        .or_else(|| {
            models.iter().find(|i| {
                [".safetensors", ".bin", ".pt", ".pth", ".ckpt"]
                    .iter()
                    .any(|e| i.path.ends_with(e))
            })
        })
        .ok_or("the job has no model file to predict from")?;
    let row = state
        .store
        .analysis(&input.sha256)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} has not been analysed yet", input.path))?;
    let f: modelyard_analyze::ModelFeatures = row
        .features
        .ok_or_else(|| format!("{} could not be analysed", input.path))
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))?;
    let batch = f
        .inputs
        .first()
        .and_then(|i| i.shape.as_ref())
        .and_then(|s| match s.first() {
            Some(modelyard_analyze::Dim::Fixed(b)) => Some(*b),
            _ => None,
        });
    Ok((structure_of(&f), batch))
}

/// Rows of the dataset split an evaluate job reads, from the dataset's summary, and whether its
/// samples are compressed images: image folders, or images kept as bytes in Parquet files.
async fn split_facts(
    state: &AppState,
    spec: &JobSpec,
    images: bool,
) -> Result<(u64, bool), String> {
    let source = spec
        .inputs
        .iter()
        .find(|i| i.role == "dataset")
        .map(|i| i.source.clone())
        .ok_or("the job has no dataset")?;
    let commit = source.rsplit_once('@').map(|(_, c)| c).unwrap_or_default();
    let split = spec
        .eval
        .as_ref()
        .and_then(|e| e.get("split"))
        .and_then(|v| v.as_str())
        .unwrap_or("test");
    let summary = state
        .store
        .dataset_summary(commit)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|s| s.summary)
        .ok_or("the dataset has not been summarised yet")?;
    let found = summary["splits"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == split);
    let rows = found
        .and_then(|s| s["rows"].as_u64())
        .ok_or_else(|| format!("the dataset has no split {split:?}"))?;
    let decode = match found.and_then(|s| s["format"].as_str()) {
        Some("image-folder") => true,
        Some("parquet") => images,
        _ => false,
    };
    Ok((rows, decode))
}

/// The structure and workload of a job, or why it cannot be predicted.
pub async fn job_features(
    state: &AppState,
    spec: &JobSpec,
    hint: Option<&WorkloadHint>,
) -> Result<(Structure, Workload), String> {
    if spec.kind == JobKind::Command && hint.is_none() {
        return Err("a command job is predicted only when it declares its `workload`".into());
    }
    let (structure, fixed_batch) = model_structure(state, spec).await?;
    let eval_usize = |k: &str| {
        spec.eval
            .as_ref()
            .and_then(|e| e.get(k))
            .and_then(|v| v.as_u64())
    };
    let workload = match (spec.kind, hint) {
        (JobKind::Evaluate, _) => {
            // As the evaluator picks it (see modelyard-eval's run.rs).
            let tabular = spec
                .eval
                .as_ref()
                .and_then(|e| e["task"].as_str())
                .is_some_and(|t| t.starts_with("tabular"));
            let (rows, decode) = split_facts(state, spec, !tabular).await?;
            let samples = eval_usize("limit").map_or(rows, |l| l.min(rows));
            let batch = match (fixed_batch, eval_usize("batch_size")) {
                (Some(1), Some(asked)) => asked,
                (Some(b), _) => b,
                (None, asked) => asked.unwrap_or(if tabular {
                    modelyard_eval::DEFAULT_ROW_BATCH as u64
                } else {
                    modelyard_eval::DEFAULT_IMAGE_BATCH as u64
                }),
            };
            Workload::evaluation(samples as f64, batch.max(1) as f64, decode)
        }
        (JobKind::Command, Some(h)) => Workload {
            work: h.work,
            samples: h.samples.max(0.0),
            batch_size: h.batch_size.unwrap_or(1.0).max(1.0),
            epochs: h.epochs.unwrap_or(1.0).max(1.0),
            setup: true,
            decode: false,
        },
        (JobKind::Command, None) => unreachable!("checked above"),
    };
    Ok((structure, workload))
}

/// The alive nodes that could run `spec`, grouped by class: (node features, node names).
fn node_classes(nodes: &[NodeRow], spec: &JobSpec) -> Vec<(Node, Vec<String>)> {
    let mut classes: BTreeMap<String, (Vec<f64>, Node, Vec<String>)> = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.state == "alive") {
        let Ok(inv) = serde_json::from_str::<Inventory>(&n.inventory) else {
            continue;
        };
        if spec.kind == JobKind::Command && !inv.allow_commands {
            continue;
        }
        // Evaluations run on the CPU; commands that ask for GPUs on the GPU.
        let node = node_of(&inv, spec.resources.gpus > 0);
        let e = classes
            .entry(node.class.clone())
            .or_insert_with(|| (Vec::new(), node.clone(), Vec::new()));
        e.0.push(node.gflops);
        e.2.push(n.name.clone());
    }
    classes
        .into_values()
        .map(|(mut gflops, mut node, names)| {
            gflops.sort_by(f64::total_cmp);
            node.gflops = gflops[gflops.len() / 2];
            (node, names)
        })
        .collect()
}

/// Predicts a job on every class of alive node.
pub async fn predict_spec(
    state: &AppState,
    spec: &JobSpec,
    hint: Option<&WorkloadHint>,
) -> Result<JobPrediction, String> {
    let (structure, workload) = job_features(state, spec, hint).await?;
    let nodes = state.store.nodes().await.map_err(|e| e.to_string())?;
    let classes = node_classes(&nodes, spec);
    if classes.is_empty() {
        return Err("no alive worker can run this job".into());
    }
    state.runtime.refresh(state).await;
    let mut estimates: Vec<NodeEstimate> = classes
        .into_iter()
        .map(|(node, names)| {
            let f = Features {
                structure: structure.clone(),
                workload: workload.clone(),
                node: node.clone(),
            };
            let p = state.runtime.predict(&f);
            NodeEstimate {
                class: node.class,
                nodes: names,
                gflops: node.gflops,
                seconds: p.seconds,
                p10: p.p10,
                p90: p.p90,
                basis: p.basis,
                observations: p.observations,
            }
        })
        .collect();
    estimates.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mut by_speed: Vec<f64> = estimates.iter().map(|e| e.seconds).collect();
    by_speed.sort_by(f64::total_cmp);
    let reference_s = by_speed[by_speed.len() / 2];
    Ok(JobPrediction {
        structure,
        workload,
        nodes: estimates,
        reference_s,
    })
}

/// Predicts a freshly submitted job and stores the prediction with it; a job that cannot be
/// predicted yet (analysis or summary still running) is predicted when the scheduler asks.
pub async fn predict_job(
    state: &AppState,
    job: &JobRow,
    hint: Option<&WorkloadHint>,
) -> Option<JobPrediction> {
    let spec = serde_json::from_str::<JobSpec>(&job.spec).ok()?;
    match predict_spec(state, &spec, hint).await {
        Ok(p) => {
            let json = serde_json::to_string(&p).unwrap_or_default();
            if let Err(e) = state.store.set_job_prediction(job.id, &json).await {
                tracing::warn!(job.id = job.id, error = %e, "cannot store the prediction");
            }
            Some(p)
        }
        Err(why) => {
            tracing::debug!(job.id = job.id, reason = %why, "job not predicted");
            None
        }
    }
}

/// How long a queued job that could not be predicted waits before the scheduler tries again
/// (its model may still be being analysed, or may never be analysable).
const RETRY_UNPREDICTED_MS: i64 = 10_000;

/// Queued jobs the scheduler could not predict, with when it may try again.
fn unpredicted() -> &'static std::sync::Mutex<std::collections::HashMap<i64, i64>> {
    static MAP: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<i64, i64>>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// [`predict_job`] for a queued job without a stored prediction, at most once per
/// `RETRY_UNPREDICTED_MS` per job rather than once per scheduling round.
pub async fn predict_queued(state: &AppState, job: &JobRow) -> Option<JobPrediction> {
    let now = modelyard_store::now_ms();
    let retry_at = unpredicted()
        .lock()
        .expect("the retry map is never poisoned")
        .get(&job.id)
        .copied();
    if retry_at.is_some_and(|t| now < t) {
        return None;
    }
    let p = predict_job(state, job, None).await;
    let mut map = unpredicted()
        .lock()
        .expect("the retry map is never poisoned");
    if p.is_some() {
        map.remove(&job.id);
    } else {
        // Entries of jobs that left the queue go once they are long past.
        map.retain(|_, t| now - *t < 60 * RETRY_UNPREDICTED_MS);
        map.insert(job.id, now + RETRY_UNPREDICTED_MS);
    }
    p
}

/// The stored prediction of a job.
pub fn stored(job: &JobRow) -> Option<JobPrediction> {
    job.prediction
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
}

/// Learns from a job that succeeded on `node`: its measured running time with the features it
/// ran with (for evaluations, the samples and batch size the evaluator reports).
pub async fn observe_finished(
    state: &AppState,
    job: &JobRow,
    node: &NodeRow,
    report: Option<&serde_json::Value>,
) {
    let Some(started) = job.started_at else {
        return;
    };
    let seconds = (modelyard_store::now_ms() - started) as f64 / 1000.0;
    let Ok(spec) = serde_json::from_str::<JobSpec>(&job.spec) else {
        return;
    };
    let Ok(inv) = serde_json::from_str::<Inventory>(&node.inventory) else {
        return;
    };
    let (structure, mut workload) = match stored(job) {
        Some(p) => (p.structure, p.workload),
        None => match job_features(state, &spec, None).await {
            Ok(sw) => sw,
            Err(why) => {
                tracing::debug!(job.id = job.id, reason = %why, "finished job not learned from");
                return;
            }
        },
    };
    if let Some(r) = report {
        if let (Some(s), Some(b)) = (r["samples"].as_f64(), r["batch_size"].as_f64()) {
            workload.samples = s;
            workload.batch_size = b.max(1.0);
        }
    }
    let features = Features {
        structure,
        workload,
        node: node_of(&inv, spec.resources.gpus > 0),
    };
    let json = match serde_json::to_string(&features) {
        Ok(j) => j,
        Err(_) => return,
    };
    match state
        .store
        .add_runtime_observation(job.id, &features.node.class, &json, seconds)
        .await
    {
        Ok(true) => {
            // Refit here, off the request path, rather than in the next prediction.
            state.runtime.invalidate();
            state.runtime.refresh(state).await;
            tracing::info!(job.id = job.id, seconds, class = %features.node.class, "runtime observed");
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(job.id = job.id, error = %e, "cannot store the runtime observation")
        }
    }
}

/// Estimated start and finish (ms since the epoch) of every queued job, and the expected finish
/// of running ones, from the stored predictions (see `modelyard_sched::eta`).
pub async fn queue_eta(state: &AppState) -> BTreeMap<i64, (i64, i64)> {
    let Ok(snap) = crate::master::scheduler::snapshot(state).await else {
        return BTreeMap::new();
    };
    let now = modelyard_store::now_ms();
    let etas = modelyard_sched::eta::queue_eta(&snap.pending, &snap.views, now);
    snap.pending
        .iter()
        .zip(etas)
        .filter_map(|(j, e)| {
            let e = e?;
            Some((
                j.id,
                (
                    now + (e.start_s * 1000.0) as i64,
                    now + (e.finish_s * 1000.0) as i64,
                ),
            ))
        })
        .collect()
}

/// Expected finish (ms since the epoch) of a running job, from its prediction.
pub fn expected_finish(job: &JobRow) -> Option<i64> {
    let p = stored(job)?;
    let since = job.started_at.or(job.assigned_at)?;
    Some(since + (p.reference_s * 1000.0) as i64)
}
