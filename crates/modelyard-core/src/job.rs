//! Jobs: what a user asks to run, pinned to commit ids, and the states a job moves through.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// What kind of work a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A user command, run only on workers started with `--allow-commands`.
    Command,
    /// A built-in evaluation of a model on a dataset (`modelyard eval`).
    Evaluate,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Command => "command",
            JobKind::Evaluate => "evaluate",
        }
    }
}

impl FromStr for JobKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "command" => Ok(JobKind::Command),
            "evaluate" => Ok(JobKind::Evaluate),
            o => Err(ValidationError::new(format!(
                "unknown job kind {o:?}: use \"command\" or \"evaluate\""
            ))),
        }
    }
}

/// Where a job is in its life. `Lost` jobs go back to `Queued` with a higher attempt number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Assigned,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Assigned => "assigned",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// A finished job never changes again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl FromStr for JobState {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => JobState::Queued,
            "assigned" => JobState::Assigned,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            o => return Err(ValidationError::new(format!("unknown job state {o:?}"))),
        })
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources a job needs, or a node offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// GPUs.
    pub gpus: u32,
}

impl Resources {
    /// Whether `need` fits in `self`.
    pub fn fits(&self, need: &Resources) -> bool {
        need.cpus <= self.cpus && need.memory_mb <= self.memory_mb && need.gpus <= self.gpus
    }

    pub fn minus(&self, used: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.saturating_sub(used.cpus),
            memory_mb: self.memory_mb.saturating_sub(used.memory_mb),
            gpus: self.gpus.saturating_sub(used.gpus),
        }
    }
}

/// The file an `evaluate` job's child leaves its report in, under the job's output directory.
pub const EVAL_REPORT_FILE: &str = "eval.json";
/// The file an `evaluate` job's child leaves its reason in when it fails.
pub const EVAL_ERROR_FILE: &str = "eval-error.txt";

/// One input file of a job, pinned by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    /// `model` or `dataset`: the folder under the job's input directory.
    pub role: String,
    /// `ns/name@commit` the file was taken from.
    pub source: String,
    /// Path inside the repository.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// Everything needed to run a job, fixed at submission (revisions resolved to commits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub kind: JobKind,
    /// For `command` jobs: run with `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Extra arguments for `evaluate` jobs (task, split, preprocessing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<serde_json::Value>,
    #[serde(default)]
    pub inputs: Vec<JobInput>,
    pub resources: Resources,
    /// Wall-clock limit in seconds.
    pub timeout_s: u64,
    /// For `command` jobs: where the files of `outputs/` are committed when the job succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<JobOutput>,
}

/// A model repo branch that receives a successful job's output files as one new commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutput {
    /// `ns/name` of a model repo the submitter may write.
    pub repo: String,
    #[serde(default = "default_branch")]
    pub branch: String,
}

fn default_branch() -> String {
    "main".to_owned()
}
