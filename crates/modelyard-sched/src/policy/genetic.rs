//! The genetic algorithm's machinery: a chromosome (job order + node per job), decoding it into
//! a predicted schedule and its fitness, and the operators (selection, crossover, mutation,
//! capacity repair) with the generation loop.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::cost::CostTable;
use crate::plan::{self, Timeline};
use crate::{NodeView, PendingJob};

use super::ga::GaConfig;

/// Finish time charged to a job the plan cannot place at all, so fitness stays comparable.
const UNPLANNABLE_S: f64 = 1e9;

/// Lower is better: the sum of predicted finish times (seconds from now) — that is, the mean
/// completion time up to a constant — then the makespan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fitness {
    pub total: f64,
    pub makespan: f64,
}

impl Fitness {
    pub fn cmp(&self, other: &Fitness) -> std::cmp::Ordering {
        self.total
            .total_cmp(&other.total)
            .then(self.makespan.total_cmp(&other.makespan))
    }
}

/// `order`: positions of the round's jobs (indices into [`Problem::jobs`]) in planning order;
/// `node[j]`: the node job `j` is planned on (ignored for gang jobs, which take the nodes that
/// free first).
#[derive(Debug, Clone)]
pub(crate) struct Chromosome {
    pub order: Vec<u32>,
    pub node: Vec<u32>,
    pub fitness: Fitness,
}

/// One round's jobs and nodes, with everything the GA looks up often precomputed.
pub(crate) struct Problem<'a> {
    pub jobs: Vec<&'a PendingJob>,
    pub nodes: &'a [NodeView],
    pub costs: CostTable,
    pub gang: Vec<bool>,
    pub urgent: Vec<bool>,
    /// Nodes where each job can run alone (finite cost).
    pub feasible: Vec<Vec<u32>>,
    /// The feasible node with the lowest predicted seconds, queue ignored.
    pub best_node: Vec<u32>,
    pub tl0: Timeline,
}

impl<'a> Problem<'a> {
    pub fn new(
        jobs: Vec<&'a PendingJob>,
        nodes: &'a [NodeView],
        costs: CostTable,
        gang: Vec<bool>,
        urgent: Vec<bool>,
        tl0: Timeline,
    ) -> Self {
        let n = nodes.len();
        let mut feasible = Vec::with_capacity(jobs.len());
        let mut best_node = Vec::with_capacity(jobs.len());
        for j in 0..jobs.len() {
            let f: Vec<u32> = (0..n)
                .filter(|&i| costs.seconds(j, i).is_finite())
                .map(|i| i as u32)
                .collect();
            let b = f
                .iter()
                .copied()
                .min_by(|&a, &b| {
                    costs
                        .seconds(j, a as usize)
                        .total_cmp(&costs.seconds(j, b as usize))
                })
                .unwrap_or(0);
            feasible.push(f);
            best_node.push(b);
        }
        Self {
            jobs,
            nodes,
            costs,
            gang,
            urgent,
            feasible,
            best_node,
            tl0,
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Predicted seconds of a gang job on these parts: the slowest part sets the pace.
    fn gang_seconds(&self, j: usize, parts: &[(usize, usize)]) -> f64 {
        parts
            .iter()
            .map(|&(n, _)| {
                let node = &self.nodes[n];
                self.jobs[j].predicted_s / node.speed.max(1e-6)
                    + self.costs.missing(j, n) as f64 / node.bandwidth_bps.max(1.0)
            })
            .fold(0.0, f64::max)
    }

    /// Plans job `j` on `tl` (on `node` unless it is a gang job); returns (start, end).
    fn plan_one(&self, tl: &mut Timeline, j: usize, node: usize) -> (f64, f64) {
        if self.gang[j] {
            let (start, parts) = tl.gang_start(self.jobs[j], self.nodes);
            if !start.is_finite() {
                return (f64::INFINITY, f64::INFINITY);
            }
            let end = start + self.gang_seconds(j, &parts);
            for (n, k) in parts {
                tl.take(n, k, end);
            }
            (start, end)
        } else {
            let d = plan::demand(self.jobs[j], &self.nodes[node]);
            let start = tl.start(node, d);
            let end = start + self.costs.seconds(j, node);
            if end.is_finite() {
                tl.take(node, d, end);
            }
            (start, end)
        }
    }

    /// Plans the chromosome from the round's starting timeline; fills each job's planned start.
    pub fn decode(
        &self,
        order: &[u32],
        node: &[u32],
        tl: &mut Timeline,
        starts: Option<&mut [f64]>,
    ) -> Fitness {
        self.decode_detail(order, node, tl, starts, None)
    }

    /// [`Self::decode`], also noting in `reserved_from[n]` the earliest planned start of a
    /// reserved (urgent) job on node `n`.
    pub fn decode_detail(
        &self,
        order: &[u32],
        node: &[u32],
        tl: &mut Timeline,
        mut starts: Option<&mut [f64]>,
        mut reserved_from: Option<&mut [f64]>,
    ) -> Fitness {
        tl.reset_from(&self.tl0);
        let mut total = 0.0;
        let mut makespan: f64 = 0.0;
        for &j in order {
            let j = j as usize;
            if let Some(r) = reserved_from.as_deref_mut().filter(|_| self.urgent[j]) {
                if self.gang[j] {
                    let (s, parts) = tl.gang_start(self.jobs[j], self.nodes);
                    for (n, _) in parts {
                        r[n] = r[n].min(s);
                    }
                } else {
                    let n = node[j] as usize;
                    let s = tl.start(n, plan::demand(self.jobs[j], &self.nodes[n]));
                    r[n] = r[n].min(s);
                }
            }
            let (start, end) = self.plan_one(tl, j, node[j] as usize);
            let end = if end.is_finite() { end } else { UNPLANNABLE_S };
            total += end;
            makespan = makespan.max(end);
            if let Some(s) = starts.as_deref_mut() {
                s[j] = start;
            }
        }
        Fitness { total, makespan }
    }

    /// Node genes by greedy minimum completion time along `order` (the seeds' node choice).
    pub fn greedy_nodes(&self, order: &[u32], tl: &mut Timeline) -> Vec<u32> {
        tl.reset_from(&self.tl0);
        let mut node = self.best_node.clone();
        for &j in order {
            let j = j as usize;
            if !self.gang[j] {
                let job = self.jobs[j];
                // Earliest finish; among equal finishes, the node with the fewest slots free
                // now (best fit: whole nodes stay free for multi-GPU jobs).
                let mut best = (f64::INFINITY, usize::MAX, self.best_node[j]);
                for &n in &self.feasible[j] {
                    let end = tl.start(n as usize, plan::demand(job, &self.nodes[n as usize]))
                        + self.costs.seconds(j, n as usize);
                    if end < best.0 - 1e-6
                        || (end <= best.0 + 1e-6 && tl.free_now_on(n as usize) < best.1)
                    {
                        best = (end, tl.free_now_on(n as usize), n);
                    }
                }
                node[j] = best.2;
            }
            self.plan_one(tl, j, node[j] as usize);
        }
        node
    }

    /// Capacity repair: a node gene that cannot hold its job goes to the job's best node;
    /// reserved jobs (waiting past the starvation limit) move to the front, in their current
    /// relative order.
    pub fn repair(&self, order: &mut Vec<u32>, node: &mut [u32]) {
        for (j, n) in node.iter_mut().enumerate() {
            if !self.gang[j] && !self.costs.seconds(j, *n as usize).is_finite() {
                *n = self.best_node[j];
            }
        }
        if self.urgent.iter().any(|&u| u) {
            let (mut first, rest): (Vec<u32>, Vec<u32>) =
                order.iter().partition(|&&j| self.urgent[j as usize]);
            first.extend(rest);
            *order = first;
        }
    }

    fn chromosome(&self, mut order: Vec<u32>, mut node: Vec<u32>, tl: &mut Timeline) -> Chromosome {
        self.repair(&mut order, &mut node);
        let fitness = self.decode(&order, &node, tl, None);
        Chromosome {
            order,
            node,
            fitness,
        }
    }

    fn mutate(&self, order: &mut Vec<u32>, node: &mut [u32], rng: &mut ChaCha8Rng, rate: f64) {
        let n = order.len();
        if n >= 2 && rng.gen_bool(rate) {
            let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
            order.swap(a, b);
        }
        if n >= 2 && rng.gen_bool(rate) {
            let a = rng.gen_range(0..n - 1);
            order.swap(a, a + 1);
        }
        if n >= 2 && rng.gen_bool(rate) {
            let from = rng.gen_range(1..n);
            let to = rng.gen_range(0..from);
            let j = order.remove(from);
            order.insert(to, j);
        }
        if rng.gen_bool(rate) {
            let j = rng.gen_range(0..n);
            if !self.gang[j] && !self.feasible[j].is_empty() {
                node[j] = if rng.gen_bool(0.5) {
                    self.best_node[j]
                } else {
                    *self.feasible[j].choose(rng).expect("not empty")
                };
            }
        }
    }
}

/// Order crossover (OX1): a slice of `a` kept in place, the other positions filled with the
/// remaining jobs in `b`'s order.
fn order_crossover(a: &[u32], b: &[u32], rng: &mut ChaCha8Rng, mark: &mut [bool]) -> Vec<u32> {
    let n = a.len();
    let (mut i, mut k) = (rng.gen_range(0..n), rng.gen_range(0..n));
    if i > k {
        std::mem::swap(&mut i, &mut k);
    }
    mark.fill(false);
    for &j in &a[i..=k] {
        mark[j as usize] = true;
    }
    let mut rest = b.iter().copied().filter(|&j| !mark[j as usize]);
    let mut child = Vec::with_capacity(n);
    child.extend(rest.by_ref().take(i));
    child.extend_from_slice(&a[i..=k]);
    child.extend(rest);
    child
}

fn tournament<'c>(pop: &'c [Chromosome], rng: &mut ChaCha8Rng) -> &'c Chromosome {
    let mut best = &pop[rng.gen_range(0..pop.len())];
    for _ in 1..3 {
        let c = &pop[rng.gen_range(0..pop.len())];
        if c.fitness.cmp(&best.fitness).is_lt() {
            best = c;
        }
    }
    best
}

/// Runs the GA from the seeds (order, nodes) and returns the best chromosome found. Stops after
/// the generation cap (also bounded by the gene budget), after `stall_generations` without
/// improvement, or at `deadline`.
pub(crate) fn evolve(
    p: &Problem<'_>,
    seeds: Vec<(Vec<u32>, Vec<u32>)>,
    cfg: &GaConfig,
    rng: &mut ChaCha8Rng,
    deadline: Option<Instant>,
) -> Chromosome {
    let mut tl = p.tl0.clone();
    let size = cfg.population.max(2);
    let mut pop: Vec<Chromosome> = seeds
        .iter()
        .map(|(o, n)| p.chromosome(o.clone(), n.clone(), &mut tl))
        .collect();
    if p.len() < 2 {
        pop.sort_by(|a, b| a.fitness.cmp(&b.fitness));
        return pop.swap_remove(0);
    }
    while pop.len() < size {
        let (mut order, mut node) = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..3 {
            p.mutate(&mut order, &mut node, rng, 0.8);
        }
        pop.push(p.chromosome(order, node, &mut tl));
    }
    pop.sort_by(|a, b| a.fitness.cmp(&b.fitness));
    let per_gen = (size * p.len()) as u64;
    let gens = cfg
        .max_generations
        .min((cfg.gene_budget / per_gen.max(1)) as usize);
    let mut mark = vec![false; p.len()];
    let mut stall = 0;
    let late = || deadline.is_some_and(|d| Instant::now() >= d);
    'generations: for _ in 0..gens {
        let best = pop[0].fitness;
        let mut next: Vec<Chromosome> = pop[..cfg.elite.min(size)].to_vec();
        while next.len() < size {
            // Checked per child: with a thousand jobs one generation takes milliseconds. A
            // generation cut short is dropped; the last whole one stands.
            if late() {
                break 'generations;
            }
            let (a, b) = (tournament(&pop, rng), tournament(&pop, rng));
            let (mut order, mut node) = if rng.gen_bool(cfg.crossover) {
                let order = order_crossover(&a.order, &b.order, rng, &mut mark);
                let node = (0..p.len())
                    .map(|j| {
                        if rng.gen_bool(0.5) {
                            a.node[j]
                        } else {
                            b.node[j]
                        }
                    })
                    .collect::<Vec<_>>();
                (order, node)
            } else {
                (a.order.clone(), a.node.clone())
            };
            p.mutate(&mut order, &mut node, rng, cfg.mutation);
            next.push(p.chromosome(order, node, &mut tl));
        }
        next.sort_by(|a, b| a.fitness.cmp(&b.fitness));
        pop = next;
        if pop[0].fitness.cmp(&best).is_lt() {
            stall = 0;
        } else {
            stall += 1;
            if stall >= cfg.stall_generations {
                break;
            }
        }
    }
    // A last greedy pass over the nodes of the best order, kept only if it helps.
    let best = pop.swap_remove(0);
    let node = p.greedy_nodes(&best.order, &mut tl);
    let alt = p.chromosome(best.order.clone(), node, &mut tl);
    if alt.fitness.cmp(&best.fitness).is_lt() {
        alt
    } else {
        best
    }
}
