//! A predicted timeline of each node's slots (GPUs; CPU cores on nodes without GPUs), used to
//! plan a queue into the future: when a job could start on a node, and what it then holds.

use modelyard_core::job::Resources;

use crate::{NodeView, PendingJob};

/// Seconds a busy slot is assumed to stay busy when nobody predicted its end, or when its job
/// has already outrun its prediction.
pub const UNKNOWN_BUSY_S: f64 = 600.0;

/// Slot times at or below this many seconds from now count as free now.
pub const NOW_EPS: f64 = 1e-9;

/// Slots a node has: its GPUs, or its CPU cores when it has none.
pub fn slots_of(node: &NodeView) -> usize {
    if node.total.gpus > 0 {
        node.total.gpus as usize
    } else {
        node.total.cpus.max(1) as usize
    }
}

/// Slots a job holds on a node: its GPUs; CPU jobs hold cores on GPU-less nodes and no slot on
/// GPU nodes (there they are limited by the now-check of CPUs and memory only).
pub fn demand(job: &PendingJob, node: &NodeView) -> usize {
    slots_held(&job.resources, &node.total)
}

/// Slots a job asking for `need` holds on a node offering `total` (see [`demand`]).
pub fn slots_held(need: &Resources, total: &Resources) -> usize {
    if need.gpus > 0 {
        need.gpus as usize
    } else if total.gpus > 0 {
        0
    } else {
        need.cpus.max(1) as usize
    }
}

/// For every node, the times (seconds from now) at which each slot frees, sorted ascending.
#[derive(Debug, Clone)]
pub struct Timeline {
    off: Vec<usize>,
    t: Vec<f64>,
    free_now: usize,
}

impl Timeline {
    pub fn new(nodes: &[NodeView], now_ms: i64) -> Self {
        let mut off = Vec::with_capacity(nodes.len() + 1);
        let mut t = Vec::new();
        let mut free_now = 0;
        for node in nodes {
            off.push(t.len());
            let slots = slots_of(node);
            let free = if node.total.gpus > 0 {
                node.free.gpus
            } else {
                node.free.cpus
            } as usize;
            let free = free.min(slots);
            free_now += free;
            let start = t.len();
            t.extend(std::iter::repeat_n(0.0, free));
            let mut busy: Vec<f64> = node
                .busy_until_ms
                .iter()
                .map(|&e| {
                    if e > now_ms {
                        (e - now_ms) as f64 / 1000.0
                    } else {
                        UNKNOWN_BUSY_S // overdue: its prediction was wrong, no better guess
                    }
                })
                .collect();
            busy.sort_by(f64::total_cmp);
            busy.resize(slots - free, UNKNOWN_BUSY_S);
            t.extend(busy);
            t[start..].sort_by(f64::total_cmp);
        }
        off.push(t.len());
        Self { off, t, free_now }
    }

    pub fn nodes(&self) -> usize {
        self.off.len() - 1
    }

    /// Slots free right now on all nodes together (in this plan).
    pub fn free_now(&self) -> usize {
        self.free_now
    }

    pub fn slots(&self, node: usize) -> &[f64] {
        &self.t[self.off[node]..self.off[node + 1]]
    }

    /// Slots of the node free now (in this plan).
    pub fn free_now_on(&self, node: usize) -> usize {
        self.slots(node).partition_point(|&x| x <= NOW_EPS)
    }

    /// Earliest time `k` slots of the node are free together (infinite if it has fewer).
    pub fn start(&self, node: usize, k: usize) -> f64 {
        if k == 0 {
            return 0.0;
        }
        let s = self.slots(node);
        if k > s.len() {
            f64::INFINITY
        } else {
            s[k - 1]
        }
    }

    /// Holds the node's `k` earliest slots until `end`.
    pub fn take(&mut self, node: usize, k: usize, end: f64) {
        if k == 0 {
            return;
        }
        let s = &mut self.t[self.off[node]..self.off[node + 1]];
        let k = k.min(s.len());
        self.free_now -= s[..k].iter().filter(|&&x| x <= NOW_EPS).count();
        if end <= NOW_EPS {
            self.free_now += k; // a job predicted to take no time frees its slots at once
        }
        // Shift the rest left over the k taken, then put k copies of `end` where they sort.
        let pos = s[k..].partition_point(|&x| x <= end);
        s.copy_within(k..k + pos, 0);
        for x in &mut s[pos..pos + k] {
            *x = end;
        }
    }

    /// Copies another timeline of the same nodes into this one without reallocating.
    pub fn reset_from(&mut self, other: &Timeline) {
        self.t.copy_from_slice(&other.t);
        self.free_now = other.free_now;
    }

    /// For a gang job: the nodes (with slot counts) that together can start it earliest, taking
    /// nodes in order of when they are wholly free, and that start time.
    pub fn gang_start(&self, job: &PendingJob, nodes: &[NodeView]) -> (f64, Vec<(usize, usize)>) {
        let mut cand: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].accepts(job) && nodes[i].total.gpus > 0)
            .collect();
        cand.sort_by(|&a, &b| {
            let (sa, sb) = (self.slots(a), self.slots(b));
            sa[sa.len() - 1]
                .total_cmp(&sb[sb.len() - 1])
                .then(a.cmp(&b))
        });
        let mut left = job.resources.gpus as usize;
        let mut parts = Vec::new();
        let mut start: f64 = 0.0;
        for i in cand {
            let k = left.min(self.slots(i).len());
            start = start.max(self.start(i, k));
            parts.push((i, k));
            left -= k;
            if left == 0 {
                return (start, parts);
            }
        }
        (f64::INFINITY, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{job, node};

    #[test]
    fn slots_free_and_fill_in_order() {
        let mut n = node("a", 0, 4);
        n.free.gpus = 1;
        n.busy_until_ms = vec![30_000, 10_000];
        let mut tl = Timeline::new(&[n], 0);
        assert_eq!(tl.slots(0), [0.0, 10.0, 30.0, UNKNOWN_BUSY_S]);
        assert_eq!(tl.free_now(), 1);
        assert_eq!(tl.start(0, 2), 10.0);
        tl.take(0, 2, 20.0);
        assert_eq!(tl.slots(0), [20.0, 20.0, 30.0, UNKNOWN_BUSY_S]);
        assert_eq!(tl.free_now(), 0);
        assert!(tl.start(0, 5).is_infinite());
        tl.take(0, 1, 1000.0);
        assert_eq!(tl.slots(0), [20.0, 30.0, UNKNOWN_BUSY_S, 1000.0]);
    }

    #[test]
    fn gang_waits_for_whole_nodes() {
        let mut a = node("a", 0, 8);
        a.free.gpus = 0;
        a.busy_until_ms = vec![50_000; 8];
        let b = node("b", 0, 8);
        let c = node("c", 0, 8);
        let tl = Timeline::new(&[a, b, c], 0);
        let nodes = [node("a", 0, 8), node("b", 0, 8), node("c", 0, 8)];
        let (start, parts) = tl.gang_start(&job(1, 0, 16), &nodes);
        assert_eq!(start, 0.0);
        assert_eq!(parts, [(1, 8), (2, 8)]);
    }
}
