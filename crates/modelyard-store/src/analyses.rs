//! Stored model analyses, one per content hash, so identical files are analysed once.

use sqlx::Row;

use crate::{now_ms, Result, Store, StoreError};

/// The outcome of analysing one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisStatus {
    /// Parsed; `features` holds the `ModelFeatures` JSON.
    Ok,
    /// Parsed, but loading it could run code (a pickle importing e.g. `os.system`).
    Unsafe,
    /// Could not be parsed; `error` says why.
    Error,
}

impl AnalysisStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Ok => "ok",
            AnalysisStatus::Unsafe => "unsafe",
            AnalysisStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(AnalysisStatus::Ok),
            "unsafe" => Some(AnalysisStatus::Unsafe),
            "error" => Some(AnalysisStatus::Error),
            _ => None,
        }
    }
}

/// One stored analysis. `features` is opaque JSON to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisRow {
    /// The blob's SHA-256, or a derived key for analyses that span several blobs.
    pub sha256: String,
    pub status: AnalysisStatus,
    /// `onnx`, `safetensors`, `pickle`, when known.
    pub format: Option<String>,
    pub features: Option<serde_json::Value>,
    pub error: Option<String>,
    /// How many times this content was analysed: 1 unless two analyses raced or a newer
    /// analyser replaced the result.
    pub attempts: i64,
    /// The version of the analyser that produced it.
    pub analyzer_version: i64,
    pub created_at: i64,
}

impl AnalysisRow {
    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self> {
        let status: String = r.try_get("status")?;
        let features: Option<String> = r.try_get("features")?;
        Ok(Self {
            sha256: r.try_get("sha256")?,
            status: AnalysisStatus::parse(&status)
                .ok_or_else(|| StoreError::Invalid(format!("analysis status {status:?}")))?,
            format: r.try_get("format")?,
            features: features
                .map(|f| serde_json::from_str(&f))
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("stored analysis JSON: {e}")))?,
            error: r.try_get("error")?,
            attempts: r.try_get("attempts")?,
            analyzer_version: r.try_get("analyzer_version")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// What to store for one content hash.
#[derive(Debug, Clone)]
pub struct NewAnalysis<'a> {
    pub sha256: &'a str,
    pub status: AnalysisStatus,
    pub format: Option<&'a str>,
    pub features: Option<&'a serde_json::Value>,
    pub error: Option<&'a str>,
    pub analyzer_version: i64,
    /// The file's parameter count, for listings filtered by size.
    pub parameters: Option<i64>,
}

impl Store {
    /// The analysis of a content hash, if one was stored.
    pub async fn analysis(&self, sha256: &str) -> Result<Option<AnalysisRow>> {
        let row = sqlx::query("SELECT * FROM analyses WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| AnalysisRow::from_row(&r)).transpose()
    }

    /// Stores the analysis of a content hash. The first result of an analyser version wins: a
    /// second put for the same hash keeps the stored result and only counts the attempt,
    /// unless it comes from a newer analyser, whose result replaces the older one. Returns
    /// whether this put stored its result.
    pub async fn put_analysis(&self, a: &NewAnalysis<'_>) -> Result<bool> {
        let features = a.features.map(|f| f.to_string());
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO analyses \
             (sha256, status, format, features, error, attempts, created_at, analyzer_version, \
             parameters) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8) ON CONFLICT (sha256) \
             DO UPDATE SET status = excluded.status, format = excluded.format, \
             features = excluded.features, error = excluded.error, \
             created_at = excluded.created_at, parameters = excluded.parameters, \
             analyzer_version = excluded.analyzer_version, attempts = analyses.attempts + 1 \
             WHERE analyses.analyzer_version < excluded.analyzer_version",
        )
        .bind(a.sha256)
        .bind(a.status.as_str())
        .bind(a.format)
        .bind(features)
        .bind(a.error)
        .bind(now)
        .bind(a.analyzer_version)
        .bind(a.parameters)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        sqlx::query("UPDATE analyses SET attempts = attempts + 1 WHERE sha256 = $1")
            .bind(a.sha256)
            .execute(&self.pool)
            .await?;
        Ok(false)
    }

    /// The parameter count of each repo's model on `main` (the largest analysed file there),
    /// keyed by repo uid; repos without an analysed model are absent.
    pub async fn main_parameters(
        &self,
        repo_uids: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>> {
        if repo_uids.is_empty() {
            return Ok(Default::default());
        }
        let marks: Vec<String> = (1..=repo_uids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT b.repo_id AS repo_id, MAX(a.parameters) AS parameters FROM refs b \
             JOIN tree_entries te ON te.commit_id = b.commit_id \
             JOIN analyses a ON a.sha256 = te.sha256 \
             WHERE b.kind = 'branch' AND b.name = 'main' AND a.parameters IS NOT NULL \
             AND b.repo_id IN ({}) GROUP BY b.repo_id",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for uid in repo_uids {
            q = q.bind(*uid);
        }
        let mut out = std::collections::HashMap::new();
        for row in q.fetch_all(&self.pool).await? {
            out.insert(row.try_get("repo_id")?, row.try_get("parameters")?);
        }
        Ok(out)
    }

    /// Head commits of every branch of every model repo: where a restarted hub looks for
    /// files that still lack an analysis.
    pub async fn model_branch_heads(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.commit_id AS commit_id FROM refs r JOIN repos p ON p.id = r.repo_id \
             WHERE p.kind = 'model' AND r.kind = 'branch' ORDER BY commit_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("commit_id"))
            .collect::<sqlx::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{AnalysisStatus, NewAnalysis};
    use crate::Store;

    #[tokio::test]
    async fn analyses_are_stored_once_per_hash() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        stored_once_per_hash(Store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_analyses_are_stored_once_per_hash() {
        let Some(server) =
            crate::testing::postgres_url("postgres_analyses_are_stored_once_per_hash")
        else {
            return;
        };
        let db = crate::testing::TestDatabase::create(&server).await;
        stored_once_per_hash(Store::connect(&db.url).await.unwrap()).await;
        db.drop_database().await;
    }

    async fn stored_once_per_hash(store: Store) {
        let sha = "a".repeat(64);
        assert!(store.analysis(&sha).await.unwrap().is_none());
        let features = serde_json::json!({"format": "onnx", "parameters": {"total": 5994}});
        let first = NewAnalysis {
            sha256: &sha,
            status: AnalysisStatus::Ok,
            format: Some("onnx"),
            features: Some(&features),
            error: None,
            analyzer_version: 2,
            parameters: Some(5994),
        };
        assert!(store.put_analysis(&first).await.unwrap());
        let got = store.analysis(&sha).await.unwrap().unwrap();
        assert_eq!(got.status, AnalysisStatus::Ok);
        assert_eq!(got.features.as_ref().unwrap()["parameters"]["total"], 5994);
        assert_eq!(got.attempts, 1);

        // A racing second analysis does not replace the first, but is counted.
        let second = NewAnalysis {
            status: AnalysisStatus::Error,
            features: None,
            error: Some("boom"),
            ..first
        };
        assert!(!store.put_analysis(&second).await.unwrap());
        let again = store.analysis(&sha).await.unwrap().unwrap();
        assert_eq!(again.status, AnalysisStatus::Ok);
        assert_eq!(again.created_at, got.created_at);
        assert_eq!(again.attempts, 2);

        // A newer analyser's result replaces it; an older one's after that does not.
        let newer = NewAnalysis {
            analyzer_version: 3,
            ..second
        };
        assert!(store.put_analysis(&newer).await.unwrap());
        let replaced = store.analysis(&sha).await.unwrap().unwrap();
        assert_eq!(replaced.status, AnalysisStatus::Error);
        assert_eq!(replaced.analyzer_version, 3);
        assert_eq!(replaced.attempts, 3);
        assert!(!store.put_analysis(&first).await.unwrap());
        let kept = store.analysis(&sha).await.unwrap().unwrap();
        assert_eq!(kept.analyzer_version, 3);
        assert_eq!(kept.status, AnalysisStatus::Error);

        let bad = "b".repeat(64);
        store
            .put_analysis(&NewAnalysis {
                sha256: &bad,
                status: AnalysisStatus::Error,
                format: None,
                features: None,
                error: Some("not an ONNX model"),
                analyzer_version: 2,
                parameters: None,
            })
            .await
            .unwrap();
        let e = store.analysis(&bad).await.unwrap().unwrap();
        assert_eq!(e.status, AnalysisStatus::Error);
        assert_eq!(e.error.as_deref(), Some("not an ONNX model"));
        assert!(store.model_branch_heads().await.unwrap().is_empty());
    }
}
