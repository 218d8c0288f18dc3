//! Runner tests with real child processes: ordering, exit status, timeouts and stops that
//! take the whole process group down.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::*;
use crate::attempt::judge;
use crate::procs::group_members;

struct Run {
    outcome: Outcome,
    items: Vec<ReportItem>,
    pgid: i32,
    took: Duration,
}

impl Run {
    fn text(&self, want: Stream) -> String {
        self.items
            .iter()
            .filter_map(|i| match i {
                ReportItem::Output { stream, text } if *stream == want => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Live (non-zombie) processes still in the job's group.
    fn survivors(&self) -> usize {
        group_members(self.pgid)
            .iter()
            .filter(|p| p.state != 'Z')
            .count()
    }
}

fn spec(script: &str, dir: &std::path::Path) -> ChildSpec {
    ChildSpec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: dir.to_owned(),
        env: vec![("MODELYARD_JOB_ID".into(), "7".into())],
        metrics_file: Some(dir.join("metrics.jsonl")),
        timeout: None,
        grace: Duration::from_secs(2),
    }
}

async fn run_with(spec: ChildSpec, stop: CancellationToken) -> Run {
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut items = Vec::new();
        while let Some(i) = rx.recv().await {
            items.push(i);
        }
        items
    });
    let pgid = Arc::new(Mutex::new(0));
    let seen = pgid.clone();
    let start = Instant::now();
    let outcome = run_child(spec, tx, stop, move |g| *seen.lock().unwrap() = g).await;
    let took = start.elapsed();
    let pgid = *pgid.lock().unwrap();
    Run {
        outcome,
        items: collector.await.unwrap(),
        pgid,
        took,
    }
}

async fn run(script: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run_with(spec(script, dir.path()), CancellationToken::new()).await
}

#[tokio::test]
async fn streams_output_in_order() {
    let r = run("for i in $(seq 1 3000); do echo \"out $i\"; echo \"err $i\" >&2; done").await;
    assert_eq!(r.outcome, Outcome::Exited(0));
    assert!(matches!(r.items.first(), Some(ReportItem::Started)));
    let want = |p: &str| (1..=3000).map(|i| format!("{p} {i}\n")).collect::<String>();
    assert_eq!(r.text(Stream::Stdout), want("out"));
    assert_eq!(r.text(Stream::Stderr), want("err"));
}

#[tokio::test]
async fn passes_environment_and_working_directory() {
    std::env::set_var("MODELYARD_JOIN_TOKEN", "secret");
    let dir = tempfile::tempdir().unwrap();
    let script = "echo \"$MODELYARD_JOB_ID|${MODELYARD_JOIN_TOKEN:-unset}|$(pwd)\"";
    let r = run_with(spec(script, dir.path()), CancellationToken::new()).await;
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        r.text(Stream::Stdout),
        format!("7|unset|{}\n", cwd.display())
    );
}

#[tokio::test]
async fn reports_exit_codes_and_signals() {
    let r = run("exit 3").await;
    assert_eq!(r.outcome, Outcome::Exited(3));
    assert_eq!(judge(r.outcome, 10).reason, "exit code 3");

    let r = run("kill -9 $$").await;
    assert_eq!(r.outcome, Outcome::Signalled(9));
    let f = judge(r.outcome, 10);
    assert_eq!(
        (f.state.as_str(), f.reason.as_str()),
        ("failed", "killed by signal 9")
    );

    let r = run("true").await;
    assert_eq!(judge(r.outcome, 10).state, "succeeded");

    let dir = tempfile::tempdir().unwrap();
    let mut bad = spec("", dir.path());
    bad.program = "/nonexistent/program".into();
    let r = run_with(bad, CancellationToken::new()).await;
    assert!(
        matches!(r.outcome, Outcome::SpawnFailed(_)),
        "{:?}",
        r.outcome
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec("sleep 100 & sleep 100", dir.path());
    s.timeout = Some(Duration::from_millis(500));
    let r = run_with(s, CancellationToken::new()).await;
    assert_eq!(r.outcome, Outcome::TimedOut(Duration::from_millis(500)));
    assert_eq!(judge(r.outcome.clone(), 1).reason, "timed out after 1 s");
    assert!(r.took < Duration::from_secs(3), "took {:?}", r.took);
    assert!(r.pgid > 0);
    assert_eq!(r.survivors(), 0, "a process of the job's group survived");
}

#[tokio::test]
async fn stop_sends_sigterm_then_sigkill_after_grace() {
    let dir = tempfile::tempdir().unwrap();
    // Both shells ignore SIGTERM (and so does the sleep they start): only SIGKILL works.
    let mut s = spec("trap '' TERM; sleep 100 & sleep 100", dir.path());
    s.grace = Duration::from_millis(700);
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let r = run_with(s, stop).await;
    assert_eq!(r.outcome, Outcome::Stopped { exit_code: None });
    assert_eq!(judge(r.outcome.clone(), 1).state, "cancelled");
    assert!(
        r.took >= Duration::from_millis(950),
        "SIGKILL came early: {:?}",
        r.took
    );
    assert!(r.took < Duration::from_secs(4), "took {:?}", r.took);
    assert_eq!(r.survivors(), 0);
}

#[tokio::test]
async fn cancel_of_a_polite_job_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    let r = run_with(spec("sleep 100 & sleep 100", dir.path()), stop).await;
    assert!(
        matches!(r.outcome, Outcome::Stopped { .. }),
        "{:?}",
        r.outcome
    );
    assert!(r.took < Duration::from_secs(1), "took {:?}", r.took);
    assert_eq!(r.survivors(), 0);
}

#[tokio::test]
async fn background_leftovers_of_a_finished_job_are_killed() {
    // The background sleep keeps stdout open: the runner must not wait for it.
    let r = run("sleep 100 & echo done").await;
    assert_eq!(r.outcome, Outcome::Exited(0));
    assert_eq!(r.text(Stream::Stdout), "done\n");
    assert!(r.took < Duration::from_secs(2), "took {:?}", r.took);
    assert_eq!(r.survivors(), 0);
}

#[tokio::test]
async fn metrics_written_by_the_job_are_reported() {
    let r = run("for s in 1 2 3; do echo \"{\\\"step\\\":$s,\\\"name\\\":\\\"loss\\\",\\\"value\\\":0.$s}\" >> metrics.jsonl; done").await;
    assert_eq!(r.outcome, Outcome::Exited(0));
    let metrics: Vec<(i64, f64)> = r
        .items
        .iter()
        .filter_map(|i| match i {
            ReportItem::Metrics(m) => Some(m.iter().map(|m| (m.step, m.value))),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(metrics, vec![(1, 0.1), (2, 0.2), (3, 0.3)]);
}

#[test]
fn utf8_split_across_reads_is_kept_whole() {
    let bytes = "héllo €".as_bytes();
    let mut carry = Vec::new();
    let mut out = String::new();
    for b in bytes {
        out.push_str(&decode_utf8(&mut carry, std::slice::from_ref(b)));
    }
    assert_eq!(out, "héllo €");
    assert!(carry.is_empty());
    assert_eq!(decode_utf8(&mut carry, b"a\xffb"), "a\u{FFFD}b");
}
