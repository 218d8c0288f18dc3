//! Estimated start and finish of every queued job: the queue laid out in submission order on
//! the predicted timeline of the nodes' slots, each job where it would finish first. Policies
//! may reorder (shortest first, the GA), so this is the estimate a user sees, not a promise.

use crate::plan::{demand, Timeline};
use crate::{NodeView, PendingJob};

/// Seconds from now to the estimated start and finish of a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    pub start_s: f64,
    pub finish_s: f64,
    /// Index of the node it is expected on.
    pub node: usize,
}

/// One estimate per job (in the order given), `None` for a job no node can run.
pub fn queue_eta(jobs: &[PendingJob], nodes: &[NodeView], now_ms: i64) -> Vec<Option<Eta>> {
    let mut timeline = Timeline::new(nodes, now_ms);
    jobs.iter()
        .map(|job| {
            let best = (0..nodes.len())
                .filter(|&n| nodes[n].accepts(job) && nodes[n].total.fits(&job.resources))
                .map(|n| {
                    let start = timeline.start(n, demand(job, &nodes[n]));
                    let run = job.predicted_s.max(0.0) / nodes[n].speed.max(1e-6);
                    (n, start, start + run)
                })
                .filter(|(_, start, _)| start.is_finite())
                .min_by(|a, b| a.2.total_cmp(&b.2))?;
            let (n, start_s, finish_s) = best;
            timeline.take(n, demand(job, &nodes[n]), finish_s);
            Some(Eta {
                start_s,
                finish_s,
                node: n,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{job, node};

    #[test]
    fn jobs_queue_behind_each_other_on_a_full_node() {
        // One node with two cores, both free; three one-core jobs of 100 s.
        let nodes = vec![node("a", 2, 0)];
        let jobs: Vec<PendingJob> = (1..=3).map(|i| job(i, 1, 0)).collect();
        let eta = queue_eta(&jobs, &nodes, 0);
        let starts: Vec<f64> = eta.iter().map(|e| e.unwrap().start_s).collect();
        assert_eq!(starts, vec![0.0, 0.0, 100.0]);
        assert_eq!(eta[2].unwrap().finish_s, 200.0);
    }

    #[test]
    fn a_faster_node_is_preferred_and_impossible_jobs_have_no_eta() {
        let mut fast = node("fast", 1, 0);
        fast.speed = 4.0;
        let nodes = vec![node("slow", 1, 0), fast];
        let mut big = job(2, 1, 0);
        big.resources.cpus = 64;
        let eta = queue_eta(&[job(1, 1, 0), big], &nodes, 0);
        assert_eq!(eta[0].unwrap().node, 1);
        assert_eq!(eta[0].unwrap().finish_s, 25.0);
        assert_eq!(eta[1], None);
    }
}
