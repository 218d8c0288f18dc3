//! The evaluation conventions of model and dataset cards.
//!
//! A dataset card declares its task (`task_categories`), its splits as file patterns in the
//! Hugging Face `configs[].data_files` form, its label names (`label_names`, or the Hub's
//! `dataset_info.features[].dtype.class_label.names`) and, for tables, `label_column`. A model
//! card declares its task (`pipeline_tag`) and `preprocessing` (see [`Preprocess`]).

use std::path::Path;

use modelyard_core::card::parse_card;
use serde_json::Value;

use crate::error::{EvalError, Result};
use crate::options::{EvalArgs, Preprocess, Task};

/// What a dataset card says about evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetCard {
    pub task: Option<Task>,
    /// `(split, patterns)` in card order.
    pub splits: Vec<(String, Vec<String>)>,
    pub label_names: Option<Vec<String>>,
    pub label_column: Option<String>,
}

/// What a model card says about evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCard {
    pub task: Option<Task>,
    pub preprocess: Preprocess,
}

fn read_card(dir: &Path) -> Result<Option<Value>> {
    let path = dir.join("README.md");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EvalError::io(format!("cannot read {}", path.display()), e)),
    };
    let card =
        parse_card(&text).map_err(|e| EvalError::input(format!("{}: {e}", path.display())))?;
    Ok(Some(card.raw))
}

fn task_of(raw: &Value, keys: &[&str]) -> Option<Task> {
    keys.iter().find_map(|k| match raw.get(*k)? {
        Value::String(s) => s.parse().ok(),
        Value::Array(a) => a.iter().find_map(|v| v.as_str()?.parse().ok()),
        _ => None,
    })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        _ => None,
    }
}

/// `configs[0].data_files` as `(split, patterns)`.
fn splits_of(raw: &Value) -> Result<Vec<(String, Vec<String>)>> {
    let Some(configs) = raw.get("configs") else {
        return Ok(Vec::new());
    };
    let first = configs
        .as_array()
        .and_then(|c| c.first())
        .ok_or_else(|| EvalError::input("dataset card: `configs` must be a non-empty list"))?;
    let files = first.get("data_files").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    match &files {
        Value::Array(entries) => {
            for e in entries {
                let split = e.get("split").and_then(Value::as_str).ok_or_else(|| {
                    EvalError::input("dataset card: each `data_files` entry needs a `split`")
                })?;
                let paths = e.get("path").and_then(strings).ok_or_else(|| {
                    EvalError::input(format!(
                        "dataset card: split {split:?} needs `path` (a pattern or a list)"
                    ))
                })?;
                out.push((split.to_string(), paths));
            }
        }
        Value::Object(map) => {
            for (split, v) in map {
                let paths = strings(v).ok_or_else(|| {
                    EvalError::input(format!("dataset card: split {split:?} has no patterns"))
                })?;
                out.push((split.clone(), paths));
            }
        }
        Value::String(p) => out.push(("train".into(), vec![p.clone()])),
        _ => {}
    }
    Ok(out)
}

fn label_names_of(raw: &Value) -> Option<Vec<String>> {
    if let Some(v) = raw.get("label_names") {
        return strings(v);
    }
    let features = raw.get("dataset_info")?.get("features")?.as_array()?;
    features.iter().find_map(|f| {
        let names = f.get("dtype")?.get("class_label")?.get("names")?;
        match names {
            // The Hub writes `names: {'0': cat, '1': dog}`.
            Value::Object(m) => {
                let mut pairs: Vec<(usize, String)> = m
                    .iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
                    .collect();
                pairs.sort();
                Some(pairs.into_iter().map(|(_, v)| v).collect())
            }
            other => strings(other),
        }
    })
}

/// Reads `README.md` in a dataset directory (none is an empty card).
pub fn dataset_card(dir: &Path) -> Result<DatasetCard> {
    let Some(raw) = read_card(dir)? else {
        return Ok(DatasetCard::default());
    };
    Ok(DatasetCard {
        task: task_of(&raw, &["task_categories", "task"]),
        splits: splits_of(&raw)?,
        label_names: label_names_of(&raw),
        label_column: raw
            .get("label_column")
            .and_then(Value::as_str)
            .map(String::from),
    })
}

/// Reads `README.md` in a model directory (none is an empty card).
pub fn model_card(dir: &Path) -> Result<ModelCard> {
    let Some(raw) = read_card(dir)? else {
        return Ok(ModelCard::default());
    };
    let preprocess = match raw.get("preprocessing") {
        None | Some(Value::Null) => Preprocess::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| EvalError::input(format!("model card `preprocessing`: {e}")))?,
    };
    Ok(ModelCard {
        task: task_of(&raw, &["pipeline_tag", "task"]),
        preprocess,
    })
}

/// The options the cards imply, before the job spec's own.
pub fn card_args(model: &ModelCard, dataset: &DatasetCard) -> EvalArgs {
    EvalArgs {
        task: model.task.or(dataset.task),
        preprocessing: model.preprocess.clone(),
        label_column: dataset.label_column.clone(),
        ..EvalArgs::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) {
        std::fs::write(dir.join("README.md"), text).unwrap();
    }

    #[test]
    fn reads_hub_style_dataset_cards() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "---\ntask_categories: [image-classification]\nconfigs:\n- config_name: default\n  \
             data_files:\n  - split: test\n    path: \"t10k-*\"\n  - split: train\n    path: \
             [\"train-*\", \"extra/*\"]\ndataset_info:\n  features:\n  - name: label\n    dtype:\n      \
             class_label:\n        names:\n          '0': cat\n          '1': dog\n---\n",
        );
        let c = dataset_card(d.path()).unwrap();
        assert_eq!(c.task, Some(Task::ImageClassification));
        assert_eq!(
            c.splits,
            vec![
                ("test".to_string(), vec!["t10k-*".to_string()]),
                (
                    "train".to_string(),
                    vec!["train-*".to_string(), "extra/*".to_string()]
                )
            ]
        );
        assert_eq!(c.label_names, Some(vec!["cat".into(), "dog".into()]));
    }

    #[test]
    fn model_card_preprocessing_is_checked() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "---\npipeline_tag: image-classification\npreprocessing:\n  scale: 0.00392\n  mean: [0.5]\n---\n",
        );
        let c = model_card(d.path()).unwrap();
        assert_eq!(c.task, Some(Task::ImageClassification));
        assert_eq!(c.preprocess.mean, Some(vec![0.5]));
        write(d.path(), "---\npreprocessing:\n  scael: 1\n---\n");
        let err = model_card(d.path()).unwrap_err().to_string();
        assert!(err.contains("scael"), "{err}");
    }

    #[test]
    fn no_card_is_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(dataset_card(d.path()).unwrap(), DatasetCard::default());
    }
}
