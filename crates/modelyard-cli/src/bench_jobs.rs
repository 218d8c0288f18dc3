//! `modelyard bench jobs`: submit → process-start latency through a real server and real
//! worker processes, and the master's CPU time per job.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::bench::start_server;

fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let hz: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(jobs: usize, workers: usize, rate: f64) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("modelyard-bench-jobs-")
        .tempdir()?;
    let data = dir.path().join("data");
    let (server, url, token) = start_server(&data)?;
    let pid = server.0.id();
    let procs = crate::bench::start_workers(&data, dir.path(), &url, &token, workers, true).await?;
    let http = reqwest::Client::new();

    eprintln!("submitting {jobs} jobs at {rate}/s to {workers} workers");
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut submitted = Vec::with_capacity(jobs);
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    for i in 0..jobs {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let t = unix_ns();
        let job: Value = crate::client::check(
            http.post(format!("{url}/api/jobs"))
                .bearer_auth(&token)
                .json(&json!({"kind": "command", "command": "date +%s%N", "timeout_s": 60}))
                .send()
                .await?,
        )
        .await?
        .json()
        .await?;
        submitted.push((job["id"].as_i64().context("job id")?, t));
    }
    // Wait until all have finished.
    let deadline = Instant::now() + Duration::from_secs(120 + jobs as u64 / 5);
    loop {
        let done: Vec<Value> = http
            .get(format!("{url}/api/jobs?limit=10000&state=succeeded"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if done.len() >= jobs {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {} of {jobs} jobs finished", done.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let wall = started.elapsed();

    let mut lat = Vec::with_capacity(jobs);
    for (id, t_submit) in &submitted {
        let logs: Vec<Value> = http
            .get(format!("{url}/api/jobs/{id}/logs"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        let text: String = logs
            .iter()
            .filter(|l| l["stream"] == "stdout")
            .filter_map(|l| l["text"].as_str())
            .collect();
        let t_start: i128 = text
            .trim()
            .parse()
            .with_context(|| format!("job {id} printed {text:?}"))?;
        lat.push((t_start - t_submit) as f64 / 1e6);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    drop(procs);
    drop(server);

    println!();
    println!(
        "{jobs} command jobs (`date +%s%N`), {workers} worker processes, submitted at {rate}/s"
    );
    println!();
    println!("| measurement                                 | value     | target   |");
    println!("|---------------------------------------------|-----------|----------|");
    println!(
        "| submit → process start, p50                 | {:>6.1} ms | ≤ 50 ms  |",
        percentile(&lat, 50.0)
    );
    println!(
        "| submit → process start, p95                 | {:>6.1} ms |          |",
        percentile(&lat, 95.0)
    );
    println!(
        "| submit → process start, p99                 | {:>6.1} ms | ≤ 250 ms |",
        percentile(&lat, 99.0)
    );
    println!(
        "| submit → process start, max                 | {:>6.1} ms |          |",
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| master CPU time per job (user + system)     | {:>6.2} ms |          |",
        cpu * 1000.0 / jobs as f64
    );
    println!(
        "| wall time for all jobs                      | {:>6.1} s  |          |",
        wall.as_secs_f64()
    );
    Ok(())
}
