//! Dtype names shared by every format, with their sizes.

/// Canonical name and size in bits of an ONNX `TensorProto.DataType` code.
pub fn onnx_dtype(code: i32) -> (&'static str, u64) {
    match code {
        1 => ("float32", 32),
        2 => ("uint8", 8),
        3 => ("int8", 8),
        4 => ("uint16", 16),
        5 => ("int16", 16),
        6 => ("int32", 32),
        7 => ("int64", 64),
        8 => ("string", 0),
        9 => ("bool", 8),
        10 => ("float16", 16),
        11 => ("float64", 64),
        12 => ("uint32", 32),
        13 => ("uint64", 64),
        14 => ("complex64", 64),
        15 => ("complex128", 128),
        16 => ("bfloat16", 16),
        17 => ("float8e4m3fn", 8),
        18 => ("float8e4m3fnuz", 8),
        19 => ("float8e5m2", 8),
        20 => ("float8e5m2fnuz", 8),
        21 => ("uint4", 4),
        22 => ("int4", 4),
        23 => ("float4e2m1", 4),
        _ => ("unknown", 0),
    }
}

/// Canonical name and size in bits of a safetensors dtype string, `None` if unknown.
pub fn safetensors_dtype(name: &str) -> Option<(&'static str, u64)> {
    Some(match name {
        "BOOL" => ("bool", 8),
        "U8" => ("uint8", 8),
        "I8" => ("int8", 8),
        "F8_E5M2" => ("float8e5m2", 8),
        "F8_E4M3" => ("float8e4m3fn", 8),
        "F8_E8M0" => ("float8e8m0", 8),
        "I16" => ("int16", 16),
        "U16" => ("uint16", 16),
        "F16" => ("float16", 16),
        "BF16" => ("bfloat16", 16),
        "I32" => ("int32", 32),
        "U32" => ("uint32", 32),
        "F32" => ("float32", 32),
        "F64" => ("float64", 64),
        "I64" => ("int64", 64),
        "U64" => ("uint64", 64),
        "C64" => ("complex64", 64),
        "F4" => ("float4e2m1", 4),
        "F6_E2M3" => ("float6e2m3", 6),
        "F6_E3M2" => ("float6e3m2", 6),
        _ => return None,
    })
}

/// Bytes taken by `elements` values of `bits` bits each, rounded up; `None` on overflow.
pub fn bytes_for(elements: u64, bits: u64) -> Option<u64> {
    elements.checked_mul(bits).map(|b| b.div_ceil(8))
}

/// Size in bits of a canonical dtype name produced by [`safetensors_dtype`].
pub fn safetensors_bits(canonical: &str) -> u64 {
    [
        "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16", "BF16", "I32",
        "U32", "F32", "F64", "I64", "U64", "C64", "F4", "F6_E2M3", "F6_E3M2",
    ]
    .iter()
    .filter_map(|n| safetensors_dtype(n))
    .find(|(name, _)| *name == canonical)
    .map_or(0, |(_, bits)| bits)
}
