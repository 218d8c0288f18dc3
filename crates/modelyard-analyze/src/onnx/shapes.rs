//! Per-op shape propagation at concrete shapes, with folding of small integer tensors.

use tract_onnx::pb::NodeProto;

use super::proto::{attr_int, attr_ints, attr_tensor, element_count, tensor_ints};

/// What is known about one value: dtype, concrete shape and, for small ints, the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub dtype: i32,
    pub shape: Vec<u64>,
    pub ints: Option<Vec<i64>>,
}

impl Value {
    pub fn new(dtype: i32, shape: Vec<u64>) -> Self {
        Self {
            dtype,
            shape,
            ints: None,
        }
    }
    fn ints(values: Vec<i64>, shape: Vec<u64>) -> Self {
        Self {
            dtype: 7,
            shape,
            ints: Some(values),
        }
    }
    /// Element count, saturating (a corrupt file may declare absurd dims).
    pub fn elements(&self) -> u64 {
        prod(self.shape.iter())
    }
}

/// Saturating product of dims: corrupt files must not overflow.
pub fn prod<'a>(dims: impl IntoIterator<Item = &'a u64>) -> u64 {
    dims.into_iter().fold(1u64, |a, &d| a.saturating_mul(d))
}

type Out = Result<Vec<Value>, String>;

pub(super) fn axis(a: i64, rank: usize) -> Result<usize, String> {
    let r = i64::try_from(rank).map_err(|e| e.to_string())?;
    let a = if a < 0 { a + r } else { a };
    usize::try_from(a)
        .ok()
        .filter(|&a| a < rank.max(1))
        .ok_or_else(|| format!("axis {a} out of range for rank {rank}"))
}

pub(super) fn broadcast(shapes: &[&[u64]]) -> Result<Vec<u64>, String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..rank)
        .map(|i| {
            let mut d = 1;
            for s in shapes {
                let pad = rank - s.len();
                let x = if i < pad { 1 } else { s[i - pad] };
                if x != 1 && d != 1 && x != d {
                    return Err(format!("cannot broadcast {shapes:?}"));
                }
                if x != 1 {
                    d = x;
                }
            }
            Ok(d)
        })
        .collect()
}

/// Output spatial size of a convolution or pooling window along one axis.
fn window(input: u64, k: u64, stride: u64, dil: u64, pads: (u64, u64), ceil: bool) -> u64 {
    let eff = dil.saturating_mul(k.saturating_sub(1)).saturating_add(1);
    let span = input
        .saturating_add(pads.0)
        .saturating_add(pads.1)
        .saturating_sub(eff);
    let stride = stride.max(1);
    if ceil {
        span.div_ceil(stride) + 1
    } else {
        span / stride + 1
    }
}

pub(super) fn to_u64(v: &[i64]) -> Vec<u64> {
    v.iter().map(|&x| u64::try_from(x).unwrap_or(0)).collect()
}

/// Shape of a Conv/ConvTranspose/pool output: `channels` output channels over `kernel`.
fn spatial(n: &NodeProto, x: &[u64], kernel: &[u64], channels: u64, pool: bool) -> Out {
    if x.len() < 3 || kernel.len() + 2 != x.len() {
        return Err(format!("rank mismatch: input {x:?}, kernel {kernel:?}"));
    }
    let k = kernel.len();
    let strides = attr_ints(n, "strides").map_or(vec![1; k], |s| to_u64(&s));
    let dil = attr_ints(n, "dilations").map_or(vec![1; k], |s| to_u64(&s));
    let pads = attr_ints(n, "pads").map_or(vec![0; 2 * k], |s| to_u64(&s));
    let auto = super::proto::attr_string(n, "auto_pad").unwrap_or_default();
    let ceil = pool && attr_int(n, "ceil_mode") == Some(1);
    let mut out = vec![x[0], channels];
    for i in 0..k {
        let s = strides.get(i).copied().unwrap_or(1).max(1);
        let d = match auto.as_str() {
            "SAME_UPPER" | "SAME_LOWER" => x[i + 2].div_ceil(s),
            "VALID" => window(
                x[i + 2],
                kernel[i],
                s,
                dil.get(i).copied().unwrap_or(1),
                (0, 0),
                false,
            ),
            _ => {
                let p = (
                    pads.get(i).copied().unwrap_or(0),
                    pads.get(i + k).copied().unwrap_or(0),
                );
                window(
                    x[i + 2],
                    kernel[i],
                    s,
                    dil.get(i).copied().unwrap_or(1),
                    p,
                    ceil,
                )
            }
        };
        out.push(d);
    }
    Ok(vec![Value::new(1, out)])
}

fn matmul(a: &[u64], b: &[u64]) -> Result<Vec<u64>, String> {
    let a2: Vec<u64> = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2: Vec<u64> = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    if a2.len() < 2 || b2.len() < 2 || a2[a2.len() - 1] != b2[b2.len() - 2] {
        return Err(format!("matmul shapes {a:?} × {b:?}"));
    }
    let mut out = broadcast(&[&a2[..a2.len() - 2], &b2[..b2.len() - 2]])?;
    if a.len() > 1 {
        out.push(a2[a2.len() - 2]);
    }
    if b.len() > 1 {
        out.push(b2[b2.len() - 1]);
    }
    Ok(out)
}

/// An int list from input `slot` (opset ≥ 13 style) or attribute `name` (older opsets).
pub(super) fn ints_arg(
    n: &NodeProto,
    ins: &[Option<&Value>],
    slot: usize,
    name: &str,
) -> Option<Vec<i64>> {
    match ins.get(slot) {
        Some(Some(v)) => v.ints.clone(),
        _ => attr_ints(n, name),
    }
}

pub(super) fn arith(op: &str, a: i64, b: i64) -> Option<i64> {
    match op {
        "Add" => a.checked_add(b),
        "Sub" => a.checked_sub(b),
        "Mul" => a.checked_mul(b),
        "Div" => a.checked_div(b),
        _ => None,
    }
}

/// Infers the outputs of `n` from its inputs (`None` for absent optional inputs).
pub fn infer(n: &NodeProto, ins: &[Option<&Value>]) -> Out {
    let need = |i: usize| -> Result<&Value, String> {
        ins.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {i} unknown"))
    };
    let op = n.op_type.as_str();
    match op {
        "Constant" => {
            let t = attr_tensor(n, "value").ok_or("Constant without a tensor value")?;
            let shape = to_u64(&t.dims);
            Ok(vec![match tensor_ints(t) {
                Some(v) => Value {
                    dtype: t.data_type,
                    shape,
                    ints: Some(v),
                },
                None => Value::new(t.data_type, shape),
            }])
        }
        "ConstantOfShape" => {
            let dims = need(0)?
                .ints
                .clone()
                .ok_or("ConstantOfShape of an unknown shape")?;
            let dtype = attr_tensor(n, "value").map_or(1, |t| t.data_type);
            let shape = to_u64(&dims);
            let count = element_count(&dims).unwrap_or(u64::MAX);
            let fill = attr_tensor(n, "value")
                .and_then(tensor_ints)
                .and_then(|v| v.first().copied());
            Ok(vec![match fill {
                Some(f) if count <= super::proto::MAX_FOLDED_INTS => Value {
                    dtype,
                    shape,
                    ints: usize::try_from(count).ok().map(|c| vec![f; c]),
                },
                _ => Value::new(dtype, shape),
            }])
        }
        "Shape" => {
            let s = &need(0)?.shape;
            let v: Vec<i64> = s
                .iter()
                .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
                .collect();
            Ok(vec![Value::ints(v, vec![s.len() as u64])])
        }
        "Conv" => {
            let w = need(1)?;
            let kernel = attr_ints(n, "kernel_shape")
                .map_or_else(|| w.shape[2.min(w.shape.len())..].to_vec(), |k| to_u64(&k));
            spatial(
                n,
                &need(0)?.shape,
                &kernel,
                w.shape.first().copied().unwrap_or(0),
                false,
            )
        }
        "ConvTranspose" => {
            let x = &need(0)?.shape;
            let w = &need(1)?.shape;
            let group = u64::try_from(attr_int(n, "group").unwrap_or(1))
                .unwrap_or(1)
                .max(1);
            let k = w.len().saturating_sub(2);
            let strides = attr_ints(n, "strides").map_or(vec![1; k], |s| to_u64(&s));
            let pads = attr_ints(n, "pads").map_or(vec![0; 2 * k], |s| to_u64(&s));
            let opad = attr_ints(n, "output_padding").map_or(vec![0; k], |s| to_u64(&s));
            let dil = attr_ints(n, "dilations").map_or(vec![1; k], |s| to_u64(&s));
            let batch = *x.first().ok_or("ConvTranspose of a scalar")?;
            let mut out = vec![batch, w.get(1).copied().unwrap_or(0).saturating_mul(group)];
            for i in 0..k {
                let at = |v: &[u64], j: usize, d: u64| v.get(j).copied().unwrap_or(d);
                let o = at(&strides, i, 1)
                    .saturating_mul(at(x, i + 2, 1).saturating_sub(1))
                    .saturating_add(at(&opad, i, 0))
                    .saturating_add(w[i + 2].saturating_sub(1).saturating_mul(at(&dil, i, 1)))
                    .saturating_add(1);
                out.push(o.saturating_sub(at(&pads, i, 0).saturating_add(at(&pads, i + k, 0))));
            }
            Ok(vec![Value::new(need(0)?.dtype, out)])
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let x = need(0)?;
            let kernel = to_u64(&attr_ints(n, "kernel_shape").ok_or("pool without kernel_shape")?);
            let mut outs = spatial(
                n,
                &x.shape,
                &kernel,
                x.shape.get(1).copied().unwrap_or(0),
                true,
            )?;
            outs[0].dtype = x.dtype;
            if n.output.len() > 1 {
                outs.push(Value::new(7, outs[0].shape.clone()));
            }
            Ok(outs)
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "GlobalLpPool" => {
            let x = need(0)?;
            let s: Vec<u64> = x
                .shape
                .iter()
                .enumerate()
                .map(|(i, &d)| if i < 2 { d } else { 1 })
                .collect();
            Ok(vec![Value::new(x.dtype, s)])
        }
        "Gemm" => {
            let a = &need(0)?.shape;
            let b = &need(1)?.shape;
            if a.len() != 2 || b.len() != 2 {
                return Err(format!("Gemm of {a:?} and {b:?}"));
            }
            let m = if attr_int(n, "transA") == Some(1) {
                a[1]
            } else {
                a[0]
            };
            let nn = if attr_int(n, "transB") == Some(1) {
                b[0]
            } else {
                b[1]
            };
            Ok(vec![Value::new(need(0)?.dtype, vec![m, nn])])
        }
        "MatMul" | "MatMulInteger" | "QLinearMatMul" => {
            let (a, b) = if op == "QLinearMatMul" {
                (need(0)?, need(3)?)
            } else {
                (need(0)?, need(1)?)
            };
            Ok(vec![Value::new(a.dtype, matmul(&a.shape, &b.shape)?)])
        }
        _ => super::shapes_data::infer_data(n, ins, op),
    }
}
