//! `modelyard compare` (contrast runs: evaluate every model on every dataset, reusing verified
//! results, then print the table) and `modelyard leaderboard`.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde_json::{json, Value};

use crate::client::enc_path;
use crate::credentials::ClientArgs;

#[derive(Args)]
pub struct CompareArgs {
    /// Comma-separated models, NS/NAME[@REV].
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Comma-separated datasets, NS/NAME[@REV].
    #[arg(long, value_delimiter = ',', required = true)]
    pub datasets: Vec<String>,
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long)]
    pub task: Option<String>,
    /// Submit and return without waiting for the evaluations.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args)]
pub struct LeaderboardArgs {
    /// The dataset, NS/NAME.
    pub dataset: String,
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub metric: Option<String>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

use modelyard_server::web::results::show_metric as show;

pub async fn compare(a: CompareArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let body =
        json!({"models": a.models, "datasets": a.datasets, "split": a.split, "task": a.task});
    let runs: Vec<Value> = client.post_json("/api/compare/runs", &body).await?;
    let (mut reused, mut submitted) = (0, 0);
    for r in &runs {
        match r["status"].as_str() {
            Some("verified") => reused += 1,
            _ => submitted += 1,
        }
    }
    eprintln!(
        "{} evaluations: {reused} verified already (reused), {submitted} to run",
        runs.len()
    );
    let jobs: Vec<i64> = runs
        .iter()
        .filter(|r| r["status"] != "verified")
        .filter_map(|r| r["job_id"].as_i64())
        .collect();
    if !a.no_wait {
        let mut failed = Vec::new();
        let mut left = jobs.clone();
        while !left.is_empty() {
            let mut still = Vec::new();
            for id in left {
                let job: Value = client.get_json(&format!("/api/jobs/{id}")).await?;
                match job["state"].as_str() {
                    Some("succeeded") => eprintln!("job #{id} succeeded"),
                    Some("failed" | "cancelled") => {
                        eprintln!("job #{id} {}: {}", job["state"], job["reason"]);
                        failed.push(id);
                    }
                    _ => still.push(id),
                }
            }
            left = still;
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if !failed.is_empty() {
            eprintln!("{} evaluation(s) failed: {failed:?}", failed.len());
        }
    }
    let models = a.models.join(",");
    let datasets: Vec<String> = a
        .datasets
        .iter()
        .map(|d| d.split('@').next().unwrap_or(d).to_string())
        .collect();
    let c: Value = client
        .get_json(&format!(
            "/api/compare?models={}&datasets={}",
            enc_path(&models),
            enc_path(&datasets.join(","))
        ))
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
        return Ok(());
    }
    let names: Vec<&str> = c["models"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    for b in c["boards"].as_array().into_iter().flatten() {
        let metric = b["metric"].as_str().unwrap_or("?");
        println!(
            "{} · {} · {} ({metric})",
            b["dataset"].as_str().unwrap_or("?"),
            b["split"].as_str().unwrap_or("?"),
            b["task"].as_str().unwrap_or("?")
        );
        println!(
            "  {:<width$}  {:>10}  {:>12}  {:>10}",
            "model", metric, "p50 ms", "samples/s"
        );
        for (i, name) in names.iter().enumerate() {
            let cell = &b["values"][i];
            if cell.is_null() {
                println!("  {name:<width$}  {:>10}", "–");
            } else {
                println!(
                    "  {name:<width$}  {:>10}  {:>12.3}  {:>10.0}",
                    show(metric, cell["value"].as_f64().unwrap_or(f64::NAN)),
                    cell["latency_p50_ms"].as_f64().unwrap_or(f64::NAN),
                    cell["throughput"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
    }
    Ok(())
}

pub async fn leaderboard(a: LeaderboardArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    if !a.dataset.contains('/') {
        bail!("the dataset must be NS/NAME");
    }
    let mut q = Vec::new();
    for (k, v) in [
        ("split", &a.split),
        ("task", &a.task),
        ("metric", &a.metric),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc_path(v)));
        }
    }
    let b: Value = client
        .get_json(&format!("/api/leaderboards/{}?{}", a.dataset, q.join("&")))
        .await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&b)?);
        return Ok(());
    }
    let metric = b["metric"].as_str().unwrap_or("?");
    println!(
        "{} · {} · {} · by {metric}",
        b["dataset"].as_str().unwrap_or("?"),
        b["split"].as_str().unwrap_or("?"),
        b["task"].as_str().unwrap_or("?")
    );
    println!("verified (measured by modelyard):");
    for e in b["verified"].as_array().into_iter().flatten() {
        println!(
            "  {:>2}. {:<32} {:>9}  params {:>11}  p50 {:.3} ms  job #{}",
            e["rank"],
            e["model"].as_str().unwrap_or("?"),
            show(metric, e["value"].as_f64().unwrap_or(f64::NAN)),
            e["parameters"]
                .as_u64()
                .map_or("–".into(), |p| p.to_string()),
            e["latency_p50_ms"].as_f64().unwrap_or(f64::NAN),
            e["job_id"]
        );
    }
    println!("self-reported (claimed in model cards):");
    for c in b["self_reported"].as_array().into_iter().flatten() {
        println!(
            "  {:<36} {:>9}{}",
            c["model"].as_str().unwrap_or("?"),
            show(metric, c["value"].as_f64().unwrap_or(f64::NAN)),
            if c["disagrees"] == true {
                "  DISAGREES with the verified result"
            } else {
                ""
            }
        );
    }
    Ok(())
}
