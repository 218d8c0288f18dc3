//! Small readers over tract-onnx's protobuf types: attributes and tensor contents.

use sha2::{Digest, Sha256};
use tract_onnx::pb::{AttributeProto, NodeProto, TensorProto};

/// Largest integer tensor whose values are kept for shape computations.
pub const MAX_FOLDED_INTS: u64 = 1024;

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

pub fn attr_int(node: &NodeProto, name: &str) -> Option<i64> {
    attr(node, name).map(|a| a.i)
}

pub fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

pub fn attr_floats(node: &NodeProto, name: &str) -> Option<Vec<f32>> {
    attr(node, name).map(|a| a.floats.clone())
}

pub fn attr_string(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

pub fn attr_tensor<'a>(node: &'a NodeProto, name: &str) -> Option<&'a TensorProto> {
    attr(node, name).and_then(|a| a.t.as_ref())
}

/// Number of elements of a tensor with these dims; `None` on negative dims or overflow.
pub fn element_count(dims: &[i64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| {
        u64::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// The integer values of a small integer tensor (int64, int32 and narrower), if present inline.
pub fn tensor_ints(t: &TensorProto) -> Option<Vec<i64>> {
    let n = element_count(&t.dims)?;
    if n > MAX_FOLDED_INTS {
        return None;
    }
    let values: Vec<i64> = match t.data_type {
        7 if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        7 => t.int64_data.clone(),
        6 if !t.raw_data.is_empty() => t
            .raw_data
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        2..=6 | 9 => t.int32_data.iter().map(|&v| i64::from(v)).collect(),
        _ => return None,
    };
    (u64::try_from(values.len()).ok() == Some(n)).then_some(values)
}

/// Hex SHA-256 over a tensor's dtype, dims and inline data; `None` for external data.
pub fn tensor_hash(t: &TensorProto) -> Option<String> {
    if !t.external_data.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(t.data_type.to_le_bytes());
    for d in &t.dims {
        h.update(d.to_le_bytes());
    }
    h.update(&t.raw_data);
    for v in &t.float_data {
        h.update(v.to_le_bytes());
    }
    for v in &t.int32_data {
        h.update(v.to_le_bytes());
    }
    for v in &t.int64_data {
        h.update(v.to_le_bytes());
    }
    for v in &t.double_data {
        h.update(v.to_le_bytes());
    }
    for v in &t.uint64_data {
        h.update(v.to_le_bytes());
    }
    Some(hex::encode(h.finalize()))
}

/// Hash of a `ConstantOfShape` weight: its shape and fill value stand for its contents.
pub fn fill_hash(shape: &[i64], value: Option<&TensorProto>) -> String {
    let mut h = Sha256::new();
    h.update(b"constant-of-shape");
    for d in shape {
        h.update(d.to_le_bytes());
    }
    if let Some(v) = value.and_then(tensor_hash) {
        h.update(v.as_bytes());
    }
    hex::encode(h.finalize())
}
