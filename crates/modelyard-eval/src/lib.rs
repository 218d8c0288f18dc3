//! The built-in evaluator: reads a dataset split (IDX, image folders, CSV, Parquet), runs an
//! ONNX model on it with tract, and measures task metrics, latency and throughput, with a record
//! of exactly what ran. `modelyard eval` runs it offline and as the worker's child process for
//! `evaluate` jobs.

pub mod card;
pub mod dataset;
mod error;
pub mod linear;
pub mod metrics;
mod model;
pub mod options;
mod pool;
mod preprocess;
pub mod report;
mod run;
pub mod summary;

pub use error::{EvalError, Result};
pub use model::InputSpec;
pub use options::{EvalArgs, Preprocess, Task};
pub use report::EvalReport;
pub use run::{evaluate, EvalRequest, Progress, DEFAULT_IMAGE_BATCH, DEFAULT_ROW_BATCH};
