//! What to evaluate and how: the task, the split, preprocessing, batching. Options come from
//! the model card, the dataset card and the job spec; the job spec wins.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// The evaluation tasks modelyard measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    ImageClassification,
    TabularClassification,
    TabularRegression,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::ImageClassification => "image-classification",
            Task::TabularClassification => "tabular-classification",
            Task::TabularRegression => "tabular-regression",
        }
    }

    pub fn is_classification(self) -> bool {
        !matches!(self, Task::TabularRegression)
    }

    /// The metric a leaderboard ranks by when none is named, and whether higher is better.
    pub fn primary_metric(self) -> (&'static str, bool) {
        match self {
            Task::TabularRegression => ("rmse", false),
            _ => ("accuracy", true),
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Task {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "image-classification" => Task::ImageClassification,
            "tabular-classification" => Task::TabularClassification,
            "tabular-regression" => Task::TabularRegression,
            o => {
                return Err(EvalError::input(format!(
                    "unknown task {o:?}: use image-classification, tabular-classification or \
                     tabular-regression"
                )))
            }
        })
    }
}

/// Order of colour channels fed to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// Memory layout of an image batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

/// Image preprocessing, as declared under `preprocessing:` in a model card or `eval.preprocessing`
/// in a job spec. Each pixel value `v` in 0..=255 becomes `(v * scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preprocess {
    /// The model input to feed (default: the first).
    pub input_name: Option<String>,
    /// Multiplies raw pixel values (default 1/255).
    pub scale: Option<f32>,
    /// Per channel, subtracted after scaling (default 0).
    pub mean: Option<Vec<f32>>,
    /// Per channel, divides after the mean (default 1).
    pub std: Option<Vec<f32>>,
    /// `[height, width]` to resize every image to; without it, images must already match the
    /// model's input.
    pub resize: Option<[u32; 2]>,
    pub channel_order: Option<ChannelOrder>,
    /// Default: `nchw` unless the model's last input dimension is 1 or 3 and its second is not.
    pub layout: Option<Layout>,
}

impl Preprocess {
    /// `over`'s fields where set, else `self`'s.
    pub fn overlaid(&self, over: &Preprocess) -> Preprocess {
        Preprocess {
            input_name: over.input_name.clone().or(self.input_name.clone()),
            scale: over.scale.or(self.scale),
            mean: over.mean.clone().or(self.mean.clone()),
            std: over.std.clone().or(self.std.clone()),
            resize: over.resize.or(self.resize),
            channel_order: over.channel_order.or(self.channel_order),
            layout: over.layout.or(self.layout),
        }
    }
}

/// The `eval` object of an `evaluate` job spec; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalArgs {
    pub task: Option<Task>,
    pub split: Option<String>,
    pub preprocessing: Preprocess,
    /// Tabular: the column holding the label or target (default `label`).
    pub label_column: Option<String>,
    /// Parquet images: the column holding the image (default `image`).
    pub image_column: Option<String>,
    pub batch_size: Option<usize>,
    /// Evaluate only the first N samples (for quick checks; the record says so).
    pub limit: Option<usize>,
    /// The model file when a repository holds several `.onnx` files.
    pub model_file: Option<String>,
}

impl EvalArgs {
    /// `over`'s fields where set, else `self`'s.
    pub fn overlaid(&self, over: &EvalArgs) -> EvalArgs {
        EvalArgs {
            task: over.task.or(self.task),
            split: over.split.clone().or(self.split.clone()),
            preprocessing: self.preprocessing.overlaid(&over.preprocessing),
            label_column: over.label_column.clone().or(self.label_column.clone()),
            image_column: over.image_column.clone().or(self.image_column.clone()),
            batch_size: over.batch_size.or(self.batch_size),
            limit: over.limit.or(self.limit),
            model_file: over.model_file.clone().or(self.model_file.clone()),
        }
    }
}
