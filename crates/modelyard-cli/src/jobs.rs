//! Job commands: `submit`, `jobs`, `logs`, `cancel`, `nodes`.

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::credentials::ClientArgs;

#[derive(Args)]
pub struct SubmitArgs {
    /// Run this shell command (a `command` job; needs a worker started with --allow-commands).
    #[arg(long)]
    pub command: Option<String>,
    /// Model repo whose files are the job's `model/` inputs: NS/NAME[@REV].
    #[arg(long)]
    pub model: Option<String>,
    /// Dataset repo whose files are the job's `dataset/` inputs: NS/NAME[@REV].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Evaluate jobs: the task (default: from the cards).
    #[arg(long)]
    pub task: Option<String>,
    /// Evaluate jobs: the split (default: test).
    #[arg(long)]
    pub split: Option<String>,
    /// Evaluate jobs: more options as JSON (preprocessing, batch_size, limit, label_column).
    #[arg(long)]
    pub eval: Option<String>,
    /// CPU cores the job needs.
    #[arg(long, default_value_t = 1)]
    pub cpus: u32,
    /// GPUs the job needs.
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// Attempts before the job fails for good when its node is lost.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: i64,
    /// Command jobs: the work done with the model as JSON, so it can be predicted, e.g.
    /// '{"work":"training","samples":60000,"batch_size":64,"epochs":3}'.
    #[arg(long)]
    pub workload: Option<String>,
    /// Print the job as JSON instead of its id.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let body = job_body(&a)?;
    let job: Value = client.post_json("/api/jobs", &body).await?;
    if a.json {
        println!("{job}");
    } else {
        println!("{}", job["id"]);
    }
    Ok(())
}

/// `modelyard predict`: how long the job would take on each kind of node, and when it would
/// start and finish if submitted now.
pub async fn predict(a: SubmitArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let p: Value = client.post_json("/api/predict", &job_body(&a)?).await?;
    if a.json {
        println!("{p}");
        return Ok(());
    }
    if p["predicted"] != true {
        anyhow::bail!(
            "cannot predict this job: {}",
            p["reason"].as_str().unwrap_or("?")
        );
    }
    let w = &p["workload"];
    println!(
        "{} of {} samples at batch {}",
        w["work"].as_str().unwrap_or("inference"),
        w["samples"],
        w["batch_size"]
    );
    println!();
    println!("| node class | nodes | predicted | p10–p90 | from |");
    println!("|------------|-------|----------:|---------|------|");
    for n in p["nodes"].as_array().into_iter().flatten() {
        let secs = |k: &str| n[k].as_f64().map_or("?".into(), human_seconds);
        let nodes: Vec<&str> = n["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let basis = match n["basis"].as_str() {
            Some("class") => format!("{} finished jobs on this class", n["observations"]),
            Some("pooled") => format!("{} finished jobs on all classes", n["observations"]),
            _ => "the analytic prior".into(),
        };
        println!(
            "| {} | {} | {} | {}–{} | {basis} |",
            n["class"].as_str().unwrap_or("?"),
            nodes.join(", "),
            secs("seconds"),
            secs("p10"),
            secs("p90")
        );
    }
    let q = &p["queue"];
    if let Some(start) = q["start_in_s"].as_f64() {
        println!();
        println!(
            "submitted now: {} job(s) ahead, starts in about {}, done by {}",
            q["jobs_ahead"],
            human_seconds(start),
            q["expected_finish_at"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// `12 ms`, `3.4 s`, `5 min`, `2.5 h`.
pub fn human_seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// The body of `POST /api/jobs` (and `POST /api/predict`) for these arguments.
fn job_body(a: &SubmitArgs) -> anyhow::Result<Value> {
    let mut eval: Value = match &a.eval {
        Some(e) => serde_json::from_str(e).map_err(|e| anyhow::anyhow!("--eval: {e}"))?,
        None => json!({}),
    };
    if let Some(t) = &a.task {
        eval["task"] = json!(t);
    }
    if let Some(s) = &a.split {
        eval["split"] = json!(s);
    }
    let eval =
        (a.command.is_none() && eval.as_object().is_some_and(|o| !o.is_empty())).then_some(eval);
    let workload: Option<Value> = a
        .workload
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--workload: {e}"))?;
    Ok(json!({
        "kind": if a.command.is_some() { "command" } else { "evaluate" },
        "command": a.command, "model": a.model, "dataset": a.dataset, "eval": eval,
        "resources": {"cpus": a.cpus, "memory_mb": 0, "gpus": a.gpus},
        "timeout_s": a.timeout, "max_attempts": a.max_attempts, "workload": workload,
    }))
}

#[derive(Args)]
pub struct JobsArgs {
    /// Only jobs in this state.
    #[arg(long)]
    pub state: Option<String>,
    /// Every user's jobs (admins).
    #[arg(long)]
    pub all: bool,
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn jobs(a: JobsArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let mut url = format!("/api/jobs?limit={}&all={}", a.limit, a.all);
    if let Some(s) = &a.state {
        url += &format!("&state={s}");
    }
    let jobs: Vec<Value> = client.get_json(&url).await?;
    if a.json {
        println!("{}", Value::Array(jobs));
        return Ok(());
    }
    println!(
        "{:>6}  {:<9} {:<10} {:>7}  {:<20} what",
        "id", "kind", "state", "attempt", "created"
    );
    for j in &jobs {
        let what = j["spec"]["command"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| {
                j["spec"]["inputs"]
                    .as_array()
                    .map(|i| format!("{} input files", i.len()))
                    .unwrap_or_default()
            });
        println!(
            "{:>6}  {:<9} {:<10} {:>7}  {:<20} {}",
            j["id"],
            j["kind"].as_str().unwrap_or(""),
            j["state"].as_str().unwrap_or(""),
            j["attempt"],
            j["created_at"]
                .as_str()
                .unwrap_or("")
                .get(..19)
                .unwrap_or(""),
            what.chars().take(60).collect::<String>()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct LogsArgs {
    pub job: i64,
    /// Keep printing new output until the job ends.
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn print_chunk(c: &Value) {
    let text = c["text"].as_str().unwrap_or("");
    if c["stream"] == "stderr" {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

pub async fn logs(a: LogsArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    if !a.follow {
        let chunks: Vec<Value> = client
            .get_json(&format!("/api/jobs/{}/logs", a.job))
            .await?;
        chunks.iter().for_each(print_chunk);
        return Ok(());
    }
    let resp = client
        .send(client.request(
            reqwest::Method::GET,
            &format!("/api/jobs/{}/logs?follow=true", a.job),
        ))
        .await?;
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(
            &chunk.context("reading the log stream")?,
        ));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let mut kind = "message";
            let mut data = String::new();
            for line in event.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    data.push('\n');
                }
            }
            match kind {
                "log" => data
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .for_each(|c| print_chunk(&c)),
                "end" => {
                    let v: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                    eprintln!(
                        "job {} {}: {}",
                        a.job,
                        v["state"].as_str().unwrap_or("?"),
                        v["reason"].as_str().unwrap_or("")
                    );
                    return Ok(());
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct CancelArgs {
    pub job: i64,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn cancel(a: CancelArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let job: Value = client
        .post_json(&format!("/api/jobs/{}/cancel", a.job), &json!({}))
        .await?;
    println!(
        "job {} {}",
        a.job,
        if job["state"] == "cancelled" {
            "cancelled"
        } else {
            "is being cancelled"
        }
    );
    Ok(())
}

#[derive(Args)]
pub struct NodesArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn nodes(a: NodesArgs) -> anyhow::Result<()> {
    let client = a.client.client()?;
    let nodes: Vec<Value> = client.get_json("/api/cluster/nodes").await?;
    if a.json {
        println!("{}", Value::Array(nodes));
        return Ok(());
    }
    println!(
        "{:<18} {:<20} {:<6} {:>5} {:>9} {:>8}  jobs",
        "id", "name", "state", "cpus", "GFLOP/s", "commands"
    );
    for n in &nodes {
        println!(
            "{:<18} {:<20} {:<6} {:>5} {:>9.1} {:>8}  {}",
            n["id"].as_str().unwrap_or(""),
            n["name"].as_str().unwrap_or(""),
            n["state"].as_str().unwrap_or(""),
            n["inventory"]["cpus"],
            n["inventory"]["gflops"].as_f64().unwrap_or(0.0),
            if n["inventory"]["allow_commands"] == true {
                "yes"
            } else {
                "no"
            },
            n["jobs"]
        );
    }
    Ok(())
}
