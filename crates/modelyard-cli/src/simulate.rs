//! `modelyard simulate`: replay a job trace through the scheduling policies on a simulated
//! cluster and compare them (table, CSV, JSON lines, SVG chart of the JCT distribution).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use modelyard_sched::sim::{self, cluster, report, trace, SimConfig};
use modelyard_sched::{DelayConfig, GaConfig, PolicyKind, PolicyOptions};

#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Trace file: the Philly CSV (timestamp,duration,num_gpus,...) or the generic CSV
    /// (submit_s,duration_s,gpus[,group][,dataset,dataset_bytes]).
    #[arg(long)]
    pub trace: PathBuf,
    /// fifo, sjf, mct, ga, ga-delay, or all (every one on the same trace and cluster).
    #[arg(long, default_value = "all")]
    pub policy: String,
    /// Replay only the first N jobs by submission time.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Nodes in the simulated cluster (speeds 0.8, 1.0, 1.2 in turn).
    #[arg(long, default_value_t = 64)]
    pub nodes: usize,
    #[arg(long, default_value_t = 8)]
    pub gpus_per_node: u32,
    /// Input cache per node, GB.
    #[arg(long, default_value_t = cluster::CACHE_BYTES / 1_000_000_000)]
    pub cache_gb: u64,
    /// Input fetch bandwidth per node, MB/s.
    #[arg(long, default_value_t = cluster::BANDWIDTH_BPS / 1e6)]
    pub bandwidth_mb_s: f64,
    /// Seed of everything random: datasets, prediction errors, the GA.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// σ of the log-normal prediction error (0: the policies know every duration).
    #[arg(long, default_value_t = 0.5)]
    pub error_sigma: f64,
    /// Longest time a job may spend declining nodes without its data (ga-delay).
    #[arg(long, default_value_t = DelayConfig::default().max_wait_s)]
    pub delay_s: f64,
    /// Write the summary as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the JCT CDF chart (one curve per policy) as SVG here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Print one JSON object per policy and line instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn policies(s: &str) -> anyhow::Result<Vec<PolicyKind>> {
    if s == "all" {
        return Ok(PolicyKind::ALL.to_vec());
    }
    s.split(',')
        .map(|p| p.trim().parse().map_err(anyhow::Error::msg))
        .collect()
}

/// Runs the simulation off the async runtime and prints the results.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || simulate(&args)).await?
}

fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let kinds = policies(&args.policy)?;
    let raw =
        trace::load(&args.trace).with_context(|| format!("reading {}", args.trace.display()))?;
    let t = trace::first_n(raw, args.jobs);
    let mut cluster = cluster::ClusterSpec::uniform(args.nodes, args.gpus_per_node);
    for n in &mut cluster.nodes {
        n.cache_bytes = args.cache_gb * 1_000_000_000;
        n.bandwidth_bps = args.bandwidth_mb_s * 1e6;
    }
    let cfg = SimConfig {
        cluster,
        datasets: Default::default(),
        error_sigma: args.error_sigma,
        seed: args.seed,
    };
    let opts = PolicyOptions {
        ga: GaConfig {
            seed: args.seed,
            ..GaConfig::default()
        },
        delay: DelayConfig {
            max_wait_s: args.delay_s,
        },
    };
    let jobs = sim::prepare(&t, &cfg);
    if !args.json {
        eprintln!(
            "{} jobs on {} nodes x {} GPUs ({} GPUs), seed {}, error sigma {}",
            jobs.len(),
            args.nodes,
            args.gpus_per_node,
            cfg.cluster.total_gpus(),
            args.seed,
            args.error_sigma
        );
    }
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for kind in kinds {
        let started = Instant::now();
        let (summary, jct) = sim::run_policy(&jobs, &cfg, kind, &opts);
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            eprintln!(
                "{kind}: replayed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        rows.push(summary);
        curves.push((kind.name().to_owned(), jct));
    }
    if !args.json {
        print!("{}", report::table(&rows));
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, report::csv(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        sim::svg::jct_cdf(path, &curves)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
