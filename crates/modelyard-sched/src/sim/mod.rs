//! A deterministic discrete-event simulator that replays a job trace on a simulated cluster
//! through any [`Policy`] — the same code the live master runs.
//!
//! Events are job arrivals, job completions and the policy's own wake-ups (delay scheduling).
//! After the events of an instant, if jobs wait and a GPU is free, the policy gets one round.
//! A placed job fetches the inputs each of its nodes lacks (`bytes / bandwidth`), then runs for
//! its trace duration divided by its slowest node's speed; its nodes' caches then hold its
//! dataset. The policy sees predictions with noise from [`noise::predicted`], never the truth.
//! Everything but the measured scheduler time per round is a function of the seed.

pub mod cluster;
pub mod datasets;
pub mod noise;
pub mod report;
pub mod svg;
pub mod trace;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use modelyard_core::job::Resources;

use crate::{NodeView, PendingJob, Policy};
use cluster::{Cache, ClusterSpec};
use datasets::DatasetModel;
use trace::TraceJob;

/// Everything a simulation run depends on besides the trace and the policy.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub cluster: ClusterSpec,
    pub datasets: DatasetModel,
    /// σ of the multiplicative log-normal prediction error (0 = perfect predictions).
    pub error_sigma: f64,
    pub seed: u64,
}

/// A trace job made ready for simulation.
#[derive(Debug, Clone)]
pub struct SimJob {
    pub submit_ms: i64,
    /// True running time at speed 1.0, seconds.
    pub duration_s: f64,
    pub gpus: u32,
    pub dataset: (String, u64),
    /// What the policy is told: `duration_s` with prediction error.
    pub predicted_s: f64,
}

/// Gives trace jobs their datasets and predictions (seeded). A row with 0 GPUs counts as 1:
/// the simulator models GPU jobs.
pub fn prepare(trace: &[TraceJob], cfg: &SimConfig) -> Vec<SimJob> {
    let datasets = cfg.datasets.assign(trace, cfg.seed);
    let mut rng = noise::stream(cfg.seed, 20);
    trace
        .iter()
        .zip(datasets)
        .map(|(t, dataset)| SimJob {
            submit_ms: (t.submit_s * 1000.0).round() as i64,
            duration_s: t.duration_s.max(0.0),
            gpus: t.gpus.max(1),
            dataset,
            predicted_s: noise::predicted(t.duration_s.max(0.0), cfg.error_sigma, &mut rng),
        })
        .collect()
}

/// What happened to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOutcome {
    pub submit_ms: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub gpus: u32,
    /// Its nodes all held its dataset when it started.
    pub local: bool,
    pub bytes_moved: u64,
}

/// The record of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Finished jobs, in trace order; `None` for jobs that never ran (no node set could hold
    /// them, or the policy left them waiting on an idle cluster).
    pub jobs: Vec<Option<JobOutcome>>,
    pub total_gpus: u64,
    /// Wall-clock time of each policy round, microseconds (the one non-deterministic output).
    pub round_us: Vec<u64>,
}

struct Running {
    parts: Vec<(usize, Resources)>,
    predicted_end_ms: i64,
}

/// Replays `jobs` (sorted by submission) through `policy` on `cfg.cluster`.
pub fn run(jobs: &[SimJob], cfg: &SimConfig, policy: &mut dyn Policy) -> Outcome {
    let mut nodes: Vec<NodeView> = cfg.cluster.views();
    let mut caches: Vec<Cache> = cfg
        .cluster
        .nodes
        .iter()
        .map(|n| Cache::new(n.cache_bytes))
        .collect();
    let mut outcomes: Vec<Option<JobOutcome>> = vec![None; jobs.len()];
    let mut running: Vec<Option<Running>> = (0..jobs.len()).map(|_| None).collect();
    let mut ends: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut pending: Vec<PendingJob> = Vec::new();
    let mut round_us = Vec::new();
    let mut next = 0;
    let mut wake: Option<i64> = None;
    let mut free_gpus: u64 = cfg.cluster.total_gpus();
    let mut placed = Vec::new();
    let mut last_now = i64::MIN;
    loop {
        let t_arrival = jobs.get(next).map(|j| j.submit_ms);
        let t_end = ends.peek().map(|Reverse((t, _))| *t);
        let t_wake = wake.filter(|&w| !pending.is_empty() && w > last_now);
        let Some(now) = [t_arrival, t_end, t_wake].into_iter().flatten().min() else {
            break;
        };
        last_now = now;
        while let Some(&Reverse((t, i))) = ends.peek() {
            if t > now {
                break;
            }
            ends.pop();
            let r = running[i].take().expect("a running job");
            for (n, res) in r.parts {
                let node = &mut nodes[n];
                node.free = Resources {
                    cpus: node.free.cpus + res.cpus,
                    memory_mb: node.free.memory_mb + res.memory_mb,
                    gpus: node.free.gpus + res.gpus,
                };
                free_gpus += u64::from(res.gpus);
                for _ in 0..res.gpus {
                    let pos = node
                        .busy_until_ms
                        .iter()
                        .position(|&e| e == r.predicted_end_ms)
                        .expect("its slots");
                    node.busy_until_ms.swap_remove(pos);
                }
            }
        }
        while let Some(j) = jobs.get(next).filter(|j| j.submit_ms <= now) {
            pending.push(PendingJob {
                id: next as i64,
                resources: Resources {
                    cpus: 0,
                    memory_mb: 0,
                    gpus: j.gpus,
                },
                is_command: false,
                inputs: vec![j.dataset.clone()],
                submitted_ms: j.submit_ms,
                predicted_s: j.predicted_s,
            });
            next += 1;
        }
        if pending.is_empty() || free_gpus == 0 {
            continue;
        }
        let t0 = Instant::now();
        let placements = policy.place(now, &pending, &nodes);
        round_us.push(t0.elapsed().as_micros() as u64);
        wake = policy.next_wake_ms().filter(|&w| w > now);
        placed.clear();
        for p in placements {
            let i = p.job as usize;
            assert!(outcomes[i].is_none(), "job {i} placed twice");
            let job = &jobs[i];
            let (name, size) = &job.dataset;
            let (mut moved, mut transfer_s, mut slowest) = (0, 0.0_f64, f64::INFINITY);
            for &(n, res) in &p.parts {
                let node = &mut nodes[n];
                assert!(node.free.fits(&res), "policy overfilled {}", node.id);
                let miss = if node.cached.contains(name) { 0 } else { *size };
                moved += miss;
                transfer_s = transfer_s.max(miss as f64 / node.bandwidth_bps);
                slowest = slowest.min(node.speed);
            }
            let run_s = job.duration_s / slowest;
            let end_ms = now + ((transfer_s + run_s) * 1000.0).ceil() as i64;
            let predicted_end_ms =
                now + ((transfer_s + job.predicted_s / slowest) * 1000.0).ceil() as i64;
            for &(n, res) in &p.parts {
                let node = &mut nodes[n];
                node.free = node.free.minus(&res);
                free_gpus -= u64::from(res.gpus);
                node.busy_until_ms
                    .extend(std::iter::repeat_n(predicted_end_ms, res.gpus as usize));
                caches[n].touch(name, *size, &mut node.cached);
            }
            outcomes[i] = Some(JobOutcome {
                submit_ms: job.submit_ms,
                start_ms: now,
                end_ms,
                gpus: job.gpus,
                local: moved == 0,
                bytes_moved: moved,
            });
            running[i] = Some(Running {
                parts: p.parts,
                predicted_end_ms,
            });
            ends.push(Reverse((end_ms, i)));
            placed.push(i as i64);
        }
        if !placed.is_empty() {
            placed.sort_unstable();
            pending.retain(|j| placed.binary_search(&j.id).is_err());
        }
    }
    Outcome {
        jobs: outcomes,
        total_gpus: cfg.cluster.total_gpus(),
        round_us,
    }
}

#[cfg(test)]
mod tests;

/// Runs one policy, built fresh from `opts`, and summarizes it; also returns its sorted JCTs.
pub fn run_policy(
    jobs: &[SimJob],
    cfg: &SimConfig,
    kind: crate::PolicyKind,
    opts: &crate::PolicyOptions,
) -> (report::Summary, Vec<f64>) {
    let mut policy = kind.build(opts);
    let o = run(jobs, cfg, &mut policy);
    (report::summarize(kind.name(), &o), report::jcts(&o))
}
