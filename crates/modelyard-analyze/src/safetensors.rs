//! safetensors: reads and checks the header only (plus bounded hashing), and sharded indexes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::dtype::{bytes_for, safetensors_dtype};
use crate::{AnalyzeError, ModelFeatures, ModelFormat, TensorEntry};

/// Largest header accepted; real headers are kilobytes to a few megabytes.
pub const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

#[derive(Deserialize)]
struct RawTensor {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Analyses a `.safetensors` file with the default hashing budget.
pub fn analyze_safetensors(path: &Path) -> Result<ModelFeatures, AnalyzeError> {
    analyze_safetensors_with(path, crate::AnalyzeOptions::default().hash_budget_bytes)
}

pub(crate) fn analyze_safetensors_with(
    path: &Path,
    budget: u64,
) -> Result<ModelFeatures, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    analyze_safetensors_reader(&mut file, len, budget)
}

/// Analyses safetensors bytes from any seekable reader of `len` bytes. Tensors are hashed in
/// file order until `hash_budget` bytes have been read; the rest get no hash.
pub fn analyze_safetensors_reader<R: Read + Seek>(
    r: &mut R,
    len: u64,
    hash_budget: u64,
) -> Result<ModelFeatures, AnalyzeError> {
    if len < 8 {
        return Err(AnalyzeError::Truncated(format!(
            "{len} bytes, too short for a safetensors header"
        )));
    }
    let mut n = [0u8; 8];
    r.read_exact(&mut n)?;
    let n = u64::from_le_bytes(n);
    if n > MAX_SAFETENSORS_HEADER {
        return Err(AnalyzeError::HeaderTooLarge {
            claimed: n,
            limit: MAX_SAFETENSORS_HEADER,
        });
    }
    if n > len - 8 {
        return Err(AnalyzeError::Truncated(format!(
            "header claims {n} bytes but the file has {}",
            len - 8
        )));
    }
    let mut header = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    r.by_ref().take(n).read_to_end(&mut header)?;
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| AnalyzeError::BadHeader(format!("header is not a JSON object: {e}")))?;
    drop(header);
    let data_len = len - 8 - n;
    let mut f = ModelFeatures::empty(ModelFormat::Safetensors);
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    for (name, v) in map {
        if name == "__metadata__" {
            continue;
        }
        let t: RawTensor = serde_json::from_value(v)
            .map_err(|e| AnalyzeError::BadHeader(format!("tensor {name:?}: {e}")))?;
        let (dtype, bits) = safetensors_dtype(&t.dtype).ok_or_else(|| {
            AnalyzeError::BadHeader(format!("tensor {name:?}: unknown dtype {:?}", t.dtype))
        })?;
        let elements = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = elements.and_then(|e| bytes_for(e, bits)).ok_or_else(|| {
            AnalyzeError::BadOffsets(format!("tensor {name:?}: shape {:?} overflows", t.shape))
        })?;
        let [begin, end] = t.data_offsets;
        if begin > end || end - begin != bytes {
            return Err(AnalyzeError::BadOffsets(format!(
                "tensor {name:?}: offsets [{begin}, {end}] do not hold {bytes} bytes of {} {:?}",
                t.dtype, t.shape
            )));
        }
        if end > data_len {
            return Err(AnalyzeError::BadOffsets(format!(
                "tensor {name:?} ends at byte {end} but the data section is only {data_len} bytes"
            )));
        }
        f.parameters.add(dtype, elements.unwrap_or(0), bytes);
        spans.push((begin, end, f.tensors.len()));
        f.tensors.push(TensorEntry {
            name,
            dtype: dtype.to_owned(),
            elements: elements.unwrap_or(0),
            shape: t.shape,
            content_hash: None,
        });
    }
    spans.sort_unstable();
    let mut covered = 0u64;
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            let (a, b) = (&f.tensors[w[0].2].name, &f.tensors[w[1].2].name);
            return Err(AnalyzeError::BadOffsets(format!(
                "tensors {a:?} and {b:?} overlap"
            )));
        }
    }
    for &(b, e, _) in &spans {
        covered += e - b;
    }
    if covered != data_len {
        f.warnings.push(format!(
            "{} data bytes belong to no tensor",
            data_len - covered
        ));
    }
    let mut left = hash_budget;
    let mut buf = vec![0u8; 64 << 10];
    for &(b, e, i) in &spans {
        if e - b > left {
            continue;
        }
        left -= e - b;
        r.seek(SeekFrom::Start(8 + n + b))?;
        let mut h = Sha256::new();
        let mut todo = e - b;
        while todo > 0 {
            let k = usize::try_from(todo.min(buf.len() as u64)).unwrap_or(buf.len());
            r.read_exact(&mut buf[..k])?;
            h.update(&buf[..k]);
            todo -= k as u64;
        }
        f.tensors[i].content_hash = Some(hex::encode(h.finalize()));
    }
    if f.tensors.iter().any(|t| t.content_hash.is_none()) {
        f.warnings
            .push("some tensors were not hashed (hash budget spent)".into());
    }
    f.layer_kinds = Some(crate::layers::infer(&f.tensors));
    Ok(f)
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    weight_map: BTreeMap<String, String>,
}

/// Analyses a sharded model from its `model.safetensors.index.json`, reading the header of
/// each shard named there (shards must sit in the index's folder or below it).
pub fn analyze_safetensors_index(index_json_path: &Path) -> Result<ModelFeatures, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: index_json_path.to_owned(),
        source,
    };
    let file = File::open(index_json_path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > MAX_SAFETENSORS_HEADER {
        return Err(AnalyzeError::TooLarge {
            what: "a safetensors index",
            size,
            limit: MAX_SAFETENSORS_HEADER,
        });
    }
    let mut text = Vec::new();
    file.take(MAX_SAFETENSORS_HEADER)
        .read_to_end(&mut text)
        .map_err(io)?;
    let index: RawIndex =
        serde_json::from_slice(&text).map_err(|e| AnalyzeError::BadIndex(e.to_string()))?;
    let dir = index_json_path.parent().unwrap_or(Path::new("."));
    let shards: BTreeSet<&String> = index.weight_map.values().collect();
    let mut merged = ModelFeatures::empty(ModelFormat::Safetensors);
    let mut seen = BTreeMap::new();
    for shard in shards {
        let rel = Path::new(shard);
        if shard.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(AnalyzeError::BadIndex(format!(
                "shard name {shard:?} leaves the model folder"
            )));
        }
        let f = analyze_safetensors(&dir.join(rel))?;
        for t in f.tensors {
            if let Some(other) = seen.insert(t.name.clone(), shard.clone()) {
                return Err(AnalyzeError::BadIndex(format!(
                    "tensor {:?} is in both {other} and {shard}",
                    t.name
                )));
            }
            if index.weight_map.get(&t.name) != Some(shard) {
                merged.warnings.push(format!(
                    "tensor {:?} in {shard} is not mapped to it by the index",
                    t.name
                ));
            }
            merged.parameters.add(
                &t.dtype,
                t.elements,
                bytes_for(t.elements, crate::dtype::safetensors_bits(&t.dtype)).unwrap_or(0),
            );
            merged.tensors.push(t);
        }
        merged
            .warnings
            .extend(f.warnings.into_iter().map(|w| format!("{shard}: {w}")));
    }
    let missing = index
        .weight_map
        .keys()
        .filter(|k| !seen.contains_key(*k))
        .count();
    if missing > 0 {
        return Err(AnalyzeError::BadIndex(format!(
            "{missing} tensor(s) in the index are in no shard"
        )));
    }
    let declared = index
        .metadata
        .as_ref()
        .and_then(|m| m.get("total_size"))
        .and_then(serde_json::Value::as_u64);
    if let Some(d) = declared.filter(|&d| d != merged.parameters.bytes) {
        merged.warnings.push(format!(
            "index total_size {d} differs from the {} tensor bytes found",
            merged.parameters.bytes
        ));
    }
    merged.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    merged.layer_kinds = Some(crate::layers::infer(&merged.tensors));
    Ok(merged)
}
