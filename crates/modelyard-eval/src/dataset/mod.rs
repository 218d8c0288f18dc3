//! Dataset readers. Each streams samples one at a time (memory stays flat as datasets grow) and
//! names the file and sample behind every error.

mod folder;
mod idx;
mod labels;
mod parquet;
pub mod split;
mod table;

use std::path::{Path, PathBuf};

use image::DynamicImage;
use serde::{Deserialize, Serialize};

pub use labels::LabelMap;

use crate::error::{EvalError, Result};

/// The input half of a sample.
#[derive(Debug, Clone)]
pub enum Features {
    Image(DynamicImage),
    Row(Vec<f32>),
}

/// The expected answer of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Class(usize),
    Value(f64),
}

/// One example of a split.
#[derive(Debug, Clone)]
pub struct Sample {
    pub features: Features,
    pub target: Target,
    /// Where it came from, for error messages: `file #index` or a path.
    pub origin: String,
}

/// How a split is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// MNIST-style `*-idx3-ubyte[.gz]` images with `*-idx1-ubyte[.gz]` labels.
    Idx,
    /// `<class>/<image>.png|jpg` folders.
    ImageFolder,
    Csv,
    Parquet,
}

/// How samples of a split are read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Class names in label order, from the card.
    pub label_names: Option<Vec<String>>,
    /// Tables: the column with the label or regression target (default `label`).
    pub label_column: Option<String>,
    /// Parquet images: the column with the image (default `image`).
    pub image_column: Option<String>,
    /// Targets are classes (else numbers).
    pub classification: bool,
    /// Images (else rows of numbers).
    pub images: bool,
}

/// An opened split: its samples as a stream, and what is known about it up front.
pub struct Split {
    pub format: Format,
    /// The split's files, relative to the dataset directory.
    pub files: Vec<String>,
    /// The number of samples when the format says so before reading.
    pub len: Option<usize>,
    /// Class names in label order, when known.
    pub label_names: Option<Vec<String>>,
    /// Tables: the feature columns in order.
    pub columns: Option<Vec<String>>,
    pub samples: Box<dyn Iterator<Item = Result<Sample>> + Send>,
}

fn lower(p: &Path) -> String {
    p.to_string_lossy().to_lowercase()
}

fn is_image(p: &Path) -> bool {
    let l = lower(p);
    [".png", ".jpg", ".jpeg"].iter().any(|e| l.ends_with(e))
}

/// Decides how `files` are stored.
pub fn detect(files: &[PathBuf]) -> Result<Format> {
    let all = |f: &dyn Fn(&Path) -> bool| files.iter().all(|p| f(p));
    if files.iter().any(|p| lower(p).contains("idx3-ubyte")) {
        return Ok(Format::Idx);
    }
    if all(&|p| lower(p).ends_with(".csv")) {
        return Ok(Format::Csv);
    }
    if all(&|p| lower(p).ends_with(".parquet")) {
        return Ok(Format::Parquet);
    }
    if all(&is_image) {
        return Ok(Format::ImageFolder);
    }
    let mut kinds: Vec<String> = files
        .iter()
        .map(|p| {
            p.extension()
                .map(|e| format!(".{}", e.to_string_lossy()))
                .unwrap_or_else(|| p.to_string_lossy().into_owned())
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    Err(EvalError::input(format!(
        "cannot tell the dataset format from its files ({}): use IDX files, class folders of \
         PNG/JPEG images, CSV or Parquet, one format per split",
        kinds.join(", ")
    )))
}

/// Opens the split made of `files` (relative to `root`).
pub fn open(root: &Path, files: Vec<PathBuf>, opts: &ReadOptions) -> Result<Split> {
    let format = detect(&files)?;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let mut split = match format {
        Format::Idx => idx::open(root, &files, opts)?,
        Format::ImageFolder => folder::open(root, &files, opts)?,
        Format::Csv => table::open(root, &files, opts)?,
        Format::Parquet => parquet::open(root, &files, opts)?,
    };
    split.files = names;
    if !opts.images && matches!(format, Format::Idx | Format::ImageFolder) {
        return Err(EvalError::input(format!(
            "a tabular task needs CSV or Parquet data, but this split is {format:?}"
        )));
    }
    Ok(split)
}
