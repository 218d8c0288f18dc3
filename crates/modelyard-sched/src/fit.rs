//! Whether and where a job fits *now*: single-node best fit, and gang placement of multi-GPU
//! jobs that fit on no single node onto the fewest nodes, all GPUs at once.

use modelyard_core::job::Resources;

use crate::{NodeView, PendingJob, Placement};

/// Whether the node could ever run the job alone (when idle).
pub fn fits_alone(job: &PendingJob, node: &NodeView) -> bool {
    node.accepts(job) && node.total.fits(&job.resources)
}

/// For a job that fits on no single node: the fewest nodes whose GPUs together can hold it
/// (`None` when no set of nodes can, or the job needs no GPUs).
pub fn gang_size(job: &PendingJob, nodes: &[NodeView]) -> Option<usize> {
    if job.resources.gpus == 0 {
        return None;
    }
    let mut totals: Vec<u32> = nodes
        .iter()
        .filter(|n| n.accepts(job) && n.total.gpus > 0)
        .map(|n| n.total.gpus)
        .collect();
    totals.sort_unstable_by(|a, b| b.cmp(a));
    let mut sum = 0;
    for (k, g) in totals.iter().enumerate() {
        sum += g;
        if sum >= job.resources.gpus {
            return Some(k + 1);
        }
    }
    None
}

/// How a job can ever run on this cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// On one node.
    Single,
    /// Gang-scheduled over this many nodes (the fewest that can hold it).
    Gang(usize),
    /// Never, on these nodes.
    Never,
}

pub fn shape(job: &PendingJob, nodes: &[NodeView]) -> Shape {
    if nodes.iter().any(|n| fits_alone(job, n)) {
        Shape::Single
    } else {
        gang_size(job, nodes).map_or(Shape::Never, Shape::Gang)
    }
}

/// The share of a gang job's CPUs and memory that goes with `gpus` of its GPUs.
pub fn share(need: &Resources, gpus: u32) -> Resources {
    let part = |x: u64| (x * u64::from(gpus)).div_ceil(u64::from(need.gpus.max(1)));
    Resources {
        cpus: part(u64::from(need.cpus)) as u32,
        memory_mb: part(need.memory_mb),
        gpus,
    }
}

/// Single-node best fit among nodes where the job fits now: fewest GPUs left over (keeps whole
/// nodes free for big jobs), then most free CPUs (spreads CPU jobs), then lowest index.
pub fn best_fit(job: &PendingJob, nodes: &[NodeView], free: &[Resources]) -> Option<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| n.accepts(job) && free[*i].fits(&job.resources))
        .min_by_key(|(i, _)| {
            (
                free[*i].gpus - job.resources.gpus,
                std::cmp::Reverse(free[*i].cpus),
                *i,
            )
        })
        .map(|(i, _)| i)
}

/// A gang placement over exactly `k` nodes now, taking the nodes with the most free GPUs.
pub fn gang_fit(
    job: &PendingJob,
    nodes: &[NodeView],
    free: &[Resources],
    k: usize,
) -> Option<Vec<(usize, Resources)>> {
    let mut cand: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].accepts(job) && free[i].gpus > 0)
        .collect();
    cand.sort_by_key(|&i| (std::cmp::Reverse(free[i].gpus), i));
    let mut left = job.resources.gpus;
    let mut parts = Vec::new();
    for &i in cand.iter().take(k) {
        let g = left.min(free[i].gpus);
        let r = share(&job.resources, g);
        if !free[i].fits(&r) {
            return None;
        }
        parts.push((i, r));
        left -= g;
        if left == 0 {
            return Some(parts);
        }
    }
    None
}

/// Places the job now if it fits — on `prefer` when given and it fits there, else by
/// [`best_fit`] — and takes its resources out of `free`.
pub fn place_now(
    job: &PendingJob,
    nodes: &[NodeView],
    free: &mut [Resources],
    shape: Shape,
    prefer: Option<usize>,
) -> Option<Placement> {
    let parts = match shape {
        Shape::Never => return None,
        Shape::Single => {
            let n = match prefer {
                Some(n) if nodes[n].accepts(job) && free[n].fits(&job.resources) => n,
                Some(_) => return None,
                None => best_fit(job, nodes, free)?,
            };
            vec![(n, job.resources)]
        }
        Shape::Gang(k) => gang_fit(job, nodes, free, k)?,
    };
    for (n, r) in &parts {
        free[*n] = free[*n].minus(r);
    }
    Some(Placement { job: job.id, parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{job, node};

    #[test]
    fn gang_uses_fewest_nodes() {
        let nodes: Vec<_> = (0..4).map(|i| node(&format!("n{i}"), 0, 8)).collect();
        let mut free: Vec<_> = nodes.iter().map(|n| n.free).collect();
        free[0].gpus = 3;
        let big = job(1, 0, 16);
        assert_eq!(shape(&big, &nodes), Shape::Gang(2));
        let p = place_now(&big, &nodes, &mut free, Shape::Gang(2), None).unwrap();
        assert_eq!(p.parts.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(free[1].gpus + free[2].gpus, 0);
        let huge = job(2, 0, 64);
        assert_eq!(shape(&huge, &nodes), Shape::Never);
    }

    #[test]
    fn best_fit_keeps_whole_nodes_free() {
        let nodes = [node("a", 4, 8), node("b", 4, 8)];
        let mut free: Vec<_> = nodes.iter().map(|n| n.free).collect();
        free[1].gpus = 2;
        assert_eq!(best_fit(&job(1, 1, 1), &nodes, &free), Some(1));
        assert_eq!(best_fit(&job(1, 1, 4), &nodes, &free), Some(0));
    }
}
