//! Multi-node jobs on real worker processes: a job needing more GPUs than any one node has runs
//! on several nodes at once, its ranks find each other, and losing one node requeues it whole.
//! The workers see one GPU each through a stand-in `nvidia-smi` on their PATH (this machine
//! has none); everything else is the real protocol, scheduler and processes.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::jobs::{json, wait_job, worker_env, Worker};
use common::Server;
use serde_json::{json, Value};

/// A directory with an `nvidia-smi` that reports one GPU.
fn one_gpu() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let smi = dir.path().join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\necho '0, Stand-in GPU, 1024'\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn gpu_worker(s: &Server, name: &str, smi: &Path) -> Worker {
    let path = format!(
        "{}:{}",
        smi.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    worker_env(s, name, &["--allow-commands"], &[("PATH", &path)])
}

/// Each rank records what it was told; rank 0 listens on MASTER_PORT until every other rank
/// has said hello, and the others connect to MASTER_ADDR. With `hold` (a file path), rank 1
/// of the first attempt waits for that file to appear before saying hello.
fn rendezvous(out: &Path, hold: Option<&Path>) -> String {
    let hold = hold.map_or("None".to_owned(), |p| {
        format!("{:?}", p.display().to_string())
    });
    format!(
        r#"python3 - <<'EOF'
import os, socket, time
out, hold = {out:?}, {hold}
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
attempt = os.environ["MODELYARD_ATTEMPT"]
seen = [os.environ[k] for k in ("NODE_RANK", "NNODES", "MASTER_ADDR", "MASTER_PORT", "CUDA_VISIBLE_DEVICES")]
open(os.path.join(out, f"started-{{attempt}}-{{rank}}"), "w").write(" ".join(seen))
print(f"rank {{rank}} of {{world}}, attempt {{attempt}}", flush=True)
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("", port))
    srv.listen()
    hellos = []
    while len(hellos) < world - 1:
        conn, _ = srv.accept()
        hellos.append(conn.makefile().readline().strip())
    open(os.path.join(out, f"done-{{attempt}}-0"), "w").write("\n".join(sorted(hellos)))
    print("rank 0 heard", hellos, flush=True)
else:
    if hold and attempt == "1":
        while not os.path.exists(hold):
            time.sleep(0.05)
    deadline = time.time() + 60
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    s.sendall(f"hello from rank {{rank}}\n".encode())
    s.close()
    open(os.path.join(out, f"done-{{attempt}}-{{rank}}"), "w").write("ok")
EOF"#,
        out = out.display().to_string(),
    )
}

async fn submit(s: &Server, token: &str, command: &str, gpus: u32) -> i64 {
    let r = s
        .req(reqwest::Method::POST, "/api/jobs", Some(token))
        .json(&json!({"kind": "command", "command": command,
            "resources": {"cpus": 1, "memory_mb": 0, "gpus": gpus}, "timeout_s": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn a_job_bigger_than_any_node_runs_on_several_and_survives_losing_one() {
    let s = Server::start_with_env(&[("MODELYARD_NODE_LEASE_MS", "1500")]);
    let token = s.user("alice");
    let smi = one_gpu();
    let _w1 = gpu_worker(&s, "w1", smi.path());
    let mut w2 = gpu_worker(&s, "w2", smi.path());
    let out = tempfile::tempdir().unwrap();

    // Two GPUs on nodes of one: rank 0 and rank 1 on different nodes, together.
    let id = submit(&s, &token, &rendezvous(out.path(), None), 2).await;
    let j = wait_job(&s, &token, id).await;
    assert_eq!(j["state"], "succeeded", "{j}");
    let (r0, r1) = (
        read(out.path().join("started-1-0")),
        read(out.path().join("started-1-1")),
    );
    let f0: Vec<&str> = r0.split(' ').collect();
    let f1: Vec<&str> = r1.split(' ').collect();
    assert_eq!((f0[0], f0[1], f1[0], f1[1]), ("0", "2", "1", "2"));
    assert_eq!(
        f0[2..4],
        f1[2..4],
        "both ranks meet at one address and port"
    );
    assert_eq!(f0[2], "127.0.0.1");
    assert_eq!((f0[4], f1[4]), ("0", "0"), "each node's own GPU");
    assert_eq!(
        read(out.path().join("done-1-0")),
        "hello from rank 1",
        "rank 1 reached rank 0"
    );
    // The job's logs are rank 0's.
    let logs = s
        .get(&format!("/api/jobs/{id}/logs"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        logs.contains("rank 0 of 2") && !logs.contains("rank 1 of 2"),
        "{logs}"
    );
    let nodes = json(&s, "/api/cluster/nodes", Some(&token)).await;
    assert_eq!(nodes.as_array().unwrap().len(), 2);
    let ranks = &j["ranks"];
    assert_eq!(ranks.as_array().unwrap().len(), 2, "{j}");
    let on: Vec<&str> = ranks
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    assert!(on.contains(&"w1") && on.contains(&"w2"), "{ranks}");
    assert!(ranks
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "succeeded"));
    let page = s
        .get(&format!("/jobs/{id}"), Some(&token))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"ranks\"") && page.contains("rank 1 on"),
        "{page}"
    );

    // Kill -9 the node of rank 1 while the job runs: the whole job goes back to the queue,
    // rank 0 is stopped, and with a new node it runs again as one attempt on both.
    let out2 = tempfile::tempdir().unwrap();
    let hold = out2.path().join("never");
    let id = submit(&s, &token, &rendezvous(out2.path(), Some(&hold)), 2).await;
    wait_for("both ranks of attempt 1", || {
        out2.path().join("started-1-0").exists() && out2.path().join("started-1-1").exists()
    })
    .await;
    // The cluster lists the job on both of its nodes.
    let nodes = json(&s, "/api/cluster/nodes", Some(&token)).await;
    for n in nodes.as_array().unwrap() {
        assert_eq!(n["jobs"], json!([id]), "{n}");
    }
    w2.kill();
    let requeued = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let j = json(&s, &format!("/api/jobs/{id}"), Some(&token)).await;
            if j["state"] == "queued" {
                break j;
            }
            assert!(
                Instant::now() < deadline,
                "the job never went back to the queue: {j}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(
        requeued["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("heartbeat"),
        "{requeued}"
    );
    let _w3 = gpu_worker(&s, "w3", smi.path());
    let j = wait_job(&s, &token, id).await;
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["attempt"], 2, "{j}");
    assert!(out2.path().join("done-2-0").exists() && out2.path().join("done-2-1").exists());
    assert!(
        !out2.path().join("done-1-0").exists(),
        "rank 0 of the lost attempt never completed"
    );
}

/// Two nodes speaking the protocol directly: a multi-node job cancelled after its ranks were
/// assigned but before any started ends cancelled, and no node is given it again.
#[tokio::test]
async fn a_multi_node_job_cancelled_before_it_starts_ends() {
    let s = Server::start();
    let token = s.user("alice");
    let out = std::process::Command::new(common::BIN)
        .args(["admin", "join-token", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let join = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let reg: Value = http
            .post(format!("{}/api/cluster/register", s.url))
            .json(
                &json!({"protocol_version": 1, "join_token": join, "name": name,
                "inventory": {"hostname": name, "cpus": 4, "memory_mb": 1000, "gflops": 1.0,
                    "allow_commands": true, "cache_bytes": 0, "address": "127.0.0.1",
                    "gpus": [{"index": 0, "model": "A100", "memory_mb": 40000}]}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        nodes.push(reg["node_token"].as_str().unwrap().to_owned());
    }
    let beat = |node: &str| {
        let (http, url, node) = (http.clone(), s.url.clone(), node.to_owned());
        async move {
            http.post(format!("{url}/api/cluster/heartbeat"))
                .bearer_auth(node)
                .json(&json!({"free": {"cpus": 4, "memory_mb": 1000, "gpus": 1},
                    "running": [], "cache": [], "wait_ms": 200}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let id = submit(&s, &token, "sleep 60", 2).await;
    let mut ranks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ranks.len() < 2 {
        ranks.clear();
        for n in &nodes {
            if let Some(a) = beat(n).await["assignments"].as_array().unwrap().first() {
                assert_eq!(a["job"]["job_id"], id);
                ranks.push((a["gang"]["rank"].as_u64().unwrap(), n.clone()));
            }
        }
        assert!(Instant::now() < deadline, "the ranks were never assigned");
    }
    ranks.sort();
    assert_eq!(
        ranks.iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1],
        "one rank per node"
    );
    let r = s
        .req(
            reqwest::Method::POST,
            &format!("/api/jobs/{id}/cancel"),
            Some(&token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    beat(&ranks[0].1).await;
    let j = json(&s, &format!("/api/jobs/{id}"), Some(&token)).await;
    assert_eq!(j["state"], "cancelled", "{j}");
    for (_, n) in &ranks {
        assert!(beat(n).await["assignments"].as_array().unwrap().is_empty());
    }
}
