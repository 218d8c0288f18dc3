//! Delay scheduling: a job may decline nodes that lack its inputs for a bounded wait, so that it
//! can start on a node that already holds them.

use std::collections::{HashMap, HashSet};

use crate::cost::CostTable;
use crate::plan::{self, Timeline};
use crate::{NodeView, PendingJob};

/// How long a job may keep declining non-local nodes.
#[derive(Debug, Clone, Copy)]
pub struct DelayConfig {
    /// Seconds a job may spend declining free capacity on nodes without its inputs, added up
    /// over the rounds in which it declines (time it waits for other reasons, behind jobs ahead
    /// of it, does not count). After that it takes any node, so the extra wait is bounded.
    pub max_wait_s: f64,
}

impl Default for DelayConfig {
    fn default() -> Self {
        Self { max_wait_s: 3600.0 }
    }
}

/// A job's declining so far.
#[derive(Debug, Clone, Copy)]
struct Declined {
    spent_ms: i64,
    /// The round in which it last declined.
    last_ms: i64,
}

/// What delay scheduling remembers between rounds.
#[derive(Debug, Clone, Default)]
pub struct DelayState {
    pub cfg: DelayConfig,
    declined: HashMap<i64, Declined>,
    /// The previous round's time: a job that declined then and now declined all along.
    prev_round_ms: Option<i64>,
    next_wake: Option<i64>,
}

impl DelayState {
    pub fn new(cfg: DelayConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    fn left_s(&self, id: i64) -> f64 {
        let spent = self.declined.get(&id).map_or(0, |d| d.spent_ms);
        self.cfg.max_wait_s - spent as f64 / 1000.0
    }

    /// The nodes job `j` (row `j` of `costs`) should be limited to this round, or `None` to let
    /// it go anywhere. A job is limited to the nodes that hold all its inputs when such nodes
    /// exist and could run it, some other node could too, its declining budget is not spent,
    /// and a local node is predicted to free within what is left of that budget (waiting
    /// longer would cost more than the transfer it saves, as far as the policy can tell).
    pub fn local_only(
        &self,
        job: &PendingJob,
        j: usize,
        costs: &CostTable,
        tl: &Timeline,
        nodes: &[NodeView],
    ) -> Option<Vec<usize>> {
        if job.inputs.iter().all(|(_, size)| *size == 0) {
            return None;
        }
        let left_s = self.left_s(job.id);
        if left_s <= 0.0 {
            return None;
        }
        let runnable: Vec<usize> = (0..nodes.len())
            .filter(|&n| costs.seconds(j, n).is_finite())
            .collect();
        let local: Vec<usize> = runnable
            .iter()
            .copied()
            .filter(|&n| costs.missing(j, n) == 0)
            .collect();
        if local.is_empty() || local.len() == runnable.len() {
            return None;
        }
        let soonest = local
            .iter()
            .map(|&n| tl.start(n, plan::demand(job, &nodes[n])))
            .fold(f64::INFINITY, f64::min);
        (soonest <= left_s).then_some(local)
    }

    /// Records the round's outcome: `declined` jobs spend budget for the time since the previous
    /// round if they declined then too; jobs no longer pending are forgotten.
    pub fn after_round(&mut self, now_ms: i64, pending: &[PendingJob], declined: &[i64]) {
        let prev = self.prev_round_ms;
        for &id in declined {
            let d = self.declined.entry(id).or_insert(Declined {
                spent_ms: 0,
                last_ms: now_ms,
            });
            if Some(d.last_ms) == prev {
                d.spent_ms += now_ms - d.last_ms;
            }
            d.last_ms = now_ms;
        }
        if self.declined.len() > declined.len() {
            let ids: HashSet<i64> = pending.iter().map(|j| j.id).collect();
            self.declined.retain(|id, _| ids.contains(id));
        }
        self.prev_round_ms = Some(now_ms);
        let wait_ms = (self.cfg.max_wait_s * 1000.0).ceil() as i64;
        self.next_wake = declined
            .iter()
            .map(|id| now_ms + wait_ms - self.declined[id].spent_ms)
            .filter(|&t| t > now_ms)
            .min();
    }

    /// When the budget of a job declining now runs out (if no other round comes first).
    pub fn next_wake_ms(&self) -> Option<i64> {
        self.next_wake
    }

    /// Forgets a job once it is placed.
    pub fn placed(&mut self, id: i64) {
        self.declined.remove(&id);
    }
}
