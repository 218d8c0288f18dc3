//! `modelyard bench predict`: mean absolute percentage error of the runtime predictor on jobs it
//! has not seen, against two baselines (FLOPs-only analytic, mean of history), on live
//! evaluation jobs run by this machine's worker and on published GPU step times.

mod live;
mod published;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use modelyard_predict::{terms, Observation, Prediction, Predictor};
use serde::Serialize;

/// One measured run and the groups it is held out by.
#[derive(Debug, Clone)]
pub struct Labeled {
    /// The architecture.
    pub model: String,
    /// The node class.
    pub node: String,
    pub obs: Observation,
}

/// The predictors compared.
const PREDICTORS: [&str; 4] = ["modelyard", "prior", "flops-only", "history-mean"];

/// One line of the result: a predictor's error on one data set and split.
#[derive(Debug, Serialize)]
struct Score {
    data: &'static str,
    split: &'static str,
    predictor: &'static str,
    /// Mean absolute percentage error, as a fraction.
    mape: f64,
    /// Median absolute percentage error.
    median_ape: f64,
    /// Held-out predictions scored.
    n: usize,
    /// Fraction of measured times inside the p10–p90 band (predictors with a band).
    #[serde(skip_serializing_if = "Option::is_none")]
    band_coverage: Option<f64>,
}

/// The FLOPs-only analytic baseline: seconds = a × (passes × samples × 2·MACs ÷ GFLOP/s), with
/// the efficiency `a` fitted on the training runs (of the same class where it has any).
fn flops_only(train: &[&Labeled], test: &Labeled) -> f64 {
    let class = test.obs.features.class();
    let work = test.obs.features.workload.work;
    let pick: Vec<&&Labeled> = {
        let same: Vec<_> = train
            .iter()
            .filter(|l| l.obs.features.class() == class)
            .collect();
        if same.is_empty() {
            train
                .iter()
                .filter(|l| l.obs.features.workload.work == work)
                .collect()
        } else {
            same
        }
    };
    let (mut num, mut den) = (0.0, 0.0);
    for l in pick {
        let x = terms::terms(&l.obs.features)[2];
        let y = l.obs.seconds;
        num += x / y;
        den += x * x / (y * y);
    }
    let a = if den > 0.0 { num / den } else { 1.0 };
    a * terms::terms(&test.obs.features)[2]
}

/// The mean-of-history baseline: the mean time of the training runs of the same class (else of
/// the same kind of work).
fn history_mean(train: &[&Labeled], test: &Labeled) -> f64 {
    let class = test.obs.features.class();
    let work = test.obs.features.workload.work;
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    mean(
        train
            .iter()
            .filter(|l| l.obs.features.class() == class)
            .map(|l| l.obs.seconds)
            .collect(),
    )
    .or_else(|| {
        mean(
            train
                .iter()
                .filter(|l| l.obs.features.workload.work == work)
                .map(|l| l.obs.seconds)
                .collect(),
        )
    })
    .unwrap_or(1.0)
}

/// Holds out each group in turn (by `key`), fits on the rest, and scores every predictor on
/// the held-out runs.
fn leave_one_out(
    data: &'static str,
    split: &'static str,
    runs: &[Labeled],
    key: impl Fn(&Labeled) -> &str,
) -> Vec<Score> {
    let groups: BTreeSet<&str> = runs.iter().map(&key).collect();
    let folds = groups
        .into_iter()
        .map(|g| {
            let (test, train): (Vec<&Labeled>, Vec<&Labeled>) =
                runs.iter().partition(|l| key(l) == g);
            (train, test)
        })
        .collect();
    score(data, split, folds)
}

/// modelyard's error per held-out group: (group, runs, MAPE, geometric mean of predicted ÷
/// measured), to show where a leave-one-out score comes from.
fn per_group(runs: &[Labeled], key: impl Fn(&Labeled) -> &str) -> Vec<(String, usize, f64, f64)> {
    let groups: BTreeSet<&str> = runs.iter().map(&key).collect();
    groups
        .into_iter()
        .map(|g| {
            let (test, train): (Vec<&Labeled>, Vec<&Labeled>) =
                runs.iter().partition(|l| key(l) == g);
            let predictor = Predictor::from_observations(
                train.iter().map(|l| l.obs.clone()).collect::<Vec<_>>(),
            );
            let ratios: Vec<f64> = test
                .iter()
                .map(|t| predictor.predict(&t.obs.features).seconds / t.obs.seconds)
                .collect();
            let n = ratios.len().max(1) as f64;
            let mape = ratios.iter().map(|r| (r - 1.0).abs()).sum::<f64>() / n;
            let gmean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / n).exp();
            (g.to_owned(), ratios.len(), mape, gmean)
        })
        .collect()
}

/// Fits on each fold's training runs and scores every predictor on its test runs.
fn score(
    data: &'static str,
    split: &'static str,
    folds: Vec<(Vec<&Labeled>, Vec<&Labeled>)>,
) -> Vec<Score> {
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); PREDICTORS.len()];
    let mut inside = [0usize; 2];
    for (train, tests) in folds {
        let predictor =
            Predictor::from_observations(train.iter().map(|l| l.obs.clone()).collect::<Vec<_>>());
        for test in tests {
            let y = test.obs.seconds;
            let learned = predictor.predict(&test.obs.features);
            let prior = Predictor::prior(&test.obs.features);
            let within = |p: &Prediction| p.p10 <= y && y <= p.p90;
            inside[0] += usize::from(within(&learned));
            inside[1] += usize::from(within(&prior));
            let predicted = [
                learned.seconds,
                prior.seconds,
                flops_only(&train, test),
                history_mean(&train, test),
            ];
            for (e, p) in errors.iter_mut().zip(predicted) {
                e.push((p - y).abs() / y);
            }
        }
    }
    PREDICTORS
        .iter()
        .zip(errors)
        .enumerate()
        .map(|(i, (name, mut e))| {
            let n = e.len();
            e.sort_by(f64::total_cmp);
            Score {
                data,
                split,
                predictor: name,
                mape: e.iter().sum::<f64>() / n.max(1) as f64,
                median_ape: e.get(n / 2).copied().unwrap_or(f64::NAN),
                n,
                band_coverage: (i < 2).then(|| inside[i] as f64 / n.max(1) as f64),
            }
        })
        .collect()
}

/// The repository root, for the shared data beside it.
fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Options of `modelyard bench predict`.
pub struct Options {
    pub live: bool,
    pub published: bool,
    pub json: bool,
    /// Image counts the live evaluations run on.
    pub sizes: Vec<usize>,
    /// Write the live runs here (JSON lines) for later scoring with `runs`.
    pub save_runs: Option<PathBuf>,
    /// Score live runs saved earlier instead of running jobs.
    pub runs: Option<PathBuf>,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let shared = repo_root().join("../shared/data");
    let models = shared.join("models");
    let mut scores = Vec::new();
    let mut notes = Vec::new();
    let mut by_architecture = Vec::new();
    if opts.published {
        let runs = published::load(&shared.join("runtime"), &models)?;
        notes.push(format!(
            "published: {} median step times (batch 12) of {} torchvision models on {} GPUs, \
             training and inference; structure from the analyser for {}, else torchvision's \
             published counts",
            runs.len(),
            runs.iter().map(|l| &l.model).collect::<BTreeSet<_>>().len(),
            runs.iter().map(|l| &l.node).collect::<BTreeSet<_>>().len(),
            published::analysed_models().join(", ")
        ));
        scores.extend(leave_one_out(
            "published",
            "leave-one-model-out",
            &runs,
            |l| &l.model,
        ));
        scores.extend(leave_one_out(
            "published",
            "leave-one-gpu-out",
            &runs,
            |l| &l.node,
        ));
        // A GPU none of the published runs saw, measured here with the same protocol
        // (scripts/gpu-step-times.py on an H100): fit on all four published GPUs, predict it.
        let measured_dir = repo_root().join("data/runtime-measured");
        if measured_dir.is_dir() {
            let measured = published::load(&measured_dir, &models)?;
            notes.push(format!(
                "new GPU: {} median step times measured here on {} (data/runtime-measured/), \
                 predicted from the four published GPUs' runs",
                measured.len(),
                measured
                    .iter()
                    .map(|l| l.node.as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let train: Vec<&Labeled> = runs.iter().collect();
            let test: Vec<&Labeled> = measured.iter().collect();
            scores.extend(score(
                "published",
                "new GPU (H100, measured)",
                vec![(train, test)],
            ));
            // The same GPU once it has run a third of the models (every third, both kinds of
            // work: enough for a fit of its own), predicting the other two thirds.
            let mut names: Vec<&str> = measured.iter().map(|l| l.model.as_str()).collect();
            names.sort();
            names.dedup();
            let seen: BTreeSet<&str> = names.iter().copied().step_by(3).collect();
            let (known, unseen): (Vec<&Labeled>, Vec<&Labeled>) = measured
                .iter()
                .partition(|l| seen.contains(l.model.as_str()));
            let train: Vec<&Labeled> = runs.iter().chain(known).collect();
            scores.extend(score(
                "published",
                "H100 after 1/3 of models",
                vec![(train, unseen)],
            ));
        }
    }
    if opts.live {
        let (runs, online, note) = match &opts.runs {
            Some(path) => {
                let text = std::fs::read_to_string(path)?;
                let runs = text
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l)?;
                        Ok(Labeled {
                            model: v["model"].as_str().unwrap_or_default().to_owned(),
                            node: v["node"].as_str().unwrap_or_default().to_owned(),
                            obs: serde_json::from_value(v["obs"].clone())?,
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let note = format!("live: {} runs read from {}", runs.len(), path.display());
                (runs, Vec::new(), note)
            }
            None => live::measure(&models, &shared.join("mnist"), &opts.sizes).await?,
        };
        if let Some(path) = &opts.save_runs {
            let lines: Vec<String> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({"model": r.model, "node": r.node, "obs": r.obs}).to_string()
                })
                .collect();
            std::fs::write(path, lines.join("\n") + "\n")?;
        }
        notes.push(note);
        let mut sorted = online.clone();
        sorted.sort_by(f64::total_cmp);
        if !online.is_empty() {
            scores.push(Score {
                data: "live",
                split: "online, as submitted",
                predictor: "modelyard",
                mape: online.iter().sum::<f64>() / online.len().max(1) as f64,
                median_ape: sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
                n: online.len(),
                band_coverage: None,
            });
        }
        scores.extend(leave_one_out(
            "live",
            "leave-one-architecture-out",
            &runs,
            |l| &l.model,
        ));
        by_architecture = per_group(&runs, |l| &l.model);
    }
    if opts.json {
        for s in &scores {
            println!("{}", serde_json::to_string(s)?);
        }
        return Ok(());
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    println!();
    println!("| data      | split                      | predictor    |   n | MAPE    | median APE | p10–p90 coverage |");
    println!("|-----------|----------------------------|--------------|----:|--------:|-----------:|-----------------:|");
    for s in &scores {
        println!(
            "| {:<9} | {:<26} | {:<12} | {:>3} | {:>6.1}% | {:>9.1}% | {:>16} |",
            s.data,
            s.split,
            s.predictor,
            s.n,
            s.mape * 100.0,
            s.median_ape * 100.0,
            s.band_coverage
                .map_or(String::new(), |c| format!("{:.0}%", c * 100.0))
        );
    }
    println!();
    println!(
        "modelyard = analytic prior corrected by non-negative ridge regression on the other \
         groups' runs; prior = the analytic prior alone; flops-only = FLOPs ÷ throughput with \
         one efficiency fitted on the other groups; history-mean = mean time of the other \
         groups' runs of the same node class; online = the prediction stored with each job when it \
         was submitted (learning from the jobs before it, same architecture included)"
    );
    if !by_architecture.is_empty() {
        println!();
        println!("live, leave-one-architecture-out, modelyard by held-out architecture:");
        println!();
        println!("| architecture       | runs | MAPE    | predicted ÷ measured (geometric mean) |");
        println!("|--------------------|-----:|--------:|--------------------------------------:|");
        for (arch, n, mape, ratio) in &by_architecture {
            println!(
                "| {arch:<18} | {n:>4} | {:>6.1}% | {ratio:>37.2} |",
                mape * 100.0
            );
        }
    }
    Ok(())
}
