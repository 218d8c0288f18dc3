//! Reporter tests against a fake events endpoint that fails, loses answers and refuses.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};

use super::*;
use crate::testing::serve;

/// How the fake master answers the n-th request (0-based).
type Policy = fn(usize) -> Answer;

#[derive(Clone, Copy)]
enum Answer {
    Accept,
    /// Store the events but answer 500, as if the answer was lost.
    AcceptButFail,
    Fail,
    Stale,
}

struct Master {
    policy: Policy,
    calls: AtomicUsize,
    /// Events the master stored, in arrival order.
    stored: Mutex<Vec<JobEvents>>,
}

async fn events(
    State(m): State<Arc<Master>>,
    UrlPath(job_id): UrlPath<i64>,
    Json(ev): Json<JobEvents>,
) -> impl IntoResponse {
    assert_eq!(job_id, 5);
    let n = m.calls.fetch_add(1, Ordering::SeqCst);
    let stale =
        serde_json::json!({"error": {"code": "StaleAttempt", "message": "attempt 2 is stale"}});
    match (m.policy)(n) {
        Answer::Accept => {
            m.stored.lock().unwrap().push(ev);
            (StatusCode::OK, Json(serde_json::json!({})))
        }
        Answer::AcceptButFail => {
            m.stored.lock().unwrap().push(ev);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({})),
            )
        }
        Answer::Fail => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({}))),
        Answer::Stale => (StatusCode::CONFLICT, Json(stale)),
    }
}

async fn master(policy: Policy) -> (Arc<MasterClient>, Arc<Master>) {
    let m = Arc::new(Master {
        policy,
        calls: AtomicUsize::new(0),
        stored: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/api/cluster/jobs/{id}/events", post(events))
        .with_state(m.clone());
    let base = serve(app).await;
    (Arc::new(MasterClient::new(&base, "t".into()).unwrap()), m)
}

const JOB: AttemptRef = AttemptRef {
    job_id: 5,
    attempt: 2,
};

fn done() -> Finished {
    Finished {
        state: "succeeded".into(),
        exit_code: Some(0),
        reason: "exit code 0".into(),
        result: None,
    }
}

#[tokio::test]
async fn retries_keep_order_and_lose_nothing() {
    // The 2nd request is stored but its answer lost, the 3rd and 4th fail outright.
    let (client, m) = master(|n| match n {
        1 => Answer::AcceptButFail,
        2 | 3 => Answer::Fail,
        _ => Answer::Accept,
    })
    .await;
    let (tx, rx) = mpsc::channel(8);
    let rejected = Arc::new(AtomicBool::new(false));
    let flag = rejected.clone();
    let on_reject = move || flag.store(true, Ordering::SeqCst);
    let reporter = tokio::spawn(report(client, JOB, rx, on_reject, CancellationToken::new()));

    tx.send(ReportItem::Started).await.unwrap();
    let mut want = String::new();
    for i in 0..2000 {
        let stream = if i % 10 == 9 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let text = format!("line {i} {} {}\n", "x".repeat(i % 97), stream.as_str());
        want.push_str(&text);
        tx.send(ReportItem::Output { stream, text }).await.unwrap();
        if i % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    tx.send(ReportItem::Metrics(vec![Metric {
        seq: 0,
        step: 1,
        name: "loss".into(),
        value: 0.5,
    }]))
    .await
    .unwrap();
    tx.send(ReportItem::Finished(done())).await.unwrap();
    drop(tx);
    assert_eq!(reporter.await.unwrap(), ReportOutcome::Delivered);
    assert!(!rejected.load(Ordering::SeqCst));

    let stored = m.stored.lock().unwrap();
    assert!(stored.iter().all(|e| e.attempt == 2));
    assert!(stored[0].started, "started goes out first");
    // The master keeps the first copy of each seq; seqs must then run 0, 1, 2, ... in order.
    let mut next = 0;
    let mut got = String::new();
    for c in stored.iter().flat_map(|e| &e.logs) {
        if c.seq < next {
            continue;
        }
        assert_eq!(c.seq, next, "a chunk is missing");
        assert!(c.text.len() <= CHUNK_BYTES);
        next += 1;
        got.push_str(&c.text);
    }
    assert_eq!(got, want);
    let last = stored.last().unwrap();
    assert_eq!(last.finished.as_ref().unwrap().state, "succeeded");
    assert!(stored.iter().any(|e| e.metrics.len() == 1));
    assert!(
        stored.len() > 3,
        "output was batched but also streamed: {}",
        stored.len()
    );
}

#[tokio::test]
async fn stale_attempt_stops_reporting_and_rejects() {
    let (client, m) = master(|_| Answer::Stale).await;
    let (tx, rx) = mpsc::channel(8);
    let rejected = Arc::new(AtomicBool::new(false));
    let flag = rejected.clone();
    let on_reject = move || flag.store(true, Ordering::SeqCst);
    let reporter = tokio::spawn(report(client, JOB, rx, on_reject, CancellationToken::new()));
    tx.send(ReportItem::Started).await.unwrap();
    let outcome = reporter.await.unwrap();
    assert!(matches!(outcome, ReportOutcome::Rejected(_)), "{outcome:?}");
    assert!(rejected.load(Ordering::SeqCst));
    assert_eq!(
        m.calls.load(Ordering::SeqCst),
        1,
        "no retry after StaleAttempt"
    );
    // The runner's later sends fail instead of blocking.
    assert!(tx.send(ReportItem::Finished(done())).await.is_err());
}

#[tokio::test]
async fn abandon_ends_retries() {
    let (client, _m) = master(|_| Answer::Fail).await;
    let (tx, rx) = mpsc::channel(8);
    let abandon = CancellationToken::new();
    let reporter = tokio::spawn(report(client, JOB, rx, || {}, abandon.clone()));
    tx.send(ReportItem::Finished(done())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    abandon.cancel();
    assert_eq!(reporter.await.unwrap(), ReportOutcome::Abandoned);
}
