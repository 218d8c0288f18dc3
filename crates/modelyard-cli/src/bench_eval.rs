//! `modelyard bench eval`: images/s of the built-in evaluator on one core, next to onnxruntime
//! on the same models and the same input tensors, in the same run.
//!
//! modelyard is measured through `modelyard eval --json` in a child process pinned with
//! `taskset`; onnxruntime through `scripts/bench-eval-ort.py` in `.venv-bench/` (built on first
//! use from `scripts/requirements-bench.txt`), pinned to the same core. The Rust side writes the
//! float32 tensors the evaluator feeds tract (same decoding, same normalisation formula), and the
//! script feeds those to onnxruntime, so both engines see identical inputs. Both sides time
//! inference alone, batch 1, every sample once with no warm-up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use modelyard_eval::dataset::{self, split, Features, ReadOptions, Target};
use modelyard_eval::{EvalReport, Preprocess};
use serde::Deserialize;

/// ImageNet normalisation, as ResNet-50 was trained with.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// The evaluator's default pixel scale.
const SCALE: f32 = 1.0 / 255.0;
const SIDE: u32 = 224;

/// The repository root, for the fixtures, the script and the venv.
fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// What `scripts/bench-eval-ort.py` prints.
#[derive(Deserialize)]
struct OrtResult {
    samples: u64,
    images_per_s: f64,
    p50_ms: f64,
    accuracy: Option<f64>,
    onnxruntime: String,
}

/// One model measured by both engines: each engine's fastest run.
struct Row {
    name: &'static str,
    modelyard: EvalReport,
    ort: OrtResult,
}

impl Row {
    /// Runs both engines `runs` times, alternating so that a burst of load elsewhere on the
    /// machine hits both alike, and keeps each one's run with the most images/s.
    fn best_of(
        name: &'static str,
        runs: u32,
        mut modelyard: impl FnMut() -> anyhow::Result<EvalReport>,
        mut ort: impl FnMut() -> anyhow::Result<OrtResult>,
    ) -> anyhow::Result<Row> {
        let mut row = Row {
            name,
            modelyard: modelyard()?,
            ort: ort()?,
        };
        for _ in 1..runs {
            let m = modelyard()?;
            if m.throughput_per_s > row.modelyard.throughput_per_s {
                row.modelyard = m;
            }
            let o = ort()?;
            if o.images_per_s > row.ort.images_per_s {
                row.ort = o;
            }
        }
        if row.modelyard.samples != row.ort.samples || row.modelyard.batch_size != 1 {
            bail!(
                "{name}: modelyard ran {} samples at batch {}, onnxruntime {} at batch 1",
                row.modelyard.samples,
                row.modelyard.batch_size,
                row.ort.samples
            );
        }
        Ok(row)
    }
}

/// `program` under `taskset -c core`.
fn pinned(core: usize, program: &Path) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(core.to_string()).arg(program);
    c
}

/// Runs `cmd` and returns its stdout, or fails with its stderr.
fn output(mut cmd: Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The venv's python, creating or refreshing `.venv-bench/` when the pinned requirements changed.
fn ort_python(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(".venv-bench");
    let python = venv.join("bin/python");
    let requirements = root.join("scripts/requirements-bench.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join("requirements-bench.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let base = ["python3.11", "python3"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .context("no python3 found (onnxruntime runs from a Python venv)")?;
    eprintln!("creating {} with {base}", venv.display());
    let mut cmd = Command::new(base);
    cmd.args(["-m", "venv", "--clear"]).arg(&venv);
    output(cmd, "python -m venv")?;
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(&requirements);
    output(cmd, "pip install -r scripts/requirements-bench.txt")?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// Writes `tensor` as little-endian float32.
fn write_f32(path: &Path, tensor: &[f32]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for v in tensor {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}

/// The first `n` MNIST test images as the evaluator feeds them (`v / 255`, `[1, 1, 28, 28]`
/// each), read with the evaluator's own IDX reader, and their labels.
fn mnist_tensors(dir: &Path, n: usize) -> anyhow::Result<(Vec<f32>, Vec<u8>)> {
    let files = split::split_files(&split::data_files(dir)?, &[], "test")?;
    let opts = ReadOptions {
        classification: true,
        images: true,
        ..ReadOptions::default()
    };
    let opened = dataset::open(dir, files, &opts)?;
    let (mut tensor, mut labels) = (Vec::new(), Vec::new());
    for sample in opened.samples.take(n) {
        let sample = sample?;
        let (Features::Image(img), Target::Class(class)) = (sample.features, sample.target) else {
            bail!("{}: not a labelled image", sample.origin);
        };
        tensor.extend(
            img.to_luma8()
                .as_raw()
                .iter()
                .map(|&v| f32::from(v) * SCALE),
        );
        labels.push(u8::try_from(class)?);
    }
    Ok((tensor, labels))
}

/// Writes `n` seeded random RGB images as `<dir>/test/<class>/<i>.png` (two classes) and returns
/// the NCHW tensors the evaluator makes of them with ImageNet normalisation, in its read order.
pub(crate) fn resnet_images(dir: &Path, n: usize) -> anyhow::Result<Vec<f32>> {
    let hw = (SIDE * SIDE) as usize;
    let mut tensor = Vec::with_capacity(n * 3 * hw);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    // Sorted file order is the evaluator's read order: class folders first, then names.
    for class in ["a", "b"] {
        let class_dir = dir.join("test").join(class);
        std::fs::create_dir_all(&class_dir)?;
        let share = if class == "a" { n.div_ceil(2) } else { n / 2 };
        for i in 0..share {
            let mut pixels = vec![0u8; 3 * hw];
            for p in &mut pixels {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *p = (x >> 56) as u8;
            }
            for c in 0..3 {
                tensor.extend(
                    pixels
                        .iter()
                        .skip(c)
                        .step_by(3)
                        .map(|&v| (f32::from(v) * SCALE - MEAN[c]) / STD[c]),
                );
            }
            image::RgbImage::from_raw(SIDE, SIDE, pixels)
                .context("image buffer size")?
                .save(class_dir.join(format!("{i:04}.png")))?;
        }
    }
    Ok(tensor)
}

/// The evaluator's report for `model` on `dataset`, run by this binary pinned to `core`.
fn modelyard(
    core: usize,
    model: &Path,
    dataset: &Path,
    limit: usize,
    pre: &Preprocess,
) -> anyhow::Result<EvalReport> {
    let mut cmd = pinned(core, &std::env::current_exe()?);
    cmd.arg("eval")
        .arg("--model")
        .arg(model)
        .arg("--dataset")
        .arg(dataset)
        .args(["--task", "image-classification", "--json", "--limit"])
        .arg(limit.to_string())
        .arg("--preprocessing")
        .arg(serde_json::to_string(pre)?);
    let out = output(cmd, "modelyard eval")?;
    let line = out
        .lines()
        .last()
        .context("modelyard eval printed nothing")?;
    serde_json::from_str(line).context("modelyard eval's report")
}

/// onnxruntime's measurement of `model` on the tensors in `inputs`.
fn onnxruntime(
    core: usize,
    python: &Path,
    model: &Path,
    inputs: &Path,
    shape: &str,
    labels: Option<&Path>,
) -> anyhow::Result<OrtResult> {
    let mut cmd = pinned(core, python);
    cmd.arg(repo_root().join("scripts/bench-eval-ort.py"))
        .arg("--model")
        .arg(model)
        .arg("--inputs")
        .arg(inputs)
        .args(["--shape", shape]);
    if let Some(l) = labels {
        cmd.arg("--labels").arg(l);
    }
    let out = output(cmd, "scripts/bench-eval-ort.py")?;
    let line = out
        .lines()
        .last()
        .context("the onnxruntime script printed nothing")?;
    serde_json::from_str(line).context("the onnxruntime script's result")
}

fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn measure(
    mnist_samples: usize,
    resnet_images_n: usize,
    core: usize,
    runs: u32,
) -> anyhow::Result<()> {
    let root = repo_root();
    let mnist_dir = root.join("fixtures/mnist");
    let mnist_model = mnist_dir.join("mnist-8.onnx");
    let resnet_model = root.join("../shared/data/models/light_resnet50.onnx");
    for p in [&mnist_model, &resnet_model] {
        if !p.is_file() {
            bail!("{} is missing", p.display());
        }
    }
    if Command::new("taskset").arg("--version").output().is_err() {
        bail!("taskset is missing (apt-get install util-linux)");
    }
    let python = ort_python(&root)?;
    let tmp = tempfile::Builder::new()
        .prefix("modelyard-bench-eval-")
        .tempdir()?;

    let (mnist, labels) = mnist_tensors(&mnist_dir, mnist_samples)?;
    let (mnist_in, labels_in) = (
        tmp.path().join("mnist.f32"),
        tmp.path().join("mnist.labels"),
    );
    write_f32(&mnist_in, &mnist)?;
    std::fs::write(&labels_in, &labels)?;
    let resnet_dir = tmp.path().join("resnet");
    let resnet = resnet_images(&resnet_dir, resnet_images_n)?;
    let resnet_in = tmp.path().join("resnet.f32");
    write_f32(&resnet_in, &resnet)?;

    eprintln!(
        "mnist-8: {runs} runs of each engine on {} images",
        labels.len()
    );
    let mnist_row = Row::best_of(
        "mnist-8, MNIST test images",
        runs,
        || {
            modelyard(
                core,
                &mnist_model,
                &mnist_dir,
                labels.len(),
                &Preprocess::default(),
            )
        },
        || {
            onnxruntime(
                core,
                &python,
                &mnist_model,
                &mnist_in,
                "1,1,28,28",
                Some(&labels_in),
            )
        },
    )?;
    eprintln!("light_resnet50: {runs} runs of each engine on {resnet_images_n} images");
    let pre = Preprocess {
        resize: Some([SIDE, SIDE]),
        mean: Some(MEAN.to_vec()),
        std: Some(STD.to_vec()),
        ..Preprocess::default()
    };
    let resnet_row = Row::best_of(
        "light_resnet50, random 224×224",
        runs,
        || modelyard(core, &resnet_model, &resnet_dir, resnet_images_n, &pre),
        || {
            onnxruntime(
                core,
                &python,
                &resnet_model,
                &resnet_in,
                "1,3,224,224",
                None,
            )
        },
    )?;

    let rows = [mnist_row, resnet_row];
    let first = &rows[0];
    println!();
    println!(
        "evaluation inference on one core (taskset -c {core}), batch 1; inference alone, image \
         decoding and preprocessing excluded on both sides; every sample timed once, no warm-up; \
         best of {runs} alternating runs per engine"
    );
    println!(
        "modelyard {} (tract {}) via `modelyard eval`; onnxruntime {} from Python, CPU provider, \
         1 intra-op + 1 inter-op thread, sequential; {}",
        env!("CARGO_PKG_VERSION"),
        first
            .modelyard
            .record
            .versions
            .get("tract")
            .map_or("?", String::as_str),
        first.ort.onnxruntime,
        first.modelyard.record.hardware.cpu
    );
    println!();
    println!("| model                          | samples | modelyard img/s | onnxruntime img/s | ratio  | target  | modelyard p50 ms | onnxruntime p50 ms |");
    println!("|--------------------------------|--------:|----------------:|------------------:|-------:|---------|-----------------:|-------------------:|");
    for r in &rows {
        let (m, o) = (&r.modelyard, &r.ort);
        println!(
            "| {:<30} | {:>7} | {:>15} | {:>17} | {:>5.2}× | ≥ 0.50× | {:>16.3} | {:>18.3} |",
            r.name,
            m.samples,
            rate(m.throughput_per_s),
            rate(o.images_per_s),
            m.throughput_per_s / o.images_per_s,
            m.latency_ms.p50,
            o.p50_ms
        );
    }
    println!();
    let pct = |v: Option<f64>| v.map_or("?".into(), |v| format!("{:.2}%", v * 100.0));
    println!(
        "same inputs check, MNIST accuracy: modelyard {}, onnxruntime {}",
        pct(first.modelyard.metrics.get("accuracy").copied()),
        pct(first.ort.accuracy)
    );
    Ok(())
}

/// Runs `modelyard bench eval` off the async runtime (it waits on child processes).
pub async fn run(
    mnist_samples: usize,
    resnet_images: usize,
    core: usize,
    runs: u32,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        measure(
            mnist_samples.max(1),
            resnet_images.max(1),
            core,
            runs.max(1),
        )
    })
    .await?
}
