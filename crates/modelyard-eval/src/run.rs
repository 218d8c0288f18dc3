//! One evaluation from start to end: find the model and the split, read the cards, stream the
//! samples through the model in batches, and measure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::card::{card_args, dataset_card, model_card};
use crate::dataset::{self, split, Features, ReadOptions, Sample, Target};
use crate::error::{EvalError, Result};
use crate::metrics::{quantile, Classification, Regression};
use crate::model::Model;
use crate::options::{EvalArgs, Task};
use crate::preprocess::{ImagePlan, Plan, RowPlan};
use crate::report::{
    sha256_file, DatasetRecord, EvalReport, FileRecord, Hardware, Latency, Record,
};

/// Images per inference when neither the graph nor the caller fixes it: one. tract runs a
/// convolution at batch 1 with a lazily gathered im2col and materialises it for larger
/// batches, which costs more than batching saves: DenseNet-121 evaluates 4.3 images/s at
/// batch 1 and 1.9 at batch 16 on one core here, SqueezeNet 66 and 30.
pub const DEFAULT_IMAGE_BATCH: usize = 1;
/// Table rows per inference when neither the graph nor the caller fixes it.
pub const DEFAULT_ROW_BATCH: usize = 256;

/// Version of the inference engine, for the record.
const TRACT_VERSION: &str = "0.23";

/// What to evaluate.
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    /// An `.onnx` file, or a directory holding one (and perhaps a model card).
    pub model: PathBuf,
    /// A dataset directory (perhaps with a card), or one data file.
    pub dataset: PathBuf,
    /// Options that override the cards' (from the command line or the job spec).
    pub args: EvalArgs,
    /// `ns/name@commit` of the model, for the record.
    pub model_source: Option<String>,
    pub dataset_source: Option<String>,
}

/// Progress: samples done, samples in all when known.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<usize>);

fn model_file(path: &Path, wanted: Option<&str>) -> Result<(PathBuf, PathBuf)> {
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        return Ok((path.to_path_buf(), dir));
    }
    if !path.is_dir() {
        return Err(EvalError::input(format!(
            "model {} does not exist",
            path.display()
        )));
    }
    if let Some(w) = wanted {
        let f = path.join(w);
        if !f.is_file() {
            return Err(EvalError::input(format!(
                "model file {w:?} is not in the model"
            )));
        }
        return Ok((f, path.to_path_buf()));
    }
    let onnx: Vec<PathBuf> = split::data_files(path)?
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        })
        .collect();
    match onnx.as_slice() {
        [one] => Ok((path.join(one), path.to_path_buf())),
        [] => Err(EvalError::input(
            "the model has no .onnx file; modelyard eval runs ONNX models",
        )),
        many => Err(EvalError::input(format!(
            "the model has {} .onnx files ({}); name one with model_file",
            many.len(),
            many.iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Where the dataset's card and files are: `(root, files of the split)`.
fn dataset_files(
    path: &Path,
    card_splits: &[(String, Vec<String>)],
    split: &str,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    if path.is_file() {
        let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = PathBuf::from(path.file_name().unwrap_or_default());
        return Ok((root, vec![name]));
    }
    if !path.is_dir() {
        return Err(EvalError::input(format!(
            "dataset {} does not exist",
            path.display()
        )));
    }
    let files = split::data_files(path)?;
    Ok((
        path.to_path_buf(),
        split::split_files(&files, card_splits, split)?,
    ))
}

/// Accumulates whichever metrics the task has.
enum Scorer {
    Classes(Classification),
    Values(Regression),
}

impl Scorer {
    fn add(&mut self, scores: &[f32], target: Target, origin: &str) -> Result<()> {
        match (self, target) {
            (Scorer::Classes(c), Target::Class(t)) => {
                if t >= c.classes() || scores.len() > c.classes() {
                    return Err(EvalError::input(format!(
                        "{origin}: label {t} but the model scores {} classes",
                        scores.len()
                    )));
                }
                c.add(scores, t);
                Ok(())
            }
            (Scorer::Values(r), Target::Value(y)) => {
                if scores.len() != 1 {
                    return Err(EvalError::input(format!(
                        "a regression model must output one number per sample; this one outputs {}",
                        scores.len()
                    )));
                }
                r.add(f64::from(scores[0]), y);
                Ok(())
            }
            _ => Err(EvalError::input(format!(
                "{origin}: the target does not fit the task"
            ))),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Scorer::Classes(c) => c.count(),
            Scorer::Values(r) => r.count(),
        }
    }
}

/// Runs one evaluation.
pub fn evaluate(req: &EvalRequest, progress: Progress) -> Result<EvalReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (model_path, model_dir) = model_file(&req.model, req.args.model_file.as_deref())?;
    let dataset_dir = if req.dataset.is_file() {
        req.dataset.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        req.dataset.clone()
    };
    let mcard = model_card(&model_dir)?;
    let dcard = dataset_card(&dataset_dir)?;
    let args = card_args(&mcard, &dcard).overlaid(&req.args);
    let task = args.task.ok_or_else(|| {
        EvalError::input(
            "no task: pass --task, or declare pipeline_tag in the model card or \
             task_categories in the dataset card",
        )
    })?;
    let split_name = args.split.clone().unwrap_or_else(|| "test".into());
    let (root, files) = dataset_files(&req.dataset, &dcard.splits, &split_name)?;
    let read = ReadOptions {
        label_names: dcard.label_names.clone(),
        label_column: args.label_column.clone(),
        image_column: args.image_column.clone(),
        classification: task.is_classification(),
        images: task == Task::ImageClassification,
    };
    let mut file_records = Vec::new();
    for f in &files {
        file_records.push(FileRecord {
            path: f.to_string_lossy().into_owned(),
            sha256: sha256_file(&root.join(f))?,
            source: None,
        });
    }
    let opened = dataset::open(&root, files, &read)?;
    let (format, total, label_names) = (opened.format, opened.len, opened.label_names.clone());
    let mut samples = opened.samples;
    if let Some(limit) = args.limit {
        samples = Box::new(samples.take(limit));
    }
    let mut samples = samples.peekable();

    let pre = &args.preprocessing;
    let mut model = Model::load(&model_path, pre.input_name.as_deref())?;
    let input = model.input().clone();
    let first: Option<&Result<Sample>> = samples.peek();
    let plan = match task {
        Task::ImageClassification => Plan::Image(ImagePlan::new(&input, pre)?),
        _ => {
            let width = match first {
                Some(Ok(Sample {
                    features: Features::Row(r),
                    ..
                })) => r.len(),
                _ => 0,
            };
            Plan::Row(RowPlan::new(&input, width)?)
        }
    };
    let batch = match (input.dims.first().copied().flatten(), args.batch_size) {
        // Exporters often fix the batch at 1 in graphs that run at any batch size: a batch size
        // asked for is tried, and a graph that cannot take it fails with tract's reason.
        (Some(1), Some(asked)) => asked,
        (Some(fixed), _) => fixed,
        (None, _) => args.batch_size.unwrap_or(match plan {
            Plan::Image(_) => DEFAULT_IMAGE_BATCH,
            Plan::Row(_) => DEFAULT_ROW_BATCH,
        }),
    }
    .max(1);
    model.prepare(&plan.shape(batch))?;

    let mut scorer = None;
    let classes_hint = label_names.as_ref().map_or(0, Vec::len);
    let per = plan.sample_len();
    let mut buffer = vec![0f32; batch * per];
    let mut targets: Vec<(Target, String)> = Vec::with_capacity(batch);
    let mut latencies = Vec::new();
    let mut infer_s = 0.0;
    loop {
        targets.clear();
        while targets.len() < batch {
            match samples.next() {
                None => break,
                Some(s) => {
                    let s = s?;
                    let at = targets.len() * per;
                    plan.write(&s.features, &mut buffer[at..at + per], &s.origin)?;
                    targets.push((s.target, s.origin));
                }
            }
        }
        if targets.is_empty() {
            break;
        }
        // A short last batch is padded with zeros whose outputs are ignored.
        buffer[targets.len() * per..].fill(0.0);
        let data = buffer.clone();
        let t = Instant::now();
        let out = model.run(data)?;
        let dt = t.elapsed().as_secs_f64();
        infer_s += dt;
        let per_sample_ms = dt * 1e3 / targets.len() as f64;
        latencies.extend(std::iter::repeat_n(per_sample_ms, targets.len()));
        let scorer = scorer.get_or_insert_with(|| {
            if task.is_classification() {
                Scorer::Classes(Classification::new(out.cols.max(classes_hint)))
            } else {
                Scorer::Values(Regression::default())
            }
        });
        for (i, (target, origin)) in targets.iter().enumerate() {
            scorer.add(out.row(i), *target, origin)?;
        }
        progress(scorer.count(), total);
    }
    let Some(scorer) = scorer else {
        return Err(EvalError::input(format!(
            "split {split_name:?} has no samples"
        )));
    };
    let n = scorer.count();
    let (metrics, confusion) = match &scorer {
        Scorer::Classes(c) => (c.metrics(), (c.classes() <= 100).then(|| c.confusion())),
        Scorer::Values(r) => (r.metrics(), None),
    };
    latencies.sort_by(f64::total_cmp);
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    let mut versions = BTreeMap::new();
    versions.insert("modelyard".into(), env!("CARGO_PKG_VERSION").into());
    versions.insert("tract".into(), TRACT_VERSION.into());
    Ok(EvalReport {
        task,
        split: split_name,
        samples: n,
        metrics,
        confusion,
        labels: label_names,
        latency_ms: Latency {
            p50: quantile(&latencies, 0.5),
            p95: quantile(&latencies, 0.95),
            mean,
        },
        throughput_per_s: if infer_s > 0.0 {
            n as f64 / infer_s
        } else {
            0.0
        },
        batch_size: batch,
        record: Record {
            model: FileRecord {
                path: model_path
                    .strip_prefix(&model_dir)
                    .unwrap_or(&model_path)
                    .to_string_lossy()
                    .into_owned(),
                sha256: sha256_file(&model_path)?,
                source: req.model_source.clone(),
            },
            dataset: DatasetRecord {
                format,
                files: file_records,
                source: req.dataset_source.clone(),
            },
            input: input.describe(),
            preprocessing: args.preprocessing.clone(),
            limit: args.limit,
            hardware: Hardware::this_machine(),
            versions,
            started_at,
            elapsed_s: started.elapsed().as_secs_f64(),
        },
    })
}
