//! The worker protocol's endpoints: register, heartbeat (long poll), job events, blob fetch.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use modelyard_core::protocol::{
    Assignment, AttemptRef, Gang, Heartbeat, HeartbeatResponse, Inventory, JobEvents,
    RegisterRequest, RegisterResponse, PROTOCOL_VERSION,
};
use modelyard_store::{GangStatus, JobRow, NodeRow};
use serde_json::{json, Value};

use crate::auth::{constant_time_eq, hash_token, new_token};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A registered, alive node, from its bearer token.
pub struct NodeAuth(pub NodeRow);

impl FromRequestParts<AppState> for NodeAuth {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "NodeUnknown",
                    "send the node token",
                )
            })?;
        match state.store.node_by_token(&hash_token(token.trim())).await? {
            Some(n) if n.state == "alive" => Ok(NodeAuth(n)),
            Some(_) => Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "NodeLost",
                "this node was declared lost; register again",
            )),
            None => Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "NodeUnknown",
                "unknown node token; register again",
            )),
        }
    }
}

/// `POST /api/cluster/register`.
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> AppResult<Json<RegisterResponse>> {
    if req.protocol_version != PROTOCOL_VERSION {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            "ProtocolVersion",
            format!(
                "this worker speaks protocol version {}, the server speaks {PROTOCOL_VERSION}; run the same modelyard version on both",
                req.protocol_version
            ),
        ));
    }
    let expected = super::join_token(&state.store).await?;
    if !constant_time_eq(expected.as_bytes(), req.join_token.as_bytes()) {
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "BadJoinToken",
            "wrong join token; print the right one with `modelyard admin join-token --data-dir DIR` on the server",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(AppError::bad_request(
            "node name must be 1 to 128 characters",
        ));
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let token = new_token().replacen("my_", "myn_", 1);
    let inventory =
        serde_json::to_string(&req.inventory).map_err(|e| AppError::internal(e.to_string()))?;
    state
        .store
        .create_node(&id, name, &hash_token(&token), &inventory)
        .await?;
    // An earlier registration under the same name is this worker before a restart: whatever it
    // ran is gone or orphaned, so its jobs go back to the queue and it must kill what it reports.
    for old in state.store.retire_nodes_named(name, &id).await? {
        let n = state
            .store
            .requeue_jobs_of(&old, &format!("worker {name} restarted"))
            .await?;
        tracing::info!(node.id = %old, node.name = %name, requeued = n, "node replaced by a new registration");
    }
    tracing::info!(node.id = %id, node.name = %name, cpus = req.inventory.cpus, commands = req.inventory.allow_commands, "node registered");
    state.master.wake_scheduler();
    let t = state.master.timing;
    Ok(Json(RegisterResponse {
        node_id: id,
        node_token: token,
        lease_ms: t.lease.as_millis() as u64,
        poll_ms: t.poll.as_millis() as u64,
        kill: req.running,
    }))
}

/// What a node should hear now: assignments it has not acknowledged and attempts to stop.
/// The ports rank 0 of a multi-node job may listen on for its peers (`MASTER_PORT`): the
/// store gives each gang the first one no other gang led from the same node holds.
pub const GANG_PORTS: std::ops::Range<u16> = 29_400..30_400;

/// The port of a gang assigned before ports were stored: one of [`GANG_PORTS`], by job.
fn legacy_master_port(job: i64) -> u16 {
    GANG_PORTS.start + job.rem_euclid(i64::from(GANG_PORTS.end - GANG_PORTS.start)) as u16
}

/// Rank `rank`'s view of its gang: the world size and where rank 0's node listens.
async fn gang_of(
    state: &AppState,
    job: i64,
    rank: i64,
    ranks: &[modelyard_store::RankRow],
) -> AppResult<Gang> {
    let first = ranks
        .first()
        .ok_or_else(|| AppError::internal(format!("job {job} has no rank 0")))?;
    let nodes = state.store.nodes().await?;
    let inventory = nodes
        .iter()
        .find(|n| n.id == first.node_id)
        .and_then(|n| serde_json::from_str::<Inventory>(&n.inventory).ok());
    let master_addr = inventory
        .map(|i| i.address.unwrap_or(i.hostname))
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let held = ranks
        .iter()
        .find(|r| r.rank == rank)
        .and_then(|r| serde_json::from_str(&r.resources).ok())
        .unwrap_or_default();
    Ok(Gang {
        rank: rank as u32,
        world_size: ranks.len() as u32,
        master_addr,
        master_port: first
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| legacy_master_port(job)),
        held,
    })
}

async fn news(
    state: &AppState,
    node: &NodeRow,
    running: &[AttemptRef],
) -> AppResult<HeartbeatResponse> {
    let active: Vec<JobRow> = state.store.jobs_on_node(&node.id).await?;
    let reported: HashSet<(i64, i64)> = running.iter().map(|r| (r.job_id, r.attempt)).collect();
    let mut gangs: HashMap<i64, Vec<modelyard_store::RankRow>> = HashMap::new();
    for r in state.store.gang_ranks_touching(&node.id).await? {
        gangs.entry(r.job_id).or_default().push(r);
    }
    let mut assignments = Vec::new();
    let mut cancel = Vec::new();
    for job in &active {
        let here = reported.contains(&(job.id, job.attempt));
        let attempt = AttemptRef {
            job_id: job.id,
            attempt: job.attempt,
        };
        // This node's part: its rank of a multi-node job, or the whole job.
        let ranks = gangs.remove(&job.id).unwrap_or_default();
        let mine = ranks.iter().find(|r| r.node_id == node.id);
        let (part_state, gpus) = match mine {
            Some(r) => (r.state.as_str(), r.gpus.clone()),
            None => (job.state.as_str(), job.gpus.clone()),
        };
        if job.cancel_requested {
            if here {
                cancel.push(attempt);
            } else if job.state == "assigned" && mine.is_none_or(|r| r.rank == 0) {
                // Cancelled before it started: the job's own node (rank 0's) ends it, and
                // ranks that did start are told to stop (their attempt is no longer current).
                state
                    .store
                    .finish_attempt(
                        job.id,
                        job.attempt,
                        &node.id,
                        "cancelled",
                        None,
                        "cancelled before it started",
                    )
                    .await?;
            }
        } else if !here && part_state == "assigned" {
            let spec = serde_json::from_str(&job.spec)
                .map_err(|e| AppError::internal(format!("job {} spec: {e}", job.id)))?;
            let gang = match mine {
                Some(r) => Some(gang_of(state, job.id, r.rank, &ranks).await?),
                None => None,
            };
            assignments.push(Assignment {
                job: attempt,
                spec,
                gpus,
                gang,
            });
        }
    }
    let current: HashSet<(i64, i64)> = active.iter().map(|j| (j.id, j.attempt)).collect();
    cancel.extend(
        running
            .iter()
            .filter(|r| !current.contains(&(r.job_id, r.attempt)))
            .copied(),
    );
    Ok(HeartbeatResponse {
        assignments,
        cancel,
    })
}

/// `POST /api/cluster/heartbeat`: renews the lease, then answers as soon as there is news for
/// the node, or when the wait is over.
pub async fn heartbeat(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Json(hb): Json<Heartbeat>,
) -> AppResult<Json<HeartbeatResponse>> {
    let free = serde_json::to_string(&hb.free).unwrap_or_default();
    let cache = serde_json::to_string(&hb.cache).unwrap_or_default();
    state.store.touch_node(&node.id, &free, &cache).await?;
    let wait = std::time::Duration::from_millis(hb.wait_ms).min(state.master.timing.poll);
    let deadline = tokio::time::Instant::now() + wait;
    let notify = state.master.node_notify(&node.id);
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let resp = news(&state, &node, &hb.running).await?;
        if !resp.assignments.is_empty()
            || !resp.cancel.is_empty()
            || tokio::time::Instant::now() >= deadline
        {
            state.store.touch_node(&node.id, &free, &cache).await?;
            return Ok(Json(resp));
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// `POST /api/cluster/jobs/{id}/events`: start, output, metrics and end of an attempt, fenced
/// by the attempt number.
pub async fn events(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
    Path(job): Path<i64>,
    Json(ev): Json<JobEvents>,
) -> AppResult<Json<Value>> {
    let stale = || {
        AppError::new(
            StatusCode::CONFLICT,
            "StaleAttempt",
            format!(
                "attempt {} of job {job} is not current on this node",
                ev.attempt
            ),
        )
    };
    if !state
        .store
        .attempt_is_current(job, ev.attempt, &node.id)
        .await?
    {
        return Err(stale());
    }
    if ev.started && !state.store.start_attempt(job, ev.attempt, &node.id).await? {
        return Err(stale());
    }
    if !ev.logs.is_empty() {
        let chunks: Vec<_> = ev
            .logs
            .iter()
            .map(|l| (l.seq, l.stream.clone(), l.text.clone()))
            .collect();
        state.store.append_logs(job, ev.attempt, &chunks).await?;
    }
    if !ev.metrics.is_empty() {
        let ms: Vec<_> = ev
            .metrics
            .iter()
            .map(|m| (m.seq, m.step, m.name.clone(), m.value))
            .collect();
        state.store.append_metrics(job, ev.attempt, &ms).await?;
    }
    if let Some(f) = &ev.finished {
        let final_state = match f.state.as_str() {
            "succeeded" | "failed" | "cancelled" => f.state.as_str(),
            other => {
                return Err(AppError::bad_request(format!(
                    "unknown final state {other:?}"
                )))
            }
        };
        let mut final_state = final_state;
        let mut reason = f.reason.clone();
        // The node whose name fences the job's own row: rank 0's for a multi-node job.
        let mut fence = node.id.clone();
        match state
            .store
            .finish_rank(
                job,
                ev.attempt,
                &node.id,
                final_state,
                f.exit_code.map(i64::from),
                &f.reason,
            )
            .await?
        {
            None => {}
            Some(GangStatus::Waiting) => {
                tracing::info!(job.id = job, attempt = ev.attempt, node.name = %node.name,
                    state = final_state, "rank finished; waiting for the others");
                return Ok(Json(json!({ "ok": true })));
            }
            Some(status) => {
                let row = state
                    .store
                    .job(job)
                    .await?
                    .ok_or_else(|| AppError::entry_not_found(format!("job {job} not found")))?;
                fence = row.node_id.clone().unwrap_or_default();
                if let GangStatus::Failed(r) = status {
                    final_state = if r.state == "cancelled" && row.cancel_requested {
                        "cancelled"
                    } else {
                        "failed"
                    };
                    reason = format!(
                        "rank {} ({}): {}",
                        r.rank,
                        if r.node_id == node.id {
                            node.name.clone()
                        } else {
                            r.node_id.clone()
                        },
                        r.reason.unwrap_or_default()
                    );
                }
            }
        }
        let mut succeeded_row = None;
        if final_state == "succeeded" {
            let row = state
                .store
                .job(job)
                .await?
                .ok_or_else(|| AppError::entry_not_found(format!("job {job} not found")))?;
            if let Err(e) = super::outputs::commit_outputs(&state, &row, ev.attempt).await {
                tracing::warn!(job.id = job, attempt = ev.attempt, error = %e.message, "cannot commit job outputs");
                final_state = "failed";
                reason = format!("committing outputs: {}", e.message);
            }
            if row.kind == "evaluate" {
                let recorded =
                    crate::results::record(&state, &row, &node.name, f.result.as_ref()).await;
                if let Err(e) = recorded {
                    tracing::warn!(job.id = job, attempt = ev.attempt, error = %e.message, "cannot record the result");
                    final_state = "failed";
                    reason = format!("recording the result: {}", e.message);
                }
            }
            succeeded_row = Some(row);
        }
        if !state
            .store
            .finish_attempt(
                job,
                ev.attempt,
                &fence,
                final_state,
                f.exit_code.map(i64::from),
                &reason,
            )
            .await?
        {
            return Err(stale());
        }
        tracing::info!(job.id = job, attempt = ev.attempt, node.name = %node.name, state = final_state, reason = %reason, "job finished");
        if let (Some(row), "succeeded") = (succeeded_row, final_state) {
            let (state, node, result) = (state.clone(), node.clone(), f.result.clone());
            tokio::spawn(async move {
                crate::predict::observe_finished(&state, &row, &node, result.as_ref()).await;
            });
        }
        state.master.wake_scheduler();
    }
    Ok(Json(json!({ "ok": true })))
}

/// `POST /api/cluster/leave`: a worker shutting down hands its unfinished jobs back now,
/// instead of the master waiting for its lease to run out.
pub async fn leave(
    State(state): State<AppState>,
    NodeAuth(node): NodeAuth,
) -> AppResult<Json<Value>> {
    let mut requeued = 0;
    if state.store.node_left(&node.id).await? {
        requeued = state
            .store
            .requeue_jobs_of(&node.id, &format!("worker {} left", node.name))
            .await?;
        tracing::info!(node.id = %node.id, node.name = %node.name, requeued, "node left");
        state.master.wake_scheduler();
    }
    Ok(Json(json!({ "requeued": requeued })))
}

/// `GET /api/cluster/blobs/{sha256}`: input staging for workers.
pub async fn blob(
    State(state): State<AppState>,
    NodeAuth(_node): NodeAuth,
    Path(sha): Path<String>,
) -> AppResult<Response> {
    let sha = modelyard_blob::Sha256::parse(&sha)?;
    let size = state
        .blobs
        .size(&sha)
        .await?
        .ok_or_else(|| AppError::entry_not_found(format!("blob {sha} not found")))?;
    let stream = state.blobs.get(&sha, None).await?;
    Ok(Response::builder()
        .header(header::CONTENT_LENGTH, size)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(stream))
        .expect("valid response"))
}
