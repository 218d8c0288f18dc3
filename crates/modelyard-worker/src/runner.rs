//! Running one job as a child process in its own process group: output streamed in order,
//! metrics tailed, a timeout, and stopping the whole tree with SIGTERM then SIGKILL.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricsTail;
use crate::procs::{group_alive, signal_group};
use crate::report::{ReportItem, Stream, FLUSH_EVERY};

/// How long to wait for the pipes to close once the process group is gone (a process that
/// left the group with `setsid` may hold them open forever).
const PIPE_DRAIN: Duration = Duration::from_secs(2);
/// How often a dying group is checked.
const GROUP_POLL: Duration = Duration::from_millis(25);
/// Bytes read from a pipe at once.
const READ_BYTES: usize = 64 * 1024;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// Added to the worker's environment, from which `MODELYARD_*` variables are removed.
    pub env: Vec<(String, String)>,
    pub metrics_file: Option<PathBuf>,
    /// `None`: no limit.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// How the child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
    TimedOut(Duration),
    /// Stopped through the stop token (cancel, stale attempt, worker shutdown).
    Stopped {
        exit_code: Option<i32>,
    },
    SpawnFailed(String),
}

/// Kills the group if the runner is dropped mid-run, so no job outlives a cancelled task.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `spec` to its end. Sends `Started` once spawned, then output and metrics; never
/// `Finished` (the caller decides what to report); `on_spawn` gets the process group id.
/// Returns once the child is reaped, its
/// group is gone and its pipes are drained.
pub async fn run_child(
    spec: ChildSpec,
    tx: mpsc::Sender<ReportItem>,
    stop: CancellationToken,
    on_spawn: impl FnOnce(i32),
) -> Outcome {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MODELYARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let what = format!("cannot start {:?}: {e}", spec.program);
            return Outcome::SpawnFailed(what);
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut guard = GroupGuard(pgid);
    if let Some(pgid) = pgid {
        on_spawn(pgid);
    }
    let _ = tx.send(ReportItem::Started).await;

    let pipes_abandon = CancellationToken::new();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(
            out,
            Stream::Stdout,
            tx.clone(),
            pipes_abandon.clone(),
        ));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(
            err,
            Stream::Stderr,
            tx.clone(),
            pipes_abandon.clone(),
        ));
    }
    let metrics_done = CancellationToken::new();
    let metrics = spec
        .metrics_file
        .clone()
        .map(|path| spawn_metrics(MetricsTail::new(path), tx.clone(), metrics_done.clone()));

    let (outcome, term_deadline) = wait_or_stop(&mut child, pgid, &spec, &stop).await;
    if let Some(pgid) = pgid {
        match term_deadline {
            Some(deadline) => finish_group(pgid, deadline).await,
            // Leftovers of a finished job (background processes) go too.
            None => terminate_group(pgid, spec.grace).await,
        }
    }
    guard.0 = None;

    let mut joined = futures_util::future::join_all(readers);
    if tokio::time::timeout(PIPE_DRAIN, &mut joined).await.is_err() {
        tracing::warn!(
            pgid,
            "job output pipes stayed open after its processes ended"
        );
        pipes_abandon.cancel();
        joined.await;
    }
    metrics_done.cancel();
    if let Some(m) = metrics {
        let _ = m.await;
    }
    outcome
}

/// Waits for the child, or stops it. When it had to be stopped, also returns when the SIGTERM
/// sent to its group turns into SIGKILL.
async fn wait_or_stop(
    child: &mut Child,
    pgid: Option<i32>,
    spec: &ChildSpec,
    stop: &CancellationToken,
) -> (Outcome, Option<Instant>) {
    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let timed_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let timeout_hit = tokio::select! {
        status = child.wait() => return (exited(status), None),
        () = timed_out => true,
        () = stop.cancelled() => false,
    };
    let term_deadline = Instant::now() + spec.grace;
    let status = match pgid {
        Some(pgid) => {
            signal_group(pgid, Signal::SIGTERM);
            match tokio::time::timeout_at(term_deadline, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    signal_group(pgid, Signal::SIGKILL);
                    child.wait().await
                }
            }
        }
        None => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let outcome = if timeout_hit {
        Outcome::TimedOut(spec.timeout.unwrap_or_default())
    } else {
        Outcome::Stopped {
            exit_code: status.ok().and_then(|s| s.code()),
        }
    };
    (outcome, Some(term_deadline))
}

fn exited(status: std::io::Result<ExitStatus>) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signalled(sig),
            (None, None) => Outcome::Exited(-1),
        },
        Err(e) => Outcome::SpawnFailed(format!("cannot wait for the job process: {e}")),
    }
}

/// SIGTERM to the group, SIGKILL to whatever is left after `grace`. Returns at once when the
/// group is already empty.
pub async fn terminate_group(pgid: i32, grace: Duration) {
    if group_alive(pgid) {
        signal_group(pgid, Signal::SIGTERM);
        finish_group(pgid, Instant::now() + grace).await;
    }
}

/// After SIGTERM: waits for the group to empty until `deadline`, then SIGKILLs the rest.
async fn finish_group(pgid: i32, deadline: Instant) {
    while group_alive(pgid) {
        if Instant::now() >= deadline {
            signal_group(pgid, Signal::SIGKILL);
            // Give the kernel a moment to tear the processes down.
            for _ in 0..40 {
                tokio::time::sleep(GROUP_POLL).await;
                if !group_alive(pgid) {
                    break;
                }
            }
            return;
        }
        tokio::time::sleep(GROUP_POLL).await;
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut pipe: R,
    stream: Stream,
    tx: mpsc::Sender<ReportItem>,
    abandon: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; READ_BYTES];
        let mut carry = Vec::new();
        let mut receiver_gone = false;
        loop {
            let n = tokio::select! {
                biased;
                // A read error ends the stream like EOF.
                r = pipe.read(&mut buf) => r.unwrap_or(0),
                () = abandon.cancelled() => 0,
            };
            if n == 0 {
                break;
            }
            let text = decode_utf8(&mut carry, &buf[..n]);
            // Keep draining even when nobody listens, so the child never blocks on a pipe.
            if !text.is_empty() && !receiver_gone {
                receiver_gone = tx.send(ReportItem::Output { stream, text }).await.is_err();
            }
        }
        if !carry.is_empty() && !receiver_gone {
            let text = String::from_utf8_lossy(&carry).into_owned();
            let _ = tx.send(ReportItem::Output { stream, text }).await;
        }
    })
}

fn spawn_metrics(
    mut tail: MetricsTail,
    tx: mpsc::Sender<ReportItem>,
    done: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                () = done.cancelled() => true,
            };
            match tail.poll().await {
                Ok(m) if !m.is_empty() => {
                    if tx.send(ReportItem::Metrics(m)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot read metrics file"),
            }
            if last {
                if tail.skipped() > 0 {
                    tracing::warn!(
                        lines = tail.skipped(),
                        "skipped invalid lines of the metrics file"
                    );
                }
                return;
            }
        }
    })
}

/// Decodes `new` after the undecoded tail `carry` of the previous read, keeping an incomplete
/// UTF-8 sequence at the end for the next read; invalid bytes become U+FFFD.
pub fn decode_utf8(carry: &mut Vec<u8>, new: &[u8]) -> String {
    carry.extend_from_slice(new);
    let mut out = String::new();
    let mut rest: &[u8] = carry;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    None => {
                        rest = bad;
                        break;
                    }
                    Some(n) => {
                        out.push('\u{FFFD}');
                        rest = &bad[n..];
                    }
                }
            }
        }
    }
    let keep = rest.to_vec();
    *carry = keep;
    out
}

#[cfg(test)]
mod tests;
