//! `ModelFeatures`: the structure of one model file, as stored and served by the hub.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which parser produced the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    Onnx,
    Safetensors,
    Pickle,
}

/// Coarse op families, so the runtime predictor can reason about graphs it has never seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpCategory {
    Convolution,
    Dense,
    Normalization,
    Activation,
    Pooling,
    Attention,
    Recurrent,
    Embedding,
    /// Reshapes, data movement, elementwise arithmetic and everything else.
    Other,
}

/// Count and storage of the parameters of one dtype.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtypeStats {
    pub count: u64,
    pub bytes: u64,
}

/// Learned numbers in the file (weights, biases, normalisation statistics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterStats {
    pub total: u64,
    pub bytes: u64,
    /// Keyed by a lowercase dtype name shared by all formats (`float32`, `bfloat16`, `int8`...).
    pub by_dtype: BTreeMap<String, DtypeStats>,
}

impl ParameterStats {
    /// Adds one tensor of `count` elements and `bytes` bytes.
    pub fn add(&mut self, dtype: &str, count: u64, bytes: u64) {
        self.total = self.total.saturating_add(count);
        self.bytes = self.bytes.saturating_add(bytes);
        let entry = self.by_dtype.entry(dtype.to_owned()).or_default();
        entry.count = entry.count.saturating_add(count);
        entry.bytes = entry.bytes.saturating_add(bytes);
    }
}

/// One dimension of a declared shape: a number, or a symbol such as `batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    Fixed(u64),
    Symbolic(String),
}

/// A graph input or output as declared in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoInfo {
    pub name: String,
    pub dtype: String,
    /// `None` when the file declares no shape at all.
    pub shape: Option<Vec<Dim>>,
}

/// A stored tensor: what diffs compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub elements: u64,
    /// Hex SHA-256 of the tensor's bytes, when reading them was cheap (see the crate README).
    pub content_hash: Option<String>,
}

/// Layer kinds guessed from safetensors tensor names (distinct modules of each kind).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerKinds {
    pub attention: u64,
    pub mlp: u64,
    pub convolution: u64,
    pub embedding: u64,
    pub norm: u64,
}

/// Whether loading a pickle could run code chosen by its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Safety {
    Safe,
    /// `imports` lists every global outside the allow-list, as `module.name`.
    Unsafe {
        imports: Vec<String>,
    },
}

/// Everything the hub knows about one model file's structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFeatures {
    pub format: ModelFormat,
    /// Op type → number of nodes. Weight-producing `Constant`/`ConstantOfShape` nodes are
    /// counted as parameters, not ops.
    pub op_histogram: BTreeMap<String, u64>,
    pub op_categories: BTreeMap<OpCategory, u64>,
    pub parameters: ParameterStats,
    /// Multiply-accumulates per sample; `None` where the format carries no graph.
    pub macs_per_sample: Option<u64>,
    /// FLOPs per sample: 2 × MACs plus 1 per output element of other compute ops.
    pub flops_per_sample: Option<u64>,
    /// What was assumed for dynamic dimensions, one sentence each.
    pub assumed_dims: Vec<String>,
    /// Peak bytes of live intermediate tensors when run in file order, at the assumed shapes.
    pub activation_memory_bytes: Option<u64>,
    /// Bytes every op reads and writes per sample (inputs, weights and outputs; pure reshapes
    /// excluded): the memory access cost that FLOPs miss (Ma et al., ShuffleNet V2, 2018).
    #[serde(default)]
    pub memory_access_bytes: Option<u64>,
    /// Element visits per sample of normalisation ops that cannot fold into the layer before
    /// them: each output element times the window it reads (LRN's `size`; 1 for a batch norm
    /// after a concatenation or pooling, a layer norm, ...). Runtimes fold a batch norm that
    /// follows a convolution into its weights, but run these as separate, often naive, passes.
    #[serde(default)]
    pub normalization_work: Option<u64>,
    /// Bytes per sample that im2col convolutions gather (each input element once per output
    /// position that reads it; depthwise and plain 1×1 convolutions gather nothing): what a
    /// runtime materialises when it lowers convolutions to matrix products on a batch.
    #[serde(default)]
    pub im2col_bytes: Option<u64>,
    /// Longest path through the graph, in ops.
    pub depth: Option<u64>,
    pub inputs: Vec<IoInfo>,
    pub outputs: Vec<IoInfo>,
    pub opset: Option<i64>,
    pub producer: Option<String>,
    pub layer_kinds: Option<LayerKinds>,
    pub tensors: Vec<TensorEntry>,
    /// Set for pickle-based checkpoints only.
    pub safety: Option<Safety>,
    /// Every global a pickle imports, allowed or not.
    pub imports: Vec<String>,
    pub warnings: Vec<String>,
}

impl ModelFeatures {
    /// Empty features for `format`, to be filled by a parser.
    pub fn empty(format: ModelFormat) -> Self {
        Self {
            format,
            op_histogram: BTreeMap::new(),
            op_categories: BTreeMap::new(),
            parameters: ParameterStats::default(),
            macs_per_sample: None,
            flops_per_sample: None,
            assumed_dims: Vec::new(),
            activation_memory_bytes: None,
            memory_access_bytes: None,
            normalization_work: None,
            im2col_bytes: None,
            depth: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            opset: None,
            producer: None,
            layer_kinds: None,
            tensors: Vec::new(),
            safety: None,
            imports: Vec::new(),
            warnings: Vec::new(),
        }
    }
}
