//! Simulator tests: every job finishes exactly once, and the same seed gives the same run.

use rand::Rng;

use super::*;
use crate::{PolicyKind, PolicyOptions};

fn synthetic(n: usize, seed: u64) -> Vec<TraceJob> {
    let mut rng = noise::stream(seed, 99);
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            t += rng.gen_range(0.0..60.0);
            TraceJob {
                submit_s: t,
                duration_s: rng.gen_range(10.0..3000.0),
                gpus: [1, 1, 1, 1, 2, 4, 8, 16][rng.gen_range(0..8)],
                group: format!("g{}", i % 3),
                dataset: None,
            }
        })
        .collect()
}

fn config(seed: u64) -> SimConfig {
    SimConfig {
        cluster: ClusterSpec::uniform(4, 8),
        datasets: DatasetModel::default(),
        error_sigma: 0.5,
        seed,
    }
}

#[test]
fn every_job_finishes_exactly_once_under_every_policy() {
    let cfg = config(1);
    let jobs = prepare(&synthetic(300, 1), &cfg);
    for kind in PolicyKind::ALL {
        let mut p = kind.build(&PolicyOptions::default());
        let o = run(&jobs, &cfg, &mut p);
        assert_eq!(o.jobs.len(), jobs.len());
        for (j, out) in jobs.iter().zip(&o.jobs) {
            let out = out.unwrap_or_else(|| panic!("{kind}: a job never ran"));
            assert!(
                out.start_ms >= j.submit_ms && out.end_ms >= out.start_ms,
                "{kind}"
            );
        }
        let s = report::summarize(kind.name(), &o);
        assert_eq!((s.jobs, s.unfinished), (300, 0), "{kind}");
        assert!(
            s.utilization > 0.0 && s.utilization <= 1.0,
            "{kind}: {}",
            s.utilization
        );
    }
}

#[test]
fn same_seed_same_numbers() {
    let trace = synthetic(200, 2);
    let run_with = |seed| {
        let cfg = config(seed);
        let jobs = prepare(&trace, &cfg);
        let mut p = PolicyKind::GaDelay.build(&PolicyOptions::default());
        run(&jobs, &cfg, &mut p).jobs
    };
    assert_eq!(run_with(5), run_with(5));
    assert_ne!(run_with(5), run_with(6));
}

#[test]
fn jobs_too_big_for_the_cluster_are_reported_not_run() {
    let cfg = config(1);
    let mut trace = synthetic(20, 3);
    trace[5].gpus = 64;
    let jobs = prepare(&trace, &cfg);
    for kind in PolicyKind::ALL {
        let mut p = kind.build(&PolicyOptions::default());
        let o = run(&jobs, &cfg, &mut p);
        assert!(o.jobs[5].is_none(), "{kind}");
        assert_eq!(o.jobs.iter().flatten().count(), 19, "{kind}");
    }
}
