//! Shape propagation for elementwise, normalisation, reduction, resize and recurrent ops.

use tract_onnx::pb::NodeProto;

use super::proto::{attr_floats, attr_int};
use super::shapes::{
    arith as fold_arith, axis as norm_axis, broadcast as broadcast_shapes, ints_arg as int_list,
    Value,
};

/// Ops whose single output has the shape and dtype of their first input.
fn same_shape(op: &str) -> bool {
    matches!(
        op,
        "Relu"
            | "LeakyRelu"
            | "PRelu"
            | "Sigmoid"
            | "Tanh"
            | "Elu"
            | "Selu"
            | "Celu"
            | "Gelu"
            | "HardSigmoid"
            | "HardSwish"
            | "Softplus"
            | "Softsign"
            | "Mish"
            | "ThresholdedRelu"
            | "Softmax"
            | "LogSoftmax"
            | "Hardmax"
            | "Exp"
            | "Log"
            | "Sqrt"
            | "Reciprocal"
            | "Neg"
            | "Abs"
            | "Erf"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Sign"
            | "Sin"
            | "Cos"
            | "Identity"
            | "Clip"
            | "LRN"
            | "BatchNormalization"
            | "InstanceNormalization"
            | "LayerNormalization"
            | "GroupNormalization"
            | "LpNormalization"
            | "MeanVarianceNormalization"
            | "Dropout"
            | "CumSum"
            | "QuantizeLinear"
            | "DequantizeLinear"
            | "DynamicQuantizeLinear"
            | "Not"
            | "IsNaN"
            | "IsInf"
            | "SimplifiedLayerNormalization"
            | "SkipLayerNormalization"
            | "FastGelu"
            | "BiasGelu"
            | "QuickGelu"
    )
}

/// Ops that broadcast all their inputs together.
fn broadcasting(op: &str) -> bool {
    matches!(
        op,
        "Add"
            | "Sub"
            | "Mul"
            | "Div"
            | "Pow"
            | "Sum"
            | "Max"
            | "Min"
            | "Mean"
            | "Where"
            | "Equal"
            | "Greater"
            | "Less"
            | "GreaterOrEqual"
            | "LessOrEqual"
            | "And"
            | "Or"
            | "Xor"
            | "Mod"
            | "BitShift"
    )
}

fn as_u64(v: &[i64]) -> Vec<u64> {
    v.iter().map(|&x| u64::try_from(x).unwrap_or(0)).collect()
}

/// The remaining ops; unknown ops are an error that stops propagation downstream.
pub fn infer_more(n: &NodeProto, ins: &[Option<&Value>], op: &str) -> Result<Vec<Value>, String> {
    let need = |i: usize| -> Result<&Value, String> {
        ins.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {i} unknown"))
    };
    if same_shape(op) {
        let x = need(0)?;
        let mut outs = vec![Value {
            dtype: x.dtype,
            shape: x.shape.clone(),
            ints: None,
        }];
        // Extra outputs (Dropout mask, BatchNorm running stats) are rarely used; size them
        // like the input so liveness stays conservative.
        for _ in 1..n.output.len() {
            outs.push(Value::new(x.dtype, x.shape.clone()));
        }
        return Ok(outs);
    }
    if broadcasting(op) {
        let vals: Vec<&Value> = (0..ins.len()).map(need).collect::<Result<_, _>>()?;
        let shapes: Vec<&[u64]> = vals.iter().map(|v| v.shape.as_slice()).collect();
        let shape = broadcast_shapes(&shapes)?;
        let ints = match (vals.as_slice(), vals.first().and_then(|v| v.ints.as_ref())) {
            ([a, b], Some(x)) if a.shape.len() <= 1 && b.shape.len() <= 1 => {
                b.ints.as_ref().and_then(|y| {
                    let n = x.len().max(y.len());
                    (0..n)
                        .map(|i| fold_arith(op, x[i.min(x.len() - 1)], y[i.min(y.len() - 1)]))
                        .collect::<Option<Vec<_>>>()
                })
            }
            _ => None,
        };
        let dtype = if matches!(
            op,
            "Equal" | "Greater" | "Less" | "GreaterOrEqual" | "LessOrEqual" | "And" | "Or" | "Xor"
        ) {
            9
        } else if op == "Where" {
            vals.get(1).map_or(1, |v| v.dtype)
        } else {
            vals[0].dtype
        };
        return Ok(vec![Value { dtype, shape, ints }]);
    }
    match op {
        "Pad" => {
            let x = need(0)?;
            let pads = int_list(n, ins, 1, "pads").ok_or("Pad with unknown pads")?;
            let r = x.shape.len();
            let axes = int_list(n, ins, 3, "axes").unwrap_or_else(|| (0..r as i64).collect());
            let mut s = x.shape.clone();
            for (i, &a) in axes.iter().enumerate() {
                let a = norm_axis(a, r)?;
                let add = pads.get(i).copied().unwrap_or(0)
                    + pads.get(i + axes.len()).copied().unwrap_or(0);
                s[a] = u64::try_from(i64::try_from(s[a]).unwrap_or(0) + add).unwrap_or(0);
            }
            Ok(vec![Value::new(x.dtype, s)])
        }
        op if op.starts_with("Reduce") || op == "ArgMax" || op == "ArgMin" => {
            let x = need(0)?;
            let keep = attr_int(n, "keepdims").unwrap_or(1) == 1;
            let axes = if op.starts_with("Arg") {
                Some(vec![attr_int(n, "axis").unwrap_or(0)])
            } else {
                int_list(n, ins, 1, "axes")
            };
            let r = x.shape.len();
            let axes: Vec<usize> = match axes {
                Some(a) if !a.is_empty() => a
                    .iter()
                    .map(|&a| norm_axis(a, r))
                    .collect::<Result<_, _>>()?,
                _ => (0..r).collect(),
            };
            let s = x
                .shape
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| {
                    if !axes.contains(&i) {
                        Some(d)
                    } else if keep {
                        Some(1)
                    } else {
                        None
                    }
                })
                .collect();
            let dtype = if op.starts_with("Arg") { 7 } else { x.dtype };
            Ok(vec![Value::new(dtype, s)])
        }
        "Upsample" | "Resize" => {
            let x = need(0)?;
            let sizes = if op == "Resize" {
                int_list(n, ins, 3, "sizes")
            } else {
                None
            };
            let s = if let Some(sizes) = sizes {
                as_u64(&sizes)
            } else {
                let scales = attr_floats(n, "scales")
                    .filter(|s| !s.is_empty())
                    .ok_or("resize scales only known at run time")?;
                x.shape
                    .iter()
                    .zip(&scales)
                    .map(|(&d, &f)| (d as f64 * f64::from(f)).floor() as u64)
                    .collect()
            };
            Ok(vec![Value::new(x.dtype, s)])
        }
        "Expand" => {
            let x = need(0)?;
            let t = as_u64(&need(1)?.ints.clone().ok_or("Expand to an unknown shape")?);
            Ok(vec![Value::new(
                x.dtype,
                broadcast_shapes(&[&x.shape, &t])?,
            )])
        }
        "Tile" => {
            let x = need(0)?;
            let reps = as_u64(&need(1)?.ints.clone().ok_or("Tile with unknown repeats")?);
            Ok(vec![Value::new(
                x.dtype,
                x.shape
                    .iter()
                    .zip(reps)
                    .map(|(d, r)| d.saturating_mul(r))
                    .collect(),
            )])
        }
        "Range" => {
            let v = |i: usize| {
                need(i)
                    .ok()
                    .and_then(|v| v.ints.as_ref())
                    .and_then(|v| v.first().copied())
            };
            let (start, limit, delta) = (
                v(0).ok_or("Range start unknown")?,
                v(1).ok_or("Range limit unknown")?,
                v(2).ok_or("Range delta unknown")?,
            );
            if delta == 0 {
                return Err("Range with zero delta".into());
            }
            let len = u64::try_from(((limit - start) as f64 / delta as f64).ceil().max(0.0) as i64)
                .unwrap_or(0);
            Ok(vec![Value::new(need(0)?.dtype, vec![len])])
        }
        "LSTM" | "GRU" | "RNN" => {
            let x = &need(0)?.shape;
            let hidden = u64::try_from(attr_int(n, "hidden_size").ok_or("missing hidden_size")?)
                .unwrap_or(0);
            let dirs =
                if super::proto::attr_string(n, "direction").as_deref() == Some("bidirectional") {
                    2
                } else {
                    1
                };
            let (seq, batch) = (
                x.first().copied().unwrap_or(1),
                x.get(1).copied().unwrap_or(1),
            );
            let mut outs = vec![Value::new(need(0)?.dtype, vec![seq, dirs, batch, hidden])];
            for _ in 1..n.output.len() {
                outs.push(Value::new(need(0)?.dtype, vec![dirs, batch, hidden]));
            }
            Ok(outs)
        }
        "Einsum" => Err("Einsum shapes are not inferred".into()),
        "NonZero" | "NonMaxSuppression" | "Unique" | "Compress" => {
            Err(format!("{op} has a data-dependent output shape"))
        }
        "OneHot" => {
            let idx = need(0)?;
            let depth = need(1)?
                .ints
                .as_ref()
                .and_then(|d| d.first().copied())
                .ok_or("OneHot depth unknown")?;
            let r = idx.shape.len() + 1;
            let a = norm_axis(attr_int(n, "axis").unwrap_or(-1), r)?;
            let mut s = idx.shape.clone();
            s.insert(a, u64::try_from(depth).unwrap_or(0));
            Ok(vec![Value::new(need(2)?.dtype, s)])
        }
        "TopK" => {
            let x = need(0)?;
            let k = need(1)?
                .ints
                .as_ref()
                .and_then(|k| k.first().copied())
                .ok_or("TopK k unknown")?;
            let a = norm_axis(attr_int(n, "axis").unwrap_or(-1), x.shape.len())?;
            let mut s = x.shape.clone();
            s[a] = u64::try_from(k).unwrap_or(0);
            Ok(vec![Value::new(x.dtype, s.clone()), Value::new(7, s)])
        }
        "DepthToSpace" | "SpaceToDepth" => {
            let x = &need(0)?.shape;
            let b = u64::try_from(attr_int(n, "blocksize").unwrap_or(1))
                .unwrap_or(1)
                .max(1);
            if x.len() != 4 {
                return Err(format!("{op} of rank {}", x.len()));
            }
            let s = if op == "DepthToSpace" {
                vec![
                    x[0],
                    x[1] / b.saturating_mul(b).max(1),
                    x[2].saturating_mul(b),
                    x[3].saturating_mul(b),
                ]
            } else {
                vec![
                    x[0],
                    x[1].saturating_mul(b).saturating_mul(b),
                    x[2] / b,
                    x[3] / b,
                ]
            };
            Ok(vec![Value::new(need(0)?.dtype, s)])
        }
        _ => Err(format!("no shape rule for op {op}")),
    }
}
