//! Model structure analysis: ONNX graphs, safetensors headers, pickle scanning, model diffs.
//!
//! Every entry point reads untrusted files: sizes are checked before anything is allocated,
//! pickles are scanned and never executed, and archives are read with a cap on what they
//! expand to. See the crate README for the counting conventions.

/// The analyser's version, stored with every analysis. Raised whenever what it reports changes
/// (a new feature, a different count), so that a hub re-analyses files an older version did.
/// 2: memory-access bytes and normalisation work per sample (and the parameter count stored
/// beside each analysis, for listings). 3: im2col bytes per sample.
pub const ANALYZER_VERSION: i64 = 3;

mod diff;
mod dtype;
mod error;
mod features;
mod layers;
mod onnx;
mod pickle;
mod safetensors;
mod torchzip;

use std::io::Read;
use std::path::Path;

pub use diff::{diff, ModelDiff, Reshaped, Verdict};
pub use error::AnalyzeError;
pub use features::{
    Dim, DtypeStats, IoInfo, LayerKinds, ModelFeatures, ModelFormat, OpCategory, ParameterStats,
    Safety, TensorEntry,
};
pub use onnx::{analyze_onnx_bytes, analyze_onnx_file, MAX_ONNX_BYTES};
pub use pickle::{scan_pickle, PickleScan};
pub use safetensors::{
    analyze_safetensors, analyze_safetensors_index, analyze_safetensors_reader,
    MAX_SAFETENSORS_HEADER,
};
pub use torchzip::{analyze_pickle_file, MAX_UNCOMPRESSED_BYTES};

/// Limits and budgets for one analysis. The defaults suit the hub's background analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzeOptions {
    /// Safetensors tensor bytes hashed per file (for diffs); tensors past it get no hash.
    pub hash_budget_bytes: u64,
    /// Total uncompressed bytes read from a zip-wrapped checkpoint before giving up.
    pub max_uncompressed_bytes: u64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            hash_budget_bytes: 64 << 20,
            max_uncompressed_bytes: MAX_UNCOMPRESSED_BYTES,
        }
    }
}

/// Analyses one model file with default options, choosing the parser by extension and
/// magic bytes.
pub fn analyze_path(path: &Path) -> Result<ModelFeatures, AnalyzeError> {
    analyze_path_with(path, &AnalyzeOptions::default())
}

/// [`analyze_path`] with explicit limits.
pub fn analyze_path_with(
    path: &Path,
    opts: &AnalyzeOptions,
) -> Result<ModelFeatures, AnalyzeError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.ends_with(".safetensors.index.json") {
        return analyze_safetensors_index(path);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "onnx" => analyze_onnx_file(path),
        "safetensors" => safetensors::analyze_safetensors_with(path, opts.hash_budget_bytes),
        "bin" | "pt" | "pth" | "ckpt" | "pkl" | "pickle" => {
            torchzip::analyze_pickle_file_with(path, opts.max_uncompressed_bytes)
        }
        _ => sniff(path, opts),
    }
}

/// Chooses a parser from the first bytes when the extension says nothing.
fn sniff(path: &Path, opts: &AnalyzeOptions) -> Result<ModelFeatures, AnalyzeError> {
    let mut head = [0u8; 9];
    let file = std::fs::File::open(path).map_err(|source| AnalyzeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let n = file.take(9).read(&mut head)?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.first() == Some(&0x80) {
        return torchzip::analyze_pickle_file_with(path, opts.max_uncompressed_bytes);
    }
    if head.len() == 9 && head[8] == b'{' {
        return safetensors::analyze_safetensors_with(path, opts.hash_budget_bytes);
    }
    Err(AnalyzeError::Unsupported(format!(
        "{}: expected .onnx, .safetensors, .bin, .pt, .pth or .ckpt",
        path.display()
    )))
}
