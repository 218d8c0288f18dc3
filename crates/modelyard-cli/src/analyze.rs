//! `modelyard analyze FILE` (offline) and `modelyard diff A B` (local files or hub models).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use modelyard_analyze::{ModelDiff, ModelFeatures, Safety};
use modelyard_core::RepoId;
use serde_json::Value;

use crate::client::{enc_segment, Client};
use crate::credentials::ClientArgs;

#[derive(Args)]
pub struct AnalyzeArgs {
    /// A model file: .onnx, .safetensors, model.safetensors.index.json, .bin/.pt/.pth/.ckpt/.pkl.
    pub file: PathBuf,
    /// Print the full `ModelFeatures` JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The base model: a local file, or NAMESPACE/NAME[@REVISION] on the hub.
    pub a: String,
    /// The model compared with it, in the same forms.
    pub b: String,
    /// Which file of hub model A to compare (default: its first model file).
    #[arg(long)]
    pub file_a: Option<String>,
    /// Which file of hub model B to compare (default: its first model file).
    #[arg(long)]
    pub file_b: Option<String>,
    /// Print the `ModelDiff` JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

async fn analyze_local(path: &Path) -> anyhow::Result<ModelFeatures> {
    let p = path.to_owned();
    tokio::task::spawn_blocking(move || modelyard_analyze::analyze_path(&p))
        .await?
        .with_context(|| format!("analysing {}", path.display()))
}

/// Analyses a local file and prints a table or JSON; never touches the network.
pub async fn analyze(args: AnalyzeArgs) -> anyhow::Result<()> {
    let f = analyze_local(&args.file).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        print!("{}", table(&args.file.display().to_string(), &f));
    }
    Ok(())
}

/// `12,345,678`: exact counts stay readable.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human(n: u64) -> String {
    modelyard_server::analysis::human_count(n)
}

fn shape(io: &modelyard_analyze::IoInfo) -> String {
    let dims = io.shape.as_ref().map_or_else(
        || "unknown shape".to_owned(),
        |d| {
            d.iter()
                .map(|d| match d {
                    modelyard_analyze::Dim::Fixed(n) => n.to_string(),
                    modelyard_analyze::Dim::Symbolic(s) => s.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    format!("{} {} [{dims}]", io.name, io.dtype)
}

/// The human-readable summary of one model file.
pub fn table(name: &str, f: &ModelFeatures) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
    let fmt = serde_json::to_value(f.format).unwrap_or(Value::Null);
    let mut format = fmt.as_str().unwrap_or("?").to_owned();
    if let Some(o) = f.opset {
        format += &format!(" (opset {o})");
    }
    if let Some(p) = &f.producer {
        format += &format!(", produced by {p}");
    }
    row("file", name.to_owned());
    row("format", format);
    row(
        "parameters",
        format!(
            "{} ({}), {} bytes",
            grouped(f.parameters.total),
            human(f.parameters.total),
            grouped(f.parameters.bytes)
        ),
    );
    for (dtype, s) in &f.parameters.by_dtype {
        row(
            &format!("  {dtype}"),
            format!("{} ({} bytes)", grouped(s.count), grouped(s.bytes)),
        );
    }
    let opt = |v: Option<u64>| {
        v.map_or_else(
            || "-".to_owned(),
            |n| format!("{} ({})", grouped(n), human(n)),
        )
    };
    row("MACs/sample", opt(f.macs_per_sample));
    row("FLOPs/sample", opt(f.flops_per_sample));
    row(
        "depth",
        f.depth.map_or_else(|| "-".into(), |d| format!("{d} ops")),
    );
    row(
        "activations",
        f.activation_memory_bytes
            .map_or_else(|| "-".into(), |b| format!("{} bytes peak", grouped(b))),
    );
    for i in &f.inputs {
        row("input", shape(i));
    }
    for o in &f.outputs {
        row("output", shape(o));
    }
    for a in &f.assumed_dims {
        row("assumed", a.clone());
    }
    if !f.op_categories.is_empty() {
        let cats: Vec<String> = f
            .op_categories
            .iter()
            .map(|(c, n)| {
                let c = serde_json::to_value(c).unwrap_or(Value::Null);
                format!("{} {n}", c.as_str().unwrap_or("?"))
            })
            .collect();
        row("categories", cats.join(", "));
    }
    let mut ops: Vec<(&String, &u64)> = f.op_histogram.iter().collect();
    ops.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
    for (op, n) in ops {
        row("op", format!("{op:<24} {n}"));
    }
    if let Some(k) = &f.layer_kinds {
        row(
            "layers",
            format!(
                "attention {}, mlp {}, convolution {}, embedding {}, norm {}",
                k.attention, k.mlp, k.convolution, k.embedding, k.norm
            ),
        );
    }
    let safety = match &f.safety {
        None => "no code (not a pickle)".to_owned(),
        Some(Safety::Safe) => "safe: only allow-listed imports".to_owned(),
        Some(Safety::Unsafe { imports }) => format!("UNSAFE: imports {}", imports.join(", ")),
    };
    row("safety", safety);
    for w in &f.warnings {
        row("warning", w.clone());
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// A diff operand: a local file, or a model on the hub.
enum Operand {
    Local(PathBuf),
    Remote { id: RepoId, rev: String },
}

fn operand(s: &str) -> anyhow::Result<Operand> {
    let p = Path::new(s);
    if p.exists() {
        return Ok(Operand::Local(p.to_owned()));
    }
    let (repo, rev) = s.split_once('@').unwrap_or((s, "main"));
    let parsed = repo
        .split_once('/')
        .and_then(|(ns, name)| RepoId::new(ns, name).ok());
    match parsed {
        Some(id) if !rev.is_empty() => Ok(Operand::Remote {
            id,
            rev: rev.to_owned(),
        }),
        _ => bail!("{s:?} is neither an existing file nor NAMESPACE/NAME[@REVISION]"),
    }
}

/// Features of a hub model's file, from the analysis endpoint.
async fn remote_features(
    client: &Client,
    id: &RepoId,
    rev: &str,
    file: Option<&str>,
) -> anyhow::Result<ModelFeatures> {
    let v: Value = client
        .get_json(&format!("/api/models/{id}/analysis/{}", enc_segment(rev)))
        .await?;
    let files = v["files"].as_array().cloned().unwrap_or_default();
    let entry = match file {
        Some(f) => files.iter().find(|e| e["path"] == f),
        None => files.first(),
    }
    .with_context(|| {
        format!(
            "{id}@{rev} has no analysable model file{}",
            file.map(|f| format!(" {f:?}")).unwrap_or_default()
        )
    })?;
    let path = entry["path"].as_str().unwrap_or("?");
    match entry["status"].as_str() {
        Some("ok" | "unsafe") => Ok(serde_json::from_value(entry["features"].clone())?),
        Some("pending") => {
            bail!("the analysis of {id}@{rev}:{path} is still pending; retry in a few seconds")
        }
        _ => bail!(
            "{id}@{rev}:{path} could not be analysed: {}",
            entry["error"].as_str().unwrap_or("unknown error")
        ),
    }
}

/// Compares two models and prints the deltas and a one-line verdict.
pub async fn diff(args: DiffArgs) -> anyhow::Result<()> {
    let (a, b) = (operand(&args.a)?, operand(&args.b)?);
    let d: ModelDiff = match (&a, &b) {
        (Operand::Remote { id: ia, rev: ra }, Operand::Remote { id: ib, rev: rb }) => {
            let client = args.client.client()?;
            let mut q = format!(
                "/api/compare/structure?a={}&b={}",
                enc_segment(&format!("{ia}@{ra}")),
                enc_segment(&format!("{ib}@{rb}"))
            );
            for (k, v) in [("file_a", &args.file_a), ("file_b", &args.file_b)] {
                if let Some(v) = v {
                    q += &format!("&{k}={}", enc_segment(v));
                }
            }
            client.get_json(&q).await?
        }
        _ => {
            let fa = side(&a, &args, args.file_a.as_deref()).await?;
            let fb = side(&b, &args, args.file_b.as_deref()).await?;
            modelyard_analyze::diff(&fa, &fb)
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    print_diff(&d);
    Ok(())
}

async fn side(o: &Operand, args: &DiffArgs, file: Option<&str>) -> anyhow::Result<ModelFeatures> {
    match o {
        Operand::Local(p) => analyze_local(p).await,
        Operand::Remote { id, rev } => remote_features(&args.client.client()?, id, rev, file).await,
    }
}

fn print_diff(d: &ModelDiff) {
    println!("parameters: {:+}", d.parameter_delta);
    let join = |m: Vec<String>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.join(", ")
        }
    };
    println!(
        "ops:        {}",
        join(
            d.op_deltas
                .iter()
                .map(|(k, v)| format!("{k} {v:+}"))
                .collect()
        )
    );
    println!(
        "categories: {}",
        join(
            d.category_deltas
                .iter()
                .map(|(k, v)| {
                    let k = serde_json::to_value(k).unwrap_or(Value::Null);
                    format!("{} {v:+}", k.as_str().unwrap_or("?"))
                })
                .collect()
        )
    );
    println!(
        "tensors:    {} added, {} removed, {} reshaped, {} changed, {} not compared by content",
        d.tensors_added.len(),
        d.tensors_removed.len(),
        d.tensors_reshaped.len(),
        d.tensors_changed.len(),
        d.tensors_unhashed
    );
    const SHOWN: usize = 20;
    for t in d.tensors_added.iter().take(SHOWN) {
        println!("  + {t}");
    }
    for t in d.tensors_removed.iter().take(SHOWN) {
        println!("  - {t}");
    }
    for r in d.tensors_reshaped.iter().take(SHOWN) {
        println!("  ~ {} {:?} -> {:?}", r.name, r.from, r.to);
    }
    for t in d.tensors_changed.iter().take(SHOWN) {
        println!("  * {t}");
    }
    let listed = [
        d.tensors_added.len(),
        d.tensors_removed.len(),
        d.tensors_reshaped.len(),
        d.tensors_changed.len(),
    ];
    let hidden: usize = listed.iter().map(|n| n.saturating_sub(SHOWN)).sum();
    if hidden > 0 {
        println!("  ... and {hidden} more (--json lists them all)");
    }
    println!("verdict:    {}", d.summary);
}
