//! What a prediction is made from: the model's structure, the work asked of it, and the node.

use serde::{Deserialize, Serialize};

/// The parts of a model's structure analysis that cost time. All per sample where it applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Structure {
    /// Multiply-accumulates per sample.
    pub macs_per_sample: f64,
    /// Learned numbers (weights, biases, normalisation statistics).
    pub parameters: f64,
    /// Bytes those parameters take.
    pub parameter_bytes: f64,
    /// Convolution, dense, recurrent and attention layers: the ops that hold weights.
    pub weighted_layers: f64,
    /// Every other op (activations, normalisation, pooling, reshapes, arithmetic).
    pub other_ops: f64,
    /// Peak bytes of live intermediate tensors for one sample.
    #[serde(default)]
    pub activation_bytes: f64,
    /// Bytes all ops read and write for one sample (inputs, weights, outputs).
    #[serde(default)]
    pub memory_access_bytes: f64,
    /// Element visits of normalisation ops that run as passes of their own, for one sample
    /// (the analyser's `normalization_work`).
    #[serde(default)]
    pub normalization_work: f64,
    /// Numbers in one sample's input tensor.
    #[serde(default)]
    pub input_elements: f64,
    /// Bytes the convolutions of one sample gather into im2col matrices (the analyser's
    /// `im2col_bytes`).
    #[serde(default)]
    pub im2col_bytes: f64,
}

/// Inference (one forward pass per sample) or training (forward, backward, update).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    #[default]
    Inference,
    Training,
}

impl Work {
    pub fn as_str(self) -> &'static str {
        match self {
            Work::Inference => "inference",
            Work::Training => "training",
        }
    }

    /// Forward-pass equivalents per sample: training runs forward, backward (≈ 2× forward) and
    /// the weight update.
    pub fn passes(self) -> f64 {
        match self {
            Work::Inference => 1.0,
            Work::Training => 3.0,
        }
    }
}

/// What the job asks of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub work: Work,
    /// Samples per epoch.
    pub samples: f64,
    pub batch_size: f64,
    /// Passes over the samples (1 for an evaluation).
    #[serde(default = "one")]
    pub epochs: f64,
    /// Whether the job includes starting up and loading the model (a whole job does; one
    /// measured training step does not).
    #[serde(default = "yes")]
    pub setup: bool,
    /// Whether each sample is a compressed image (PNG, JPEG) decoded before it is fed, rather
    /// than numbers read as they are (IDX, CSV, tables).
    #[serde(default)]
    pub decode: bool,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

impl Workload {
    /// One evaluation pass over `samples` at `batch_size`, start-up included; `decode` when
    /// the samples are compressed images.
    pub fn evaluation(samples: f64, batch_size: f64, decode: bool) -> Workload {
        Workload {
            work: Work::Inference,
            samples,
            batch_size,
            epochs: 1.0,
            setup: true,
            decode,
        }
    }

    /// Batches per epoch (a short last batch counts as one).
    pub fn batches(&self) -> f64 {
        (self.samples.max(0.0) / self.batch_size.max(1.0)).ceil()
    }
}

/// The node a job would run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Nodes of one class share learned coefficients: `cpu`, or a GPU model's name.
    pub class: String,
    /// Compute throughput in GFLOP/s: the worker's calibration on CPU nodes, the GPU's peak.
    pub gflops: f64,
    /// Memory bandwidth in GB/s.
    pub memory_gbs: f64,
}

impl Node {
    /// A GPU node (any class but `cpu`).
    pub fn is_gpu(&self) -> bool {
        self.class != "cpu"
    }
}

/// Everything one prediction is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    pub structure: Structure,
    pub workload: Workload,
    pub node: Node,
}

impl Features {
    /// The key learned coefficients are kept under: node class × kind of work.
    pub fn class(&self) -> String {
        format!("{}/{}", self.node.class, self.workload.work.as_str())
    }
}
