//! Placement policies: which queued job goes to which node(s), as a pure function of a snapshot;
//! and a deterministic simulator that replays job traces through the same policy code.
//!
//! Running-time model: a [`PendingJob`] carries `predicted_s`, the predictor's estimate of its
//! running time on a *reference* node, and a [`NodeView`] carries `speed`, the node's speed
//! relative to that reference, so the job is expected to run `predicted_s / speed` seconds there,
//! plus `missing input bytes / bandwidth_bps` seconds to fetch the inputs the node's cache lacks.

pub mod cost;
pub mod eta;
pub mod fit;
pub mod plan;
pub mod policy;
pub mod sim;

use std::collections::HashSet;

use modelyard_core::job::Resources;

pub use policy::delay::DelayConfig;
pub use policy::fifo::Fifo;
pub use policy::ga::{Ga, GaConfig};
pub use policy::mct::Mct;
pub use policy::sjf::Sjf;
pub use policy::{PolicyKind, PolicyOptions};

/// Predicted seconds for a job nobody has predicted yet (the live master before the predictor).
pub const DEFAULT_PREDICTED_S: f64 = 600.0;

/// Input bandwidth assumed for a node that reports none: 100 MB/s.
pub const DEFAULT_BANDWIDTH_BPS: f64 = 100e6;

/// A queued job as a policy sees it.
#[derive(Debug, Clone)]
pub struct PendingJob {
    pub id: i64,
    pub resources: Resources,
    /// `command` jobs only go to nodes that allow commands.
    pub is_command: bool,
    /// Content hashes and sizes of its inputs (for data locality).
    pub inputs: Vec<(String, u64)>,
    /// Submission time (ms since the epoch): FIFO order, waiting time, ageing against starvation.
    pub submitted_ms: i64,
    /// Predicted running time in seconds on a reference node (speed 1.0), input transfer
    /// excluded. Policies that use predictions divide it by [`NodeView::speed`].
    pub predicted_s: f64,
}

/// A node as a policy sees it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub id: String,
    /// What the node has in all.
    pub total: Resources,
    /// What is not held by assigned or running jobs.
    pub free: Resources,
    pub allow_commands: bool,
    /// Content hashes the node's cache holds.
    pub cached: HashSet<String>,
    /// Speed relative to the reference node of [`PendingJob::predicted_s`] (2.0 = twice as fast).
    pub speed: f64,
    /// Bytes per second at which the node fetches inputs its cache lacks.
    pub bandwidth_bps: f64,
    /// Predicted end (ms since the epoch) of the job holding each busy slot (a GPU; a CPU core
    /// on a node without GPUs), one entry per busy slot. Busy slots without an entry are assumed
    /// to free [`plan::UNKNOWN_BUSY_S`] from now, and so are ends already past (overdue jobs).
    pub busy_until_ms: Vec<i64>,
}

impl NodeView {
    /// Whether the node may run this kind of job at all (commands need an opt-in).
    pub fn accepts(&self, job: &PendingJob) -> bool {
        !job.is_command || self.allow_commands
    }
}

/// One job started on one node, or gang-scheduled on several at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub job: i64,
    /// `(index into the nodes slice given to the policy, resources taken there)`; more than one
    /// entry only for a multi-GPU job that fits on no single node.
    pub parts: Vec<(usize, Resources)>,
}

impl Placement {
    /// The node of a single-node placement.
    pub fn single_node(&self) -> Option<usize> {
        match self.parts.as_slice() {
            [(n, _)] => Some(*n),
            _ => None,
        }
    }
}

/// A placement policy. Implementations are deterministic for the same sequence of calls.
pub trait Policy {
    /// Returns the placements for this round: each job at most once, and the parts placed on a
    /// node fit in its free resources together. `jobs` come in submission order.
    fn place(&mut self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement>;

    /// A time at which the policy wants another round even if nothing happens (a delay expiring).
    fn next_wake_ms(&self) -> Option<i64> {
        None
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn place(&mut self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement> {
        (**self).place(now_ms, jobs, nodes)
    }

    fn next_wake_ms(&self) -> Option<i64> {
        (**self).next_wake_ms()
    }
}

#[cfg(test)]
pub(crate) mod testkit;
