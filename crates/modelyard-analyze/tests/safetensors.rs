//! safetensors headers written by hand: parameters, layer kinds, shards and diffs.

use std::path::{Path, PathBuf};

use modelyard_analyze::{
    analyze_path, analyze_safetensors_index, diff, AnalyzeError, LayerKinds, ModelFormat, Verdict,
};

/// A tensor to write: name, safetensors dtype, shape, and a byte to fill it with.
type Spec<'a> = (&'a str, &'a str, &'a [u64], u8);

fn bytes_per(dtype: &str) -> u64 {
    match dtype {
        "F32" | "I32" => 4,
        "F16" | "BF16" => 2,
        "I64" | "F64" => 8,
        _ => 1,
    }
}

/// Writes a safetensors file the way the reference writer does: JSON header, then data.
fn write_safetensors(path: &Path, specs: &[Spec<'_>]) {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut data = Vec::new();
    for &(name, dtype, shape, fill) in specs {
        let n = shape.iter().product::<u64>() * bytes_per(dtype);
        let begin = data.len() as u64;
        data.extend(std::iter::repeat_n(fill, n as usize));
        header.insert(
            name.into(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, begin + n]}),
        );
    }
    let header = serde_json::to_vec(&header).expect("json");
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    std::fs::write(path, out).expect("write");
}

const BASE: &[Spec<'static>] = &[
    ("model.embed_tokens.weight", "BF16", &[100, 16], 1),
    ("model.layers.0.input_layernorm.weight", "BF16", &[16], 2),
    (
        "model.layers.0.self_attn.q_proj.weight",
        "BF16",
        &[16, 16],
        3,
    ),
    (
        "model.layers.0.self_attn.k_proj.weight",
        "BF16",
        &[16, 16],
        4,
    ),
    (
        "model.layers.0.self_attn.v_proj.weight",
        "BF16",
        &[16, 16],
        5,
    ),
    (
        "model.layers.0.self_attn.o_proj.weight",
        "BF16",
        &[16, 16],
        6,
    ),
    ("model.layers.0.mlp.up_proj.weight", "BF16", &[64, 16], 7),
    ("model.layers.0.mlp.down_proj.weight", "BF16", &[16, 64], 8),
    (
        "model.layers.1.self_attn.q_proj.weight",
        "BF16",
        &[16, 16],
        9,
    ),
    ("model.layers.1.mlp.up_proj.weight", "BF16", &[64, 16], 10),
    ("model.norm.weight", "F32", &[16], 11),
    ("vision.patch_embed.proj.weight", "F32", &[16, 3, 4, 4], 12),
];

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn header_gives_parameters_dtypes_and_layer_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = path(dir.path(), "model.safetensors");
    write_safetensors(&p, BASE);
    let f = analyze_path(&p).expect("analyse");
    assert_eq!(f.format, ModelFormat::Safetensors);
    let bf16 = 1600 + 16 + 4 * 256 + 2 * 1024 + 256 + 1024;
    assert_eq!(f.parameters.by_dtype["bfloat16"].count, bf16);
    assert_eq!(f.parameters.by_dtype["bfloat16"].bytes, 2 * bf16);
    assert_eq!(f.parameters.by_dtype["float32"].count, 16 + 768);
    assert_eq!(f.parameters.total, bf16 + 16 + 768);
    assert_eq!(f.tensors.len(), 12);
    assert!(f.tensors.iter().all(|t| t.content_hash.is_some()));
    assert_eq!(f.macs_per_sample, None);
    let kinds = f.layer_kinds.expect("layer kinds");
    assert_eq!(
        kinds,
        LayerKinds {
            attention: 2,
            mlp: 2,
            convolution: 1,
            embedding: 2,
            norm: 2
        }
    );
}

#[test]
fn sharded_index_merges_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second) = BASE.split_at(5);
    write_safetensors(&path(dir.path(), "model-00001-of-00002.safetensors"), first);
    write_safetensors(
        &path(dir.path(), "model-00002-of-00002.safetensors"),
        second,
    );
    let mut map = serde_json::Map::new();
    for (i, spec) in BASE.iter().enumerate() {
        let shard = if i < 5 {
            "model-00001-of-00002.safetensors"
        } else {
            "model-00002-of-00002.safetensors"
        };
        map.insert(spec.0.into(), shard.into());
    }
    let whole = path(dir.path(), "whole.safetensors");
    write_safetensors(&whole, BASE);
    let single = analyze_path(&whole).expect("single file");
    let index =
        serde_json::json!({"metadata": {"total_size": single.parameters.bytes}, "weight_map": map});
    let index_path = path(dir.path(), "model.safetensors.index.json");
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write");

    let merged = analyze_safetensors_index(&index_path).expect("index");
    assert_eq!(merged.parameters, single.parameters);
    assert_eq!(merged.tensors, single.tensors);
    assert_eq!(merged.layer_kinds, single.layer_kinds);
    assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);
    // analyze_path dispatches on the index file name too.
    assert_eq!(
        analyze_path(&index_path)
            .expect("dispatch")
            .parameters
            .total,
        single.parameters.total
    );
    assert_eq!(diff(&single, &merged).verdict, Verdict::SameArchitecture);

    // A shard name that escapes the folder is refused.
    let evil = serde_json::json!({"weight_map": {"w": "../etc/passwd"}});
    std::fs::write(&index_path, serde_json::to_vec(&evil).expect("json")).expect("write");
    assert!(matches!(
        analyze_safetensors_index(&index_path),
        Err(AnalyzeError::BadIndex(_))
    ));
    // A tensor the index promises but no shard holds is an error.
    let mut missing = map.clone();
    missing.insert(
        "lm_head.weight".into(),
        "model-00002-of-00002.safetensors".into(),
    );
    let idx = serde_json::json!({"weight_map": missing});
    std::fs::write(&index_path, serde_json::to_vec(&idx).expect("json")).expect("write");
    let err = analyze_safetensors_index(&index_path).expect_err("missing tensor");
    assert!(
        err.to_string()
            .contains("1 tensor(s) in the index are in no shard"),
        "{err}"
    );
}

#[test]
fn diff_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let analyse = |name: &str, specs: &[Spec<'_>]| {
        let p = path(dir.path(), name);
        write_safetensors(&p, specs);
        analyze_path(&p).expect("analyse")
    };
    let base = analyse("base.safetensors", BASE);

    let same = diff(&base, &analyse("copy.safetensors", BASE));
    assert_eq!(same.verdict, Verdict::SameArchitecture);
    assert!(same.tensors_changed.is_empty() && same.parameter_delta == 0);

    let mut tuned = BASE.to_vec();
    tuned[2].3 = 99;
    tuned[6].3 = 98;
    let ft = diff(&base, &analyse("tuned.safetensors", &tuned));
    assert_eq!(ft.verdict, Verdict::FineTune);
    assert_eq!(
        ft.tensors_changed,
        [
            "model.layers.0.mlp.up_proj.weight",
            "model.layers.0.self_attn.q_proj.weight"
        ]
    );
    assert!(
        ft.summary
            .starts_with("b is a fine-tune of a: 2 of 12 tensors changed"),
        "{}",
        ft.summary
    );

    let mut lora = BASE.to_vec();
    lora.push((
        "model.layers.0.self_attn.q_proj.lora_A.weight",
        "F32",
        &[4, 16],
        1,
    ));
    lora.push((
        "model.layers.0.self_attn.q_proj.lora_B.weight",
        "F32",
        &[16, 4],
        1,
    ));
    let ad = diff(&base, &analyse("lora.safetensors", &lora));
    assert_eq!(ad.verdict, Verdict::Adapter);
    assert_eq!(ad.tensors_added.len(), 2);
    assert_eq!(ad.parameter_delta, 128);

    let mut wider = BASE.to_vec();
    wider[6] = ("model.layers.0.mlp.up_proj.weight", "BF16", &[128, 16], 7);
    wider.remove(11);
    let dd = diff(&base, &analyse("wider.safetensors", &wider));
    assert_eq!(dd.verdict, Verdict::DifferentArchitecture);
    assert_eq!(dd.tensors_reshaped.len(), 1);
    assert_eq!(dd.tensors_reshaped[0].to, [128, 16]);
    assert_eq!(dd.tensors_removed, ["vision.patch_embed.proj.weight"]);
    assert_eq!(dd.parameter_delta, 1024 - 768);
    // The diff serialises for the API.
    let json = serde_json::to_value(&dd).expect("json");
    assert_eq!(json["verdict"], "different_architecture");
}
