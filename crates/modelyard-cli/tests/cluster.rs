//! The computing subsystem with real processes: a server and `modelyard worker`s on loopback,
//! killed with SIGKILL mid-run. Jobs must complete exactly once.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::BIN;
use serde_json::{json, Value};

/// A server process whose port survives restarts (workers keep its URL).
struct Hub {
    child: Option<Child>,
    lease_ms: u64,
    url: String,
    dir: tempfile::TempDir,
    token: String,
    join: String,
    http: reqwest::Client,
}

impl Hub {
    fn start() -> Self {
        Self::start_with_lease(3000)
    }

    fn start_with_lease(lease_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, url, token) = spawn_server(dir.path(), "127.0.0.1:0", lease_ms);
        let out = Command::new(BIN)
            .args(["admin", "join-token", "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        let join = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(join.starts_with("myj_"), "{join}");
        Hub {
            child: Some(child),
            lease_ms,
            url,
            dir,
            token: token.unwrap(),
            join,
            http: reqwest::Client::new(),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn restart(&mut self) {
        self.kill();
        let bind = self.url.trim_start_matches("http://").to_owned();
        let (child, url, _) = spawn_server(self.dir.path(), &bind, self.lease_ms);
        assert_eq!(url, self.url);
        self.child = Some(child);
    }

    fn worker(&self, name: &str, commands: bool) -> Child {
        let base = self.dir.path().join(name);
        let mut cmd = Command::new(BIN);
        cmd.args([
            "worker",
            "--server",
            &self.url,
            "--join-token",
            &self.join,
            "--name",
            name,
            "--grace-ms",
            "1000",
        ])
        .arg("--cache-dir")
        .arg(base.join("cache"))
        .arg("--work-dir")
        .arg(base.join("work"))
        .env("MODELYARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap());
        if commands {
            cmd.arg("--allow-commands");
        }
        cmd.spawn().unwrap()
    }

    async fn submit(&self, command: &str, timeout_s: u64) -> i64 {
        let r = self
            .http
            .post(format!("{}/api/jobs", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"kind": "command", "command": command, "timeout_s": timeout_s}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// GETs an API path as the admin and parses the JSON answer.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn job(&self, id: i64) -> Value {
        self.get_json(&format!("/api/jobs/{id}")).await
    }

    async fn wait_for(&self, ids: &[i64], states: &[&str], limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let mut jobs = Vec::new();
            for id in ids {
                // The server may be restarting: retry quietly.
                match self
                    .http
                    .get(format!("{}/api/jobs/{id}", self.url))
                    .bearer_auth(&self.token)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => jobs.push(r.json::<Value>().await.unwrap()),
                    _ => break,
                }
            }
            if jobs.len() == ids.len()
                && jobs
                    .iter()
                    .all(|j| states.contains(&j["state"].as_str().unwrap()))
            {
                return jobs;
            }
            assert!(
                Instant::now() < deadline,
                "jobs not {states:?} in time: {}",
                Value::Array(jobs)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Lines of the shared file that jobs append their id to.
    fn ran(&self) -> Vec<i64> {
        std::fs::read_to_string(self.ran_path())
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    fn ran_path(&self) -> PathBuf {
        self.dir.path().join("ran.txt")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_server(dir: &Path, bind: &str, lease_ms: u64) -> (Child, String, Option<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", bind, "--node-lease-ms"])
        .arg(lease_ms.to_string())
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .next()
        .unwrap()
        .unwrap()
        .strip_prefix("modelyard listening on ")
        .unwrap()
        .to_owned();
    let second = lines.next().unwrap().unwrap();
    let token = second
        .starts_with("created")
        .then(|| lines.next().unwrap().unwrap());
    std::thread::spawn(move || for _ in lines {});
    (child, url, token)
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

fn count(ran: &[i64], id: i64) -> usize {
    ran.iter().filter(|r| **r == id).count()
}

#[tokio::test]
async fn thirty_jobs_on_three_workers_complete_exactly_once() {
    let hub = Hub::start();
    let _w = Workers(
        (1..=3)
            .map(|i| hub.worker(&format!("w{i}"), true))
            .collect(),
    );
    let ran = hub.ran_path();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(hub.submit(&format!("echo \"hello from $MODELYARD_JOB_ID\"; echo {i} >&2; echo $MODELYARD_JOB_ID >> {}", ran.display()), 60).await);
    }
    let jobs = hub
        .wait_for(&ids, &["succeeded"], Duration::from_secs(90))
        .await;
    let ran = hub.ran();
    for (id, job) in ids.iter().zip(&jobs) {
        assert_eq!(count(&ran, *id), 1, "job {id} ran exactly once");
        assert_eq!(job["attempt"], 1);
        let logs: Vec<Value> = hub.get_json(&format!("/api/jobs/{id}/logs")).await;
        let out: String = logs
            .iter()
            .filter(|l| l["stream"] == "stdout")
            .map(|l| l["text"].as_str().unwrap())
            .collect();
        assert_eq!(out, format!("hello from {id}\n"));
    }
    let nodes: Vec<Value> = hub.get_json("/api/cluster/nodes").await;
    assert_eq!(nodes.iter().filter(|n| n["state"] == "alive").count(), 3);
}

#[tokio::test]
async fn a_stopping_worker_hands_its_jobs_back_at_once() {
    // A lease far longer than the test: only the worker's goodbye can requeue the job in time.
    let hub = Hub::start_with_lease(120_000);
    let mut a = Workers(vec![hub.worker("a", true)]);
    let marker = hub.dir.path().join("first-attempt");
    let cmd = format!(
        "if [ -e {m} ]; then echo second; else touch {m}; sleep 60; fi",
        m = marker.display()
    );
    let id = hub.submit(&cmd, 300).await;
    hub.wait_for(&[id], &["running"], Duration::from_secs(30))
        .await;
    while !marker.exists() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = a.0[0].id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    assert!(a.0[0].wait().unwrap().success(), "the worker exits cleanly");
    let job = hub
        .wait_for(&[id], &["queued"], Duration::from_secs(15))
        .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "requeued long before the lease"
    );
    assert!(
        job[0]["reason"].as_str().unwrap().contains("worker a left"),
        "{}",
        job[0]
    );
    let nodes: Vec<Value> = hub.get_json("/api/cluster/nodes").await;
    assert!(nodes.iter().all(|n| n["state"] == "lost"), "{nodes:?}");
    let _b = Workers(vec![hub.worker("b", true)]);
    let job = hub
        .wait_for(&[id], &["succeeded"], Duration::from_secs(30))
        .await;
    assert_eq!(job[0]["attempt"], 2);
    let logs: Vec<Value> = hub.get_json(&format!("/api/jobs/{id}/logs")).await;
    assert!(logs.iter().any(|l| l["text"] == "second\n"), "{logs:?}");
}

#[tokio::test]
async fn a_killed_worker_loses_no_job() {
    let hub = Hub::start();
    let mut workers = Workers(vec![
        hub.worker("a", true),
        hub.worker("b", true),
        hub.worker("c", true),
    ]);
    let mut ids = Vec::new();
    for _ in 0..9 {
        ids.push(hub.submit("sleep 2; echo finished", 60).await);
    }
    // Wait until worker "a" runs something, then SIGKILL it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim_node = loop {
        let nodes: Vec<Value> = hub.get_json("/api/cluster/nodes").await;
        if let Some(n) = nodes.iter().find(|n| {
            n["name"] == "a" && n["state"] == "alive" && !n["jobs"].as_array().unwrap().is_empty()
        }) {
            break n["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "worker a never got a job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    workers.0[0].kill().unwrap();
    workers.0[0].wait().unwrap();
    let jobs = hub
        .wait_for(&ids, &["succeeded"], Duration::from_secs(60))
        .await;
    let moved: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["attempt"].as_i64().unwrap() > 1)
        .collect();
    assert!(!moved.is_empty(), "the killed worker's jobs were retried");
    for j in &jobs {
        assert_ne!(
            j["node_id"].as_str(),
            Some(victim_node.as_str()),
            "no job finished on the dead node"
        );
    }
    // The worker comes back under the same name and takes work again.
    workers.0[0] = hub.worker("a", true);
    let more: Vec<i64> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(hub.submit("sleep 0.5", 60).await);
        }
        v
    };
    hub.wait_for(&more, &["succeeded"], Duration::from_secs(60))
        .await;
    let nodes: Vec<Value> = hub.get_json("/api/cluster/nodes").await;
    assert_eq!(
        nodes
            .iter()
            .filter(|n| n["name"] == "a" && n["state"] == "alive")
            .count(),
        1
    );
    assert!(nodes
        .iter()
        .any(|n| n["id"] == victim_node.as_str() && n["state"] == "lost"));
}

#[tokio::test]
async fn a_killed_server_restarts_into_the_same_state() {
    let mut hub = Hub::start();
    let _w = Workers(vec![hub.worker("x", true), hub.worker("y", true)]);
    let ran = hub.ran_path();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(
            hub.submit(
                &format!("sleep 1; echo $MODELYARD_JOB_ID >> {}", ran.display()),
                60,
            )
            .await,
        );
    }
    hub.wait_for(
        &ids[..1],
        &["running", "succeeded"],
        Duration::from_secs(30),
    )
    .await;
    hub.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.restart();
    hub.wait_for(&ids, &["succeeded"], Duration::from_secs(90))
        .await;
    let ran = hub.ran();
    for id in &ids {
        assert_eq!(
            count(&ran, *id),
            1,
            "job {id} ran exactly once across the restart: {ran:?}"
        );
    }
}

fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            String::from_utf8_lossy(c)
                .replace('\0', " ")
                .contains(marker)
        })
        .count()
}

#[tokio::test]
async fn cancel_and_timeout_kill_the_whole_process_tree() {
    let hub = Hub::start();
    let _w = Workers(vec![hub.worker("k", true)]);
    let id = hub.submit("sleep 91.25 & sleep 92.25 & wait", 600).await;
    hub.wait_for(&[id], &["running"], Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with("sleep 91.25") == 0 {
        assert!(
            Instant::now() < deadline,
            "the job's processes never appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = hub
        .http
        .post(format!("{}/api/jobs/{id}/cancel", hub.url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job = hub
        .wait_for(&[id], &["cancelled"], Duration::from_secs(10))
        .await;
    assert_eq!(job[0]["state"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(3);
    while processes_with("sleep 91.25") + processes_with("sleep 92.25") > 0 {
        assert!(
            Instant::now() < deadline,
            "processes of the cancelled job survived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let slow = hub.submit("sleep 93.25", 1).await;
    let job = hub
        .wait_for(&[slow], &["failed"], Duration::from_secs(20))
        .await;
    assert!(
        job[0]["reason"].as_str().unwrap().contains("timed out"),
        "{}",
        job[0]
    );
    assert_eq!(processes_with("sleep 93.25"), 0);

    let fails = hub.submit("echo oops >&2; exit 3", 60).await;
    let job = hub
        .wait_for(&[fails], &["failed"], Duration::from_secs(20))
        .await;
    assert_eq!(job[0]["exit_code"], 3);
    let done = hub
        .http
        .post(format!("{}/api/jobs/{fails}/cancel", hub.url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 409, "a finished job cannot be cancelled");
}

#[tokio::test]
async fn bad_workers_are_refused_and_commands_need_opt_in() {
    let hub = Hub::start();
    let out = Command::new(BIN)
        .args([
            "worker",
            "--server",
            &hub.url,
            "--join-token",
            "myj_wrong",
            "--name",
            "intruder",
        ])
        .arg("--cache-dir")
        .arg(hub.dir.path().join("i/cache"))
        .arg("--work-dir")
        .arg(hub.dir.path().join("i/work"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("join token"), "{err}");

    let r = hub
        .http
        .post(format!("{}/api/cluster/register", hub.url))
        .json(&json!({"protocol_version": 999, "join_token": hub.join, "name": "old",
            "inventory": {"hostname": "h", "cpus": 1, "memory_mb": 1, "gpus": [], "gflops": 1.0, "allow_commands": true, "cache_bytes": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protocol version 999"),
        "{body}"
    );

    // A worker without --allow-commands never gets a command job...
    let mut workers = Workers(vec![hub.worker("safe", false)]);
    let id = hub.submit("echo should-not-run-on-safe", 60).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hub.job(id).await["state"], "queued");
    // ...until a worker that allows them joins.
    workers.0.push(hub.worker("open", true));
    let job = hub
        .wait_for(&[id], &["succeeded"], Duration::from_secs(30))
        .await;
    let nodes: Vec<Value> = hub.get_json("/api/cluster/nodes").await;
    let open = nodes.iter().find(|n| n["name"] == "open").unwrap();
    assert_eq!(job[0]["node_id"], open["id"]);
}

#[tokio::test]
async fn metrics_and_live_logs_reach_the_master() {
    let hub = Hub::start();
    let _w = Workers(vec![hub.worker("m", true)]);
    let cmd = r#"for i in 1 2 3; do echo "{\"step\": $i, \"name\": \"loss\", \"value\": 0.$i}" >> "$MODELYARD_METRICS_FILE"; echo "step $i"; sleep 0.3; done"#;
    let id = hub.submit(cmd, 60).await;
    // Follow the output live over server-sent events until the job ends.
    let resp = hub
        .http
        .get(format!("{}/api/jobs/{id}/logs?follow=true", hub.url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .unwrap()
        .unwrap();
    let steps = text.matches("step ").count();
    assert_eq!(steps, 3, "{text}");
    assert!(
        text.contains("event: end") && text.contains("succeeded"),
        "{text}"
    );
    let job = hub.job(id).await;
    let metrics = job["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 3, "{job}");
    assert_eq!(metrics[2]["step"], 3);
    assert_eq!(metrics[2]["value"], 0.3);
    // The job page charts the curve, drawn on the server as an SVG image.
    let get = |path: String| {
        hub.http
            .get(format!("{}{path}", hub.url))
            .bearer_auth(&hub.token)
            .send()
    };
    let page = get(format!("/jobs/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/jobs/{id}/metrics.svg?name=loss")),
        "{page}"
    );
    let chart = get(format!("/jobs/{id}/metrics.svg?name=loss"))
        .await
        .unwrap();
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    let svg = chart.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("loss"), "{svg}");
    assert!(
        svg.contains("<polyline") || svg.contains("<path"),
        "a line: {svg}"
    );
    let missing = get("/jobs/999999/metrics.svg?name=loss".into())
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The cluster page charts each node's utilisation over the last hour.
    let cluster = get("/cluster".into()).await.unwrap().text().await.unwrap();
    assert!(cluster.contains("/cluster/utilization.svg"), "{cluster}");
    let util = get("/cluster/utilization.svg".into()).await.unwrap();
    assert_eq!(util.headers()["content-type"], "image/svg+xml");
    let svg = util.text().await.unwrap();
    // The legend names the node (plotters writes text on a line of its own).
    assert!(
        svg.contains("\nm\n") && svg.contains("minutes ago"),
        "{svg}"
    );
}

#[tokio::test]
async fn gpus_are_reserved_per_job() {
    let hub = Hub::start();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = hub
            .http
            .post(format!("{}/api/jobs", hub.url))
            .bearer_auth(&hub.token)
            .json(&json!({"kind": "command", "command": "true", "resources": {"cpus": 1, "memory_mb": 0, "gpus": 1}}))
            .send()
            .await
            .unwrap();
        ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    // A node that speaks the protocol directly, with two GPUs.
    let reg: Value = hub
        .http
        .post(format!("{}/api/cluster/register", hub.url))
        .json(&json!({"protocol_version": 1, "join_token": hub.join, "name": "gpu-box",
            "inventory": {"hostname": "gpu-box", "cpus": 8, "memory_mb": 1000, "gflops": 1.0, "allow_commands": true,
                "cache_bytes": 0, "gpus": [{"index": 0, "model": "A100", "memory_mb": 40000}, {"index": 1, "model": "A100", "memory_mb": 40000}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let node_token = reg["node_token"].as_str().unwrap().to_owned();
    let beat = |running: Value| {
        let (http, url, t) = (hub.http.clone(), hub.url.clone(), node_token.clone());
        async move {
            http.post(format!("{url}/api/cluster/heartbeat"))
                .bearer_auth(t)
                .json(&json!({"free": {"cpus": 8, "memory_mb": 1000, "gpus": 2}, "running": running, "cache": [], "wait_ms": 3000}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 2 {
        let running: Vec<Value> = got.iter().map(|a: &Value| a["job"].clone()).collect();
        let resp = beat(Value::Array(running)).await;
        got.extend(resp["assignments"].as_array().unwrap().iter().cloned());
        assert!(Instant::now() < deadline, "no assignments");
    }
    let mut gpus: Vec<Value> = got.iter().map(|a| a["gpus"].clone()).collect();
    gpus.sort_by_key(|g| g.to_string());
    assert_eq!(gpus, [json!([0]), json!([1])], "each job gets its own GPU");
    assert_eq!(hub.job(ids[2]).await["state"], "queued", "no third GPU");
    // The first job ends; its GPU goes to the third job.
    let first = &got[0];
    let job_id = first["job"]["job_id"].as_i64().unwrap();
    let r = hub
        .http
        .post(format!("{}/api/cluster/jobs/{job_id}/events", hub.url))
        .bearer_auth(&node_token)
        .json(&json!({"attempt": first["job"]["attempt"], "started": true,
            "finished": {"state": "succeeded", "exit_code": 0, "reason": "exit code 0"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let running = json!([got[1]["job"]]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let third = loop {
        let resp = beat(running.clone()).await;
        if let Some(a) = resp["assignments"].as_array().unwrap().first() {
            break a.clone();
        }
        assert!(Instant::now() < deadline, "third job never assigned");
    };
    assert_eq!(third["job"]["job_id"], ids[2]);
    assert_eq!(third["gpus"], first["gpus"]);
    // A report for an attempt that is not current is fenced off.
    let stale = hub
        .http
        .post(format!("{}/api/cluster/jobs/{job_id}/events", hub.url))
        .bearer_auth(&node_token)
        .json(&json!({"attempt": 99, "logs": [{"seq": 0, "stream": "stdout", "text": "late"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
}

#[tokio::test]
async fn job_outputs_become_a_commit_of_a_model_repo() {
    let hub = Hub::start();
    let r = hub
        .http
        .post(format!("{}/api/repos/create", hub.url))
        .bearer_auth(&hub.token)
        .json(&json!({"name": "trained", "type": "model"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    // Someone who may not write the admin's repo is refused at submission.
    let out = Command::new(BIN)
        .args(["admin", "create-user", "bob", "--token", "--data-dir"])
        .arg(hub.dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bob = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = hub
        .http
        .post(format!("{}/api/jobs", hub.url))
        .bearer_auth(&bob)
        .json(&json!({"command": "true", "output": {"repo": "admin/trained"}}))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());

    let _w = Workers(vec![hub.worker("o", true)]);
    let cmd = r#"cd "$MODELYARD_OUTPUT_DIR" && mkdir logs && i=0 && while [ $i -lt 512 ]; do printf 'modelyard'; i=$((i+1)); done > model.bin && echo done > logs/train.txt"#;
    let expected = "modelyard".repeat(512);
    let r = hub
        .http
        .post(format!("{}/api/jobs", hub.url))
        .bearer_auth(&hub.token)
        .json(&json!({"command": cmd, "timeout_s": 60,
            "output": {"repo": "admin/trained", "branch": "main"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let job = hub
        .wait_for(&[id], &["succeeded"], Duration::from_secs(30))
        .await;
    let commit = job[0]["output_commit"].as_str().expect("an output commit");
    let info: Value = hub.get_json("/api/models/admin/trained").await;
    assert_eq!(info["sha"], commit, "{info}");
    let get = |path: &str| {
        hub.http
            .get(format!("{}/admin/trained/resolve/main/{path}", hub.url))
            .bearer_auth(&hub.token)
            .send()
    };
    let model = get("model.bin").await.unwrap();
    assert_eq!(model.status(), 200);
    assert_eq!(model.bytes().await.unwrap(), expected.as_bytes());
    assert_eq!(get("logs/train.txt").await.unwrap().status(), 200);
}
