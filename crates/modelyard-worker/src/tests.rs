//! Whole-worker tests against a fake master on loopback: registration refusals, a job from
//! assignment to `finished`, and re-registration after the master forgot the node.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use modelyard_core::job::{JobInput, JobKind, JobSpec, Resources};
use modelyard_core::protocol::{
    Assignment, AttemptRef, Heartbeat, HeartbeatResponse, JobEvents, RegisterRequest,
    RegisterResponse,
};
use serde_json::json;

use super::*;
use crate::testing::{serve, sha256};

enum HbAnswer {
    Respond(HeartbeatResponse),
    Forget,
}

#[derive(Default)]
struct Fake {
    /// `Some((status, code))`: refuse every registration.
    refuse: Option<(StatusCode, &'static str)>,
    /// Attempts the next registration answer says to kill.
    kill_on_register: Mutex<Vec<AttemptRef>>,
    registers: Mutex<Vec<RegisterRequest>>,
    heartbeats: Mutex<Vec<Heartbeat>>,
    answers: Mutex<VecDeque<HbAnswer>>,
    events: Mutex<Vec<(i64, JobEvents)>>,
    blobs: HashMap<String, Vec<u8>>,
}

fn token_ok(fake: &Fake, headers: &HeaderMap) -> bool {
    let n = fake.registers.lock().unwrap().len();
    let want = format!("Bearer tok-{n}");
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

fn unauthorized() -> Response {
    let body = json!({"error": {"code": "Unauthorized", "message": "unknown node"}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

async fn register(State(f): State<Arc<Fake>>, Json(req): Json<RegisterRequest>) -> Response {
    if let Some((status, code)) = f.refuse {
        let message = match code {
            "ProtocolVersion" => "worker speaks protocol 1, this master speaks protocol 2",
            _ => "the join token is not valid for this cluster",
        };
        return (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
    }
    let mut regs = f.registers.lock().unwrap();
    regs.push(req);
    Json(RegisterResponse {
        node_id: "node-1".into(),
        node_token: format!("tok-{}", regs.len()),
        lease_ms: 15_000,
        poll_ms: 300,
        kill: std::mem::take(&mut *f.kill_on_register.lock().unwrap()),
    })
    .into_response()
}

async fn heartbeat(
    State(f): State<Arc<Fake>>,
    h: HeaderMap,
    Json(hb): Json<Heartbeat>,
) -> Response {
    if !token_ok(&f, &h) {
        return unauthorized();
    }
    let wait = Duration::from_millis(hb.wait_ms);
    f.heartbeats.lock().unwrap().push(hb);
    let next = f.answers.lock().unwrap().pop_front();
    match next {
        Some(HbAnswer::Respond(r)) => Json(r).into_response(),
        Some(HbAnswer::Forget) => unauthorized(),
        None => {
            tokio::time::sleep(wait).await;
            Json(HeartbeatResponse {
                assignments: vec![],
                cancel: vec![],
            })
            .into_response()
        }
    }
}

async fn events(
    State(f): State<Arc<Fake>>,
    h: HeaderMap,
    UrlPath(id): UrlPath<i64>,
    Json(ev): Json<JobEvents>,
) -> Response {
    if !token_ok(&f, &h) {
        return unauthorized();
    }
    f.events.lock().unwrap().push((id, ev));
    Json(json!({})).into_response()
}

async fn blob(State(f): State<Arc<Fake>>, h: HeaderMap, UrlPath(sha): UrlPath<String>) -> Response {
    if !token_ok(&f, &h) {
        return unauthorized();
    }
    match f.blobs.get(&sha) {
        Some(b) => b.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_fake(fake: Fake) -> (String, Arc<Fake>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/api/cluster/register", post(register))
        .route("/api/cluster/heartbeat", post(heartbeat))
        .route("/api/cluster/jobs/{id}/events", post(events))
        .route("/api/cluster/blobs/{sha}", get(blob))
        .with_state(fake.clone());
    (serve(app).await, fake)
}

fn config(server: &str, dir: &std::path::Path, allow_commands: bool) -> WorkerConfig {
    WorkerConfig {
        server: server.to_owned(),
        join_token: "join".into(),
        name: "test-node".into(),
        cache_dir: dir.join("cache"),
        cache_bytes: 1 << 20,
        work_dir: dir.join("work"),
        allow_commands,
        grace: Duration::from_secs(1),
        gflops: None,
        advertise_addr: None,
    }
}

fn command_job(job_id: i64, command: &str, inputs: Vec<JobInput>) -> Assignment {
    Assignment {
        job: AttemptRef { job_id, attempt: 1 },
        spec: JobSpec {
            kind: JobKind::Command,
            command: Some(command.into()),
            eval: None,
            inputs,
            resources: Resources {
                cpus: 1,
                memory_mb: 10,
                gpus: 0,
            },
            timeout_s: 60,
            output: None,
        },
        gpus: vec![0, 2],
        gang: None,
    }
}

fn assign(fake: &Fake, jobs: Vec<Assignment>) {
    fake.answers
        .lock()
        .unwrap()
        .push_back(HbAnswer::Respond(HeartbeatResponse {
            assignments: jobs,
            cancel: vec![],
        }));
}

/// Waits (up to 20 s) until `check` holds for the events received so far.
async fn wait_for(fake: &Fake, what: &str, check: impl Fn(&[(i64, JobEvents)]) -> bool) {
    for _ in 0..200 {
        if check(&fake.events.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn finished_of(
    events: &[(i64, JobEvents)],
    job: i64,
) -> Option<modelyard_core::protocol::Finished> {
    events
        .iter()
        .filter(|(id, _)| *id == job)
        .find_map(|(_, e)| e.finished.clone())
}

fn stdout_of(events: &[(i64, JobEvents)], job: i64) -> String {
    let chunks = events
        .iter()
        .filter(|(id, _)| *id == job)
        .flat_map(|(_, e)| &e.logs);
    chunks
        .filter(|c| c.stream == "stdout")
        .map(|c| c.text.as_str())
        .collect()
}

#[tokio::test]
async fn refused_registration_ends_the_worker_with_the_masters_message() {
    for (status, code, words) in [
        (
            StatusCode::UNAUTHORIZED,
            "BadJoinToken",
            "join token is not valid",
        ),
        (
            StatusCode::BAD_REQUEST,
            "ProtocolVersion",
            "protocol 1, this master speaks protocol 2",
        ),
    ] {
        let (base, _) = start_fake(Fake {
            refuse: Some((status, code)),
            ..Fake::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let err = run(config(&base, dir.path(), false), std::future::pending())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(code) && text.contains(words), "{text}");
        assert!(matches!(
            err.downcast_ref::<WorkerError>(),
            Some(WorkerError::Refused { .. })
        ));
    }
}

#[tokio::test]
async fn runs_an_assigned_job_with_staged_inputs_and_reports_it() {
    let weights = b"fake weights".to_vec();
    let sha = sha256(&weights);
    let mut fake = Fake::default();
    fake.blobs.insert(sha.clone(), weights.clone());
    let (base, fake) = start_fake(fake).await;
    let input = JobInput {
        role: "model".into(),
        source: "alice/m@0123".into(),
        path: "sub/w.bin".into(),
        sha256: sha.clone(),
        size: weights.len() as u64,
    };
    let script = "cat \"$MODELYARD_INPUT_DIR/model/sub/w.bin\"; echo; echo \"gpus=$CUDA_VISIBLE_DEVICES\"; \
                  stat -c 'mode=%a' \"$MODELYARD_INPUT_DIR/model/sub/w.bin\"; \
                  echo '{\"step\":1,\"name\":\"acc\",\"value\":0.75}' > \"$MODELYARD_METRICS_FILE\"; \
                  touch \"$MODELYARD_OUTPUT_DIR/out.txt\"";
    assign(&fake, vec![command_job(1, script, vec![input])]);

    let dir = tempfile::tempdir().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(config(&base, dir.path(), true), async {
        let _ = stop_rx.await;
    }));
    wait_for(&fake, "job 1 to finish", |ev| finished_of(ev, 1).is_some()).await;
    // One more heartbeat shows the job gone and the blob cached.
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop_tx.send(()).unwrap();
    worker.await.unwrap().unwrap();

    let events = fake.events.lock().unwrap();
    let f = finished_of(&events, 1).unwrap();
    assert_eq!(
        (f.state.as_str(), f.exit_code),
        ("succeeded", Some(0)),
        "{f:?}"
    );
    assert!(events[0].1.started, "started comes first");
    assert_eq!(stdout_of(&events, 1), "fake weights\ngpus=0,2\nmode=444\n");
    let metrics: Vec<_> = events.iter().flat_map(|(_, e)| &e.metrics).collect();
    assert_eq!(metrics.len(), 1);
    assert_eq!((metrics[0].name.as_str(), metrics[0].value), ("acc", 0.75));
    assert!(dir.path().join("work/jobs/1-1/outputs/out.txt").exists());
    assert!(
        !dir.path().join("work/jobs/1-1/inputs").exists(),
        "input links removed"
    );

    let regs = fake.registers.lock().unwrap();
    assert_eq!(regs.len(), 1);
    assert_eq!(
        regs[0].protocol_version,
        modelyard_core::protocol::PROTOCOL_VERSION
    );
    assert!(regs[0].inventory.cpus >= 1 && regs[0].inventory.allow_commands);
    let hbs = fake.heartbeats.lock().unwrap();
    let last = hbs.last().unwrap();
    assert!(last.running.is_empty());
    assert_eq!(last.cache.len(), 1);
    assert_eq!(last.cache[0].sha256, sha);
    assert_eq!(last.wait_ms, 300);
}

#[tokio::test]
async fn command_jobs_are_refused_without_allow_commands() {
    let (base, fake) = start_fake(Fake::default()).await;
    assign(&fake, vec![command_job(3, "echo should not run", vec![])]);
    let dir = tempfile::tempdir().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(config(&base, dir.path(), false), async {
        let _ = stop_rx.await;
    }));
    wait_for(&fake, "job 3 to be refused", |ev| {
        finished_of(ev, 3).is_some()
    })
    .await;
    stop_tx.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let events = fake.events.lock().unwrap();
    let f = finished_of(&events, 3).unwrap();
    assert_eq!(f.state, "failed");
    assert_eq!(f.reason, "this worker does not run command jobs");
    assert!(stdout_of(&events, 3).is_empty());
    assert!(events.iter().all(|(_, e)| !e.started));
}

#[tokio::test]
async fn a_forgotten_node_registers_again_and_kills_what_it_no_longer_owns() {
    let (base, fake) = start_fake(Fake::default()).await;
    let job = AttemptRef {
        job_id: 4,
        attempt: 1,
    };
    assign(
        &fake,
        vec![command_job(4, "echo up; sleep 100 & sleep 100", vec![])],
    );
    let dir = tempfile::tempdir().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(run(config(&base, dir.path(), true), async {
        let _ = stop_rx.await;
    }));
    wait_for(&fake, "job 4 to start", |ev| stdout_of(ev, 4) == "up\n").await;
    let pgid: i32 = std::fs::read_to_string(dir.path().join("work/jobs/4-1/pgid"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(crate::procs::group_alive(pgid));

    // The master declares the node lost, then says the job belongs to someone else now.
    *fake.kill_on_register.lock().unwrap() = vec![job];
    fake.answers.lock().unwrap().push_back(HbAnswer::Forget);
    for _ in 0..100 {
        if !crate::procs::group_alive(pgid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !crate::procs::group_alive(pgid),
        "the job's processes survived"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_tx.send(()).unwrap();
    worker.await.unwrap().unwrap();

    let regs = fake.registers.lock().unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!(
        regs[1].running,
        vec![job],
        "re-registration lists the running attempt"
    );
    let events = fake.events.lock().unwrap();
    assert!(
        finished_of(&events, 4).is_none(),
        "nothing reported for a job that is not ours"
    );
}
