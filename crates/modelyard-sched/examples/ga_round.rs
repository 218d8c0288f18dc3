//! Benchmark of one GA scheduling round: 1,000 pending jobs × 100 nodes (and smaller sizes),
//! single-threaded, printed as a table. Run with
//! `cargo run --release -p modelyard-sched --example ga_round`.

use std::collections::HashSet;
use std::time::Instant;

use modelyard_core::job::Resources;
use modelyard_sched::{DelayConfig, Ga, GaConfig, NodeView, PendingJob, Policy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A busy cluster snapshot: nodes of 8 GPUs, most busy, caches holding some of 200 datasets;
/// jobs of 1–8 GPUs (a few 16) with Philly-like heavy-tailed predicted durations.
fn snapshot(jobs: usize, nodes: usize, seed: u64) -> (Vec<PendingJob>, Vec<NodeView>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let now = 1_000_000_000;
    let views = (0..nodes)
        .map(|i| {
            let total = Resources {
                cpus: 64,
                memory_mb: 512 * 1024,
                gpus: 8,
            };
            let free_gpus = rng.gen_range(0..=3);
            NodeView {
                id: format!("n{i:03}"),
                total,
                free: Resources {
                    gpus: free_gpus,
                    ..total
                },
                allow_commands: true,
                cached: (0..20)
                    .map(|_| format!("ds-{:03}", rng.gen_range(0..200)))
                    .collect::<HashSet<_>>(),
                speed: [0.8, 1.0, 1.2][i % 3],
                bandwidth_bps: 250e6,
                busy_until_ms: (0..8 - free_gpus)
                    .map(|_| now + rng.gen_range(1_000..20_000_000))
                    .collect(),
            }
        })
        .collect();
    let pending = (0..jobs)
        .map(|i| PendingJob {
            id: i as i64,
            resources: Resources {
                cpus: 0,
                memory_mb: 0,
                gpus: [1, 1, 1, 1, 1, 1, 2, 4, 8, 16][rng.gen_range(0..10)],
            },
            is_command: false,
            inputs: vec![(
                format!("ds-{:03}", rng.gen_range(0..200)),
                rng.gen_range(1..100) * 1_000_000_000,
            )],
            submitted_ms: now - rng.gen_range(0..40_000_000),
            predicted_s: (rng.gen_range(3.0..12.0_f64)).exp(),
        })
        .collect();
    (pending, views)
}

fn main() {
    println!(
        "{:>6} {:>6} {:>18} {:>9} {:>9} {:>9}",
        "jobs", "nodes", "policy", "p50 ms", "max ms", "placed"
    );
    // Every pending job planned in one round, without a clock ("all"); every job with the live
    // wall-clock budget ("all+clock"); the live master's settings ("live": a window of the 128
    // shortest-predicted or reserved jobs, and the budget).
    let runs = [
        (100, 20, "all"),
        (256, 64, "all"),
        (1000, 100, "all"),
        (1000, 100, "all+clock"),
        (1000, 100, "live"),
    ];
    for (jobs, nodes, mode) in runs {
        for delay in [false, true] {
            let cfg = match mode {
                "live" => GaConfig::live(),
                "all+clock" => GaConfig {
                    window: jobs,
                    ..GaConfig::live()
                },
                _ => GaConfig {
                    window: jobs,
                    ..GaConfig::default()
                },
            };
            let mut times = Vec::new();
            let mut placed = 0;
            for seed in 0..15 {
                let (pending, views) = snapshot(jobs, nodes, seed);
                let mut ga = Ga::new(cfg.clone(), delay.then(DelayConfig::default));
                let t = Instant::now();
                placed += ga.place(1_000_000_000, &pending, &views).len();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{jobs:>6} {nodes:>6} {:>18} {:>9.2} {:>9.2} {:>9}",
                format!("{} {mode}", if delay { "ga-delay" } else { "ga" }),
                times[times.len() / 2],
                times[times.len() - 1],
                placed / times.len()
            );
        }
    }
}
