//! What an evaluation measured, and a record of exactly what ran.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::options::{Preprocess, Task};

/// The result of one evaluation; `modelyard eval --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub task: Task,
    pub split: String,
    pub samples: u64,
    /// Fractions for accuracy-like metrics (`accuracy`, `top5_accuracy`, `macro_f1`), counts
    /// for `correct`, units of the target for `rmse`/`mae`.
    pub metrics: BTreeMap<String, f64>,
    /// Row = true class; only for up to 100 classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<u64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// Inference time per sample (a batch's time divided by its samples).
    pub latency_ms: Latency,
    /// Samples per second of inference alone.
    pub throughput_per_s: f64,
    pub batch_size: usize,
    pub record: Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub mean: f64,
}

/// Exactly what ran: inputs pinned by hash, options, hardware, versions, time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub model: FileRecord,
    pub dataset: DatasetRecord,
    pub input: String,
    pub preprocessing: Preprocess,
    /// Set when only the first N samples were evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    pub hardware: Hardware,
    pub versions: BTreeMap<String, String>,
    pub started_at: String,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub sha256: String,
    /// `ns/name@commit` when the file came from a repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub format: crate::dataset::Format,
    pub files: Vec<FileRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    /// Inference ran on the CPU with one thread.
    pub device: String,
}

impl Hardware {
    pub fn this_machine() -> Hardware {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Hardware {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            device: "cpu (1 thread)".into(),
        }
    }
}

/// The SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| EvalError::io(format!("cannot open {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| EvalError::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
