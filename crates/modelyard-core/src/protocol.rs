//! The worker protocol: every message between the master and a worker, with a version number
//! checked at registration. HTTP + JSON; the heartbeat is a long poll.
//!
//! Fencing: each assignment of a job carries an attempt number. A worker quotes it in every
//! report; the master refuses reports whose attempt is not the job's current one, so a worker
//! that was declared lost can never overwrite what the job's next attempt did.

use serde::{Deserialize, Serialize};

use crate::job::{JobSpec, Resources};

/// Bumped on any incompatible change; the master refuses other versions at registration.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a node offers, reported at registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: String,
    pub cpus: u32,
    pub memory_mb: u64,
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// Measured single-process throughput (calibration), in GFLOP/s.
    pub gflops: f64,
    /// Whether the worker runs `command` jobs (`--allow-commands`).
    pub allow_commands: bool,
    /// Bytes the input cache may hold.
    pub cache_bytes: u64,
    /// The address other nodes reach this one at: where rank 0 of a multi-node job listens
    /// for its peers (`MASTER_ADDR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub index: u32,
    pub model: String,
    pub memory_mb: u64,
}

/// `POST /api/cluster/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub protocol_version: u32,
    pub join_token: String,
    pub name: String,
    pub inventory: Inventory,
    /// Jobs this worker still runs from before (after a restart of the worker or the server).
    #[serde(default)]
    pub running: Vec<AttemptRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub node_id: String,
    /// Sent as `Authorization: Bearer` on every later call.
    pub node_token: String,
    /// A node silent for this long is declared lost.
    pub lease_ms: u64,
    /// How long a heartbeat may wait for news.
    pub poll_ms: u64,
    /// Jobs from `running` that belong to someone else now: kill them.
    pub kill: Vec<AttemptRef>,
}

/// A job at one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttemptRef {
    pub job_id: i64,
    pub attempt: i64,
}

/// One item of the worker's input cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheItem {
    pub sha256: String,
    pub size: u64,
}

/// `POST /api/cluster/heartbeat`: renews the lease; answered when there is news for this node
/// or after `wait_ms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub free: Resources,
    pub running: Vec<AttemptRef>,
    #[serde(default)]
    pub cache: Vec<CacheItem>,
    pub wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub assignments: Vec<Assignment>,
    /// Attempts to stop (cancelled by a user, or no longer this node's).
    pub cancel: Vec<AttemptRef>,
}

/// A job given to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub job: AttemptRef,
    pub spec: JobSpec,
    /// GPU indices reserved for the job (`CUDA_VISIBLE_DEVICES`).
    #[serde(default)]
    pub gpus: Vec<u32>,
    /// This node's part of a job gang-scheduled over several nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gang: Option<Gang>,
}

/// One node's part of a multi-node job: every part starts together, each with its rank, and
/// the job succeeds only when every part does. Commands see the usual distributed-training
/// variables (`RANK`/`NODE_RANK`, `WORLD_SIZE`/`NNODES`, `MASTER_ADDR`, `MASTER_PORT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gang {
    /// 0 for the node whose address is `master_addr`; it alone reports logs and metrics.
    pub rank: u32,
    /// Nodes in the job.
    pub world_size: u32,
    pub master_addr: String,
    pub master_port: u16,
    /// What this part holds on this node (its share of the job's resources).
    pub held: Resources,
}

/// `POST /api/cluster/jobs/{id}/events`: everything a worker reports about a running attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEvents {
    pub attempt: i64,
    #[serde(default)]
    pub started: bool,
    /// Output in order; `seq` numbers let the master drop chunks it already has after a retry.
    #[serde(default)]
    pub logs: Vec<LogChunk>,
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Finished>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogChunk {
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metric {
    /// Numbers the attempt's metrics from 0 so the master drops repeats after a retry.
    #[serde(default)]
    pub seq: i64,
    pub step: i64,
    pub name: String,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    /// `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub exit_code: Option<i32>,
    pub reason: String,
    /// For `evaluate` jobs that succeeded: the evaluation report (`modelyard eval --json`),
    /// which the master stores as a verified result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}
