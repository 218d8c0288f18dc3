//! Which constants are learned parameters, and which are shape arguments (not parameters).

use std::collections::{HashMap, HashSet};

use super::graph::GraphView;
use super::proto::{attr_tensor, element_count, fill_hash, tensor_hash, tensor_ints};
use crate::dtype::{bytes_for, onnx_dtype};
use crate::{ParameterStats, TensorEntry};

/// Inputs that take shapes, axes, indices or scalar settings rather than learned values.
fn is_shape_slot(op: &str, slot: usize) -> bool {
    match op {
        "Reshape" | "Expand" | "Tile" | "Squeeze" | "Unsqueeze" | "Upsample" | "TopK" | "Split"
        | "OneHot" | "CumSum" | "Gather" | "GatherElements" | "GatherND" | "ScatterND"
        | "Trilu" => slot == 1,
        "ConstantOfShape" | "Range" => true,
        "Slice" | "Resize" | "Pad" | "Clip" | "Dropout" => slot >= 1,
        op if op.starts_with("Reduce") => slot == 1,
        _ => false,
    }
}

/// Ops through which a shape computation flows (e.g. `Concat` of dims before a `Reshape`).
fn is_shape_arith(op: &str) -> bool {
    matches!(
        op,
        "Concat"
            | "Gather"
            | "Unsqueeze"
            | "Squeeze"
            | "Cast"
            | "Mul"
            | "Add"
            | "Sub"
            | "Div"
            | "Slice"
            | "Identity"
            | "Floor"
            | "Ceil"
            | "Neg"
            | "Min"
            | "Max"
            | "Equal"
            | "Where"
            | "Reshape"
    )
}

/// Parameters found in the graph.
pub struct Params {
    pub stats: ParameterStats,
    pub tensors: Vec<TensorEntry>,
    /// Indices of `Constant`/`ConstantOfShape` nodes whose output is a parameter.
    pub weight_nodes: HashSet<usize>,
    pub names: HashSet<String>,
    pub warnings: Vec<String>,
}

/// Values whose every use is a shape argument, directly or through shape arithmetic.
fn shape_only<'a>(g: &GraphView<'a>) -> HashMap<&'a str, bool> {
    let mut memo: HashMap<&'a str, bool> = HashMap::new();
    let judge = |name: &str, memo: &HashMap<&'a str, bool>| -> bool {
        let Some(uses) = g.consumers.get(name) else {
            return false;
        };
        !g.graph_outputs.contains(name)
            && uses.iter().all(|&(c, slot)| {
                let n = g.nodes[c];
                is_shape_slot(&n.op_type, slot)
                    || (is_shape_arith(&n.op_type)
                        && n.output
                            .iter()
                            .all(|o| memo.get(o.as_str()).copied().unwrap_or(false)))
            })
    };
    for n in g.nodes.iter().rev() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let v = judge(o, &memo);
            memo.insert(o.as_str(), v);
        }
    }
    for &name in g.initializers.keys() {
        let v = judge(name, &memo);
        memo.insert(name, v);
    }
    memo
}

fn push(p: &mut Params, name: &str, dtype_code: i32, dims: &[i64], hash: Option<String>) {
    let (dtype, bits) = onnx_dtype(dtype_code);
    let elements = element_count(dims).unwrap_or(0);
    let bytes = bytes_for(elements, bits).unwrap_or(u64::MAX);
    p.stats.add(dtype, elements, bytes);
    p.names.insert(name.to_owned());
    p.tensors.push(TensorEntry {
        name: name.to_owned(),
        dtype: dtype.to_owned(),
        shape: dims
            .iter()
            .map(|&d| u64::try_from(d).unwrap_or(0))
            .collect(),
        elements,
        content_hash: hash,
    });
}

/// Counts initializers, `Constant` values and constant-shaped `ConstantOfShape` outputs.
pub fn find(g: &GraphView<'_>) -> Params {
    let only_shape = shape_only(g);
    let is_param = |name: &str| !only_shape.get(name).copied().unwrap_or(true);
    let mut p = Params {
        stats: ParameterStats::default(),
        tensors: Vec::new(),
        weight_nodes: HashSet::new(),
        names: HashSet::new(),
        warnings: Vec::new(),
    };
    let mut inits: Vec<_> = g.initializers.values().copied().collect();
    inits.sort_by(|a, b| a.name.cmp(&b.name));
    let mut unused = 0usize;
    for t in inits {
        if g.producer.contains_key(t.name.as_str()) {
            continue; // A node output with the same name wins.
        }
        if !g.consumers.contains_key(t.name.as_str()) && !g.graph_outputs.contains(t.name.as_str())
        {
            unused += 1;
        } else if is_param(&t.name) {
            if !t.external_data.is_empty() {
                p.warnings
                    .push(format!("initializer {:?} stored outside the file", t.name));
            }
            push(&mut p, &t.name, t.data_type, &t.dims, tensor_hash(t));
        }
    }
    if unused > 0 {
        p.warnings.push(format!(
            "{unused} unused initializer(s) not counted as parameters"
        ));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let Some(out) = n.output.first().filter(|o| is_param(o)) else {
            continue;
        };
        match n.op_type.as_str() {
            "Constant" => {
                if let Some(t) = attr_tensor(n, "value") {
                    push(&mut p, out, t.data_type, &t.dims, tensor_hash(t));
                    p.weight_nodes.insert(i);
                }
            }
            "ConstantOfShape" => {
                let shape = n
                    .input
                    .first()
                    .and_then(|s| g.constant(s))
                    .and_then(tensor_ints);
                if let Some(shape) = shape {
                    let value = attr_tensor(n, "value");
                    let code = value.map_or(1, |v| v.data_type);
                    push(&mut p, out, code, &shape, Some(fill_hash(&shape, value)));
                    p.weight_nodes.insert(i);
                }
            }
            _ => {}
        }
    }
    p
}
