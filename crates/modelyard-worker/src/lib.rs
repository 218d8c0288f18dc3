//! The modelyard compute-node agent: registers with the master, long-polls for work, stages
//! inputs through a verified cache, runs jobs as child processes and streams what they do.

mod agent;
mod attempt;
mod cache;
mod client;
mod inventory;
mod metrics;
mod orphans;
mod outputs;
mod procs;
mod report;
mod runner;
mod stage;
#[cfg(test)]
mod testing;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::attempt::AttemptCtx;
use crate::cache::BlobCache;
use crate::client::MasterClient;

/// How a worker is set up; built once by the CLI (or a test) and passed to [`run`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Base URL of the master, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// The cluster's join token (`modelyard admin join-token`).
    pub join_token: String,
    /// Name shown on the nodes page.
    pub name: String,
    /// The input cache (`blobs/<sha256>`); one worker per cache directory.
    pub cache_dir: PathBuf,
    /// Bytes the cache may hold before least-recently-used blobs are evicted.
    pub cache_bytes: u64,
    /// Where job directories live (`jobs/<job_id>-<attempt>/`); one worker per directory.
    pub work_dir: PathBuf,
    /// Whether `command` jobs may run here (`--allow-commands`).
    pub allow_commands: bool,
    /// Time between SIGTERM and SIGKILL when a job is cancelled or times out.
    pub grace: Duration,
    /// Throughput to report instead of measuring it at start-up (`--gflops`): for operators
    /// who know their nodes, or nodes identical but noisy to measure.
    pub gflops: Option<f64>,
    /// The address other nodes reach this one at (rank 0 of a multi-node job listens there);
    /// default: the local address of the route to the master.
    pub advertise_addr: Option<String>,
}

/// Why a worker stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The master refused the registration (wrong join token, protocol version mismatch):
    /// retrying cannot help. `message` is the master's own explanation.
    #[error("the master at {server} refused this worker ({code}): {message}")]
    Refused {
        server: String,
        code: String,
        message: String,
    },
}

/// Runs the worker until `shutdown` resolves (then stops taking work, terminates its jobs'
/// process trees and returns `Ok`), or until the master refuses it (a [`WorkerError`] inside
/// the `anyhow::Error`, with the master's message). Network trouble is retried, not returned.
pub async fn run(
    mut config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Absolute paths: jobs run in their own directory and get these paths in their environment.
    config.work_dir = absolute_dir(&config.work_dir, "work").await?;
    config.cache_dir = absolute_dir(&config.cache_dir, "cache").await?;
    let _work_lock = orphans::lock_dir(&config.work_dir, "worker.lock")?;
    let _cache_lock = orphans::lock_dir(&config.cache_dir, "cache.lock")?;
    orphans::reap(&config.work_dir);

    let cache = BlobCache::open(&config.cache_dir, config.cache_bytes)
        .with_context(|| format!("opening cache {}", config.cache_dir.display()))?;
    let mut inventory =
        inventory::detect(config.allow_commands, config.cache_bytes, config.gflops).await;
    inventory.address = config
        .advertise_addr
        .clone()
        .or_else(|| inventory::route_address(&config.server));
    tracing::info!(cpus = inventory.cpus, memory_mb = inventory.memory_mb,
        gpus = inventory.gpus.len(), gflops = inventory.gflops, server = %config.server,
        "worker starting");
    let client = Arc::new(MasterClient::new(&config.server, String::new())?);
    let eval_program = std::env::current_exe()
        .inspect_err(|e| tracing::warn!(error = %e, "cannot find own executable for eval jobs"))
        .ok();
    let ctx = Arc::new(AttemptCtx {
        client,
        cache: Arc::new(cache),
        work_dir: config.work_dir.clone(),
        allow_commands: config.allow_commands,
        grace: config.grace,
        eval_program,
        abandon: CancellationToken::new(),
    });
    let agent = Agent::new(
        config.server,
        config.join_token,
        config.name,
        inventory,
        ctx,
    );
    agent.run(shutdown).await?;
    tracing::info!("worker stopped");
    Ok(())
}

async fn absolute_dir(dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("creating {what} directory {}", dir.display()))?;
    tokio::fs::canonicalize(dir)
        .await
        .with_context(|| format!("resolving {what} directory {}", dir.display()))
}

/// Exponential backoff with jitter, from 100 ms up to 5 s.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        base.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..1.25))
    }
}

#[cfg(test)]
mod tests;
