//! Builders and checks shared by the crate's unit tests.

use std::collections::{HashMap, HashSet};

use modelyard_core::job::Resources;

use crate::{NodeView, PendingJob, Placement, DEFAULT_BANDWIDTH_BPS};

pub fn res(cpus: u32, gpus: u32) -> Resources {
    Resources {
        cpus,
        memory_mb: 0,
        gpus,
    }
}

/// An idle node with `cpus` cores and `gpus` GPUs, speed 1, commands allowed.
pub fn node(id: &str, cpus: u32, gpus: u32) -> NodeView {
    NodeView {
        id: id.into(),
        total: res(cpus, gpus),
        free: res(cpus, gpus),
        allow_commands: true,
        cached: HashSet::new(),
        speed: 1.0,
        bandwidth_bps: DEFAULT_BANDWIDTH_BPS,
        busy_until_ms: vec![],
    }
}

/// A job submitted at `id` seconds, predicted to run 100 s.
pub fn job(id: i64, cpus: u32, gpus: u32) -> PendingJob {
    PendingJob {
        id,
        resources: res(cpus, gpus),
        is_command: false,
        inputs: vec![],
        submitted_ms: id * 1000,
        predicted_s: 100.0,
    }
}

/// Panics if a placement names a job twice or overfills a node.
pub fn assert_valid(jobs: &[PendingJob], nodes: &[NodeView], out: &[Placement]) {
    let mut seen = HashSet::new();
    let mut used: HashMap<usize, Resources> = HashMap::new();
    for p in out {
        assert!(seen.insert(p.job), "job {} placed twice", p.job);
        let j = jobs.iter().find(|j| j.id == p.job).expect("a known job");
        let gpus: u32 = p.parts.iter().map(|(_, r)| r.gpus).sum();
        assert_eq!(gpus, j.resources.gpus, "gang gets all its GPUs");
        for (n, r) in &p.parts {
            assert!(nodes[*n].accepts(j));
            let u = used.entry(*n).or_default();
            u.cpus += r.cpus;
            u.memory_mb += r.memory_mb;
            u.gpus += r.gpus;
            assert!(nodes[*n].free.fits(u), "node {} overfilled", nodes[*n].id);
        }
    }
}

/// `(job, node id)` of single-node placements, for compact assertions.
pub fn pairs(nodes: &[NodeView], out: &[Placement]) -> Vec<(i64, String)> {
    out.iter()
        .map(|p| {
            (
                p.job,
                nodes[p.single_node().expect("single node")].id.clone(),
            )
        })
        .collect()
}
