//! Prediction features from what the hub stores: a model file's structure analysis, a job's
//! workload, a worker's inventory.

use modelyard_analyze::{ModelFeatures, OpCategory};
use modelyard_core::protocol::Inventory;
use modelyard_predict::{gpus, Node, Structure};

/// The cost-relevant parts of a structure analysis. Formats without a graph (safetensors,
/// pickles) carry no MAC count; a dense network does about one multiply-accumulate per
/// parameter per sample (per token for a transformer), so that stands in for it.
pub fn structure_of(f: &ModelFeatures) -> Structure {
    let count = |cats: &[OpCategory]| -> f64 {
        cats.iter()
            .map(|c| f.op_categories.get(c).copied().unwrap_or(0))
            .sum::<u64>() as f64
    };
    let weighted = [
        OpCategory::Convolution,
        OpCategory::Dense,
        OpCategory::Recurrent,
        OpCategory::Attention,
    ];
    let all: f64 = f.op_categories.values().sum::<u64>() as f64;
    let mut weighted_layers = count(&weighted);
    if weighted_layers == 0.0 {
        if let Some(k) = &f.layer_kinds {
            weighted_layers = (k.attention + k.mlp + k.convolution) as f64;
        }
    }
    let params = f.parameters.total as f64;
    let input_elements = f
        .inputs
        .first()
        .and_then(|i| i.shape.as_ref())
        .map(|dims| {
            dims.iter()
                .skip(1)
                .map(|d| match d {
                    modelyard_analyze::Dim::Fixed(v) => *v as f64,
                    modelyard_analyze::Dim::Symbolic(_) => 1.0,
                })
                .product::<f64>()
        })
        .unwrap_or(0.0);
    Structure {
        macs_per_sample: f.macs_per_sample.map_or(params, |m| m as f64),
        parameters: params,
        parameter_bytes: f.parameters.bytes as f64,
        weighted_layers,
        other_ops: (all - count(&weighted)).max(0.0),
        activation_bytes: f.activation_memory_bytes.unwrap_or(0) as f64,
        memory_access_bytes: f.memory_access_bytes.unwrap_or(0) as f64,
        normalization_work: f.normalization_work.unwrap_or(0) as f64,
        input_elements,
        im2col_bytes: f.im2col_bytes.unwrap_or(0) as f64,
    }
}

/// The node class and rates of a worker: its first GPU when the table knows it, else its CPU
/// at the calibrated GFLOP/s.
pub fn node_of(inv: &Inventory, gpu: bool) -> Node {
    if gpu {
        if let Some(n) = inv.gpus.first().and_then(|g| gpus::gpu_node(&g.model)) {
            return n;
        }
    }
    gpus::cpu_node(inv.gflops)
}
