//! Diffs between ONNX models, and the JSON shape of `ModelFeatures`.

use std::path::PathBuf;

use modelyard_analyze::{analyze_path, diff, ModelFeatures, OpCategory, Verdict};

fn load(name: &str) -> ModelFeatures {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    analyze_path(&p).expect(name)
}

#[test]
fn onnx_diffs() {
    let mnist = load("mnist-8.onnx");
    let again = diff(&mnist, &mnist);
    assert_eq!(again.verdict, Verdict::SameArchitecture);
    assert!(again.op_deltas.is_empty() && again.tensors_changed.is_empty());

    let alex = load("light_bvlc_alexnet.onnx");
    let zf = load("light_zfnet512.onnx");
    let d = diff(&alex, &zf);
    assert_eq!(d.verdict, Verdict::DifferentArchitecture);
    assert_eq!(d.parameter_delta, 87_250_536 - 60_965_224);
    assert_eq!(d.op_deltas.get("Dropout"), Some(&-2));
    assert_eq!(d.category_deltas.get(&OpCategory::Convolution), None);
}

#[test]
fn features_round_trip_through_json() {
    let f = load("mnist-8.onnx");
    let json = serde_json::to_value(&f).expect("json");
    assert_eq!(json["format"], "onnx");
    assert_eq!(json["op_categories"]["convolution"], 2);
    assert_eq!(
        json["inputs"][0]["shape"],
        serde_json::json!([1, 1, 28, 28])
    );
    let back: ModelFeatures = serde_json::from_value(json).expect("parse");
    assert_eq!(back, f);
}
