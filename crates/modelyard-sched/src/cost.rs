//! Predicted cost of running a job on a node: running time scaled by node speed, plus the time
//! to fetch the inputs the node's cache lacks.

use std::collections::HashMap;

use crate::{NodeView, PendingJob};

/// Bytes of the job's inputs that the node's cache lacks.
pub fn missing_bytes(job: &PendingJob, node: &NodeView) -> u64 {
    job.inputs
        .iter()
        .filter(|(hash, _)| !node.cached.contains(hash))
        .map(|(_, size)| *size)
        .sum()
}

/// Predicted seconds on the node from start to finish: transfer, then the run itself.
pub fn seconds_on(job: &PendingJob, node: &NodeView, missing: u64) -> f64 {
    job.predicted_s.max(0.0) / node.speed.max(1e-6) + missing as f64 / node.bandwidth_bps.max(1.0)
}

/// Per-round table of predicted seconds and missing bytes for some jobs × all nodes.
///
/// Cached-ness is looked up once per distinct input hash and node, not once per job and node,
/// so a round over many jobs that share datasets stays cheap.
#[derive(Debug, Clone)]
pub struct CostTable {
    pub nodes: usize,
    /// `seconds[j * nodes + n]`: predicted seconds of job `j` alone on node `n`; infinite where
    /// the node can never run it alone (too small, or commands not allowed).
    pub seconds: Vec<f64>,
    /// `missing[j * nodes + n]`: input bytes node `n` lacks for job `j`.
    pub missing: Vec<u64>,
}

impl CostTable {
    pub fn build(jobs: &[&PendingJob], nodes: &[NodeView]) -> Self {
        let n = nodes.len();
        let mut cached: HashMap<&str, Vec<bool>> = HashMap::new();
        let mut seconds = Vec::with_capacity(jobs.len() * n);
        let mut missing = Vec::with_capacity(jobs.len() * n);
        for job in jobs {
            for (hash, _) in &job.inputs {
                cached
                    .entry(hash.as_str())
                    .or_insert_with(|| nodes.iter().map(|v| v.cached.contains(hash)).collect());
            }
            let held: Vec<(&Vec<bool>, u64)> = job
                .inputs
                .iter()
                .map(|(h, s)| (&cached[h.as_str()], *s))
                .collect();
            for (i, node) in nodes.iter().enumerate() {
                let miss: u64 = held.iter().filter(|(c, _)| !c[i]).map(|(_, s)| *s).sum();
                let runnable = node.accepts(job) && node.total.fits(&job.resources);
                seconds.push(if runnable {
                    seconds_on(job, node, miss)
                } else {
                    f64::INFINITY
                });
                missing.push(miss);
            }
        }
        Self {
            nodes: n,
            seconds,
            missing,
        }
    }

    pub fn seconds(&self, job: usize, node: usize) -> f64 {
        self.seconds[job * self.nodes + node]
    }

    pub fn missing(&self, job: usize, node: usize) -> u64 {
        self.missing[job * self.nodes + node]
    }

    /// Makes node `node` unusable for job `job` this round (delay scheduling's restriction).
    pub fn forbid(&mut self, job: usize, node: usize) {
        self.seconds[job * self.nodes + node] = f64::INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{job, node};

    #[test]
    fn transfer_and_speed_add_up() {
        let mut fast = node("fast", 0, 8);
        fast.speed = 2.0;
        fast.bandwidth_bps = 100.0;
        fast.cached.insert("a".into());
        let mut j = job(1, 0, 1);
        j.predicted_s = 100.0;
        j.inputs = vec![("a".into(), 1000), ("b".into(), 500)];
        assert_eq!(missing_bytes(&j, &fast), 500);
        assert_eq!(seconds_on(&j, &fast, 500), 55.0);
        let small = node("small", 0, 0);
        let t = CostTable::build(&[&j], &[fast, small]);
        assert_eq!(t.seconds(0, 0), 55.0);
        assert!(t.seconds(0, 1).is_infinite(), "no GPU there");
        assert_eq!(t.missing(0, 1), 1500);
    }
}
