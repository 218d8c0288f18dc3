//! `modelyard eval`: evaluate an ONNX model on a dataset split, offline on local paths, or as
//! the child process of an `evaluate` job (`--job-spec`), where it reads its inputs from the job
//! directory and leaves `eval.json` (or `eval-error.txt`) in the job's output directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use modelyard_core::job::{
    JobSpec, EVAL_ERROR_FILE as ERROR_FILE, EVAL_REPORT_FILE as REPORT_FILE,
};
use modelyard_eval::{evaluate, EvalReport, EvalRequest, Preprocess};

#[derive(Args)]
pub struct EvalArgs {
    /// An .onnx file, or a directory holding one (and perhaps a model card).
    #[arg(long, required_unless_present = "job_spec")]
    pub model: Option<PathBuf>,
    /// A dataset directory (perhaps with a dataset card), or one data file.
    #[arg(long, required_unless_present = "job_spec")]
    pub dataset: Option<PathBuf>,
    /// image-classification, tabular-classification or tabular-regression (default: from the
    /// cards).
    #[arg(long)]
    pub task: Option<String>,
    /// The split to evaluate (default: test).
    #[arg(long)]
    pub split: Option<String>,
    /// Samples per inference (graphs that declare batch 1 are tried at this size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Evaluate only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Tables: the label or target column (default: label).
    #[arg(long)]
    pub label_column: Option<String>,
    /// Image preprocessing as JSON, e.g. '{"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"resize":[224,224]}'.
    #[arg(long)]
    pub preprocessing: Option<String>,
    /// Run the evaluation of an `evaluate` job from its spec (used by workers).
    #[arg(long, conflicts_with_all = ["model", "dataset"])]
    pub job_spec: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn from_flags(args: &EvalArgs) -> anyhow::Result<modelyard_eval::EvalArgs> {
    let preprocessing: Preprocess = match &args.preprocessing {
        Some(p) => serde_json::from_str(p).context("--preprocessing")?,
        None => Preprocess::default(),
    };
    Ok(modelyard_eval::EvalArgs {
        task: args.task.as_deref().map(str::parse).transpose()?,
        split: args.split.clone(),
        preprocessing,
        label_column: args.label_column.clone(),
        batch_size: args.batch_size,
        limit: args.limit,
        ..modelyard_eval::EvalArgs::default()
    })
}

/// A job's paths: `(request, output directory, metrics file)`.
fn job_request(
    spec_path: &Path,
    flags: modelyard_eval::EvalArgs,
) -> anyhow::Result<(EvalRequest, PathBuf, Option<PathBuf>)> {
    let text = std::fs::read_to_string(spec_path)
        .with_context(|| format!("reading {}", spec_path.display()))?;
    let spec: JobSpec = serde_json::from_str(&text).context("the job spec")?;
    let job_dir = spec_path.parent().unwrap_or(Path::new("."));
    let env_dir = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| job_dir.join(default), PathBuf::from)
    };
    let inputs = env_dir("MODELYARD_INPUT_DIR", "inputs");
    let outputs = env_dir("MODELYARD_OUTPUT_DIR", "outputs");
    let metrics = std::env::var_os("MODELYARD_METRICS_FILE").map(PathBuf::from);
    let from_spec: modelyard_eval::EvalArgs = match &spec.eval {
        Some(v) => serde_json::from_value(v.clone()).context("the job's eval options")?,
        None => modelyard_eval::EvalArgs::default(),
    };
    let source = |role: &str| {
        spec.inputs
            .iter()
            .find(|i| i.role == role)
            .map(|i| i.source.clone())
    };
    Ok((
        EvalRequest {
            model: inputs.join("model"),
            dataset: inputs.join("dataset"),
            args: from_spec.overlaid(&flags),
            model_source: source("model"),
            dataset_source: source("dataset"),
        },
        outputs,
        metrics,
    ))
}

fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn print_table(r: &EvalReport) {
    let rec = &r.record;
    println!(
        "model      {} (sha256 {})",
        rec.model.path,
        &rec.model.sha256[..12]
    );
    if let Some(s) = &rec.model.source {
        println!("           {s}");
    }
    println!(
        "dataset    {:?}, {} file(s){}",
        rec.dataset.format,
        rec.dataset.files.len(),
        rec.dataset
            .source
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default()
    );
    println!("input      {}, batch {}", rec.input, r.batch_size);
    println!(
        "task       {}, split {}, {} samples",
        r.task, r.split, r.samples
    );
    for (name, v) in &r.metrics {
        let shown = match name.as_str() {
            "accuracy" | "top5_accuracy" | "macro_f1" => pct(*v),
            "correct" => format!("{v:.0}"),
            _ => format!("{v:.6}"),
        };
        println!("{name:<14} {shown}");
    }
    println!(
        "latency    p50 {:.3} ms, p95 {:.3} ms per sample; {:.0} samples/s",
        r.latency_ms.p50, r.latency_ms.p95, r.throughput_per_s
    );
    println!("elapsed    {:.2} s on {}", rec.elapsed_s, rec.hardware.cpu);
}

/// Runs `modelyard eval`.
pub async fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let flags = from_flags(&args)?;
    let (req, outputs, metrics) = match &args.job_spec {
        Some(spec) => {
            let (r, o, m) = job_request(spec, flags)?;
            (r, Some(o), m)
        }
        None => match (&args.model, &args.dataset) {
            (Some(m), Some(d)) => (
                EvalRequest {
                    model: m.clone(),
                    dataset: d.clone(),
                    args: flags,
                    ..EvalRequest::default()
                },
                None,
                None,
            ),
            _ => bail!("pass --model and --dataset, or --job-spec"),
        },
    };
    let quiet = args.json && args.job_spec.is_none();
    let result = tokio::task::spawn_blocking(move || {
        let mut last = 0u64;
        let mut progress = |done: u64, total: Option<usize>| {
            if quiet || done < last + 1000 {
                return;
            }
            last = done;
            match total {
                Some(t) => eprintln!("evaluated {done} of {t} samples"),
                None => eprintln!("evaluated {done} samples"),
            }
        };
        evaluate(&req, &mut progress)
    })
    .await?;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(dir) = &outputs {
                std::fs::create_dir_all(dir).ok();
                std::fs::write(dir.join(ERROR_FILE), e.to_string()).ok();
            }
            bail!(e);
        }
    };
    if let Some(dir) = &outputs {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(REPORT_FILE), serde_json::to_vec_pretty(&report)?)?;
    }
    if let Some(path) = &metrics {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        for (name, value) in &report.metrics {
            writeln!(
                f,
                "{}",
                serde_json::json!({"step": 0, "name": name, "value": value})
            )?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}
