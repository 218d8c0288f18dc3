//! The genetic-algorithm policy (optionally with delay scheduling): builds one round's problem,
//! seeds the population (warm-started from the previous round), evolves it, and places the jobs
//! the best plan starts now.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cost::CostTable;
use crate::fit::{self, Shape};
use crate::plan::{Timeline, NOW_EPS};
use crate::{NodeView, PendingJob, Placement, Policy};

use super::delay::{DelayConfig, DelayState};
use super::genetic::{self, Problem};

/// Settings of the GA. The defaults are the ones the benchmark and the live master use.
#[derive(Debug, Clone)]
pub struct GaConfig {
    /// Seed of the GA's random numbers: the same seed and inputs give the same placements.
    pub seed: u64,
    pub population: usize,
    pub max_generations: usize,
    /// Stop after this many generations without a better plan.
    pub stall_generations: usize,
    /// Best chromosomes copied unchanged into the next generation.
    pub elite: usize,
    pub crossover: f64,
    /// Probability of each mutation operator (swap, adjacent swap, move, node change) per child.
    pub mutation: f64,
    /// At most this many jobs are planned a round: the reserved ones (see `starve_after_s`)
    /// first, then the shortest predicted. The others wait for a later round.
    pub window: usize,
    /// Work cap per round in planned jobs (population × window × generations); unlike the
    /// wall-clock budget it keeps rounds deterministic.
    pub gene_budget: u64,
    /// Wall-clock cap per round, checked between generations. `None` keeps results independent
    /// of machine speed (the simulator); the live master sets one.
    pub time_budget: Option<Duration>,
    /// No starvation: of the jobs waiting longer than this, the `reserve` oldest are planned
    /// ahead of all others (so the plan holds capacity for them, as in EASY backfilling); when
    /// they start, the next oldest take their place, so every job starts in bounded time.
    pub starve_after_s: f64,
    pub reserve: usize,
}

impl Default for GaConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            population: 12,
            max_generations: 20,
            stall_generations: 4,
            elite: 2,
            crossover: 0.9,
            mutation: 0.3,
            window: 128,
            gene_budget: 1_000_000,
            time_budget: None,
            starve_after_s: 7.0 * 86_400.0,
            reserve: 1,
        }
    }
}

impl GaConfig {
    /// The live master's settings: evolution stops after 60 ms of wall-clock time, so that with
    /// its set-up and the final decode a round stays under 100 ms on one core (the `ga_round`
    /// example measures it).
    pub fn live() -> Self {
        Self {
            time_budget: Some(Duration::from_millis(60)),
            ..Self::default()
        }
    }
}

/// Genetic algorithm over job order and node choice, minimising predicted mean completion time
/// (transfer of missing inputs included; makespan breaks ties). With a [`DelayConfig`] it is
/// `ga-delay`: jobs are limited to nodes holding their inputs for a bounded wait.
#[derive(Debug, Clone)]
pub struct Ga {
    cfg: GaConfig,
    rng: ChaCha8Rng,
    delay: Option<DelayState>,
    /// The previous round's best plan: job ids in order, with their node index.
    prev: Vec<(i64, u32)>,
}

impl Ga {
    pub fn new(cfg: GaConfig, delay: Option<DelayConfig>) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            delay: delay.map(DelayState::new),
            prev: Vec::new(),
        }
    }

    /// The oldest runnable jobs (at most `reserve`) that waited past `starve_after_s`.
    fn reserved(&self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<i64> {
        let starve_ms = (self.cfg.starve_after_s * 1000.0) as i64;
        let mut old: Vec<&PendingJob> = jobs
            .iter()
            .filter(|j| now_ms - j.submitted_ms >= starve_ms)
            .collect();
        old.sort_by_key(|j| (j.submitted_ms, j.id));
        old.into_iter()
            .filter(|j| fit::shape(j, nodes) != Shape::Never)
            .take(self.cfg.reserve)
            .map(|j| j.id)
            .collect()
    }

    /// The jobs planned this round (indices into `jobs`): reserved ones first, then shortest.
    fn window(&self, jobs: &[PendingJob], reserved: &[i64]) -> Vec<usize> {
        let key = |i: &usize| {
            let j = &jobs[*i];
            let urgent = reserved.contains(&j.id);
            (
                !urgent,
                if urgent { 0.0 } else { j.predicted_s },
                j.submitted_ms,
                j.id,
            )
        };
        let cmp = |a: &usize, b: &usize| {
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
                .then(ka.3.cmp(&kb.3))
        };
        let mut idx: Vec<usize> = (0..jobs.len()).collect();
        let w = self.cfg.window.max(1);
        if idx.len() > w {
            idx.select_nth_unstable_by(w - 1, cmp);
            idx.truncate(w);
        }
        idx.sort_by(cmp);
        idx
    }

    /// The previous round's order for the jobs still here, with new jobs merged in by their
    /// position in `fallback` (the shortest-first window order).
    fn warm_start(
        &self,
        ids: &HashMap<i64, u32>,
        fallback: &[u32],
        nodes: usize,
    ) -> Option<(Vec<u32>, Vec<u32>)> {
        if self.prev.is_empty() {
            return None;
        }
        let mut node: Vec<u32> = vec![u32::MAX; fallback.len()];
        let mut kept = Vec::new();
        for &(id, n) in &self.prev {
            if let Some(&j) = ids.get(&id) {
                kept.push(j);
                node[j as usize] = if (n as usize) < nodes { n } else { u32::MAX };
            }
        }
        if kept.is_empty() {
            return None;
        }
        let rank: Vec<usize> = {
            let mut r = vec![0; fallback.len()];
            for (pos, &j) in fallback.iter().enumerate() {
                r[j as usize] = pos;
            }
            r
        };
        let mut is_kept = vec![false; fallback.len()];
        for &j in &kept {
            is_kept[j as usize] = true;
        }
        let mut fresh = fallback
            .iter()
            .copied()
            .filter(|&j| !is_kept[j as usize])
            .peekable();
        let mut order = Vec::with_capacity(fallback.len());
        for k in kept {
            while let Some(&f) = fresh.peek() {
                if rank[f as usize] < rank[k as usize] {
                    order.push(f);
                    fresh.next();
                } else {
                    break;
                }
            }
            order.push(k);
        }
        order.extend(fresh);
        Some((order, node))
    }
}

impl Policy for Ga {
    fn place(&mut self, now_ms: i64, jobs: &[PendingJob], nodes: &[NodeView]) -> Vec<Placement> {
        let deadline = self.cfg.time_budget.map(|b| Instant::now() + b);
        if jobs.is_empty() || nodes.is_empty() {
            self.prev.clear();
            if let Some(d) = &mut self.delay {
                d.after_round(now_ms, jobs, &[]);
            }
            return Vec::new();
        }
        let reserved = self.reserved(now_ms, jobs, nodes);
        let mut win = Vec::new();
        let mut shapes = Vec::new();
        for i in self.window(jobs, &reserved) {
            let s = fit::shape(&jobs[i], nodes);
            if s != Shape::Never {
                win.push(&jobs[i]);
                shapes.push(s);
            }
        }
        let mut costs = CostTable::build(&win, nodes);
        let tl0 = Timeline::new(nodes, now_ms);
        let mut restricted = vec![false; win.len()];
        if let Some(d) = &self.delay {
            for (j, job) in win.iter().enumerate() {
                if shapes[j] != Shape::Single {
                    continue;
                }
                if let Some(local) = d.local_only(job, j, &costs, &tl0, nodes) {
                    restricted[j] = true;
                    let mut is_local = vec![false; nodes.len()];
                    for n in local {
                        is_local[n] = true;
                    }
                    for (n, &l) in is_local.iter().enumerate() {
                        if !l {
                            costs.forbid(j, n);
                        }
                    }
                }
            }
        }
        let gang = shapes.iter().map(|s| matches!(s, Shape::Gang(_))).collect();
        let urgent = win.iter().map(|j| reserved.contains(&j.id)).collect();
        let ids: HashMap<i64, u32> = win
            .iter()
            .enumerate()
            .map(|(j, job)| (job.id, j as u32))
            .collect();
        let problem = Problem::new(win, nodes, costs, gang, urgent, tl0);
        let mut tl = problem.tl0.clone();

        // Seeds: shortest-first, the previous round's plan, and submission order, each with
        // greedy minimum-completion-time nodes.
        let sjf: Vec<u32> = (0..problem.len() as u32).collect();
        let mut seeds = vec![(sjf.clone(), problem.greedy_nodes(&sjf, &mut tl))];
        if let Some((order, mut node)) = self.warm_start(&ids, &sjf, nodes.len()) {
            let greedy = problem.greedy_nodes(&order, &mut tl);
            for (n, g) in node.iter_mut().zip(&greedy) {
                if *n == u32::MAX {
                    *n = *g;
                }
            }
            seeds.push((order.clone(), node));
            seeds.push((order, greedy));
        }
        let mut fifo = sjf.clone();
        fifo.sort_by_key(|&j| {
            (
                problem.jobs[j as usize].submitted_ms,
                problem.jobs[j as usize].id,
            )
        });
        let fifo_nodes = problem.greedy_nodes(&fifo, &mut tl);
        seeds.push((fifo, fifo_nodes));

        let best = genetic::evolve(&problem, seeds, &self.cfg, &mut self.rng, deadline);
        let mut starts = vec![f64::INFINITY; problem.len()];
        let mut reserved_from = vec![f64::INFINITY; nodes.len()];
        problem.decode_detail(
            &best.order,
            &best.node,
            &mut tl,
            Some(&mut starts),
            Some(&mut reserved_from),
        );

        let mut free: Vec<_> = nodes.iter().map(|n| n.free).collect();
        let mut out = Vec::new();
        let mut placed = vec![false; problem.len()];
        for &j in &best.order {
            let j = j as usize;
            if starts[j] > NOW_EPS {
                continue;
            }
            let prefer = (shapes[j] == Shape::Single).then_some(best.node[j] as usize);
            if let Some(p) = fit::place_now(problem.jobs[j], nodes, &mut free, shapes[j], prefer) {
                placed[j] = true;
                out.push(p);
            }
        }
        // Work conservation: room the plan leaves idle now goes to the next single-node jobs in
        // plan order that would finish there sooner than the plan has them finish (the plan
        // has them wait behind jobs whose ends were predicted, and predictions err), each on
        // the allowed node with room where it finishes first — on a node held for a reserved
        // job only if it is predicted to finish before that job starts there (EASY
        // backfilling). A job the plan keeps for a busy node because that is faster stays.
        for &j in &best.order {
            let j = j as usize;
            if placed[j] || shapes[j] != Shape::Single {
                continue;
            }
            let job = problem.jobs[j];
            let secs = |n: usize| problem.costs.seconds(j, n);
            let planned_end = starts[j] + secs(best.node[j] as usize);
            let n = (0..nodes.len())
                .filter(|&n| {
                    secs(n) < planned_end
                        && secs(n) <= reserved_from[n]
                        && free[n].fits(&job.resources)
                })
                .min_by(|&a, &b| {
                    secs(a)
                        .total_cmp(&secs(b))
                        .then(free[a].gpus.cmp(&free[b].gpus))
                });
            if let Some(p) =
                n.and_then(|n| fit::place_now(job, nodes, &mut free, Shape::Single, Some(n)))
            {
                placed[j] = true;
                out.push(p);
            }
        }
        if let Some(d) = &mut self.delay {
            // Room left on nodes without a limited job's inputs is offered to the limited jobs in
            // plan order: each that fits has declined it (and the room counts as taken), so
            // only as many wait clocks start as there were free slots to decline.
            let mut declined = Vec::new();
            for &j in &best.order {
                let (j, job) = (j as usize, problem.jobs[j as usize]);
                if placed[j] {
                    d.placed(job.id);
                } else if restricted[j] {
                    let room = (0..nodes.len()).find(|&n| {
                        !problem.costs.seconds(j, n).is_finite()
                            && fit::fits_alone(job, &nodes[n])
                            && free[n].fits(&job.resources)
                    });
                    if let Some(n) = room {
                        free[n] = free[n].minus(&job.resources);
                        declined.push(job.id);
                    }
                }
            }
            d.after_round(now_ms, jobs, &declined);
        }
        self.prev = best
            .order
            .iter()
            .filter(|&&j| !placed[j as usize])
            .map(|&j| (problem.jobs[j as usize].id, best.node[j as usize]))
            .collect();
        out
    }

    fn next_wake_ms(&self) -> Option<i64> {
        self.delay.as_ref().and_then(DelayState::next_wake_ms)
    }
}

#[cfg(test)]
#[path = "ga_tests.rs"]
mod tests;
