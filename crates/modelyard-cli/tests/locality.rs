//! Data locality in the live master: three workers hold different cached datasets; jobs land on
//! the node that holds their data when that is faster, and elsewhere when waiting for it would
//! cost more than the transfer (here, longer than the delay budget).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::jobs::{json, ok, push, wait_job, worker_with};
use common::Server;
use serde_json::{json, Value};

/// Bytes of each dataset: 0.4 s to fetch at the scheduler's assumed 100 MB/s.
const DATASET_BYTES: usize = 40 << 20;

async fn submit(s: &Server, token: &str, dataset: &str, command: &str, cpus: u64) -> i64 {
    let body = json!({"kind": "command", "command": command, "dataset": dataset,
                      "resources": {"cpus": cpus, "memory_mb": 0, "gpus": 0}, "timeout_s": 120});
    let r = s
        .req(reqwest::Method::POST, "/api/jobs", Some(token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Submits one job per dataset together and returns the node each ran on.
async fn round(s: &Server, t: &str, datasets: &[&str], cpus: u64) -> HashMap<String, String> {
    let mut ids = Vec::new();
    for d in datasets {
        ids.push((d.to_string(), submit(s, t, d, "sleep 1", cpus).await));
    }
    let mut on = HashMap::new();
    for (d, id) in ids {
        let j = wait_job(s, t, id).await;
        assert_eq!(j["state"], "succeeded", "{j}");
        on.insert(d, j["node_id"].as_str().unwrap().to_owned());
    }
    on
}

#[tokio::test]
async fn jobs_go_to_their_data_unless_waiting_costs_more() {
    let s = Server::start_with_env(&[("MODELYARD_SCHED_DELAY_S", "60")]);
    // Equal declared speeds, so that only the data decides.
    let _workers: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|n| worker_with(&s, n, &["--allow-commands", "--gflops", "10"]))
        .collect();
    let alice = s.user("alice");
    let datasets = ["alice/d1", "alice/d2", "alice/d3"];
    for (i, d) in datasets.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
        let bytes: Vec<u8> = (0..DATASET_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        std::fs::write(dir.path().join("data.bin"), bytes).unwrap();
        if *d == "alice/d3" {
            // Private: its name must not show in other users' view of the caches.
            ok(s.cli(
                Some(&alice),
                &[
                    "push",
                    dir.path().to_str().unwrap(),
                    d,
                    "--dataset",
                    "--private",
                ],
            ));
        } else {
            push(&s, &alice, dir.path(), d, true);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let cores = loop {
        let nodes = json(&s, "/api/cluster/nodes", Some(&alice)).await;
        let alive: Vec<&Value> = nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "alive")
            .collect();
        if alive.len() == 3 {
            break alive[0]["inventory"]["cpus"].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "workers did not register: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Round 1: one job per dataset, each holding a whole node: they spread over the three.
    let holder = round(&s, &alice, &datasets, cores).await;
    let distinct: std::collections::HashSet<&String> = holder.values().collect();
    assert_eq!(distinct.len(), 3, "{holder:?}");
    // Wait until every node reports its dataset in its cache inventory.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = json(&s, "/api/cluster/nodes", Some(&alice)).await;
        let cached = nodes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["cache"].as_array().is_some_and(|c| !c.is_empty()))
            .count();
        if cached == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "caches not reported: {nodes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The caches read as dataset commits; a private one only to those who may read it.
    let nodes = json(&s, "/api/cluster/nodes", Some(&alice)).await;
    for n in nodes.as_array().unwrap() {
        let d = holder
            .iter()
            .find(|(_, node)| n["id"] == node.as_str())
            .map(|(d, _)| d.clone())
            .unwrap();
        let repos = &n["cached"]["repos"];
        assert_eq!(repos.as_array().unwrap().len(), 1, "{n}");
        assert_eq!(repos[0]["repo"], d.as_str(), "{n}");
        assert_eq!(
            (repos[0]["branch"].as_str(), repos[0]["files"].as_u64()),
            (Some("main"), Some(1))
        );
        assert_eq!(repos[0]["bytes"], DATASET_BYTES as u64);
    }
    let bob = s.user("bob");
    let seen = json(&s, "/api/cluster/nodes", Some(&bob)).await.to_string();
    assert!(!seen.contains("alice/d3"), "{seen}");
    assert!(seen.contains("\"other_blobs\":1"), "{seen}");
    let page = s.get("/cluster", Some(&alice)).await.text().await.unwrap();
    assert!(page.contains(">alice/d1</a>@main"), "{page}");

    // Round 2: the same again; each job lands where its data is.
    let again = round(&s, &alice, &datasets, cores).await;
    assert_eq!(again, holder, "jobs should follow their data");

    // Round 3: d1's node is busy with a job predicted to run 600 s, longer than the 60 s a job
    // may wait for its data: a new d1 job runs elsewhere and fetches d1 instead of waiting.
    let long = submit(&s, &alice, "alice/d1", "sleep 60", cores).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = json(&s, &format!("/api/jobs/{long}"), Some(&alice)).await;
        if j["state"] == "running" {
            assert_eq!(j["node_id"].as_str(), Some(holder["alice/d1"].as_str()));
            break;
        }
        assert!(Instant::now() < deadline, "the long job did not start: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let moved = round(&s, &alice, &["alice/d1"], cores).await;
    assert_ne!(moved["alice/d1"], holder["alice/d1"], "{moved:?}");
    let r = s
        .req(
            reqwest::Method::POST,
            &format!("/api/jobs/{long}/cancel"),
            Some(&alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
