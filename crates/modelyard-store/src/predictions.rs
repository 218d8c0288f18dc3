//! Runtime predictions stored with jobs, and the measured runs the predictor learns from.

use sqlx::Row;

use crate::{now_ms, Result, Store};

/// One finished job's features (JSON, opaque to the store) and measured seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow {
    pub job_id: i64,
    pub node_class: String,
    pub features: String,
    pub seconds: f64,
    pub created_at: i64,
}

impl Store {
    /// Stores the prediction made for a job (replacing an earlier one).
    pub async fn set_job_prediction(&self, job: i64, prediction: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET prediction = $1 WHERE id = $2")
            .bind(prediction)
            .bind(job)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a finished job's measured running time; a job counts once (its first record
    /// wins). Returns whether this call recorded it.
    pub async fn add_runtime_observation(
        &self,
        job: i64,
        node_class: &str,
        features: &str,
        seconds: f64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO runtime_observations (job_id, node_class, features, seconds, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job)
        .bind(node_class)
        .bind(features)
        .bind(seconds)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The newest `limit` observations, oldest first.
    pub async fn runtime_observations(&self, limit: i64) -> Result<Vec<ObservationRow>> {
        let rows = sqlx::query(
            "SELECT job_id, node_class, features, seconds, created_at FROM runtime_observations \
             ORDER BY created_at DESC, job_id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(ObservationRow {
                    job_id: r.try_get("job_id")?,
                    node_class: r.try_get("node_class")?,
                    features: r.try_get("features")?,
                    seconds: r.try_get("seconds")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    /// How many observations are stored (to notice another replica's additions).
    pub async fn runtime_observation_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM runtime_observations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    async fn suite(store: Store) {
        let job = store.create_job("ada", "evaluate", "{}", 3).await.unwrap();
        assert_eq!(job.prediction, None);
        store
            .set_job_prediction(job.id, r#"{"seconds":4.5}"#)
            .await
            .unwrap();
        let again = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(again.prediction.as_deref(), Some(r#"{"seconds":4.5}"#));

        assert!(store
            .add_runtime_observation(job.id, "cpu", r#"{"a":1}"#, 2.25)
            .await
            .unwrap());
        // A job counts once, however often its finish is reported.
        assert!(!store
            .add_runtime_observation(job.id, "cpu", r#"{"a":2}"#, 9.0)
            .await
            .unwrap());
        let other = store.create_job("ada", "evaluate", "{}", 3).await.unwrap();
        store
            .add_runtime_observation(other.id, "nvidia h100", "{}", 0.5)
            .await
            .unwrap();
        let all = store.runtime_observations(10).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].job_id, all[0].features.as_str(), all[0].seconds),
            (job.id, r#"{"a":1}"#, 2.25)
        );
        assert_eq!(all[1].node_class, "nvidia h100");
        // The newest ones when limited.
        let newest = store.runtime_observations(1).await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(store.runtime_observation_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn sqlite_stores_predictions_and_observations() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        suite(Store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_stores_predictions_and_observations() {
        let Some(server) =
            crate::testing::postgres_url("postgres_stores_predictions_and_observations")
        else {
            return;
        };
        let db = crate::testing::TestDatabase::create(&server).await;
        suite(Store::connect(&db.url).await.unwrap()).await;
        db.drop_database().await;
    }
}
