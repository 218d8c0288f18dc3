//! The scheduler loop: expire lost nodes, then place queued jobs with the policy and write the
//! placements in one transaction. Runs on wake-ups (submission, capacity freed) and a timer.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use modelyard_core::job::{JobKind, JobSpec, Resources};
use modelyard_core::protocol::{CacheItem, Inventory};
use modelyard_sched::{Fifo, GaConfig, NodeView, PendingJob, Policy, PolicyKind, PolicyOptions};
use modelyard_store::{GangPart, JobRow, StoreError};

use crate::state::AppState;

/// Names the placement policy: `fifo`, `sjf`, `mct`, `ga` or `ga-delay` (the default).
pub const POLICY_ENV: &str = "MODELYARD_SCHED_POLICY";
/// Seconds a job may decline nodes without its inputs under `ga-delay` (default 3600).
pub const DELAY_ENV: &str = "MODELYARD_SCHED_DELAY_S";

/// The policy named by [`POLICY_ENV`], with the GA's live settings ([`GaConfig::live`]).
fn configured_policy() -> Box<dyn Policy + Send> {
    let kind = match std::env::var(POLICY_ENV) {
        Ok(name) => name.parse().unwrap_or_else(|e: String| {
            tracing::warn!(error = %e, "unknown scheduling policy, using ga-delay");
            PolicyKind::GaDelay
        }),
        Err(_) => PolicyKind::GaDelay,
    };
    let mut opts = PolicyOptions {
        ga: GaConfig::live(),
        ..PolicyOptions::default()
    };
    if let Ok(v) = std::env::var(DELAY_ENV) {
        match v.parse::<f64>() {
            Ok(s) if s >= 0.0 => opts.delay.max_wait_s = s,
            _ => tracing::warn!(value = %v, "{DELAY_ENV} is not a number of seconds, ignored"),
        }
    }
    tracing::info!(policy = %kind, delay_s = opts.delay.max_wait_s, "scheduler policy");
    kind.build(&opts)
}

/// Runs until the process ends.
pub async fn run(state: AppState) {
    let mut policy = configured_policy();
    loop {
        tokio::select! {
            _ = state.master.scheduler_woken() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if let Err(e) = round(&state, &mut policy).await {
            tracing::error!(error = %e, "scheduler round failed");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The scheduler's view of the cluster: queued jobs with their predictions, alive nodes with
/// what is free, cached and predicted to free, and the GPUs already reserved.
pub struct Snapshot {
    pub pending: Vec<PendingJob>,
    pub views: Vec<NodeView>,
    gpu_indices: HashMap<String, Vec<u32>>,
    gpus_in_use: HashMap<String, HashSet<u32>>,
}

/// Seconds the scheduler plans a job for: its stored prediction on the median node.
fn predicted_s(job: &JobRow) -> f64 {
    crate::predict::stored(job).map_or(modelyard_sched::DEFAULT_PREDICTED_S, |p| p.reference_s)
}

/// Reads the queue and the nodes.
pub async fn snapshot(state: &AppState) -> Result<Snapshot, StoreError> {
    let queued = state.store.queued_jobs(1000).await?;
    let mut pending = Vec::with_capacity(queued.len());
    for job in &queued {
        match serde_json::from_str::<JobSpec>(&job.spec) {
            Ok(spec) => pending.push(PendingJob {
                id: job.id,
                resources: spec.resources,
                is_command: job.kind == "command",
                inputs: spec
                    .inputs
                    .iter()
                    .map(|i| (i.sha256.clone(), i.size))
                    .collect(),
                submitted_ms: job.created_at,
                predicted_s: match (&job.prediction, spec.kind) {
                    // Submitted before its model was analysed or its dataset summarised.
                    (None, JobKind::Evaluate) => crate::predict::predict_queued(state, job)
                        .await
                        .map_or(modelyard_sched::DEFAULT_PREDICTED_S, |p| p.reference_s),
                    _ => predicted_s(job),
                },
            }),
            Err(e) => tracing::error!(job.id = job.id, error = %e, "unreadable job spec"),
        }
    }
    let mut used: HashMap<String, Resources> = HashMap::new();
    let mut gpus_in_use: HashMap<String, HashSet<u32>> = HashMap::new();
    // Predicted end of each running job with what it holds, to become one entry per slot it
    // holds once the node is known (see NodeView).
    let mut ends: HashMap<String, Vec<(Resources, i64)>> = HashMap::new();
    // What each unfinished rank of a multi-node job holds on its node.
    let mut ranks: HashMap<i64, Vec<(String, Vec<u32>, Resources)>> = HashMap::new();
    for r in state.store.active_ranks().await? {
        let held = serde_json::from_str::<Resources>(&r.resources).unwrap_or_default();
        ranks
            .entry(r.job_id)
            .or_default()
            .push((r.node_id, r.gpus, held));
    }
    for job in state.store.active_jobs().await? {
        let Ok(spec) = serde_json::from_str::<JobSpec>(&job.spec) else {
            continue;
        };
        let parts = match ranks.remove(&job.id) {
            Some(parts) => parts,
            None => match &job.node_id {
                Some(node) => vec![(node.clone(), job.gpus.clone(), spec.resources)],
                None => continue,
            },
        };
        let end = crate::predict::stored(&job)
            .zip(job.started_at.or(job.assigned_at))
            .map(|(p, since)| since + (p.reference_s * 1000.0) as i64);
        for (node, gpus, held) in parts {
            gpus_in_use
                .entry(node.clone())
                .or_default()
                .extend(gpus.iter().copied());
            let u = used.entry(node.clone()).or_default();
            u.cpus += held.cpus;
            u.memory_mb += held.memory_mb;
            u.gpus += held.gpus;
            if let Some(end) = end {
                ends.entry(node).or_default().push((held, end));
            }
        }
    }
    let mut views = Vec::new();
    let mut gpu_indices: HashMap<String, Vec<u32>> = HashMap::new();
    for node in state
        .store
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.state == "alive")
    {
        let Ok(inv) = serde_json::from_str::<Inventory>(&node.inventory) else {
            continue;
        };
        let total = Resources {
            cpus: inv.cpus,
            memory_mb: inv.memory_mb,
            gpus: inv.gpus.len() as u32,
        };
        gpu_indices.insert(node.id.clone(), inv.gpus.iter().map(|g| g.index).collect());
        let cached: HashSet<String> = node
            .cache_json
            .as_deref()
            .and_then(|c| serde_json::from_str::<Vec<CacheItem>>(c).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.sha256)
            .collect();
        views.push(NodeView {
            free: total.minus(used.get(&node.id).unwrap_or(&Resources::default())),
            total,
            busy_until_ms: ends
                .remove(&node.id)
                .unwrap_or_default()
                .into_iter()
                .flat_map(|(need, end)| {
                    std::iter::repeat_n(end, modelyard_sched::plan::slots_held(&need, &total))
                })
                .collect(),
            id: node.id,
            allow_commands: inv.allow_commands,
            cached,
            speed: inv.gflops, // made relative below
            bandwidth_bps: modelyard_sched::DEFAULT_BANDWIDTH_BPS,
        });
    }
    // Node speed relative to the median node, from the workers' calibration.
    let mut gflops: Vec<f64> = views.iter().map(|v| v.speed).filter(|g| *g > 0.0).collect();
    gflops.sort_by(f64::total_cmp);
    let median = gflops.get(gflops.len() / 2).copied().unwrap_or(1.0);
    for v in &mut views {
        v.speed = if v.speed > 0.0 { v.speed / median } else { 1.0 };
    }
    Ok(Snapshot {
        pending,
        views,
        gpu_indices,
        gpus_in_use,
    })
}

async fn round(state: &AppState, policy: &mut Box<dyn Policy + Send>) -> Result<(), StoreError> {
    for node in state
        .store
        .expire_nodes(state.master.timing.lease.as_millis() as i64)
        .await?
    {
        let n = state
            .store
            .requeue_jobs_of(&node, "its node stopped sending heartbeats")
            .await?;
        tracing::warn!(node.id = %node, requeued = n, "node lost");
    }
    let Snapshot {
        pending,
        views,
        gpu_indices,
        mut gpus_in_use,
    } = snapshot(state).await?;
    if pending.is_empty() {
        return Ok(());
    }
    // The policy (a GA round can take tens of milliseconds) runs off the async runtime.
    let now = modelyard_store::now_ms();
    let owned = std::mem::replace(policy, Box::new(Fifo));
    let Ok((owned, placed, pending, views)) = tokio::task::spawn_blocking(move || {
        let mut owned = owned;
        let placed = owned.place(now, &pending, &views);
        (owned, placed, pending, views)
    })
    .await
    else {
        tracing::error!("scheduling policy panicked, continuing with fifo");
        return Ok(());
    };
    *policy = owned;
    tracing::debug!(
        queued = pending.len(),
        nodes = views.len(),
        placed = placed.len(),
        "scheduling round"
    );
    if placed.is_empty() {
        return Ok(());
    }
    // Reserve concrete GPU indices on each node of a placement: the lowest free ones.
    let mut take_gpus = |node: &str, n: u32| -> Vec<u32> {
        let busy = gpus_in_use.entry(node.to_owned()).or_default();
        let take: Vec<u32> = gpu_indices
            .get(node)
            .into_iter()
            .flatten()
            .copied()
            .filter(|g| !busy.contains(g))
            .take(n as usize)
            .collect();
        busy.extend(take.iter().copied());
        take
    };
    let mut single = Vec::new();
    let mut gangs = Vec::new();
    for p in &placed {
        match p.single_node() {
            Some(n) => {
                let node = views[n].id.clone();
                let gpus = take_gpus(&node, p.parts[0].1.gpus);
                single.push((p.job, node, gpus));
            }
            None => {
                let parts: Vec<GangPart> = p
                    .parts
                    .iter()
                    .map(|(n, held)| GangPart {
                        node_id: views[*n].id.clone(),
                        gpus: take_gpus(&views[*n].id, held.gpus),
                        resources: serde_json::to_string(held).unwrap_or_default(),
                    })
                    .collect();
                gangs.push((p.job, parts));
            }
        }
    }
    let mut woken = HashSet::new();
    for (job, node, attempt) in state.store.assign_jobs(&single).await? {
        tracing::info!(job.id = job, node.id = %node, attempt, "job assigned");
        if woken.insert(node.clone()) {
            state.master.wake_node(&node);
        }
    }
    for (job, parts) in gangs {
        if let Some(attempt) = state
            .store
            .assign_gang(job, &parts, super::cluster_api::GANG_PORTS)
            .await?
        {
            let nodes: Vec<&str> = parts.iter().map(|p| p.node_id.as_str()).collect();
            tracing::info!(job.id = job, nodes = ?nodes, attempt, "job assigned to several nodes");
            for p in &parts {
                if woken.insert(p.node_id.clone()) {
                    state.master.wake_node(&p.node_id);
                }
            }
        }
    }
    Ok(())
}
