//! The error type every analyser returns.

use std::path::PathBuf;

/// Why a file could not be analysed. Each message says what was wrong with the file, so the
/// server can show it on the model page as is.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error: {0}")]
    Read(#[from] std::io::Error),
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("file is {size} bytes, over the {limit}-byte limit for {what}")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    #[error("invalid ONNX graph: {0}")]
    InvalidOnnx(String),
    #[error("truncated file: {0}")]
    Truncated(String),
    #[error("safetensors header too large: {claimed} bytes claimed, limit {limit}")]
    HeaderTooLarge { claimed: u64, limit: u64 },
    #[error("invalid safetensors header: {0}")]
    BadHeader(String),
    #[error("bad tensor offsets: {0}")]
    BadOffsets(String),
    #[error("invalid safetensors index: {0}")]
    BadIndex(String),
    #[error("invalid pickle: {0}")]
    BadPickle(String),
    #[error("invalid zip archive: {0}")]
    BadZip(String),
    #[error(
        "zip archive expands past the {limit}-byte limit on uncompressed data (possible zip bomb)"
    )]
    ZipBomb { limit: u64 },
}
