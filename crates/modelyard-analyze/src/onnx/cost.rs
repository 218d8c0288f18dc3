//! Op categories and the compute cost (MACs, FLOPs) of one node at known shapes.

use tract_onnx::pb::NodeProto;

use super::proto::{attr_int, attr_ints, attr_string};
use super::shapes::{prod, Value};
use crate::OpCategory;

/// The family an op type belongs to.
pub fn category(op: &str) -> OpCategory {
    match op {
        "Conv" | "ConvTranspose" | "ConvInteger" | "QLinearConv" | "DeformConv" => {
            OpCategory::Convolution
        }
        "Gemm" | "MatMul" | "MatMulInteger" | "QLinearMatMul" | "Einsum" | "FusedMatMul" => {
            OpCategory::Dense
        }
        "BatchNormalization"
        | "InstanceNormalization"
        | "LayerNormalization"
        | "LRN"
        | "GroupNormalization"
        | "LpNormalization"
        | "MeanVarianceNormalization"
        | "SimplifiedLayerNormalization"
        | "SkipLayerNormalization"
        | "RMSNormalization" => OpCategory::Normalization,
        "Relu" | "LeakyRelu" | "PRelu" | "Sigmoid" | "Tanh" | "Elu" | "Selu" | "Celu" | "Gelu"
        | "HardSigmoid" | "HardSwish" | "Softplus" | "Softsign" | "Mish" | "ThresholdedRelu"
        | "Softmax" | "LogSoftmax" | "Hardmax" | "Clip" | "Erf" | "FastGelu" | "BiasGelu"
        | "QuickGelu" => OpCategory::Activation,
        "MaxPool" | "AveragePool" | "LpPool" | "GlobalAveragePool" | "GlobalMaxPool"
        | "GlobalLpPool" | "MaxRoiPool" | "RoiAlign" | "MaxUnpool" => OpCategory::Pooling,
        "Attention" | "MultiHeadAttention" | "GroupQueryAttention" | "RotaryEmbedding" => {
            OpCategory::Attention
        }
        "LSTM" | "GRU" | "RNN" | "Scan" | "Loop" => OpCategory::Recurrent,
        "EmbedLayerNormalization" => OpCategory::Embedding,
        _ => OpCategory::Other,
    }
}

/// Ops that cost nothing: they move, reshape or describe data.
fn is_free(op: &str) -> bool {
    matches!(
        op,
        "Reshape"
            | "Flatten"
            | "Transpose"
            | "Concat"
            | "Split"
            | "Squeeze"
            | "Unsqueeze"
            | "Gather"
            | "Slice"
            | "Shape"
            | "Size"
            | "Constant"
            | "ConstantOfShape"
            | "Identity"
            | "Dropout"
            | "Cast"
            | "Expand"
            | "Tile"
            | "Pad"
            | "DepthToSpace"
            | "SpaceToDepth"
            | "Range"
            | "GatherElements"
            | "GatherND"
            | "ScatterND"
            | "OneHot"
    )
}

/// Ops that only relabel their input's shape and move no data (in any runtime worth its name).
pub fn is_view(op: &str) -> bool {
    matches!(
        op,
        "Reshape"
            | "Flatten"
            | "Squeeze"
            | "Unsqueeze"
            | "Shape"
            | "Size"
            | "Constant"
            | "ConstantOfShape"
            | "Identity"
            | "Dropout"
    )
}

/// The window a normalisation node reads per output element when it runs as a pass of its own
/// (LRN: `size` channels), 0 for a node that is no normalisation or that a runtime folds into
/// the op before it (`before`): a batch norm after a convolution or dense layer.
pub fn unfused_norm_window(n: &NodeProto, before: Option<&str>) -> u64 {
    let op = n.op_type.as_str();
    if category(op) != OpCategory::Normalization {
        return 0;
    }
    match op {
        "LRN" => attr_int(n, "size")
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(5)
            .max(1),
        "BatchNormalization"
            if matches!(
                before,
                Some("Conv" | "ConvTranspose" | "Gemm" | "MatMul" | "FusedMatMul")
            ) =>
        {
            0
        }
        _ => 1,
    }
}

/// Elements an im2col convolution gathers for one node: every input element each output
/// position reads, `Cin · kernel volume · output positions` per image. Zero for ops other than
/// convolutions, for depthwise convolutions (runtimes run those as their own kernel) and for
/// unit kernels at unit stride without padding, whose im2col is the input itself.
pub fn im2col_elements(n: &NodeProto, ins: &[Option<&Value>], outs: &[Value]) -> u64 {
    let op = n.op_type.as_str();
    let w_slot = match op {
        "Conv" | "ConvInteger" => 1,
        "QLinearConv" => 3,
        _ => return 0,
    };
    let (Some(w), Some(out)) = (ins.get(w_slot).copied().flatten(), outs.first()) else {
        return 0;
    };
    if w.shape.len() < 3 || out.shape.len() != w.shape.len() {
        return 0;
    }
    let group = attr_int(n, "group")
        .and_then(|g| u64::try_from(g).ok())
        .unwrap_or(1)
        .max(1);
    let per_group_in = w.shape[1];
    let kernel = prod(&w.shape[2..]);
    if group > 1 && per_group_in == 1 && group == out.shape[1] {
        return 0;
    }
    let ones =
        |name: &str, want: i64| attr_ints(n, name).is_none_or(|v| v.iter().all(|&x| x == want));
    if kernel == 1 && ones("strides", 1) && ones("pads", 0) {
        return 0;
    }
    prod(&[group, per_group_in, kernel])
        .saturating_mul(out.shape[0])
        .saturating_mul(prod(&out.shape[2..]))
}

/// (MACs, FLOPs) of one node; `ins`/`outs` hold the known values of its inputs and outputs.
pub fn node_cost(n: &NodeProto, ins: &[Option<&Value>], outs: &[Value]) -> (u64, u64) {
    let op = n.op_type.as_str();
    let out_elems = outs.first().map_or(0, Value::elements);
    let shape = |i: usize| ins.get(i).copied().flatten().map(|v| v.shape.as_slice());
    let macs = match op {
        "Conv" | "ConvInteger" | "QLinearConv" => {
            let w_slot = if op == "QLinearConv" { 3 } else { 1 };
            shape(w_slot).map_or(0, |w| out_elems.saturating_mul(prod(w.iter().skip(1))))
        }
        "ConvTranspose" => match (shape(0), shape(1)) {
            // Each input element meets (Cout / groups) × kernel weights.
            (Some(x), Some(w)) => prod(x.iter()).saturating_mul(prod(w.iter().skip(1))),
            _ => 0,
        },
        "Gemm" => shape(0).map_or(0, |a| {
            let k = if attr_int(n, "transA") == Some(1) {
                a[0]
            } else {
                a[a.len() - 1]
            };
            out_elems.saturating_mul(k)
        }),
        "MatMul" | "MatMulInteger" | "QLinearMatMul" | "FusedMatMul" => shape(0)
            .and_then(|a| a.last().copied())
            .map_or(0, |k| out_elems.saturating_mul(k)),
        "LSTM" | "GRU" | "RNN" => match (shape(0), attr_int(n, "hidden_size")) {
            (Some(x), Some(h)) if x.len() == 3 => {
                let h = u64::try_from(h).unwrap_or(0);
                let gates = match op {
                    "LSTM" => 4,
                    "GRU" => 3,
                    _ => 1,
                };
                let dirs = if attr_string(n, "direction").as_deref() == Some("bidirectional") {
                    2
                } else {
                    1
                };
                prod(&[x[0], x[1], dirs, gates, h, x[2].saturating_add(h)])
            }
            _ => 0,
        },
        _ => 0,
    };
    let other = match op {
        "MaxPool" | "AveragePool" | "LpPool" => {
            let k: u64 = attr_ints(n, "kernel_shape").map_or(1, |k| {
                k.iter().map(|&d| u64::try_from(d).unwrap_or(1)).product()
            });
            out_elems.saturating_mul(k)
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            shape(0).map_or(0, |s| prod(s.iter()))
        }
        op if op.starts_with("Reduce") => shape(0).map_or(0, |s| prod(s.iter())),
        op if is_free(op) => 0,
        _ => out_elems,
    };
    let flops = if macs > 0 {
        macs.saturating_mul(2)
    } else {
        other
    };
    (macs, flops)
}
