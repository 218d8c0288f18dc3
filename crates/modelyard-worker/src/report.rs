//! Reporting one attempt to the master: batches output into numbered log chunks, sends them
//! with metrics, `started` and `finished` in order, and retries until accepted.
//!
//! Ordering and loss: one task sends, one batch at a time; a batch is removed only once the
//! master accepted it, and a retry resends the same chunks with the same `seq`, so the master
//! can drop what it already has. While the master is unreachable nothing is dropped: the
//! channel from the runner fills up and the job's pipes block (backpressure), the job lives on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use modelyard_core::protocol::{AttemptRef, Finished, JobEvents, LogChunk, Metric};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::MasterClient;
use crate::Backoff;

/// Partial output is sent at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Largest log chunk; a chunk this full is sent without waiting for the timer.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Most log text in one request.
const BATCH_BYTES: usize = 1024 * 1024;

/// Which pipe output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What the runner tells the reporter, in order.
#[derive(Debug, Clone)]
pub enum ReportItem {
    /// The child process was spawned.
    Started,
    Output {
        stream: Stream,
        text: String,
    },
    Metrics(Vec<Metric>),
    Finished(Finished),
}

/// How reporting an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Everything the runner sent was accepted.
    Delivered,
    /// The master refused the attempt (409 `StaleAttempt`, or another permanent refusal).
    Rejected(String),
    /// Given up on (worker shutdown) with events still unsent.
    Abandoned,
}

/// Events not yet accepted by the master.
#[derive(Debug, Default)]
struct Pending {
    next_seq: i64,
    next_metric_seq: i64,
    started: bool,
    chunks: VecDeque<LogChunk>,
    open: Option<(Stream, String)>,
    metrics: Vec<Metric>,
    finished: Option<Finished>,
    /// Something that should go out now rather than at the next tick.
    urgent: bool,
}

impl Pending {
    fn push(&mut self, item: ReportItem) {
        match item {
            ReportItem::Started => {
                self.started = true;
                self.urgent = true;
            }
            ReportItem::Output { stream, text } => self.push_output(stream, text),
            ReportItem::Metrics(m) => {
                for mut metric in m {
                    metric.seq = self.next_metric_seq;
                    self.next_metric_seq += 1;
                    self.metrics.push(metric);
                }
            }
            ReportItem::Finished(f) => {
                self.seal();
                self.finished = Some(f);
                self.urgent = true;
            }
        }
    }

    fn push_output(&mut self, stream: Stream, mut text: String) {
        while !text.is_empty() {
            if self.open.as_ref().is_some_and(|(s, _)| *s != stream) {
                self.seal();
            }
            let (_, buf) = self.open.get_or_insert_with(|| (stream, String::new()));
            let room = CHUNK_BYTES - buf.len();
            if text.len() <= room {
                buf.push_str(&text);
                text.clear();
            } else {
                let mut cut = room;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                let rest = text.split_off(cut);
                buf.push_str(&text);
                text = rest;
            }
            if self
                .open
                .as_ref()
                .is_some_and(|(_, b)| b.len() >= CHUNK_BYTES - 3)
            {
                self.seal();
                self.urgent = true;
            }
        }
    }

    /// Closes the chunk being filled, giving it the next sequence number.
    fn seal(&mut self) {
        if let Some((stream, text)) = self.open.take() {
            self.chunks.push_back(LogChunk {
                seq: self.next_seq,
                stream: stream.as_str().to_owned(),
                text,
            });
            self.next_seq += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.open.is_none() && !self.has_sendable()
    }

    /// Whether a request has something to carry (the chunk being filled does not count).
    fn has_sendable(&self) -> bool {
        self.started
            || !self.chunks.is_empty()
            || !self.metrics.is_empty()
            || self.finished.is_some()
    }

    /// The next request, and how many chunks it carries.
    fn batch(&self, attempt: i64) -> (JobEvents, usize) {
        let mut logs = Vec::new();
        let mut bytes = 0;
        for c in &self.chunks {
            if !logs.is_empty() && bytes + c.text.len() > BATCH_BYTES {
                break;
            }
            bytes += c.text.len();
            logs.push(c.clone());
        }
        let n = logs.len();
        let all_logs = n == self.chunks.len() && self.open.is_none();
        let events = JobEvents {
            attempt,
            started: self.started,
            logs,
            metrics: self.metrics.clone(),
            finished: if all_logs {
                self.finished.clone()
            } else {
                None
            },
        };
        (events, n)
    }

    fn accepted(&mut self, events: JobEvents, chunks: usize) {
        self.chunks.drain(..chunks);
        self.metrics.drain(..events.metrics.len());
        if events.started {
            self.started = false;
        }
        if events.finished.is_some() {
            self.finished = None;
        }
    }
}

/// Reports one attempt until the runner closes the channel and everything is accepted, the
/// master rejects the attempt (then `on_reject` runs, so the caller can kill the child), or
/// `abandon` is cancelled.
pub async fn report(
    client: Arc<MasterClient>,
    job: AttemptRef,
    mut rx: mpsc::Receiver<ReportItem>,
    on_reject: impl FnOnce() + Send,
    abandon: CancellationToken,
) -> ReportOutcome {
    let mut p = Pending::default();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closed = false;
    loop {
        let mut flush = false;
        tokio::select! {
            item = rx.recv(), if !closed => match item {
                Some(item) => p.push(item),
                None => closed = true,
            },
            _ = tick.tick() => flush = true,
            () = abandon.cancelled() => return ReportOutcome::Abandoned,
        }
        if flush || closed {
            p.seal();
        }
        if flush || closed || p.urgent {
            p.urgent = false;
            while p.has_sendable() {
                if let Err(outcome) = send(&client, job, &mut p, &abandon).await {
                    if matches!(outcome, ReportOutcome::Rejected(_)) {
                        on_reject();
                    }
                    return outcome;
                }
            }
        }
        if closed && p.is_empty() {
            return ReportOutcome::Delivered;
        }
    }
}

/// Sends the next batch, retrying transient failures with backoff.
async fn send(
    client: &MasterClient,
    job: AttemptRef,
    p: &mut Pending,
    abandon: &CancellationToken,
) -> Result<(), ReportOutcome> {
    let mut backoff = Backoff::new();
    loop {
        let (events, chunks) = p.batch(job.attempt);
        let result = tokio::select! {
            r = client.events(job.job_id, &events) => r,
            () = abandon.cancelled() => return Err(ReportOutcome::Abandoned),
        };
        match result {
            Ok(()) => {
                p.accepted(events, chunks);
                return Ok(());
            }
            Err(e) if e.is_transient() => {
                let delay = backoff.next_delay();
                tracing::warn!(job.id = job.job_id, job.attempt = job.attempt, error = %e,
                    retry_ms = delay.as_millis() as u64, "cannot report job events; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = abandon.cancelled() => return Err(ReportOutcome::Abandoned),
                }
            }
            Err(e) if e.code() == Some("StaleAttempt") => {
                tracing::info!(
                    job.id = job.job_id,
                    job.attempt = job.attempt,
                    "attempt is stale; stopping it"
                );
                return Err(ReportOutcome::Rejected(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(job.id = job.job_id, job.attempt = job.attempt, error = %e,
                    "master rejected this attempt; stopping it");
                return Err(ReportOutcome::Rejected(e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests;
