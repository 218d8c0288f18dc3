//! The live data: evaluation jobs of every architecture in `../shared/data/models/` and the
//! MNIST model, at several dataset sizes and batch sizes, run one at a time by a real worker of
//! a real server on this machine. What each job ran with (structure from the hub's analysis,
//! samples and batch size from the evaluator's report, the node's calibration) and its measured
//! running time come from the server's own record, `GET /api/predict/observations`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use modelyard_predict::Observation;
use serde_json::{json, Value};

use super::Labeled;
use crate::bench::{start_server, start_workers};

/// Batch sizes tried on every architecture (graphs whose exporter fixed the batch at 1 in a
/// reshape take only 1; the evaluator says so and the run is left out).
const BATCHES: [usize; 2] = [1, 4];
/// MNIST images per image of the other models' sizes (MNIST is ~5,000× cheaper per image).
const MNIST_SCALE: usize = 250;

/// Pushes `dir` as `repo` through this binary's own `push`.
fn push(url: &str, token: &str, dir: &Path, repo: &str, dataset: bool) -> anyhow::Result<()> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("push").arg(dir).arg(repo);
    if dataset {
        cmd.arg("--dataset");
    }
    let out = cmd
        .args(["--server", url, "--token", token])
        .output()
        .context("running modelyard push")?;
    if !out.status.success() {
        bail!(
            "pushing {repo}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A folder holding only `files` (hard links, copies where links fail).
fn folder_of(dir: &Path, files: &[&Path]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for f in files {
        let to = dir.join(f.file_name().context("file name")?);
        if std::fs::hard_link(f, &to).is_err() {
            std::fs::copy(f, &to)?;
        }
    }
    Ok(())
}

/// Submits one evaluation and waits for its end; returns the job's final JSON.
async fn run_job(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let job: Value = crate::client::check(
        http.post(format!("{url}/api/jobs"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?,
    )
    .await?
    .json()
    .await?;
    let id = job["id"].as_i64().context("job id")?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let j: Value = http
            .get(format!("{url}/api/jobs/{id}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if matches!(
            j["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            // The job as submitted carries the prediction made then.
            let mut j = j;
            j["submitted_prediction"] = job["prediction"].clone();
            return Ok(j);
        }
        if Instant::now() > deadline {
            bail!("job {id} did not finish in 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the jobs; returns every measured run labelled with its architecture, the online
/// errors (prediction stored at submission vs measured) and a line describing the data.
pub async fn measure(
    models_dir: &Path,
    mnist_dir: &Path,
    sizes: &[usize],
) -> anyhow::Result<(Vec<Labeled>, Vec<f64>, String)> {
    let dir = tempfile::Builder::new()
        .prefix("modelyard-bench-predict-")
        .tempdir()?;
    let data = dir.path().join("data");
    let (_server, url, token) = start_server(&data)?;
    let _workers = start_workers(&data, dir.path(), &url, &token, 1, false).await?;
    let http = reqwest::Client::new();

    // Models: every architecture, and the MNIST model.
    let mut archs: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(models_dir)
        .with_context(|| format!("reading {}", models_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .map(|p| {
            let name = p.file_stem().unwrap_or_default().to_string_lossy();
            (name.trim_start_matches("light_").replace('_', "-"), p)
        })
        .collect();
    archs.sort();
    archs.push(("mnist-8".into(), mnist_dir.join("mnist-8.onnx")));
    for (name, file) in &archs {
        let d = dir.path().join("models").join(name);
        folder_of(&d, &[file])?;
        push(&url, &token, &d, &format!("admin/{name}"), false)?;
    }
    let largest = sizes.iter().copied().max().unwrap_or(1);
    let images = dir.path().join("images");
    crate::bench_eval::resnet_images(&images, largest)?;
    push(&url, &token, &images, "admin/images", true)?;
    let mnist = dir.path().join("mnist");
    folder_of(
        &mnist,
        &[
            &mnist_dir.join("t10k-images-idx3-ubyte.gz"),
            &mnist_dir.join("t10k-labels-idx1-ubyte.gz"),
        ],
    )?;
    push(&url, &token, &mnist, "admin/mnist", true)?;

    let mut arch_of: HashMap<i64, String> = HashMap::new();
    let mut online = Vec::new();
    let mut skipped = Vec::new();
    for (name, _) in &archs {
        let is_mnist = name == "mnist-8";
        for &size in sizes {
            for batch in BATCHES {
                if batch > 1 && skipped.contains(name) {
                    continue;
                }
                let (dataset, samples) = if is_mnist {
                    ("admin/mnist", (size * MNIST_SCALE).min(10_000))
                } else {
                    ("admin/images", size)
                };
                let body = json!({
                    "kind": "evaluate", "model": format!("admin/{name}"), "dataset": dataset,
                    "eval": {"task": "image-classification", "limit": samples, "batch_size": batch},
                    // Both cores: one job at a time, nothing else on the machine.
                    "resources": {"cpus": 2, "memory_mb": 0, "gpus": 0},
                    "timeout_s": 900,
                });
                let job = run_job(&http, &url, &token, &body).await?;
                let id = job["id"].as_i64().context("job id")?;
                match job["state"].as_str() {
                    Some("succeeded") => {
                        eprintln!("{name}: {samples} images at batch {batch}: done (job {id})");
                        arch_of.insert(id, name.clone());
                        if let Some(p) = job["submitted_prediction"]["nodes"][0]["seconds"].as_f64()
                        {
                            online.push((id, p));
                        }
                    }
                    _ if batch > 1 => skipped.push(name.clone()),
                    s => bail!(
                        "job {id} ({name}, {samples} images) ended {s:?}: {}",
                        job["reason"]
                    ),
                }
            }
        }
    }
    // The observations are recorded just after each job's end.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows: Vec<Value> = loop {
        let rows: Vec<Value> = http
            .get(format!("{url}/api/predict/observations"))
            .bearer_auth(&token)
            .send()
            .await?
            .json()
            .await?;
        if rows.len() >= arch_of.len() || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut runs = Vec::new();
    let mut measured: HashMap<i64, f64> = HashMap::new();
    for r in rows {
        let id = r["job_id"].as_i64().unwrap_or(-1);
        let Some(model) = arch_of.get(&id) else {
            continue;
        };
        let obs = Observation {
            features: serde_json::from_value(r["features"].clone())
                .with_context(|| format!("features of job {id}"))?,
            seconds: r["seconds"].as_f64().context("seconds")?,
        };
        measured.insert(id, obs.seconds);
        runs.push(Labeled {
            model: model.clone(),
            node: obs.features.node.class.clone(),
            obs,
        });
    }
    if runs.len() < arch_of.len() {
        bail!(
            "the server recorded {} of {} finished jobs",
            runs.len(),
            arch_of.len()
        );
    }
    let online_errors = online
        .iter()
        .filter_map(|(id, p)| measured.get(id).map(|y| (p - y).abs() / y))
        .collect();
    let gflops = runs.first().map_or(0.0, |r| r.obs.features.node.gflops);
    let note = format!(
        "live: {} evaluation jobs of {} architectures ({} images each; MNIST ×{MNIST_SCALE}), \
         batch {BATCHES:?} where the graph allows more than 1 (not: {}), run one at a time by one worker \
         of a local server (calibrated at {gflops:.1} GFLOP/s); times are the jobs' running times \
         as the server measured them",
        runs.len(),
        archs.len(),
        sizes
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("/"),
        if skipped.is_empty() {
            "none".to_owned()
        } else {
            skipped.join(", ")
        }
    );
    Ok((runs, online_errors, note))
}
