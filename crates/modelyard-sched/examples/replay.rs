//! Replays a trace through policies and prints the table (the library path behind
//! `modelyard simulate`, runnable without building the whole CLI).
//!
//! `cargo run --release -p modelyard-sched --example replay -- TRACE [JOBS] [NODES] [GPUS]
//! [POLICIES] [SIGMA] [DELAY_S]`, e.g. `... -- ../shared/data/traces/philly.csv 10000 48 8 all`.

use std::time::Instant;

use modelyard_sched::sim::{self, cluster::ClusterSpec, report, trace, SimConfig};
use modelyard_sched::{DelayConfig, PolicyKind, PolicyOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let path = arg(0, "../shared/data/traces/philly.csv");
    let n: usize = arg(1, "10000").parse().expect("jobs");
    let nodes: usize = arg(2, "48").parse().expect("nodes");
    let gpus: u32 = arg(3, "8").parse().expect("gpus");
    let kinds: Vec<PolicyKind> = match arg(4, "all").as_str() {
        "all" => PolicyKind::ALL.to_vec(),
        s => s.split(',').map(|k| k.parse().expect("policy")).collect(),
    };
    let mut cluster = ClusterSpec::uniform(nodes, gpus);
    if let Ok(tb) = std::env::var("CACHE_TB") {
        let bytes = (tb.parse::<f64>().expect("CACHE_TB") * 1e12) as u64;
        cluster.nodes.iter_mut().for_each(|n| n.cache_bytes = bytes);
    }
    let cfg = SimConfig {
        cluster,
        datasets: Default::default(),
        error_sigma: arg(5, "0.5").parse().expect("sigma"),
        seed: std::env::var("SEED").map_or(1, |s| s.parse().expect("SEED")),
    };
    let mut opts = PolicyOptions {
        delay: DelayConfig {
            max_wait_s: arg(6, "300").parse().expect("delay"),
        },
        ..PolicyOptions::default()
    };
    // Experiment knobs: GA_STARVE_S, GA_WINDOW, GA_POP, GA_GENS.
    let env = |k: &str| std::env::var(k).ok();
    if let Some(v) = env("GA_STARVE_S") {
        opts.ga.starve_after_s = v.parse().expect("GA_STARVE_S");
    }
    if let Some(v) = env("GA_WINDOW") {
        opts.ga.window = v.parse().expect("GA_WINDOW");
    }
    if let Some(v) = env("GA_POP") {
        opts.ga.population = v.parse().expect("GA_POP");
    }
    if let Some(v) = env("GA_GENS") {
        opts.ga.max_generations = v.parse().expect("GA_GENS");
    }
    opts.ga.seed = cfg.seed;
    let t = trace::first_n(trace::load(path.as_ref()).expect("trace"), Some(n));
    let jobs = sim::prepare(&t, &cfg);
    let mut rows = Vec::new();
    for k in kinds {
        let t0 = Instant::now();
        let (s, _) = sim::run_policy(&jobs, &cfg, k, &opts);
        eprintln!("{k}: {:.1} s", t0.elapsed().as_secs_f64());
        rows.push(s);
    }
    print!("{}", report::table(&rows));
}
