//! First in, first out, with strict head-of-line blocking.

use crate::{NodeView, PendingJob, Placement, Policy};

/// First in, first out: jobs start in submission order. A job that fits on no node right now
/// but would fit on an idle one (or a gang of them) holds back the jobs behind it; a job no node
/// can ever run is skipped so it cannot block the queue.
#[derive(Debug, Default, Clone)]
pub struct Fifo;

impl Policy for Fifo {
    fn place(&mut self, _now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement> {
        super::greedy_now(jobs, nodes, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{assert_valid, job, node, pairs, res};

    fn cpu_node(id: &str, cpus: u32, commands: bool) -> NodeView {
        let mut n = node(id, cpus, 0);
        n.allow_commands = commands;
        n
    }

    fn cmd(id: i64) -> PendingJob {
        let mut j = job(id, 1, 0);
        j.is_command = true;
        j
    }

    #[test]
    fn places_in_order_within_capacity() {
        let nodes = [cpu_node("a", 2, true), cpu_node("b", 1, true)];
        let jobs: Vec<_> = (1..=5).map(|i| job(i, 1, 0)).collect();
        let out = Fifo.place(0, &jobs, &nodes);
        assert_valid(&jobs, &nodes, &out);
        assert_eq!(
            pairs(&nodes, &out),
            [(1, "a".to_owned()), (2, "a".into()), (3, "b".into())]
        );
    }

    #[test]
    fn head_of_line_waits_but_impossible_jobs_are_skipped() {
        let mut nodes = [cpu_node("a", 2, false)];
        nodes[0].free = res(1, 0);
        let jobs = [job(1, 8, 0), job(2, 2, 0), job(3, 1, 0)];
        // Job 1 can never run; job 2 fits an idle node, so it waits and holds job 3 back.
        assert!(Fifo.place(0, &jobs, &nodes).is_empty());
        nodes[0].free = res(2, 0);
        assert_eq!(
            pairs(&nodes, &Fifo.place(0, &jobs, &nodes)),
            [(2, "a".to_owned())]
        );
    }

    #[test]
    fn commands_only_on_nodes_that_allow_them() {
        let nodes = [cpu_node("safe", 4, false), cpu_node("open", 1, true)];
        let jobs = [cmd(1), cmd(2), job(3, 1, 0)];
        assert_eq!(
            pairs(&nodes, &Fifo.place(0, &jobs, &nodes)),
            [(1, "open".to_owned())],
            "job 2 waits for the command node; FIFO holds job 3"
        );
        let only_safe = [cpu_node("safe", 4, false)];
        assert_eq!(
            pairs(&only_safe, &Fifo.place(0, &jobs, &only_safe)),
            [(3, "safe".to_owned())],
            "no node can ever run commands"
        );
    }

    #[test]
    fn gang_job_at_the_head_blocks_until_nodes_drain() {
        let mut nodes = [node("a", 0, 8), node("b", 0, 8)];
        nodes[0].free.gpus = 7;
        let jobs = [job(1, 0, 16), job(2, 0, 1)];
        assert!(Fifo.place(0, &jobs, &nodes).is_empty());
        nodes[0].free.gpus = 8;
        let out = Fifo.place(0, &jobs, &nodes);
        assert_valid(&jobs, &nodes, &out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].parts.len(), 2);
    }
}
