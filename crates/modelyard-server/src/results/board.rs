//! Leaderboards: the verified results for one (dataset, split, task), best per model, ranked by
//! one metric, with the models' structure and runtime, and the self-reported claims beside them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use modelyard_eval::Task;
use modelyard_store::{RepoRow, ResultFilter, ResultRow};
use serde::Serialize;

use crate::api::fmt_date;
use crate::auth::Auth;
use crate::error::AppResult;
use crate::state::AppState;

/// Whether a self-reported value disagrees with the verified one: more than half a
/// percentage point for fractions, more than 1% (relative) for other metrics.
pub fn disagrees(metric: &str, claimed: f64, verified: f64) -> bool {
    if is_fraction(metric) {
        (claimed - verified).abs() > 0.005
    } else {
        (claimed - verified).abs() > 0.01 * verified.abs().max(1e-12)
    }
}

pub use modelyard_core::model_index::is_fraction;

/// Lower is better for error metrics.
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "rmse" | "mae")
}

/// Whether the caller may see a repository with this visibility and owner.
pub fn visible(auth: &Auth, private: bool, owner: &str) -> bool {
    !private || auth.is_admin() || auth.name() == Some(owner)
}

/// One ranked model.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub rank: usize,
    pub model: String,
    pub commit: String,
    pub value: f64,
    pub metrics: BTreeMap<String, f64>,
    pub parameters: Option<u64>,
    pub macs: Option<u64>,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub throughput: f64,
    pub samples: i64,
    pub hardware: String,
    pub date: String,
    pub job_id: i64,
    pub result_id: i64,
    /// What the model's card claims for the same dataset, split and metric.
    pub self_reported: Option<f64>,
    pub disagrees: bool,
}

/// One claim from a model card, labelled as such.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub model: String,
    pub commit: String,
    pub value: f64,
    /// The verified value of the same model on the board, when there is one.
    pub verified: Option<f64>,
    pub disagrees: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub dataset: String,
    pub split: String,
    pub task: String,
    pub metric: String,
    pub higher_is_better: bool,
    /// Every metric the board's results have (the ones it can be ranked by).
    pub metrics: Vec<String>,
    pub verified: Vec<Entry>,
    pub self_reported: Vec<Claim>,
}

/// Parameters and MACs per sample from a stored structure analysis.
pub async fn structure(state: &AppState, sha256: &str) -> AppResult<(Option<u64>, Option<u64>)> {
    let Some(a) = state.store.analysis(sha256).await? else {
        return Ok((None, None));
    };
    Ok(counts(&a.features.unwrap_or_default()))
}

/// Parameters and MACs per sample of a `ModelFeatures` JSON.
pub fn counts(features: &serde_json::Value) -> (Option<u64>, Option<u64>) {
    (
        features
            .pointer("/parameters/total")
            .and_then(|v| v.as_u64()),
        features.get("macs_per_sample").and_then(|v| v.as_u64()),
    )
}

/// The best result per model under `metric` (ties: the newest).
pub fn best_per_model<'a>(rows: &'a [ResultRow], metric: &str) -> Vec<&'a ResultRow> {
    let up = higher_is_better(metric);
    let mut best: HashMap<&str, &ResultRow> = HashMap::new();
    for r in rows {
        let Some(v) = r.metrics.get(metric) else {
            continue;
        };
        let better = match best.get(r.model_repo.as_str()) {
            None => true,
            Some(b) => {
                let bv = b.metrics[metric];
                if up {
                    *v > bv || (*v == bv && r.id > b.id)
                } else {
                    *v < bv || (*v == bv && r.id > b.id)
                }
            }
        };
        if better {
            best.insert(r.model_repo.as_str(), r);
        }
    }
    let mut out: Vec<&ResultRow> = best.into_values().collect();
    out.sort_by(|a, b| {
        let (x, y) = (a.metrics[metric], b.metrics[metric]);
        let ord = if up { y.total_cmp(&x) } else { x.total_cmp(&y) };
        ord.then(a.model_id.to_string().cmp(&b.model_id.to_string()))
    });
    out
}

/// The leaderboard of `dataset`; `split`, `task` and `metric` default to the dataset's first
/// board and the task's primary metric.
pub async fn board(
    state: &AppState,
    auth: &Auth,
    dataset: &RepoRow,
    split: Option<&str>,
    task: Option<&str>,
    metric: Option<&str>,
) -> AppResult<Board> {
    let boards = state.store.boards().await?;
    let first = boards.iter().find(|b| {
        b.dataset_repo == dataset.uid
            && split.is_none_or(|s| s == b.split)
            && task.is_none_or(|t| t == b.task)
    });
    let split = split
        .map(String::from)
        .or(first.map(|b| b.split.clone()))
        .unwrap_or_else(|| "test".into());
    let task = task
        .map(String::from)
        .or(first.map(|b| b.task.clone()))
        .or(dataset.pipeline_tag.clone())
        .unwrap_or_else(|| "image-classification".into());
    let metric = metric.map(String::from).unwrap_or_else(|| {
        task.parse::<Task>()
            .map(|t| t.primary_metric().0)
            .unwrap_or("accuracy")
            .to_string()
    });
    let rows: Vec<ResultRow> = state
        .store
        .results(&ResultFilter {
            dataset_repo: Some(dataset.uid.clone()),
            split: Some(split.clone()),
            task: Some(task.clone()),
            ..ResultFilter::default()
        })
        .await?
        .into_iter()
        .filter(|r| visible(auth, r.model_private, &r.model_owner))
        .collect();
    let metrics: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    let claims: Vec<_> = state
        .store
        .self_reported(Some(&dataset.id.to_string()), None)
        .await?
        .into_iter()
        .filter(|c| {
            visible(auth, c.model_private, &c.model_owner)
                && c.claim.split == split
                && c.claim.metric == metric
                && (c.claim.task.is_empty() || c.claim.task == task)
        })
        .collect();
    let claim_of: HashMap<&str, f64> = claims
        .iter()
        .map(|c| (c.model_repo.as_str(), c.claim.value))
        .collect();
    let mut verified = Vec::new();
    for (i, r) in best_per_model(&rows, &metric).into_iter().enumerate() {
        let (parameters, macs) = structure(state, &r.model_sha256).await?;
        let value = r.metrics[&metric];
        let claimed = claim_of.get(r.model_repo.as_str()).copied();
        verified.push(Entry {
            rank: i + 1,
            model: r.model_id.to_string(),
            commit: r.model_commit.clone(),
            value,
            metrics: r.metrics.clone(),
            parameters,
            macs,
            latency_p50_ms: r.latency_p50_ms,
            latency_p95_ms: r.latency_p95_ms,
            throughput: r.throughput,
            samples: r.samples,
            hardware: r.hardware.clone(),
            date: fmt_date(r.created_at),
            job_id: r.job_id,
            result_id: r.id,
            self_reported: claimed,
            disagrees: claimed.is_some_and(|c| disagrees(&metric, c, value)),
        });
    }
    let verified_of: HashMap<String, f64> = verified
        .iter()
        .map(|e| (e.model.clone(), e.value))
        .collect();
    let self_reported = claims
        .iter()
        .map(|c| {
            let v = verified_of.get(&c.model_id.to_string()).copied();
            Claim {
                model: c.model_id.to_string(),
                commit: c.model_commit.clone(),
                value: c.claim.value,
                verified: v,
                disagrees: v.is_some_and(|v| disagrees(&metric, c.claim.value, v)),
            }
        })
        .collect();
    Ok(Board {
        dataset: dataset.id.to_string(),
        higher_is_better: higher_is_better(&metric),
        split,
        task,
        metric,
        metrics: metrics.into_iter().collect(),
        verified,
        self_reported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disagreement_tolerances() {
        assert!(!disagrees("accuracy", 0.989, 0.989));
        assert!(!disagrees("accuracy", 0.99, 0.9891));
        assert!(disagrees("accuracy", 0.995, 0.989));
        assert!(!disagrees("rmse", 1.005, 1.0));
        assert!(disagrees("rmse", 1.2, 1.0));
        assert!(higher_is_better("accuracy") && !higher_is_better("rmse"));
    }
}
