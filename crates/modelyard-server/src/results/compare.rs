//! Side-by-side comparison of models: their structure, and their verified metrics and runtime
//! on every dataset they were evaluated on.

use std::collections::{BTreeMap, HashMap};

use modelyard_core::RepoKind;
use modelyard_eval::Task;
use modelyard_store::ResultFilter;
use serde::Serialize;

use super::board::{best_per_model, counts, higher_is_better, visible};
use crate::analysis::targets;
use crate::api::{readable, resolve};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One compared model at the revision asked for.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub id: String,
    pub commit: String,
    /// The analysed model file, with its structure when the analysis is done.
    pub file: Option<String>,
    pub format: Option<String>,
    pub parameters: Option<u64>,
    pub macs: Option<u64>,
    pub depth: Option<u64>,
    pub op_categories: BTreeMap<String, u64>,
    pub pipeline_tag: Option<String>,
}

/// One model's verified result on a board.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub value: f64,
    pub metrics: BTreeMap<String, f64>,
    pub latency_p50_ms: f64,
    pub throughput: f64,
    pub commit: String,
    pub result_id: i64,
}

/// One (dataset, split, task) with a value per compared model (`None`: not evaluated).
#[derive(Debug, Clone, Serialize)]
pub struct CompareBoard {
    pub dataset: String,
    pub split: String,
    pub task: String,
    pub metric: String,
    pub higher_is_better: bool,
    /// Every compared model has a result here.
    pub shared: bool,
    pub values: Vec<Option<Cell>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub models: Vec<ModelSummary>,
    pub boards: Vec<CompareBoard>,
}

/// Parses `ns/name[@rev]`.
pub fn split_ref(s: &str) -> AppResult<(&str, &str, &str)> {
    let (id, rev) = s.split_once('@').unwrap_or((s, "main"));
    let (ns, name) = id
        .split_once('/')
        .ok_or_else(|| AppError::bad_request(format!("{s:?} must be NS/NAME[@REV]")))?;
    Ok((ns, name, rev))
}

/// Compares `models` (each `ns/name[@rev]`); `datasets` (`ns/name`) narrows the boards.
pub async fn compare(
    state: &AppState,
    auth: &Auth,
    models: &[String],
    datasets: &[String],
) -> AppResult<Comparison> {
    if models.is_empty() || models.len() > 20 {
        return Err(AppError::bad_request("compare between 1 and 20 models"));
    }
    let mut summaries = Vec::new();
    let mut uids = Vec::new();
    for m in models {
        let (ns, name, rev) = split_ref(m)?;
        let repo = readable(state, auth, RepoKind::Model, ns, name).await?;
        let commit = resolve(state, &repo, rev).await?;
        let tree = state.store.tree(&commit, "").await?;
        let mut summary = ModelSummary {
            id: repo.id.to_string(),
            commit: commit.clone(),
            file: None,
            format: None,
            parameters: None,
            macs: None,
            depth: None,
            op_categories: BTreeMap::new(),
            pipeline_tag: repo.pipeline_tag.clone(),
        };
        for t in targets(&tree) {
            summary.file.get_or_insert(t.path.clone());
            let Some(a) = state.store.analysis(&t.key).await? else {
                continue;
            };
            let Some(f) = a.features else { continue };
            summary.file = Some(t.path.clone());
            summary.format = a.format.clone();
            (summary.parameters, summary.macs) = counts(&f);
            summary.depth = f.get("depth").and_then(|v| v.as_u64());
            summary.op_categories =
                serde_json::from_value(f["op_categories"].clone()).unwrap_or_default();
            break;
        }
        summaries.push(summary);
        uids.push(repo.uid);
    }
    let mut wanted_datasets = Vec::new();
    for d in datasets {
        let (ns, name, _) = split_ref(d)?;
        wanted_datasets.push(
            readable(state, auth, RepoKind::Dataset, ns, name)
                .await?
                .uid,
        );
    }
    // Every result of every compared model, grouped by board.
    let mut grouped: BTreeMap<(String, String, String), Vec<modelyard_store::ResultRow>> =
        BTreeMap::new();
    let mut names: HashMap<String, String> = HashMap::new();
    for uid in &uids {
        let rows = state
            .store
            .results(&ResultFilter {
                model_repo: Some(uid.clone()),
                ..ResultFilter::default()
            })
            .await?;
        for r in rows {
            if !visible(auth, r.dataset_private, &r.dataset_owner)
                || (!wanted_datasets.is_empty() && !wanted_datasets.contains(&r.dataset_repo))
            {
                continue;
            }
            names.insert(r.dataset_repo.clone(), r.dataset_id.to_string());
            grouped
                .entry((r.dataset_repo.clone(), r.split.clone(), r.task.clone()))
                .or_default()
                .push(r);
        }
    }
    let mut boards = Vec::new();
    for ((dataset, split, task), rows) in grouped {
        let metric = task
            .parse::<Task>()
            .map(|t| t.primary_metric().0)
            .unwrap_or("accuracy")
            .to_string();
        let best = best_per_model(&rows, &metric);
        let values: Vec<Option<Cell>> = uids
            .iter()
            .map(|uid| {
                best.iter().find(|r| &r.model_repo == uid).map(|r| Cell {
                    value: r.metrics[&metric],
                    metrics: r.metrics.clone(),
                    latency_p50_ms: r.latency_p50_ms,
                    throughput: r.throughput,
                    commit: r.model_commit.clone(),
                    result_id: r.id,
                })
            })
            .collect();
        boards.push(CompareBoard {
            dataset: names.get(&dataset).cloned().unwrap_or(dataset),
            shared: values.iter().all(Option::is_some),
            higher_is_better: higher_is_better(&metric),
            split,
            task,
            metric,
            values,
        });
    }
    boards.sort_by_key(|b| !b.shared);
    Ok(Comparison {
        models: summaries,
        boards,
    })
}
