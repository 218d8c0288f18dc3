//! Verified results of `evaluate` jobs and self-reported results of model cards.

use std::collections::BTreeMap;

use modelyard_core::model_index::SelfReported;
use modelyard_core::RepoId;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now_ms, Result, Store, StoreError};

/// A verified result to record.
#[derive(Debug, Clone)]
pub struct NewResult<'a> {
    pub job_id: i64,
    /// Repository uids (stable across renames).
    pub model_repo: &'a str,
    pub model_commit: &'a str,
    /// The evaluated model file (links the result to its structure analysis).
    pub model_sha256: &'a str,
    pub dataset_repo: &'a str,
    pub dataset_commit: &'a str,
    pub split: &'a str,
    pub task: &'a str,
    pub samples: i64,
    pub metrics: &'a BTreeMap<String, f64>,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub throughput: f64,
    pub hardware: &'a str,
    /// The whole evaluation report.
    pub report: &'a serde_json::Value,
}

/// A stored verified result with the current names of its repositories.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub id: i64,
    pub job_id: i64,
    pub model_repo: String,
    pub model_id: RepoId,
    pub model_private: bool,
    pub model_owner: String,
    pub model_commit: String,
    pub model_sha256: String,
    pub dataset_repo: String,
    pub dataset_id: RepoId,
    pub dataset_private: bool,
    pub dataset_owner: String,
    pub dataset_commit: String,
    pub split: String,
    pub task: String,
    pub samples: i64,
    pub metrics: BTreeMap<String, f64>,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub throughput: f64,
    pub hardware: String,
    pub created_at: i64,
}

fn repo_id(ns: String, name: String) -> Result<RepoId> {
    RepoId::new(&ns, &name).map_err(|e| StoreError::Invalid(format!("stored repo name: {e}")))
}

impl ResultRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let metrics: String = r.try_get("metrics")?;
        Ok(Self {
            id: r.try_get("id")?,
            job_id: r.try_get("job_id")?,
            model_repo: r.try_get("model_repo")?,
            model_id: repo_id(r.try_get("m_ns")?, r.try_get("m_name")?)?,
            model_private: r.try_get::<i64, _>("m_private")? != 0,
            model_owner: r.try_get("m_owner")?,
            model_commit: r.try_get("model_commit")?,
            model_sha256: r.try_get("model_sha256")?,
            dataset_repo: r.try_get("dataset_repo")?,
            dataset_id: repo_id(r.try_get("d_ns")?, r.try_get("d_name")?)?,
            dataset_private: r.try_get::<i64, _>("d_private")? != 0,
            dataset_owner: r.try_get("d_owner")?,
            dataset_commit: r.try_get("dataset_commit")?,
            split: r.try_get("split")?,
            task: r.try_get("task")?,
            samples: r.try_get("samples")?,
            metrics: serde_json::from_str(&metrics)
                .map_err(|e| StoreError::Invalid(format!("stored metrics JSON: {e}")))?,
            latency_p50_ms: r.try_get("latency_p50_ms")?,
            latency_p95_ms: r.try_get("latency_p95_ms")?,
            throughput: r.try_get("throughput")?,
            hardware: r.try_get("hardware")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// Which verified results to list; unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub model_repo: Option<String>,
    pub dataset_repo: Option<String>,
    pub split: Option<String>,
    pub task: Option<String>,
    pub model_commit: Option<String>,
    pub dataset_commit: Option<String>,
    pub id: Option<i64>,
}

/// A claimed result with the current name of its model repository.
#[derive(Debug, Clone)]
pub struct SelfReportedRow {
    pub model_repo: String,
    pub model_id: RepoId,
    pub model_private: bool,
    pub model_owner: String,
    pub model_commit: String,
    pub claim: SelfReported,
}

/// A (dataset, split, task) with verified results: one leaderboard.
#[derive(Debug, Clone)]
pub struct BoardRow {
    pub dataset_repo: String,
    pub dataset_id: RepoId,
    pub dataset_private: bool,
    pub dataset_owner: String,
    pub split: String,
    pub task: String,
    pub results: i64,
    pub models: i64,
}

const SELECT: &str = "SELECT r.id, r.job_id, r.model_repo, r.model_commit, r.model_sha256, \
    r.dataset_repo, r.dataset_commit, r.split, r.task, r.samples, r.metrics, r.latency_p50_ms, \
    r.latency_p95_ms, r.throughput, r.hardware, r.created_at, \
    m.namespace AS m_ns, m.name AS m_name, m.private AS m_private, m.owner AS m_owner, \
    d.namespace AS d_ns, d.name AS d_name, d.private AS d_private, d.owner AS d_owner \
    FROM results r JOIN repos m ON m.id = r.model_repo JOIN repos d ON d.id = r.dataset_repo";

impl Store {
    /// Records a verified result; `false` when the job already has one (a repeated report).
    pub async fn add_result(&self, new: &NewResult<'_>) -> Result<bool> {
        let metrics = serde_json::to_string(new.metrics)
            .map_err(|e| StoreError::Invalid(format!("metrics: {e}")))?;
        let done = sqlx::query(
            "INSERT INTO results (job_id, model_repo, model_commit, model_sha256, dataset_repo, \
             dataset_commit, split, task, samples, metrics, latency_p50_ms, latency_p95_ms, \
             throughput, hardware, report, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(new.job_id)
        .bind(new.model_repo)
        .bind(new.model_commit)
        .bind(new.model_sha256)
        .bind(new.dataset_repo)
        .bind(new.dataset_commit)
        .bind(new.split)
        .bind(new.task)
        .bind(new.samples)
        .bind(metrics)
        .bind(new.latency_p50_ms)
        .bind(new.latency_p95_ms)
        .bind(new.throughput)
        .bind(new.hardware)
        .bind(new.report.to_string())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Verified results matching `f`, newest first.
    pub async fn results(&self, f: &ResultFilter) -> Result<Vec<ResultRow>> {
        let sql = format!(
            "{SELECT} WHERE ($1 IS NULL OR r.model_repo = $1) AND ($2 IS NULL OR r.dataset_repo = $2) \
             AND ($3 IS NULL OR r.split = $3) AND ($4 IS NULL OR r.task = $4) \
             AND ($5 IS NULL OR r.model_commit = $5) AND ($6 IS NULL OR r.dataset_commit = $6) \
             AND ($7 IS NULL OR r.id = $7) \
             ORDER BY r.id DESC LIMIT 10000"
        );
        let rows = sqlx::query(&sql)
            .bind(f.model_repo.clone())
            .bind(f.dataset_repo.clone())
            .bind(f.split.clone())
            .bind(f.task.clone())
            .bind(f.model_commit.clone())
            .bind(f.dataset_commit.clone())
            .bind(f.id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(ResultRow::from_row).collect()
    }

    /// The full report of one result.
    pub async fn result_report(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT report FROM results WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let text: String = r.try_get("report")?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Invalid(format!("stored report JSON: {e}")))
        })
        .transpose()
    }

    /// Every (dataset, split, task) with verified results.
    pub async fn boards(&self) -> Result<Vec<BoardRow>> {
        let rows = sqlx::query(
            "SELECT r.dataset_repo, r.split, r.task, COUNT(*) AS n, \
             COUNT(DISTINCT r.model_repo) AS models, d.namespace, d.name, d.private, d.owner \
             FROM results r JOIN repos d ON d.id = r.dataset_repo \
             GROUP BY r.dataset_repo, r.split, r.task, d.namespace, d.name, d.private, d.owner \
             ORDER BY d.namespace, d.name, r.split, r.task",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BoardRow {
                    dataset_repo: r.try_get("dataset_repo")?,
                    dataset_id: repo_id(r.try_get("namespace")?, r.try_get("name")?)?,
                    dataset_private: r.try_get::<i64, _>("private")? != 0,
                    dataset_owner: r.try_get("owner")?,
                    split: r.try_get("split")?,
                    task: r.try_get("task")?,
                    results: r.try_get("n")?,
                    models: r.try_get("models")?,
                })
            })
            .collect()
    }

    /// Replaces what a model repository's card claims (called whenever its card changes).
    pub async fn set_self_reported(
        &self,
        model_repo: &str,
        commit: &str,
        claims: &[SelfReported],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM self_reported WHERE model_repo = $1")
            .bind(model_repo)
            .execute(&mut *tx)
            .await?;
        for c in claims {
            sqlx::query(
                "INSERT INTO self_reported (model_repo, model_commit, dataset, split, task, \
                 metric, value) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(model_repo)
            .bind(commit)
            .bind(&c.dataset)
            .bind(&c.split)
            .bind(&c.task)
            .bind(&c.metric)
            .bind(c.value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims naming `dataset` (as `ns/name`), or every claim of `model_repo`.
    pub async fn self_reported(
        &self,
        dataset: Option<&str>,
        model_repo: Option<&str>,
    ) -> Result<Vec<SelfReportedRow>> {
        let rows = sqlx::query(
            "SELECT s.model_repo, s.model_commit, s.dataset, s.split, s.task, s.metric, s.value, \
             m.namespace, m.name, m.private, m.owner FROM self_reported s \
             JOIN repos m ON m.id = s.model_repo \
             WHERE ($1 IS NULL OR s.dataset = $1) AND ($2 IS NULL OR s.model_repo = $2) \
             ORDER BY m.namespace, m.name, s.metric",
        )
        .bind(dataset.map(String::from))
        .bind(model_repo.map(String::from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SelfReportedRow {
                    model_repo: r.try_get("model_repo")?,
                    model_id: repo_id(r.try_get("namespace")?, r.try_get("name")?)?,
                    model_private: r.try_get::<i64, _>("private")? != 0,
                    model_owner: r.try_get("owner")?,
                    model_commit: r.try_get("model_commit")?,
                    claim: SelfReported {
                        dataset: r.try_get("dataset")?,
                        split: r.try_get("split")?,
                        task: r.try_get("task")?,
                        metric: r.try_get("metric")?,
                        value: r.try_get("value")?,
                    },
                })
            })
            .collect()
    }
}

/// A stored dataset summary: `summary` is opaque JSON to the store.
#[derive(Debug, Clone)]
pub struct DatasetSummaryRow {
    pub commit: String,
    /// `ok` or `error`.
    pub status: String,
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// The summary of a dataset commit, if one was computed.
    pub async fn dataset_summary(&self, commit: &str) -> Result<Option<DatasetSummaryRow>> {
        let row = sqlx::query(
            "SELECT commit_id, status, summary, error, created_at FROM dataset_summaries \
             WHERE commit_id = $1",
        )
        .bind(commit)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let summary: Option<String> = r.try_get("summary")?;
            Ok(DatasetSummaryRow {
                commit: r.try_get("commit_id")?,
                status: r.try_get("status")?,
                summary: summary
                    .map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(|e| StoreError::Invalid(format!("stored summary JSON: {e}")))?,
                error: r.try_get("error")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Stores a dataset commit's summary (the first one wins; later ones are ignored).
    pub async fn put_dataset_summary(
        &self,
        commit: &str,
        summary: std::result::Result<&serde_json::Value, &str>,
    ) -> Result<()> {
        let (status, json, error) = match summary {
            Ok(v) => ("ok", Some(v.to_string()), None),
            Err(e) => ("error", None, Some(e.to_owned())),
        };
        sqlx::query(
            "INSERT INTO dataset_summaries (commit_id, status, summary, error, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (commit_id) DO NOTHING",
        )
        .bind(commit)
        .bind(status)
        .bind(json)
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
