//! Hand-checked cases for the GA and delay scheduling, and properties of every policy:
//! capacity never exceeded, determinism, bounded delay, no starvation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::policy::delay::DelayConfig;
use crate::testkit::{assert_valid, job, node, pairs};
use crate::{PolicyKind, PolicyOptions};

const GB: u64 = 1_000_000_000;

fn with_data(mut j: PendingJob, name: &str, bytes: u64) -> PendingJob {
    j.inputs = vec![(name.into(), bytes)];
    j
}

fn ga_delay(wait_s: f64) -> Ga {
    Ga::new(
        GaConfig::default(),
        Some(DelayConfig { max_wait_s: wait_s }),
    )
}

/// Random snapshots: partly busy nodes of 4 or 8 GPUs, jobs of 1–16 GPUs with datasets.
fn scenario(seed: u64) -> (Vec<PendingJob>, Vec<NodeView>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nodes: Vec<NodeView> = (0..rng.gen_range(1..8))
        .map(|i| {
            let g = [4, 8][rng.gen_range(0..2)];
            let mut n = node(&format!("n{i}"), 4 * g, g);
            n.free.gpus = rng.gen_range(0..=g);
            n.free.cpus = rng.gen_range(0..=4 * g);
            n.speed = rng.gen_range(0.5..2.0);
            n.busy_until_ms = (0..g - n.free.gpus)
                .map(|_| rng.gen_range(0..100_000))
                .collect();
            for d in 0..3 {
                if rng.gen_bool(0.4) {
                    n.cached.insert(format!("d{d}"));
                }
            }
            n
        })
        .collect();
    let jobs = (0..rng.gen_range(0..40))
        .map(|i| {
            let mut j = job(
                i,
                rng.gen_range(0..6),
                [1, 1, 2, 4, 8, 16][rng.gen_range(0..6)],
            );
            j.predicted_s = rng.gen_range(1.0..5000.0);
            with_data(
                j,
                &format!("d{}", rng.gen_range(0..3)),
                rng.gen_range(0..50) * GB,
            )
        })
        .collect();
    (jobs, nodes)
}

#[test]
fn no_policy_ever_exceeds_capacity() {
    for seed in 0..60 {
        let (jobs, nodes) = scenario(seed);
        for kind in PolicyKind::ALL {
            let mut p = kind.build(&PolicyOptions::default());
            let out = p.place(50_000, &jobs, &nodes);
            assert_valid(&jobs, &nodes, &out);
        }
    }
}

#[test]
fn same_seed_same_placements() {
    for seed in 0..10 {
        let (jobs, nodes) = scenario(seed);
        let mut a = ga_delay(300.0);
        let mut b = ga_delay(300.0);
        for round in 0..3 {
            let now = 50_000 + round * 1000;
            assert_eq!(a.place(now, &jobs, &nodes), b.place(now, &jobs, &nodes));
        }
    }
}

#[test]
fn short_job_first_on_the_one_gpu() {
    let nodes = [node("a", 4, 1)];
    let mut long = job(1, 0, 1);
    long.predicted_s = 1000.0;
    let mut short = job(2, 0, 1);
    short.predicted_s = 10.0;
    let jobs = [long, short];
    let out = Ga::new(GaConfig::default(), None).place(10_000, &jobs, &nodes);
    assert_eq!(pairs(&nodes, &out), [(2, "a".to_owned())]);
}

#[test]
fn data_local_node_preferred_and_gangs_placed_whole() {
    let mut b = node("b", 8, 8);
    b.cached.insert("d".into());
    let nodes = [node("a", 8, 8), b, node("c", 8, 8)];
    let jobs = [with_data(job(1, 0, 2), "d", 20 * GB), job(2, 0, 16)];
    let out = Ga::new(GaConfig::default(), None).place(10_000, &jobs, &nodes);
    assert_valid(&jobs, &nodes, &out);
    assert_eq!(out.len(), 2);
    let local = out.iter().find(|p| p.job == 1).unwrap();
    assert_eq!(local.single_node(), Some(1), "the node holding its data");
    let gang = out.iter().find(|p| p.job == 2).unwrap();
    assert_eq!(gang.parts.len(), 2, "16 GPUs on two 8-GPU nodes");
}

/// `a` holds the data but is busy until `busy_s`; `b` is free and lacks it (20 GB at 100 MB/s:
/// 200 s of transfer).
fn delay_case(busy_s: i64) -> ([PendingJob; 1], [NodeView; 2]) {
    let mut a = node("a", 4, 1);
    a.cached.insert("d".into());
    a.free.gpus = 0;
    a.busy_until_ms = vec![busy_s * 1000];
    let mut j = with_data(job(0, 0, 1), "d", 20 * GB);
    j.predicted_s = 1000.0;
    ([j], [a, node("b", 4, 1)])
}

#[test]
fn waits_for_the_local_node_when_that_is_faster_without_delay() {
    // Waiting 100 s beats 200 s of transfer: the plan keeps the job for node a.
    let (jobs, nodes) = delay_case(100);
    assert!(Ga::new(GaConfig::default(), None)
        .place(0, &jobs, &nodes)
        .is_empty());
    // Waiting 500 s costs more: it goes to b now.
    let (jobs, nodes) = delay_case(500);
    let out = Ga::new(GaConfig::default(), None).place(0, &jobs, &nodes);
    assert_eq!(pairs(&nodes, &out), [(0, "b".to_owned())]);
}

#[test]
fn delay_declines_non_local_nodes_for_a_bounded_wait() {
    let mut p = ga_delay(300.0);
    // a frees in 250 s: worse than the transfer, but within the 300 s the job may wait.
    let (jobs, mut nodes) = delay_case(250);
    assert!(p.place(0, &jobs, &nodes).is_empty(), "declines b");
    assert_eq!(p.next_wake_ms(), Some(300_000));
    // a keeps overrunning its prediction, always just within what is left of the wait: the
    // job keeps waiting until its 300 s are spent, then takes b.
    nodes[0].busy_until_ms = vec![290_000];
    assert!(p.place(200_000, &jobs, &nodes).is_empty());
    nodes[0].busy_until_ms = vec![300_000];
    assert!(p.place(299_000, &jobs, &nodes).is_empty());
    nodes[0].busy_until_ms = vec![600_000];
    let out = p.place(300_000, &jobs, &nodes);
    assert_eq!(pairs(&nodes, &out), [(0, "b".to_owned())]);
}

#[test]
fn delay_does_not_wait_when_the_local_node_frees_too_late() {
    let mut p = ga_delay(300.0);
    let (jobs, nodes) = delay_case(5000);
    let out = p.place(0, &jobs, &nodes);
    assert_eq!(pairs(&nodes, &out), [(0, "b".to_owned())]);
}

#[test]
fn long_job_is_not_starved_by_a_stream_of_short_ones() {
    let cfg = GaConfig {
        starve_after_s: 3600.0,
        ..GaConfig::default()
    };
    let mut p = Ga::new(cfg, Some(DelayConfig::default()));
    let nodes = [node("a", 4, 1)];
    let mut long = job(0, 0, 1);
    long.submitted_ms = 0;
    long.predicted_s = 50_000.0;
    for k in 1..100 {
        let now = k * 600_000;
        let mut short = job(k, 0, 1);
        short.submitted_ms = now;
        short.predicted_s = 60.0;
        let out = p.place(now, &[long.clone(), short], &nodes);
        assert_eq!(out.len(), 1);
        if out[0].job == 0 {
            assert!(now >= 3_600_000, "ran early");
            assert!(now <= 3_600_000 + 600_000, "waited past the limit: {now}");
            return;
        }
    }
    panic!("the long job never ran");
}

#[test]
fn a_round_respects_its_time_budget() {
    let cfg = GaConfig {
        window: 1000,
        max_generations: 100_000,
        stall_generations: 100_000,
        gene_budget: u64::MAX,
        time_budget: Some(std::time::Duration::from_millis(50)),
        ..GaConfig::default()
    };
    let nodes: Vec<_> = (0..20).map(|i| node(&format!("n{i}"), 32, 8)).collect();
    let jobs: Vec<_> = (0..300)
        .map(|i| {
            let mut j = job(i, 0, 1);
            j.predicted_s = (i * 37 % 1000) as f64;
            j
        })
        .collect();
    let t = std::time::Instant::now();
    let out = Ga::new(cfg, None).place(0, &jobs, &nodes);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(out.len(), 160, "every free GPU used");
}

#[test]
fn live_like_cpu_nodes_without_predictions_fill_up() {
    // As the master builds them today: no GPUs, no predicted ends, default predictions.
    let mut a = node("a", 4, 0);
    a.free.cpus = 2;
    let b = {
        let mut b = node("b", 2, 0);
        b.allow_commands = false;
        b
    };
    let nodes = [a, b];
    let mut jobs: Vec<_> = (1..=5).map(|i| job(i, 1, 0)).collect();
    jobs[0].is_command = true;
    for kind in PolicyKind::ALL {
        let out = kind
            .build(&PolicyOptions::default())
            .place(10_000, &jobs, &nodes);
        assert_valid(&jobs, &nodes, &out);
        assert_eq!(out.len(), 4, "{kind}: every free core used");
    }
}
