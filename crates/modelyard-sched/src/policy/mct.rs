//! Greedy minimum completion time: each job, in submission order, to the node where it is
//! predicted to finish first.

use crate::cost::{self, CostTable};
use crate::fit::{self, Shape};
use crate::plan::{self, Timeline, NOW_EPS};
use crate::{NodeView, PendingJob, Placement, Policy};

/// Greedy minimum completion time (list scheduling). Jobs in submission order are planned one by
/// one onto the node where they are predicted to finish earliest — counting when the node's
/// slots free, its speed, and the transfer of inputs it lacks — and hold those slots in the
/// plan; jobs whose planned start is now are placed. At most `window` jobs are planned a round.
#[derive(Debug, Clone)]
pub struct Mct {
    pub window: usize,
}

impl Default for Mct {
    fn default() -> Self {
        Self { window: 1000 }
    }
}

impl Policy for Mct {
    fn place(&mut self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement> {
        let mut tl = Timeline::new(nodes, now_ms);
        let mut free: Vec<_> = nodes.iter().map(|n| n.free).collect();
        let mut out = Vec::new();
        for job in jobs.iter().take(self.window) {
            if tl.free_now() == 0 && job.resources.gpus > 0 {
                continue; // nothing more can start now; planning further changes nothing
            }
            match fit::shape(job, nodes) {
                Shape::Never => {}
                Shape::Single => {
                    let best = (0..nodes.len())
                        .filter(|&n| fit::fits_alone(job, &nodes[n]))
                        .map(|n| {
                            let miss = cost::missing_bytes(job, &nodes[n]);
                            let start = tl.start(n, plan::demand(job, &nodes[n]));
                            (start + cost::seconds_on(job, &nodes[n], miss), start, n)
                        })
                        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
                    if let Some((end, start, n)) = best {
                        tl.take(n, plan::demand(job, &nodes[n]), end);
                        if start <= NOW_EPS {
                            out.extend(fit::place_now(
                                job,
                                nodes,
                                &mut free,
                                Shape::Single,
                                Some(n),
                            ));
                        }
                    }
                }
                Shape::Gang(k) => {
                    let (start, parts) = tl.gang_start(job, nodes);
                    let table = CostTable::build(&[job], nodes);
                    let secs = parts
                        .iter()
                        .map(|&(n, _)| {
                            job.predicted_s / nodes[n].speed
                                + table.missing(0, n) as f64 / nodes[n].bandwidth_bps
                        })
                        .fold(0.0, f64::max);
                    for &(n, s) in &parts {
                        tl.take(n, s, start + secs);
                    }
                    if start <= NOW_EPS {
                        out.extend(fit::place_now(job, nodes, &mut free, Shape::Gang(k), None));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{assert_valid, job, node, pairs};

    #[test]
    fn prefers_the_node_that_finishes_first() {
        let mut slow = node("slow", 0, 1);
        slow.speed = 0.5;
        let mut cached = node("cached", 0, 1);
        cached.cached.insert("d".into());
        let fast = {
            let mut n = node("fast", 0, 1);
            n.speed = 2.0;
            n
        };
        let nodes = [slow, cached, fast];
        let mut j1 = job(1, 0, 1);
        j1.inputs = vec![("d".into(), 10_000_000_000)]; // 100 s at 100 MB/s
        let j2 = job(2, 0, 1);
        let jobs = [j1, j2];
        let out = Mct::default().place(0, &jobs, &nodes);
        assert_valid(&jobs, &nodes, &out);
        // Job 1: cached 100 s vs fast 50 + 100 s. Job 2: fast 50 s vs slow 200 s.
        assert_eq!(
            pairs(&nodes, &out),
            [(1, "cached".to_owned()), (2, "fast".into())]
        );
    }

    #[test]
    fn waits_for_a_busy_node_when_that_is_faster() {
        let mut fast = node("fast", 0, 1);
        fast.speed = 10.0;
        fast.free.gpus = 0;
        fast.busy_until_ms = vec![5_000];
        let slow = node("slow", 0, 1);
        let nodes = [fast, slow];
        let mut j = job(1, 0, 1);
        j.predicted_s = 1000.0;
        // Fast: 5 + 100 s; slow: 1000 s. Nothing starts now.
        assert!(Mct::default().place(0, &[j], &nodes).is_empty());
    }
}
