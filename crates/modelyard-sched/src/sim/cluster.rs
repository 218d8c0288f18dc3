//! The simulated cluster: node specs, and each node's input cache (least recently used first
//! out), mirrored into the [`NodeView`]s the policy sees.

use std::collections::{BTreeMap, HashMap, HashSet};

use modelyard_core::job::Resources;

use crate::NodeView;

/// One simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub gpus: u32,
    /// Speed relative to the trace's hardware (the trace's durations are at speed 1.0).
    pub speed: f64,
    /// Bytes the input cache holds.
    pub cache_bytes: u64,
    /// Bytes per second at which missing inputs are fetched.
    pub bandwidth_bps: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub nodes: Vec<NodeSpec>,
}

/// Relative speeds given to nodes in turn by [`ClusterSpec::uniform`]: three hardware
/// generations averaging the trace's own speed.
pub const SPEEDS: [f64; 3] = [0.8, 1.0, 1.2];

/// Default cache per node: 2 TB (a DGX-1 of the trace's era has 7 TB of local SSD).
pub const CACHE_BYTES: u64 = 2_000_000_000_000;

/// Default fetch bandwidth per node: 250 MB/s (2 Gb/s from the blob store).
pub const BANDWIDTH_BPS: f64 = 250e6;

impl ClusterSpec {
    /// `nodes` nodes of `gpus_per_node` GPUs, speeds cycling through [`SPEEDS`], each with a
    /// [`CACHE_BYTES`] cache fetching at [`BANDWIDTH_BPS`].
    pub fn uniform(nodes: usize, gpus_per_node: u32) -> Self {
        Self {
            nodes: (0..nodes)
                .map(|i| NodeSpec {
                    gpus: gpus_per_node,
                    speed: SPEEDS[i % SPEEDS.len()],
                    cache_bytes: CACHE_BYTES,
                    bandwidth_bps: BANDWIDTH_BPS,
                })
                .collect(),
        }
    }

    pub fn total_gpus(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.gpus)).sum()
    }

    /// The policies' view of the idle cluster (ids `n000`, `n001`, …).
    pub fn views(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let r = Resources {
                    cpus: 8 * n.gpus,
                    memory_mb: 64 * 1024 * u64::from(n.gpus),
                    gpus: n.gpus,
                };
                NodeView {
                    id: format!("n{i:03}"),
                    total: r,
                    free: r,
                    allow_commands: true,
                    cached: HashSet::new(),
                    speed: n.speed,
                    bandwidth_bps: n.bandwidth_bps,
                    busy_until_ms: Vec::new(),
                }
            })
            .collect()
    }
}

/// A node's cache: what it holds, evicting the least recently used to make room.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    capacity: u64,
    used: u64,
    clock: u64,
    items: HashMap<String, (u64, u64)>,
    by_age: BTreeMap<u64, String>,
}

impl Cache {
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Marks `name` used now, fetching it first if absent (evicting as needed, mirrored into
    /// `view`). An item larger than the whole cache is used without being kept.
    pub fn touch(&mut self, name: &str, size: u64, view: &mut HashSet<String>) {
        self.clock += 1;
        if let Some((_, age)) = self.items.get_mut(name) {
            self.by_age.remove(age);
            *age = self.clock;
            self.by_age.insert(self.clock, name.to_owned());
            return;
        }
        if size > self.capacity {
            return;
        }
        while self.used + size > self.capacity {
            let (_, old) = self.by_age.pop_first().expect("used > 0 means items");
            let (s, _) = self.items.remove(&old).expect("indexed");
            self.used -= s;
            view.remove(&old);
        }
        self.used += size;
        self.items.insert(name.to_owned(), (size, self.clock));
        self.by_age.insert(self.clock, name.to_owned());
        view.insert(name.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_oldest() {
        let mut c = Cache::new(100);
        let mut v = HashSet::new();
        c.touch("a", 40, &mut v);
        c.touch("b", 40, &mut v);
        c.touch("a", 40, &mut v);
        c.touch("c", 40, &mut v);
        assert_eq!(v, ["a", "c"].map(String::from).into());
        c.touch("huge", 1000, &mut v);
        assert_eq!(v.len(), 2);
    }
}
