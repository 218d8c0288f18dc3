//! ONNX analysis: decode with tract-onnx's protobuf types, count parameters, propagate shapes.

mod cost;
mod graph;
mod params;
mod proto;
mod shapes;
mod shapes_data;
mod shapes_more;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use prost::Message;
use tract_onnx::pb::{tensor_shape_proto::dimension, type_proto, ModelProto, ValueInfoProto};

use crate::dtype::{bytes_for, onnx_dtype};
use crate::{AnalyzeError, Dim, IoInfo, ModelFeatures, ModelFormat, OpCategory};
use graph::GraphView;
use shapes::Value;

/// ONNX protobufs must be decoded whole; larger files are refused.
pub const MAX_ONNX_BYTES: u64 = 2 << 30;

/// Reads and analyses an ONNX file, refusing files over [`MAX_ONNX_BYTES`].
pub fn analyze_onnx_file(path: &Path) -> Result<ModelFeatures, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_ONNX_BYTES {
        return Err(AnalyzeError::TooLarge {
            what: "an ONNX protobuf",
            size,
            limit: MAX_ONNX_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_ONNX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    analyze_onnx_bytes(&bytes)
}

fn io_info(v: &ValueInfoProto) -> IoInfo {
    let tensor = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .map(|type_proto::Value::TensorType(t)| t);
    let shape = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => Dim::Fixed(v.unsigned_abs()),
                Some(dimension::Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                _ => Dim::Symbolic("?".into()),
            })
            .collect()
    });
    IoInfo {
        name: v.name.clone(),
        dtype: onnx_dtype(tensor.map_or(0, |t| t.elem_type)).0.to_owned(),
        shape,
    }
}

fn decode(bytes: &[u8]) -> Result<ModelProto, AnalyzeError> {
    let model = ModelProto::decode(bytes).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("underflow") || msg.contains("unexpected end") {
            AnalyzeError::Truncated(format!("ONNX protobuf ends early ({msg})"))
        } else {
            AnalyzeError::NotOnnx(format!("protobuf decoding failed ({msg})"))
        }
    })?;
    match &model.graph {
        None => Err(AnalyzeError::NotOnnx("the file holds no graph".into())),
        Some(g) if g.node.is_empty() => Err(AnalyzeError::NotOnnx("the graph has no nodes".into())),
        Some(_) if model.ir_version <= 0 && model.opset_import.is_empty() => {
            Err(AnalyzeError::NotOnnx("no IR version and no opset".into()))
        }
        Some(_) => Ok(model),
    }
}

/// Analyses an ONNX model held in memory.
pub fn analyze_onnx_bytes(bytes: &[u8]) -> Result<ModelFeatures, AnalyzeError> {
    let model = decode(bytes)?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(AnalyzeError::NotOnnx("the file holds no graph".into()));
    };
    let g = GraphView::new(graph)?;
    let params = params::find(&g);
    let mut f = ModelFeatures::empty(ModelFormat::Onnx);
    f.warnings.extend(params.warnings.iter().cloned());
    f.opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version);
    let producer = format!("{} {}", model.producer_name, model.producer_version);
    f.producer = Some(producer.trim().to_owned()).filter(|p| !p.is_empty());
    f.outputs = graph.output.iter().map(io_info).collect();
    // Old exporters list weights among the inputs; a weight is not something a caller feeds.
    let real_inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| {
            !g.initializers.contains_key(i.name.as_str())
                && !g.producer.contains_key(i.name.as_str())
        })
        .collect();
    f.inputs = real_inputs.iter().map(|i| io_info(i)).collect();

    let mut values: HashMap<&str, Value> = HashMap::new();
    let mut batch = 1u64;
    for (k, (vi, info)) in real_inputs.iter().zip(&f.inputs).enumerate() {
        let Some(dims) = &info.shape else {
            f.warnings.push(format!(
                "input {:?} declares no shape; cost not computed past it",
                info.name
            ));
            continue;
        };
        let mut shape = Vec::with_capacity(dims.len());
        for (i, d) in dims.iter().enumerate() {
            match d {
                Dim::Fixed(v) => shape.push(*v),
                Dim::Symbolic(s) => {
                    let role = if i == 0 { " (batch)" } else { "" };
                    f.assumed_dims.push(format!(
                        "input {:?} dim {i} {s:?}{role} assumed 1",
                        info.name
                    ));
                    shape.push(1);
                }
            }
        }
        if k == 0 && shape.len() > 1 {
            batch = shape[0].max(1);
        }
        let dtype = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.elem_type,
            None => 0,
        };
        values.insert(vi.name.as_str(), Value::new(dtype, shape));
    }
    for (name, t) in &g.initializers {
        let shape = t
            .dims
            .iter()
            .map(|&d| u64::try_from(d).unwrap_or(0))
            .collect();
        let ints = proto::tensor_ints(t);
        values.insert(
            name,
            Value {
                dtype: t.data_type,
                shape,
                ints,
            },
        );
    }

    let (mut macs, mut flops, mut traffic, mut norm_work) = (0u64, 0u64, 0u64, 0u64);
    let mut im2col = 0u64;
    let mut failures: Vec<String> = Vec::new();
    let mut depth = vec![0u64; g.nodes.len()];
    let weight_nodes = &params.weight_nodes;
    for (i, n) in g.nodes.iter().enumerate() {
        let is_weight = weight_nodes.contains(&i);
        if !is_weight {
            *f.op_histogram.entry(n.op_type.clone()).or_default() += 1;
            let mut cat = cost::category(&n.op_type);
            if n.op_type == "Gather" && n.input.first().is_some_and(|x| params.names.contains(x)) {
                cat = OpCategory::Embedding;
            }
            *f.op_categories.entry(cat).or_default() += 1;
            depth[i] = 1 + n
                .input
                .iter()
                .filter_map(|x| g.producer.get(x.as_str()))
                .map(|&p| depth[p])
                .max()
                .unwrap_or(0);
        }
        let ins: Vec<Option<&Value>> = n
            .input
            .iter()
            .map(|x| {
                if x.is_empty() {
                    None
                } else {
                    values.get(x.as_str())
                }
            })
            .collect();
        match shapes::infer(n, &ins) {
            Ok(outs) => {
                if !is_weight {
                    let (m, fl) = cost::node_cost(n, &ins, &outs);
                    let gathered = cost::im2col_elements(n, &ins, &outs);
                    if gathered > 0 {
                        let dtype = ins.first().copied().flatten().map_or(1, |v| v.dtype);
                        let bytes =
                            crate::dtype::bytes_for(gathered, crate::dtype::onnx_dtype(dtype).1);
                        im2col = im2col.saturating_add(bytes.unwrap_or(0));
                    }
                    macs = macs.saturating_add(m);
                    flops = flops.saturating_add(fl);
                    if !cost::is_view(&n.op_type) {
                        let bytes = |v: &Value| {
                            crate::dtype::bytes_for(
                                v.elements(),
                                crate::dtype::onnx_dtype(v.dtype).1,
                            )
                            .unwrap_or(0)
                        };
                        let moved = ins.iter().flatten().map(|v| bytes(v)).sum::<u64>()
                            + outs.iter().map(bytes).sum::<u64>();
                        traffic = traffic.saturating_add(moved);
                    }
                    if let Some(out) = outs.first() {
                        let before = n
                            .input
                            .first()
                            .and_then(|x| g.producer.get(x.as_str()))
                            .map(|&p| g.nodes[p].op_type.as_str());
                        let w = cost::unfused_norm_window(n, before);
                        norm_work = norm_work.saturating_add(out.elements().saturating_mul(w));
                    }
                }
                for (name, v) in n.output.iter().zip(outs) {
                    if !name.is_empty() {
                        values.insert(name.as_str(), v);
                    }
                }
            }
            Err(e) => failures.push(format!("{} {:?}: {e}", n.op_type, n.name)),
        }
    }
    if let Some(first) = failures.first() {
        f.warnings.push(format!(
            "shapes unknown after {} node(s), first at {first}; MACs and FLOPs are a lower bound",
            failures.len()
        ));
    }
    let coses = weight_nodes
        .iter()
        .filter(|&&i| g.nodes[i].op_type == "ConstantOfShape")
        .count();
    if coses > 0 {
        f.warnings.push(format!(
            "{coses} ConstantOfShape node(s) produce weights; counted as parameters, not ops"
        ));
    }
    f.macs_per_sample = Some(macs / batch);
    f.flops_per_sample = Some(flops / batch);
    f.memory_access_bytes = Some(traffic / batch);
    f.normalization_work = Some(norm_work / batch);
    f.im2col_bytes = Some(im2col / batch);
    f.depth = depth.iter().max().copied();
    f.activation_memory_bytes = Some(peak_activations(&g, &values, &params.names, &real_inputs));
    f.parameters = params.stats;
    f.tensors = params.tensors;
    Ok(f)
}

/// Peak bytes of live non-parameter values when nodes run in order, each value freed after
/// its last reader (graph outputs are kept to the end).
fn peak_activations(
    g: &GraphView<'_>,
    values: &HashMap<&str, Value>,
    params: &HashSet<String>,
    inputs: &[&ValueInfoProto],
) -> u64 {
    let size = |name: &str| -> u64 {
        if params.contains(name) || g.initializers.contains_key(name) {
            return 0;
        }
        values.get(name).map_or(0, |v| {
            bytes_for(v.elements(), onnx_dtype(v.dtype).1).unwrap_or(0)
        })
    };
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            last_use.insert(x.as_str(), i);
        }
    }
    let mut live: u64 = inputs.iter().map(|i| size(&i.name)).sum();
    let mut peak = live;
    for (i, n) in g.nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            live = live.saturating_add(size(o));
        }
        peak = peak.max(live);
        let mut freed = HashSet::new();
        for x in n.input.iter().chain(&n.output) {
            let x = x.as_str();
            if !x.is_empty()
                && last_use.get(x).is_none_or(|&l| l <= i)
                && !g.graph_outputs.contains(x)
                && freed.insert(x)
            {
                live = live.saturating_sub(size(x));
            }
        }
    }
    peak
}
