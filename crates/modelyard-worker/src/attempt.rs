//! One attempt of one job, from assignment to the last accepted report: refuse or stage
//! inputs, run the child, turn its outcome into a `finished` event.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use modelyard_core::job::{JobInput, JobKind, EVAL_ERROR_FILE, EVAL_REPORT_FILE};
use modelyard_core::protocol::{Assignment, AttemptRef, Finished};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cache::{BlobCache, FetchError, Pinned};
use crate::client::MasterClient;
use crate::outputs::{upload_outputs, UploadError};
use crate::report::{report, ReportItem, ReportOutcome};
use crate::runner::{run_child, ChildSpec, Outcome};
use crate::stage::JobDir;
use crate::Backoff;

/// Items buffered between the runner and the reporter before the job's pipes block.
const CHANNEL_CAP: usize = 256;
/// Tries for an input download that fails for a transient reason.
const FETCH_TRIES: u32 = 8;
/// Name of the file in a job directory holding the job's process group id, so a restarted
/// worker can kill what a crashed one left running.
pub const PGID_FILE: &str = "pgid";

/// Why an attempt is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Cancelled by the master: reported as `cancelled`.
    Cancelled,
    /// No longer this node's (stale attempt, or listed in `kill`): nothing more is reported.
    Rejected,
    /// The worker is shutting down: output is flushed, no final state is reported, so the
    /// master requeues the job when this node's lease runs out.
    Shutdown,
}

/// Tells a running attempt to stop, and why (the first reason given wins).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Stop {
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.get().copied()
    }
}

/// What every attempt shares.
#[derive(Debug)]
pub struct AttemptCtx {
    pub client: Arc<MasterClient>,
    pub cache: Arc<BlobCache>,
    pub work_dir: PathBuf,
    pub allow_commands: bool,
    pub grace: Duration,
    /// The `modelyard` binary that runs `eval` for evaluate jobs.
    pub eval_program: Option<PathBuf>,
    /// Cancelled at worker shutdown to stop retrying reports.
    pub abandon: CancellationToken,
}

/// Runs one attempt to its end and returns its reference.
pub async fn run_attempt(ctx: Arc<AttemptCtx>, a: Assignment, stop: Stop) -> AttemptRef {
    let job = a.job;
    let (tx, rx) = mpsc::channel(CHANNEL_CAP);
    // Of a multi-node job, only rank 0 reports logs and metrics; the others keep theirs in
    // their job directory (their start and end still count).
    let rx = match &a.gang {
        Some(g) if g.rank > 0 => states_only(rx),
        _ => rx,
    };
    let on_reject = {
        let stop = stop.clone();
        move || stop.stop(StopReason::Rejected)
    };
    let reporter = tokio::spawn(report(
        ctx.client.clone(),
        job,
        rx,
        on_reject,
        ctx.abandon.clone(),
    ));
    let dir = JobDir::for_attempt(&ctx.work_dir, job.job_id, job.attempt);
    let mut finished = execute(&ctx, &a, &dir, &stop, &tx).await;
    if a.spec.kind == JobKind::Evaluate && stop.reason().is_none() {
        attach_eval_report(&mut finished, &dir.outputs).await;
    }
    let rank0 = a.gang.as_ref().is_none_or(|g| g.rank == 0);
    if finished.state == "succeeded" && a.spec.output.is_some() && rank0 && stop.reason().is_none()
    {
        match upload_outputs(&ctx.client, job, &dir.outputs).await {
            Ok(n) => {
                tracing::info!(
                    job.id = job.job_id,
                    job.attempt = job.attempt,
                    files = n,
                    "outputs uploaded"
                );
            }
            Err(UploadError::Stale(e)) => {
                tracing::info!(job.id = job.job_id, job.attempt = job.attempt, reason = %e,
                    "master no longer wants this attempt");
                stop.stop(StopReason::Rejected);
            }
            Err(UploadError::Failed(e)) => {
                finished = failed(format!("uploading outputs: {e}"));
            }
        }
    }
    // A job stopped by shutdown is left to the master to requeue; one that ended on its own
    // meanwhile is still reported, so it never runs twice.
    let silent = match stop.reason() {
        Some(StopReason::Rejected) => true,
        Some(StopReason::Shutdown) => finished.state == "cancelled",
        _ => false,
    };
    if !silent {
        tracing::info!(job.id = job.job_id, job.attempt = job.attempt, job.state = %finished.state,
            job.exit_code = ?finished.exit_code, job.reason = %finished.reason, "job finished");
        let _ = tx.send(ReportItem::Finished(finished)).await;
    }
    drop(tx);
    match reporter.await.unwrap_or(ReportOutcome::Abandoned) {
        ReportOutcome::Delivered => {}
        ReportOutcome::Rejected(why) => {
            tracing::info!(job.id = job.job_id, job.attempt = job.attempt, reason = %why,
                "master no longer wants this attempt");
        }
        ReportOutcome::Abandoned => {
            tracing::warn!(
                job.id = job.job_id,
                job.attempt = job.attempt,
                "gave up reporting this attempt"
            );
        }
    }
    if let Err(e) = dir.remove_inputs().await {
        tracing::warn!(job.id = job.job_id, error = %e, "cannot remove job inputs");
    }
    let _ = tokio::fs::remove_file(dir.root.join(PGID_FILE)).await;
    job
}

/// Forwards only `Started` and `Finished`, dropping output and metrics.
fn states_only(mut rx: mpsc::Receiver<ReportItem>) -> mpsc::Receiver<ReportItem> {
    let (tx, out) = mpsc::channel(CHANNEL_CAP);
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            let keep = matches!(item, ReportItem::Started | ReportItem::Finished(_));
            if keep && tx.send(item).await.is_err() {
                break;
            }
        }
    });
    out
}

fn finished(state: &str, exit_code: Option<i32>, reason: impl Into<String>) -> Finished {
    Finished {
        state: state.to_owned(),
        exit_code,
        reason: reason.into(),
        result: None,
    }
}

fn failed(reason: impl Into<String>) -> Finished {
    finished("failed", None, reason)
}

/// An evaluation's report goes with its success; its own words go with its failure.
async fn attach_eval_report(finished: &mut Finished, outputs: &Path) {
    match finished.state.as_str() {
        "succeeded" => match tokio::fs::read(outputs.join(EVAL_REPORT_FILE)).await {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => finished.result = Some(v),
                Err(e) => *finished = failed(format!("eval wrote an unreadable report: {e}")),
            },
            Err(e) => *finished = failed(format!("eval left no report: {e}")),
        },
        "failed" => {
            if let Ok(why) = tokio::fs::read_to_string(outputs.join(EVAL_ERROR_FILE)).await {
                let why: String = why.trim().chars().take(2000).collect();
                finished.reason = format!("{}: {why}", finished.reason);
            }
        }
        _ => {}
    }
}

/// Stages, runs and judges the attempt; the `Finished` to report unless the stop reason says
/// to stay silent.
async fn execute(
    ctx: &AttemptCtx,
    a: &Assignment,
    dir: &JobDir,
    stop: &Stop,
    tx: &mpsc::Sender<ReportItem>,
) -> Finished {
    let job = a.job;
    if a.spec.kind == JobKind::Command && !ctx.allow_commands {
        tracing::warn!(
            job.id = job.job_id,
            "refusing command job: commands not allowed here"
        );
        return failed("this worker does not run command jobs");
    }
    if let Err(e) = dir.create().await {
        return failed(format!("cannot create the job directory: {e}"));
    }
    let mut pins: Vec<Pinned> = Vec::new();
    for input in &a.spec.inputs {
        let dest = match dir.input_path(input) {
            Ok(d) => d,
            Err(e) => return failed(format!("invalid input: {e}")),
        };
        let pin = tokio::select! {
            r = fetch(ctx, input) => r,
            () = stop.token.cancelled() => {
                return finished("cancelled", None, "cancelled while staging inputs");
            }
        };
        let pin = match pin {
            Ok(p) => p,
            Err(e) => return failed(format!("cannot stage input {}: {e}", input.path)),
        };
        if let Err(e) = dir.link_input(&pin, &dest).await {
            return failed(format!("cannot link input {}: {e}", input.path));
        }
        pins.push(pin);
    }
    let (program, args): (OsString, Vec<OsString>) = match a.spec.kind {
        JobKind::Command => match &a.spec.command {
            Some(cmd) => ("sh".into(), vec!["-c".into(), cmd.into()]),
            None => return failed("command job without a command"),
        },
        JobKind::Evaluate => {
            let Some(exe) = &ctx.eval_program else {
                return failed("this worker cannot find its own executable to run eval");
            };
            let spec_path = dir.root.join("job.json");
            let json = serde_json::to_vec_pretty(&a.spec).unwrap_or_default();
            if let Err(e) = tokio::fs::write(&spec_path, json).await {
                return failed(format!("cannot write the job spec: {e}"));
            }
            let args = vec![
                "eval".into(),
                "--job-spec".into(),
                spec_path.into_os_string(),
                "--json".into(),
            ];
            (exe.clone().into_os_string(), args)
        }
    };
    let spec = ChildSpec {
        program,
        args,
        cwd: dir.root.clone(),
        env: dir.env(a),
        metrics_file: Some(dir.metrics_file.clone()),
        timeout: (a.spec.timeout_s > 0).then(|| Duration::from_secs(a.spec.timeout_s)),
        grace: ctx.grace,
    };
    let pgid_file = dir.root.join(PGID_FILE);
    let on_spawn = move |pgid: i32| {
        tracing::info!(
            job.id = job.job_id,
            job.attempt = job.attempt,
            pgid,
            "job started"
        );
        if let Err(e) = std::fs::write(&pgid_file, pgid.to_string()) {
            tracing::warn!(job.id = job.job_id, error = %e, "cannot record job process group");
        }
    };
    let outcome = run_child(spec, tx.clone(), stop.token.clone(), on_spawn).await;
    drop(pins);
    judge(outcome, a.spec.timeout_s)
}

/// The `finished` event for an outcome.
pub fn judge(outcome: Outcome, timeout_s: u64) -> Finished {
    match outcome {
        Outcome::Exited(0) => finished("succeeded", Some(0), "exit code 0"),
        Outcome::Exited(code) => finished("failed", Some(code), format!("exit code {code}")),
        Outcome::Signalled(sig) => failed(format!("killed by signal {sig}")),
        Outcome::TimedOut(_) => failed(format!("timed out after {timeout_s} s")),
        Outcome::Stopped { exit_code } => finished("cancelled", exit_code, "cancelled"),
        Outcome::SpawnFailed(why) => failed(why),
    }
}

/// Fetches one input into the cache, retrying transient failures.
async fn fetch(ctx: &AttemptCtx, input: &JobInput) -> Result<Pinned, FetchError> {
    let mut backoff = Backoff::new();
    let mut tries = 0;
    loop {
        tries += 1;
        match ctx
            .cache
            .fetch(&ctx.client, &input.sha256, input.size)
            .await
        {
            Err(e) if e.is_transient() && tries < FETCH_TRIES => {
                let delay = backoff.next_delay();
                tracing::warn!(blob.sha256 = %input.sha256, error = %e,
                    retry_ms = delay.as_millis() as u64, "cannot fetch input; retrying");
                tokio::time::sleep(delay).await;
            }
            r => return r,
        }
    }
}
