//! The worker's main loop: one `tokio::select!` over the link to the master (registration and
//! heartbeat long-poll), job completions and shutdown.
//!
//! Losing the master: network errors and 5xx are retried with backoff while jobs keep
//! running; a 401 on a heartbeat means the master forgot this node, so it registers again
//! (listing its running attempts) and kills what the master says is no longer its own.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelyard_core::job::Resources;
use modelyard_core::protocol::{
    Assignment, AttemptRef, Heartbeat, HeartbeatResponse, Inventory, RegisterRequest,
    RegisterResponse, PROTOCOL_VERSION,
};
use tokio::task::{Id, JoinSet};

use crate::attempt::{run_attempt, AttemptCtx, Stop, StopReason};
use crate::client::{ClientError, MasterClient};
use crate::{Backoff, WorkerError};

/// Finished attempts remembered so that a late duplicate assignment is not run again.
const RECENT_KEEP: usize = 4096;
/// A heartbeat answered this fast with no news means the master does not long-poll: pause a
/// little before the next one instead of spinning.
const MIN_POLL: Duration = Duration::from_millis(50);
const SPIN_PAUSE: Duration = Duration::from_millis(100);
/// How long a stopping worker waits for the master to take its jobs back.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// After stopping the jobs at shutdown, how long their last output may take to be delivered.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

enum LinkEvent {
    Registered(Result<RegisterResponse, ClientError>),
    Heartbeat(Result<HeartbeatResponse, ClientError>, Duration),
}

type LinkCall = Pin<Box<dyn Future<Output = LinkEvent> + Send>>;

struct Running {
    resources: Resources,
    stop: Stop,
}

/// The state of one worker.
pub struct Agent {
    server: String,
    join_token: String,
    name: String,
    inventory: Inventory,
    client: Arc<MasterClient>,
    ctx: Arc<AttemptCtx>,
    jobs: HashMap<AttemptRef, Running>,
    tasks: JoinSet<AttemptRef>,
    task_jobs: HashMap<Id, AttemptRef>,
    recent: VecDeque<AttemptRef>,
    recent_set: HashSet<AttemptRef>,
    poll_ms: u64,
    backoff: Backoff,
}

impl Agent {
    pub fn new(
        server: String,
        join_token: String,
        name: String,
        inventory: Inventory,
        ctx: Arc<AttemptCtx>,
    ) -> Self {
        Self {
            server,
            join_token,
            name,
            inventory,
            client: ctx.client.clone(),
            ctx,
            jobs: HashMap::new(),
            tasks: JoinSet::new(),
            task_jobs: HashMap::new(),
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
            poll_ms: 10_000,
            backoff: Backoff::new(),
        }
    }

    /// Runs until `shutdown` resolves (then stops every job) or the master refuses this worker.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        let mut link = self.register_call(Duration::ZERO);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => {
                    tracing::info!(jobs = self.jobs.len(), "shutting down");
                    break Ok(());
                }
                event = &mut link => match self.on_link(event) {
                    Ok(next) => link = next,
                    Err(e) => break Err(e),
                },
                Some(done) = self.tasks.join_next_with_id() => self.on_task_end(done),
            }
        };
        self.stop_all().await;
        if result.is_ok() {
            // Hand back what did not finish now rather than after the lease; a master that
            // cannot be reached still requeues it when the lease runs out.
            match tokio::time::timeout(LEAVE_TIMEOUT, self.ctx.client.leave()).await {
                Ok(Ok(())) => tracing::info!("left the cluster"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not say goodbye to the master"),
                Err(_) => tracing::warn!("the master did not answer the goodbye in time"),
            }
        }
        result
    }

    fn running(&self) -> Vec<AttemptRef> {
        let mut r: Vec<AttemptRef> = self.jobs.keys().copied().collect();
        r.sort_by_key(|a| (a.job_id, a.attempt));
        r
    }

    fn free(&self) -> Resources {
        let total = Resources {
            cpus: self.inventory.cpus,
            memory_mb: self.inventory.memory_mb,
            gpus: u32::try_from(self.inventory.gpus.len()).unwrap_or(u32::MAX),
        };
        self.jobs
            .values()
            .fold(total, |free, r| free.minus(&r.resources))
    }

    fn register_call(&self, delay: Duration) -> LinkCall {
        let req = RegisterRequest {
            protocol_version: PROTOCOL_VERSION,
            join_token: self.join_token.clone(),
            name: self.name.clone(),
            inventory: self.inventory.clone(),
            running: self.running(),
        };
        let client = self.client.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            LinkEvent::Registered(client.register(&req).await)
        })
    }

    fn heartbeat_call(&self, delay: Duration) -> LinkCall {
        let hb = Heartbeat {
            free: self.free(),
            running: self.running(),
            cache: self.ctx.cache.inventory(),
            wait_ms: self.poll_ms,
        };
        let client = self.client.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let start = Instant::now();
            let r = client.heartbeat(&hb).await;
            LinkEvent::Heartbeat(r, start.elapsed())
        })
    }

    fn on_link(&mut self, event: LinkEvent) -> Result<LinkCall, WorkerError> {
        match event {
            LinkEvent::Registered(Ok(resp)) => {
                self.backoff.reset();
                self.client.set_token(resp.node_token);
                self.poll_ms = resp.poll_ms;
                tracing::info!(node.id = %resp.node_id, lease_ms = resp.lease_ms,
                    poll_ms = resp.poll_ms, "registered with the master");
                for job in resp.kill {
                    self.stop_job(job, StopReason::Rejected);
                }
                Ok(self.heartbeat_call(Duration::ZERO))
            }
            LinkEvent::Registered(Err(e)) => match e {
                ClientError::Status {
                    status,
                    code,
                    message,
                } if (400..500).contains(&status) && status != 408 && status != 429 => {
                    tracing::error!(status, code = %code, message = %message,
                        "the master refused this worker");
                    Err(WorkerError::Refused {
                        server: self.server.clone(),
                        code,
                        message,
                    })
                }
                e => {
                    let delay = self.backoff.next_delay();
                    tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64,
                        "cannot register with the master; retrying");
                    Ok(self.register_call(delay))
                }
            },
            LinkEvent::Heartbeat(Ok(resp), took) => {
                self.backoff.reset();
                let quiet = resp.assignments.is_empty() && resp.cancel.is_empty();
                for job in resp.cancel {
                    self.stop_job(job, StopReason::Cancelled);
                }
                for a in resp.assignments {
                    self.start_job(a);
                }
                let delay = if quiet && took < MIN_POLL {
                    SPIN_PAUSE
                } else {
                    Duration::ZERO
                };
                Ok(self.heartbeat_call(delay))
            }
            LinkEvent::Heartbeat(Err(e), _) if e.status() == Some(401) => {
                tracing::warn!(error = %e, "the master forgot this node; registering again");
                Ok(self.register_call(Duration::ZERO))
            }
            LinkEvent::Heartbeat(Err(e), _) => {
                let delay = self.backoff.next_delay();
                tracing::warn!(error = %e, retry_ms = delay.as_millis() as u64,
                    jobs = self.jobs.len(), "heartbeat failed; retrying");
                Ok(self.heartbeat_call(delay))
            }
        }
    }

    fn start_job(&mut self, a: Assignment) {
        let job = a.job;
        if self.jobs.contains_key(&job) || self.recent_set.contains(&job) {
            tracing::debug!(
                job.id = job.job_id,
                job.attempt = job.attempt,
                "duplicate assignment"
            );
            return;
        }
        let stop = Stop::default();
        let running = Running {
            // A part of a multi-node job holds its share here, not the whole job's need.
            resources: a.gang.as_ref().map_or(a.spec.resources, |g| g.held),
            stop: stop.clone(),
        };
        if !self.free().fits(&running.resources) {
            tracing::warn!(
                job.id = job.job_id,
                "assignment exceeds free resources; running it"
            );
        }
        tracing::info!(job.id = job.job_id, job.attempt = job.attempt,
            job.kind = a.spec.kind.as_str(), gpus = ?a.gpus, "job assigned");
        self.jobs.insert(job, running);
        let handle = self.tasks.spawn(run_attempt(self.ctx.clone(), a, stop));
        self.task_jobs.insert(handle.id(), job);
    }

    fn stop_job(&mut self, job: AttemptRef, reason: StopReason) {
        match self.jobs.get(&job) {
            Some(r) => {
                tracing::info!(job.id = job.job_id, job.attempt = job.attempt,
                    reason = ?reason, "stopping job");
                r.stop.stop(reason);
            }
            None => tracing::debug!(job.id = job.job_id, "stop for a job not running here"),
        }
    }

    fn on_task_end(&mut self, done: Result<(Id, AttemptRef), tokio::task::JoinError>) {
        let id = match &done {
            Ok((id, _)) => *id,
            Err(e) => {
                tracing::error!(error = %e, "job task failed");
                e.id()
            }
        };
        let Some(job) = self.task_jobs.remove(&id) else {
            return;
        };
        self.jobs.remove(&job);
        if self.recent_set.insert(job) {
            self.recent.push_back(job);
        }
        while self.recent.len() > RECENT_KEEP {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }

    /// Stops every job and waits for them, bounded by the grace period plus a short flush.
    async fn stop_all(&mut self) {
        for r in self.jobs.values() {
            r.stop.stop(StopReason::Shutdown);
        }
        let limit = self.ctx.grace + SHUTDOWN_FLUSH;
        let drained = tokio::time::timeout(limit, async {
            while let Some(done) = self.tasks.join_next_with_id().await {
                self.on_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                jobs = self.jobs.len(),
                "jobs still reporting at shutdown; giving up"
            );
            self.ctx.abandon.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while self.tasks.join_next().await.is_some() {}
            })
            .await;
            // Aborting drops the runners, whose guards SIGKILL any group still there.
            self.tasks.shutdown().await;
        }
    }
}
