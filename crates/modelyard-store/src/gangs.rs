//! Jobs gang-scheduled over several nodes: one rank per node, all assigned at once, the job
//! succeeding only when every rank does. The job's own `node_id` and `gpus` are rank 0's.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::cluster::ACTIVE;
use crate::{now_ms, Result, Store};

/// Rank states that still hold their node.
pub(crate) const RANK_ACTIVE: &str = "('assigned', 'running')";

/// One node's part of a multi-node job's attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRow {
    pub job_id: i64,
    pub attempt: i64,
    pub rank: i64,
    pub node_id: String,
    /// GPU indices reserved on that node.
    pub gpus: Vec<u32>,
    /// JSON of the `job::Resources` this part holds on its node.
    pub resources: String,
    /// `assigned`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    /// The port rank 0 listens on for the gang (the same on every rank's row); `None` on rows
    /// from before ports were chosen at assignment.
    pub port: Option<i64>,
}

impl RankRow {
    fn all(rows: &[AnyRow]) -> Result<Vec<RankRow>> {
        Ok(rows
            .iter()
            .map(RankRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        let gpus: String = r.try_get("gpus")?;
        Ok(Self {
            job_id: r.try_get("job_id")?,
            attempt: r.try_get("attempt")?,
            rank: r.try_get("rank")?,
            node_id: r.try_get("node_id")?,
            gpus: serde_json::from_str(&gpus).unwrap_or_default(),
            resources: r.try_get("resources")?,
            state: r.try_get("state")?,
            exit_code: r.try_get("exit_code")?,
            reason: r.try_get("reason")?,
            port: r.try_get("port")?,
        })
    }
}

/// One part of a placement: node, GPU indices and the resources (JSON) held there.
#[derive(Debug, Clone)]
pub struct GangPart {
    pub node_id: String,
    pub gpus: Vec<u32>,
    pub resources: String,
}

/// Where a multi-node attempt stands after one of its ranks finished.
#[derive(Debug, Clone, PartialEq)]
pub enum GangStatus {
    /// Other ranks are still running.
    Waiting,
    /// Every rank succeeded.
    Succeeded,
    /// This rank (or an earlier one) failed or was cancelled: the job ends with it.
    Failed(RankRow),
}

impl Store {
    /// Assigns a queued job to several nodes at once (rank `i` on `parts[i]`), with the first
    /// port of `ports` that no other active gang led from rank 0's node listens on (the last
    /// one when all are taken); `None` when the job was no longer queued. Returns the new
    /// attempt number.
    pub async fn assign_gang(
        &self,
        job: i64,
        parts: &[GangPart],
        ports: std::ops::Range<u16>,
    ) -> Result<Option<i64>> {
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'assigned', node_id = $1, attempt = attempt + 1, assigned_at = $2, gpus = $3 \
             WHERE id = $4 AND state = 'queued' RETURNING attempt",
        )
        .bind(&first.node_id)
        .bind(now_ms())
        .bind(serde_json::to_string(&first.gpus).unwrap_or_else(|_| "[]".into()))
        .bind(job)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempt: i64 = row.try_get("attempt")?;
        let taken: Vec<i64> = sqlx::query(&format!(
            "SELECT r.port FROM job_ranks r JOIN jobs j ON j.id = r.job_id AND j.attempt = r.attempt \
             WHERE r.rank = 0 AND r.node_id = $1 AND r.port IS NOT NULL AND r.state IN {RANK_ACTIVE} \
             AND j.state IN {ACTIVE}"
        ))
        .bind(&first.node_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("port"))
        .collect::<sqlx::Result<_>>()?;
        let port = ports
            .clone()
            .find(|p| !taken.contains(&i64::from(*p)))
            .or(ports.last())
            .map(i64::from);
        for (rank, p) in parts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO job_ranks (job_id, attempt, rank, node_id, gpus, resources, state, port) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'assigned', $7)",
            )
            .bind(job)
            .bind(attempt)
            .bind(rank as i64)
            .bind(&p.node_id)
            .bind(serde_json::to_string(&p.gpus).unwrap_or_else(|_| "[]".into()))
            .bind(&p.resources)
            .bind(port)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(attempt))
    }

    /// The ranks of one attempt, by rank; empty for a single-node job.
    pub async fn gang_ranks(&self, job: i64, attempt: i64) -> Result<Vec<RankRow>> {
        let rows =
            sqlx::query("SELECT * FROM job_ranks WHERE job_id = $1 AND attempt = $2 ORDER BY rank")
                .bind(job)
                .bind(attempt)
                .fetch_all(&self.pool)
                .await?;
        RankRow::all(&rows)
    }

    /// Unfinished ranks of the current attempts of assigned or running jobs: what multi-node
    /// jobs hold on each node.
    pub async fn active_ranks(&self) -> Result<Vec<RankRow>> {
        let rows = sqlx::query(&format!(
            "SELECT r.* FROM job_ranks r JOIN jobs j ON j.id = r.job_id AND j.attempt = r.attempt \
             WHERE j.state IN {ACTIVE} AND r.state IN {RANK_ACTIVE} \
             ORDER BY r.job_id, r.rank"
        ))
        .fetch_all(&self.pool)
        .await?;
        RankRow::all(&rows)
    }

    /// Every rank of the current attempts of active jobs that `node` takes part in (as the job's
    /// node or by any rank), by job and rank: what a node's heartbeat needs of multi-node jobs,
    /// in one query.
    pub async fn gang_ranks_touching(&self, node: &str) -> Result<Vec<RankRow>> {
        let rows = sqlx::query(&format!(
            "SELECT g.* FROM job_ranks g JOIN jobs ON jobs.id = g.job_id AND jobs.attempt = g.attempt \
             WHERE jobs.state IN {ACTIVE} AND (jobs.node_id = $1 OR EXISTS \
             (SELECT 1 FROM job_ranks x WHERE x.job_id = jobs.id AND x.attempt = jobs.attempt \
             AND x.node_id = $1)) ORDER BY g.job_id, g.rank"
        ))
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        RankRow::all(&rows)
    }

    /// The ranks of the current attempts of jobs that started and had not finished by
    /// `since_ms` (the multi-node part of [`Store::jobs_on_nodes_since`]), by job and rank.
    pub async fn ranks_of_jobs_since(&self, since_ms: i64, limit: i64) -> Result<Vec<RankRow>> {
        let rows = sqlx::query(
            "SELECT r.* FROM job_ranks r JOIN jobs j ON j.id = r.job_id AND j.attempt = r.attempt \
             WHERE j.started_at IS NOT NULL AND (j.finished_at IS NULL OR j.finished_at >= $1) \
             ORDER BY r.job_id, r.rank LIMIT $2",
        )
        .bind(since_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        RankRow::all(&rows)
    }

    /// Records how `node`'s rank of a current multi-node attempt ended and where the attempt
    /// stands; `None` when `node` holds no unfinished rank of it (a single-node job, or a stale
    /// report).
    pub async fn finish_rank(
        &self,
        job: i64,
        attempt: i64,
        node: &str,
        state: &str,
        exit_code: Option<i64>,
        reason: &str,
    ) -> Result<Option<GangStatus>> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE job_ranks SET state = $1, exit_code = $2, reason = $3 \
             WHERE job_id = $4 AND attempt = $5 AND node_id = $6 AND state IN {RANK_ACTIVE} \
             AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = $4 AND j.attempt = $5 \
                         AND j.state IN {ACTIVE})"
        ))
        .bind(state)
        .bind(exit_code)
        .bind(reason)
        .bind(job)
        .bind(attempt)
        .bind(node)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let rows =
            sqlx::query("SELECT * FROM job_ranks WHERE job_id = $1 AND attempt = $2 ORDER BY rank")
                .bind(job)
                .bind(attempt)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let ranks: Vec<RankRow> = rows
            .iter()
            .map(RankRow::from_row)
            .collect::<sqlx::Result<_>>()?;
        let failed = ranks
            .iter()
            .filter(|r| r.state == "failed" || r.state == "cancelled")
            // The rank that just finished names the failure when it is one.
            .min_by_key(|r| (r.node_id != node, r.rank));
        Ok(Some(match failed {
            Some(r) => GangStatus::Failed(r.clone()),
            None if ranks.iter().all(|r| r.state == "succeeded") => GangStatus::Succeeded,
            None => GangStatus::Waiting,
        }))
    }
}

#[cfg(test)]
mod tests;
