//! `modelyard worker`: the compute-node agent, and the local worker that `up` starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct WorkerArgs {
    /// The hub's URL.
    #[arg(long, env = "MODELYARD_SERVER")]
    pub server: String,
    /// The cluster join token (`modelyard admin join-token` prints it).
    #[arg(long, env = "MODELYARD_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: String,
    /// Name shown on the nodes page [default: the host name].
    #[arg(long)]
    pub name: Option<String>,
    /// The input cache [default: ./modelyard-worker/cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// How much the cache may hold, e.g. 20GiB.
    #[arg(long, default_value = "20GiB")]
    pub cache_size: bytesize::ByteSize,
    /// Where job directories go [default: ./modelyard-worker/work].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Run `command` jobs (arbitrary user commands) on this node.
    #[arg(long)]
    pub allow_commands: bool,
    /// Milliseconds between SIGTERM and SIGKILL when a job is cancelled or times out.
    #[arg(long, default_value_t = 10_000)]
    pub grace_ms: u64,
    /// Report this throughput (GFLOP/s) instead of measuring it with a short calibration at
    /// start-up; the scheduler and the runtime predictor rank nodes by it.
    #[arg(long)]
    pub gflops: Option<f64>,
    /// Address other workers reach this one at, for multi-node jobs (MASTER_ADDR of the jobs
    /// whose rank 0 runs here) [default: the local address of the route to the server].
    #[arg(long, env = "MODELYARD_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
}

pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

impl WorkerArgs {
    pub fn config(&self) -> modelyard_worker::WorkerConfig {
        let base = PathBuf::from("modelyard-worker");
        modelyard_worker::WorkerConfig {
            server: self.server.trim_end_matches('/').to_owned(),
            join_token: self.join_token.clone(),
            name: self.name.clone().unwrap_or_else(host_name),
            cache_dir: self.cache_dir.clone().unwrap_or_else(|| base.join("cache")),
            cache_bytes: self.cache_size.as_u64(),
            work_dir: self.work_dir.clone().unwrap_or_else(|| base.join("work")),
            allow_commands: self.allow_commands,
            grace: Duration::from_millis(self.grace_ms),
            gflops: self.gflops,
            advertise_addr: self.advertise_addr.clone(),
        }
    }
}

pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    crate::server::init_logs();
    modelyard_worker::run(args.config(), crate::server::shutdown_signal()).await
}
