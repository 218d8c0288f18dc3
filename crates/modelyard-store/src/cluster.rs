//! The computing subsystem's tables: settings, nodes, jobs, their logs and metrics.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::gangs::RANK_ACTIVE;
use crate::{now_ms, Result, Store, StoreError};

#[derive(Debug, Clone)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    /// JSON of `protocol::Inventory`.
    pub inventory: String,
    /// `alive` or `lost`.
    pub state: String,
    pub registered_at: i64,
    pub last_heartbeat: i64,
    pub free_json: Option<String>,
    pub cache_json: Option<String>,
}

impl NodeRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            inventory: r.try_get("inventory")?,
            state: r.try_get("state")?,
            registered_at: r.try_get("registered_at")?,
            last_heartbeat: r.try_get("last_heartbeat")?,
            free_json: r.try_get("free_json")?,
            cache_json: r.try_get("cache_json")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub owner: String,
    pub kind: String,
    /// JSON of `job::JobSpec`.
    pub spec: String,
    pub state: String,
    /// The fencing token: raised at every assignment.
    pub attempt: i64,
    pub max_attempts: i64,
    pub node_id: Option<String>,
    pub cancel_requested: bool,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub created_at: i64,
    pub assigned_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// GPU indices reserved on the node.
    pub gpus: Vec<u32>,
    /// The commit holding the job's output files, once committed.
    pub output_commit: Option<String>,
    /// JSON of the runtime prediction made at submission (opaque to the store).
    pub prediction: Option<String>,
}

impl JobRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            owner: r.try_get("owner")?,
            kind: r.try_get("kind")?,
            spec: r.try_get("spec")?,
            state: r.try_get("state")?,
            attempt: r.try_get("attempt")?,
            max_attempts: r.try_get("max_attempts")?,
            node_id: r.try_get("node_id")?,
            cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
            exit_code: r.try_get("exit_code")?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
            assigned_at: r.try_get("assigned_at")?,
            started_at: r.try_get("started_at")?,
            finished_at: r.try_get("finished_at")?,
            gpus: serde_json::from_str(&r.try_get::<String, _>("gpus")?).unwrap_or_default(),
            output_commit: r.try_get("output_commit")?,
            prediction: r.try_get("prediction")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LogRow {
    pub attempt: i64,
    pub seq: i64,
    pub stream: String,
    pub text: String,
    pub at: i64,
}

/// One output file uploaded by an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutputRow {
    pub path: String,
    pub sha256: String,
    pub size: i64,
}

/// Filters of a job listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub owner: Option<String>,
    pub state: Option<String>,
    pub limit: i64,
}

pub(crate) const ACTIVE: &str = "('assigned', 'running')";
/// SQL: the `jobs` row has an unfinished rank of its current attempt on the node bound to
/// `node` (a placeholder such as `$1`).
fn holds_rank(node: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM job_ranks r WHERE r.job_id = jobs.id \
         AND r.attempt = jobs.attempt AND r.node_id = {node} AND r.state IN {RANK_ACTIVE})"
    )
}

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores `value` unless the key exists; returns the stored value either way.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(key.into()))
    }

    pub async fn create_node(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        inventory: &str,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO nodes (id, name, token_hash, inventory, state, registered_at, last_heartbeat) \
             VALUES ($1, $2, $3, $4, 'alive', $5, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(token_hash)
        .bind(inventory)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn node_by_token(&self, token_hash: &str) -> Result<Option<NodeRow>> {
        let row = sqlx::query("SELECT * FROM nodes WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| NodeRow::from_row(&r)).transpose()?)
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY name, registered_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(NodeRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Renews a node's lease and records what it reported.
    pub async fn touch_node(&self, id: &str, free_json: &str, cache_json: &str) -> Result<()> {
        sqlx::query("UPDATE nodes SET last_heartbeat = $1, free_json = $2, cache_json = $3 WHERE id = $4 AND state = 'alive'")
            .bind(now_ms())
            .bind(free_json)
            .bind(cache_json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks nodes lost whose lease ran out, and returns their ids.
    pub async fn expire_nodes(&self, lease_ms: i64) -> Result<Vec<String>> {
        let cutoff = now_ms() - lease_ms;
        let rows = sqlx::query("UPDATE nodes SET state = 'lost' WHERE state = 'alive' AND last_heartbeat < $1 RETURNING id")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<sqlx::Result<_>>()?)
    }

    /// Marks one node lost at its own request (a worker leaving); `false` if it was not alive.
    pub async fn node_left(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE nodes SET state = 'lost' WHERE id = $1 AND state = 'alive'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks every other alive node of this name lost (the worker restarted and registered anew).
    pub async fn retire_nodes_named(&self, name: &str, except: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("UPDATE nodes SET state = 'lost' WHERE name = $1 AND id <> $2 AND state = 'alive' RETURNING id")
            .bind(name)
            .bind(except)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<sqlx::Result<_>>()?)
    }

    /// Puts the active jobs of a lost node back in the queue (a multi-node job whole, when
    /// the node held one of its unfinished ranks), or fails those out of attempts. Returns how
    /// many were requeued.
    pub async fn requeue_jobs_of(&self, node_id: &str, reason: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        sqlx::query(&format!(
            "UPDATE jobs SET state = 'failed', finished_at = $1, node_id = NULL, \
             reason = $2 || ' (no attempts left)' WHERE (node_id = $3 OR {}) AND state IN {ACTIVE} AND attempt >= max_attempts",
            holds_rank("$3")
        ))
        .bind(now)
        .bind(reason)
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
        let requeued = sqlx::query(&format!(
            "UPDATE jobs SET state = 'queued', node_id = NULL, reason = $1 WHERE (node_id = $2 OR {}) AND state IN {ACTIVE}",
            holds_rank("$2")
        ))
        .bind(reason)
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(requeued.rows_affected())
    }

    pub async fn create_job(
        &self,
        owner: &str,
        kind: &str,
        spec: &str,
        max_attempts: i64,
    ) -> Result<JobRow> {
        let row = sqlx::query(
            "INSERT INTO jobs (owner, kind, spec, state, max_attempts, created_at) \
             VALUES ($1, $2, $3, 'queued', $4, $5) RETURNING *",
        )
        .bind(owner)
        .bind(kind)
        .bind(spec)
        .bind(max_attempts)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(JobRow::from_row(&row)?)
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRow>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| JobRow::from_row(&r)).transpose()?)
    }

    pub async fn jobs(&self, f: &JobFilter) -> Result<Vec<JobRow>> {
        let mut sql = "SELECT * FROM jobs WHERE 1 = 1".to_owned();
        let mut binds = Vec::new();
        if let Some(o) = &f.owner {
            binds.push(o.clone());
            sql += &format!(" AND owner = ${}", binds.len());
        }
        if let Some(s) = &f.state {
            binds.push(s.clone());
            sql += &format!(" AND state = ${}", binds.len());
        }
        sql += &format!(" ORDER BY id DESC LIMIT {}", f.limit.clamp(1, 10_000));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Jobs assigned to or running on one node, multi-node jobs with an unfinished rank there
    /// included.
    pub async fn jobs_on_node(&self, node_id: &str) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM jobs WHERE state IN {ACTIVE} AND (node_id = $1 OR {}) ORDER BY id",
            holds_rank("$1")
        ))
        .bind(node_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Queued jobs, oldest first: the scheduler's input.
    pub async fn queued_jobs(&self, limit: i64) -> Result<Vec<JobRow>> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Jobs holding resources on nodes (assigned or running).
    pub async fn active_jobs(&self) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM jobs WHERE state IN {ACTIVE} ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Jobs that ran on a node at some time since `since_ms` (still running, or finished
    /// after it), oldest first, at most `limit`: what a node's recent utilisation is made of.
    pub async fn jobs_on_nodes_since(&self, since_ms: i64, limit: i64) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE node_id IS NOT NULL AND started_at IS NOT NULL \
             AND (finished_at IS NULL OR finished_at >= $1) ORDER BY started_at LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(JobRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Writes a round of placements in one transaction; a job that is no longer queued is
    /// skipped. Returns the placements that took effect, with their new attempt numbers.
    pub async fn assign_jobs(
        &self,
        placements: &[(i64, String, Vec<u32>)],
    ) -> Result<Vec<(i64, String, i64)>> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let mut done = Vec::new();
        for (job, node, gpus) in placements {
            let row = sqlx::query(
                "UPDATE jobs SET state = 'assigned', node_id = $1, attempt = attempt + 1, assigned_at = $2, gpus = $3 \
                 WHERE id = $4 AND state = 'queued' RETURNING attempt",
            )
            .bind(node)
            .bind(now)
            .bind(serde_json::to_string(gpus).unwrap_or_else(|_| "[]".into()))
            .bind(job)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(r) = row {
                done.push((*job, node.clone(), r.try_get("attempt")?));
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Marks an attempt as started, if it is still the job's current attempt on this node:
    /// the job runs once its (rank 0) node starts it; another rank of a multi-node job marks
    /// only its own part.
    pub async fn start_attempt(&self, job: i64, attempt: i64, node: &str) -> Result<bool> {
        let rank = sqlx::query(&format!(
            "UPDATE job_ranks SET state = 'running' \
             WHERE job_id = $1 AND attempt = $2 AND node_id = $3 AND state IN {RANK_ACTIVE} \
             AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = $1 AND j.attempt = $2 AND j.state IN {ACTIVE})"
        ))
        .bind(job)
        .bind(attempt)
        .bind(node)
        .execute(&self.pool)
        .await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'running', started_at = $1 \
             WHERE id = $2 AND attempt = $3 AND node_id = $4 AND state IN ('assigned', 'running')",
        )
        .bind(now_ms())
        .bind(job)
        .bind(attempt)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1 || rank.rows_affected() == 1)
    }

    /// Whether `attempt` on `node` is the job's current, unfinished attempt (the fence).
    pub async fn attempt_is_current(&self, job: i64, attempt: i64, node: &str) -> Result<bool> {
        let row = sqlx::query(&format!(
            "SELECT 1 AS x FROM jobs WHERE id = $1 AND attempt = $2 AND state IN {ACTIVE} \
             AND (node_id = $3 OR {})",
            holds_rank("$3")
        ))
        .bind(job)
        .bind(attempt)
        .bind(node)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Appends log chunks; chunks already stored (same seq) are ignored, so retries are safe.
    pub async fn append_logs(
        &self,
        job: i64,
        attempt: i64,
        chunks: &[(i64, String, String)],
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for (seq, stream, text) in chunks {
            sqlx::query(
                "INSERT INTO job_logs (job_id, attempt, seq, stream, text, at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (job_id, attempt, seq) DO NOTHING",
            )
            .bind(job)
            .bind(attempt)
            .bind(seq)
            .bind(stream)
            .bind(text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends metrics `(seq, step, name, value)`; a repeated seq is ignored.
    pub async fn append_metrics(
        &self,
        job: i64,
        attempt: i64,
        metrics: &[(i64, i64, String, f64)],
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for (seq, step, name, value) in metrics {
            sqlx::query(
                "INSERT INTO job_metrics (job_id, attempt, seq, step, name, value, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (job_id, attempt, seq) DO NOTHING",
            )
                .bind(job)
                .bind(attempt)
                .bind(seq)
                .bind(step)
                .bind(name)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Log chunks of a job's latest attempt (or `attempt`) after `after_seq`, in order.
    pub async fn logs(&self, job: i64, attempt: i64, after_seq: i64) -> Result<Vec<LogRow>> {
        let rows = sqlx::query(
            "SELECT attempt, seq, stream, text, at FROM job_logs WHERE job_id = $1 AND attempt = $2 AND seq > $3 ORDER BY seq LIMIT 5000",
        )
        .bind(job)
        .bind(attempt)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRow {
                    attempt: r.try_get("attempt")?,
                    seq: r.try_get("seq")?,
                    stream: r.try_get("stream")?,
                    text: r.try_get("text")?,
                    at: r.try_get("at")?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    pub async fn metrics(&self, job: i64, attempt: i64) -> Result<Vec<(i64, String, f64)>> {
        let rows = sqlx::query("SELECT step, name, value FROM job_metrics WHERE job_id = $1 AND attempt = $2 ORDER BY step, name")
            .bind(job)
            .bind(attempt)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("step")?, r.try_get("name")?, r.try_get("value")?)))
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Ends an attempt if it is still current; false when fenced off.
    pub async fn finish_attempt(
        &self,
        job: i64,
        attempt: i64,
        node: &str,
        state: &str,
        exit_code: Option<i64>,
        reason: &str,
    ) -> Result<bool> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET state = $1, exit_code = $2, reason = $3, finished_at = $4 \
             WHERE id = $5 AND attempt = $6 AND node_id = $7 AND state IN {ACTIVE}"
        ))
        .bind(state)
        .bind(exit_code)
        .bind(reason)
        .bind(now_ms())
        .bind(job)
        .bind(attempt)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a job: a queued one at once; an active one is flagged for its node to stop.
    /// Returns the job after the change, or `None` if it was already finished.
    pub async fn cancel_job(&self, job: i64) -> Result<Option<JobRow>> {
        let now = now_ms();
        sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = $1, reason = 'cancelled before it ran' WHERE id = $2 AND state = 'queued'")
            .bind(now)
            .bind(job)
            .execute(&self.pool)
            .await?;
        let flagged = sqlx::query(&format!(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND state IN {ACTIVE}"
        ))
        .bind(job)
        .execute(&self.pool)
        .await?;
        let row = self.job(job).await?;
        Ok(row.filter(|j| flagged.rows_affected() > 0 || j.state == "cancelled"))
    }

    /// Records (or replaces, on a retried upload) one output file of an attempt.
    pub async fn record_job_output(
        &self,
        job: i64,
        attempt: i64,
        path: &str,
        sha256: &str,
        size: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_outputs (job_id, attempt, path, sha256, size) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (job_id, attempt, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size",
        )
        .bind(job)
        .bind(attempt)
        .bind(path)
        .bind(sha256)
        .bind(size)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The output files of one attempt, by path.
    pub async fn job_outputs(&self, job: i64, attempt: i64) -> Result<Vec<JobOutputRow>> {
        let rows = sqlx::query(
            "SELECT path, sha256, size FROM job_outputs WHERE job_id = $1 AND attempt = $2 ORDER BY path",
        )
        .bind(job)
        .bind(attempt)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobOutputRow {
                    path: r.try_get("path")?,
                    sha256: r.try_get("sha256")?,
                    size: r.try_get("size")?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Stores the commit that holds a job's outputs.
    pub async fn set_output_commit(&self, job: i64, commit: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET output_commit = $1 WHERE id = $2")
            .bind(commit)
            .bind(job)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
