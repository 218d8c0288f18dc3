//! Shortest predicted job first, skipping jobs that do not fit now.

use crate::{NodeView, PendingJob, Placement, Policy};

/// Shortest predicted first: jobs in ascending `predicted_s` (ties by submission) each start
/// where they fit now (best fit); a job that does not fit is skipped, not waited for. Ignores
/// node speed and data locality; long jobs can wait indefinitely under load.
#[derive(Debug, Default, Clone)]
pub struct Sjf;

impl Policy for Sjf {
    fn place(&mut self, _now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement> {
        if nodes.iter().all(|n| n.free.gpus == 0 && n.free.cpus == 0) {
            return Vec::new();
        }
        let mut order: Vec<&PendingJob> = jobs.iter().collect();
        order.sort_by(|a, b| {
            a.predicted_s
                .total_cmp(&b.predicted_s)
                .then(a.submitted_ms.cmp(&b.submitted_ms))
                .then(a.id.cmp(&b.id))
        });
        super::greedy_now(order, nodes, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{assert_valid, job, node, pairs};

    #[test]
    fn shortest_first_and_skips_what_does_not_fit() {
        let nodes = [node("a", 0, 2)];
        let mut jobs: Vec<_> = [(1, 300.0, 1), (2, 10.0, 2), (3, 20.0, 1), (4, 5.0, 1)]
            .into_iter()
            .map(|(id, p, g)| {
                let mut j = job(id, 0, g);
                j.predicted_s = p;
                j
            })
            .collect();
        let out = Sjf.place(0, &jobs, &nodes);
        assert_valid(&jobs, &nodes, &out);
        // 4 (5 s) takes a GPU; 2 (10 s) needs two and is skipped; 3 (20 s) takes the other.
        assert_eq!(pairs(&nodes, &out), [(4, "a".to_owned()), (3, "a".into())]);
        jobs.reverse();
        assert_eq!(
            Sjf.place(0, &jobs, &nodes),
            out,
            "input order does not matter"
        );
    }
}
