//! Shape propagation for data-movement ops: reshape, transpose, concat, gather, slice, split.

use tract_onnx::pb::NodeProto;

use super::proto::{attr_int, attr_ints};
use super::shapes::{axis, ints_arg, prod, to_u64, Value};

/// Resolves a Reshape target: 0 copies the input dim, -1 takes what remains.
fn reshape(x: &[u64], target: &[i64], allowzero: bool) -> Result<Vec<u64>, String> {
    let total: u64 = prod(x.iter());
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*x.get(i).ok_or("reshape copies a missing dim")?),
            t => out.push(u64::try_from(t).map_err(|_| format!("bad reshape dim {t}"))?),
        }
    }
    if let Some(i) = infer {
        let known: u64 = prod(out.iter());
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {x:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    Ok(out)
}

/// Infers data-movement ops; anything else goes on to [`super::shapes_more`].
pub fn infer_data(n: &NodeProto, ins: &[Option<&Value>], op: &str) -> Result<Vec<Value>, String> {
    let need = |i: usize| -> Result<&Value, String> {
        ins.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {i} unknown"))
    };
    match op {
        "Flatten" => {
            let x = need(0)?;
            let a = axis(attr_int(n, "axis").unwrap_or(1), x.shape.len() + 1)?;
            let left: u64 = prod(x.shape[..a].iter());
            let right: u64 = prod(x.shape[a..].iter());
            Ok(vec![Value::new(x.dtype, vec![left, right])])
        }
        "Reshape" => {
            let x = need(0)?;
            let target = ints_arg(n, ins, 1, "shape").ok_or("Reshape to an unknown shape")?;
            let shape = reshape(&x.shape, &target, attr_int(n, "allowzero") == Some(1))?;
            Ok(vec![Value {
                dtype: x.dtype,
                shape,
                ints: x.ints.clone(),
            }])
        }
        "Transpose" => {
            let x = need(0)?;
            let perm =
                attr_ints(n, "perm").unwrap_or_else(|| (0..x.shape.len() as i64).rev().collect());
            let s = perm
                .iter()
                .map(|&p| axis(p, x.shape.len()).map(|a| x.shape[a]))
                .collect::<Result<_, _>>()?;
            Ok(vec![Value::new(x.dtype, s)])
        }
        "Concat" => {
            let first = need(0)?;
            let a = axis(attr_int(n, "axis").unwrap_or(0), first.shape.len())?;
            let mut s = first.shape.clone();
            let mut ints = first.ints.clone();
            for i in 1..ins.len() {
                let v = need(i)?;
                s[a] += v.shape.get(a).copied().unwrap_or(0);
                ints = match (ints, &v.ints) {
                    (Some(mut x), Some(y)) if s.len() == 1 => {
                        x.extend(y);
                        Some(x)
                    }
                    _ => None,
                };
            }
            Ok(vec![Value {
                dtype: first.dtype,
                shape: s,
                ints,
            }])
        }
        "Unsqueeze" | "Squeeze" => {
            let x = need(0)?;
            let axes = ints_arg(n, ins, 1, "axes");
            let mut s = x.shape.clone();
            if op == "Unsqueeze" {
                let axes = axes.ok_or("Unsqueeze without axes")?;
                let r = s.len() + axes.len();
                let mut ax: Vec<usize> =
                    axes.iter().map(|&a| axis(a, r)).collect::<Result<_, _>>()?;
                ax.sort_unstable();
                for a in ax {
                    s.insert(a.min(s.len()), 1);
                }
            } else {
                match axes {
                    Some(axes) => {
                        let mut ax: Vec<usize> = axes
                            .iter()
                            .map(|&a| axis(a, s.len()))
                            .collect::<Result<_, _>>()?;
                        ax.sort_unstable();
                        for a in ax.into_iter().rev() {
                            s.remove(a);
                        }
                    }
                    None => s.retain(|&d| d != 1),
                }
            }
            Ok(vec![Value {
                dtype: x.dtype,
                shape: s,
                ints: x.ints.clone(),
            }])
        }
        "Gather" => {
            let x = need(0)?;
            let idx = need(1)?;
            let a = axis(attr_int(n, "axis").unwrap_or(0), x.shape.len())?;
            let mut s = x.shape[..a].to_vec();
            s.extend(&idx.shape);
            s.extend(&x.shape[a + 1..]);
            let ints = match (&x.ints, &idx.ints) {
                (Some(v), Some(i)) if x.shape.len() == 1 => i
                    .iter()
                    .map(|&k| {
                        let k = if k < 0 { k + v.len() as i64 } else { k };
                        usize::try_from(k).ok().and_then(|k| v.get(k).copied())
                    })
                    .collect(),
                _ => None,
            };
            Ok(vec![Value {
                dtype: x.dtype,
                shape: s,
                ints,
            }])
        }
        "Cast" => {
            let x = need(0)?;
            let to = attr_int(n, "to")
                .and_then(|t| i32::try_from(t).ok())
                .unwrap_or(x.dtype);
            Ok(vec![Value {
                dtype: to,
                shape: x.shape.clone(),
                ints: x.ints.clone(),
            }])
        }
        "Slice" => {
            let x = need(0)?;
            let starts = ints_arg(n, ins, 1, "starts").ok_or("Slice with unknown starts")?;
            let ends = ints_arg(n, ins, 2, "ends").ok_or("Slice with unknown ends")?;
            let axes =
                ints_arg(n, ins, 3, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
            let steps = ints_arg(n, ins, 4, "steps").unwrap_or_else(|| vec![1; starts.len()]);
            let mut s = x.shape.clone();
            let mut ints = x.ints.clone();
            for (i, &a) in axes.iter().enumerate() {
                let a = axis(a, s.len())?;
                let d = i64::try_from(s[a]).map_err(|e| e.to_string())?;
                let step = steps.get(i).copied().unwrap_or(1);
                if step <= 0 {
                    return Err("Slice with non-positive step".into());
                }
                let clamp = |v: i64| if v < 0 { (v + d).max(0) } else { v.min(d) };
                let (b, e) = (clamp(starts[i]), clamp(ends.get(i).copied().unwrap_or(d)));
                let len = if e > b { (e - b + step - 1) / step } else { 0 };
                s[a] = u64::try_from(len).unwrap_or(0);
                ints = ints.filter(|_| x.shape.len() == 1).map(|v| {
                    v.iter()
                        .skip(b as usize)
                        .step_by(step as usize)
                        .take(len as usize)
                        .copied()
                        .collect()
                });
            }
            Ok(vec![Value {
                dtype: x.dtype,
                shape: s,
                ints,
            }])
        }
        "Split" => {
            let x = need(0)?;
            let a = axis(attr_int(n, "axis").unwrap_or(0), x.shape.len())?;
            let parts = ints_arg(n, ins, 1, "split").unwrap_or_else(|| {
                let k = n.output.len().max(1) as u64;
                vec![(x.shape[a] / k) as i64; n.output.len()]
            });
            Ok(to_u64(&parts)
                .into_iter()
                .map(|p| {
                    let mut s = x.shape.clone();
                    s[a] = p;
                    Value::new(x.dtype, s)
                })
                .collect())
        }
        _ => super::shapes_more::infer_more(n, ins, op),
    }
}
