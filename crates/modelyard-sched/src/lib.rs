//! Placement policies: which queued job goes to which node, as a pure function of a snapshot.

use std::collections::HashSet;

use modelyard_core::job::Resources;

/// A queued job as a policy sees it.
#[derive(Debug, Clone)]
pub struct PendingJob {
    pub id: i64,
    pub resources: Resources,
    /// `command` jobs only go to nodes that allow commands.
    pub is_command: bool,
    /// Content hashes and sizes of its inputs (for data locality).
    pub inputs: Vec<(String, u64)>,
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
}

impl NodeView {
    fn accepts(&self, job: &PendingJob) -> bool {
        !job.is_command || self.allow_commands
    }
}

/// A placement policy. Implementations are deterministic for the same inputs.
pub trait Policy {
    /// Returns `(job id, node id)` placements for this round; each job at most once, and the
    /// jobs placed on a node fit in its free resources together.
    fn place(&mut self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView])
        -> Vec<(i64, String)>;
}

/// First in, first out: jobs start in submission order. A job that fits on no node right now
/// but would fit on an idle one holds back the jobs behind it; a job no node can ever run is
/// skipped so it cannot block the queue.
#[derive(Debug, Default, Clone)]
pub struct Fifo;

impl Policy for Fifo {
    fn place(
        &mut self,
        _now_ms: i64,
        jobs: &[PendingJob],
        nodes: &[NodeView],
    ) -> Vec<(i64, String)> {
        let mut free: Vec<Resources> = nodes.iter().map(|n| n.free).collect();
        let mut out = Vec::new();
        for job in jobs {
            // Among nodes where it fits now, the one with the most free CPUs (spreads load).
            let best = nodes
                .iter()
                .enumerate()
                .filter(|(i, n)| n.accepts(job) && free[*i].fits(&job.resources))
                .max_by_key(|(i, n)| (free[*i].cpus, std::cmp::Reverse(n.id.clone())));
            match best {
                Some((i, n)) => {
                    free[i] = free[i].minus(&job.resources);
                    out.push((job.id, n.id.clone()));
                }
                None if nodes
                    .iter()
                    .any(|n| n.accepts(job) && n.total.fits(&job.resources)) =>
                {
                    break
                }
                None => continue,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpus: u32, gpus: u32) -> Resources {
        Resources {
            cpus,
            memory_mb: 0,
            gpus,
        }
    }

    fn node(id: &str, free: Resources, commands: bool) -> NodeView {
        NodeView {
            id: id.into(),
            total: free,
            free,
            allow_commands: commands,
            cached: HashSet::new(),
        }
    }

    fn job(id: i64, r: Resources, cmd: bool) -> PendingJob {
        PendingJob {
            id,
            resources: r,
            is_command: cmd,
            inputs: vec![],
        }
    }

    #[test]
    fn places_in_order_within_capacity() {
        let nodes = [node("a", res(2, 0), true), node("b", res(1, 0), true)];
        let jobs: Vec<_> = (1..=5).map(|i| job(i, res(1, 0), false)).collect();
        let out = Fifo.place(0, &jobs, &nodes);
        assert_eq!(out, [(1, "a".to_owned()), (2, "a".into()), (3, "b".into())]);
    }

    #[test]
    fn head_of_line_waits_but_impossible_jobs_are_skipped() {
        let mut nodes = [node("a", res(2, 0), false)];
        nodes[0].free = res(1, 0);
        let jobs = [
            job(1, res(8, 0), false),
            job(2, res(2, 0), false),
            job(3, res(1, 0), false),
        ];
        // Job 1 can never run; job 2 fits an idle node, so it waits and holds job 3 back.
        assert_eq!(Fifo.place(0, &jobs, &nodes), Vec::<(i64, String)>::new());
        nodes[0].free = res(2, 0);
        assert_eq!(Fifo.place(0, &jobs, &nodes), [(2, "a".to_owned())]);
    }

    #[test]
    fn commands_only_on_nodes_that_allow_them() {
        let nodes = [
            node("safe", res(4, 0), false),
            node("open", res(1, 0), true),
        ];
        let jobs = [
            job(1, res(1, 0), true),
            job(2, res(1, 0), true),
            job(3, res(1, 0), false),
        ];
        let out = Fifo.place(0, &jobs, &nodes);
        assert_eq!(
            out,
            [(1, "open".to_owned())],
            "job 2 waits for the command node; FIFO holds job 3"
        );
        let only_safe = [node("safe", res(4, 0), false)];
        assert_eq!(
            Fifo.place(0, &jobs, &only_safe),
            [(3, "safe".to_owned())],
            "no node can ever run commands"
        );
    }
}
