//! ONNX analysis against the published parameter counts and MACs of real architectures.

use std::path::PathBuf;

use modelyard_analyze::{analyze_path, Dim, ModelFormat, OpCategory};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// (file, published parameters, published MACs per 224×224 image).
const REFERENCE: &[(&str, u64, Option<f64>)] = &[
    ("light_resnet50.onnx", 25_608_360, Some(4.1e9)),
    ("light_vgg19.onnx", 143_667_112, Some(19.6e9)),
    ("light_squeezenet.onnx", 1_234_856, Some(0.35e9)),
    ("light_densenet121.onnx", 8_145_384, Some(2.9e9)),
    ("light_bvlc_alexnet.onnx", 60_965_224, None),
    ("light_zfnet512.onnx", 87_250_536, None),
    ("light_inception_v1.onnx", 6_997_480, None),
    ("light_inception_v2.onnx", 11_229_992, None),
    ("light_shufflenet.onnx", 1_420_032, None),
];

#[test]
fn parameters_and_macs_match_published_figures() {
    for &(file, params, macs) in REFERENCE {
        let f = analyze_path(&data(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = f.parameters.total as f64;
        let err = (got - params as f64).abs() / params as f64;
        assert!(
            err < 0.01,
            "{file}: {got} parameters, published {params} ({:.3}% off)",
            err * 100.0
        );
        if let Some(macs) = macs {
            let got = f.macs_per_sample.expect("macs") as f64;
            let err = (got - macs).abs() / macs;
            assert!(
                err < 0.03,
                "{file}: {got:.4e} MACs, published {macs:.4e} ({:.2}% off)",
                err * 100.0
            );
        }
        let flops = f.flops_per_sample.expect("flops");
        assert!(
            flops > 2 * f.macs_per_sample.unwrap_or(0),
            "{file}: flops {flops}"
        );
        assert_eq!(f.format, ModelFormat::Onnx);
        assert_eq!(f.opset, Some(9), "{file}");
        assert!(f.assumed_dims.is_empty(), "{file}: {:?}", f.assumed_dims);
        // Weights listed among the graph inputs are not model inputs.
        assert_eq!(
            f.inputs.len(),
            1,
            "{file}: {:?}",
            f.inputs.iter().map(|i| &i.name).collect::<Vec<_>>()
        );
        assert_eq!(
            f.inputs[0].shape,
            Some(vec![
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Fixed(224),
                Dim::Fixed(224)
            ])
        );
        assert!(!f.op_histogram.contains_key("ConstantOfShape"), "{file}");
        assert!(f.op_categories[&OpCategory::Convolution] > 0, "{file}");
        assert!(
            f.activation_memory_bytes.unwrap_or(0) > 224 * 224 * 3 * 4,
            "{file}"
        );
        assert!(
            f.warnings.iter().all(|w| !w.contains("shapes unknown")),
            "{file}: {:?}",
            f.warnings
        );
    }
}

#[test]
fn resnet50_structure() {
    let f = analyze_path(&data("light_resnet50.onnx")).expect("resnet50");
    assert_eq!(f.op_histogram["Conv"], 53);
    assert_eq!(f.op_histogram["BatchNormalization"], 53);
    assert_eq!(f.op_categories[&OpCategory::Convolution], 53);
    assert_eq!(f.op_categories[&OpCategory::Dense], 1);
    assert_eq!(f.op_categories[&OpCategory::Pooling], 2);
    assert_eq!(
        f.outputs[0].shape,
        Some(vec![Dim::Fixed(1), Dim::Fixed(1000)])
    );
    assert_eq!(f.producer.as_deref(), Some("onnx-caffe2"));
    // conv1 → bn → relu → pool → 16 bottlenecks of ≥ 3 convs (+bn, relu) ... → fc → softmax.
    let depth = f.depth.expect("depth");
    assert!((150..=200).contains(&depth), "depth {depth}");
    assert!(f.parameters.by_dtype["float32"].bytes == 4 * f.parameters.by_dtype["float32"].count);
    // The unused label blob initializer is reported, not counted.
    assert!(
        f.warnings.iter().any(|w| w.contains("unused initializer")),
        "{:?}",
        f.warnings
    );
}

#[test]
fn mnist_counts_are_exact() {
    let f = analyze_path(&data("mnist-8.onnx")).expect("mnist");
    // 5,996 numbers in 7 initializers; the 2 of the Reshape target shape are not parameters.
    assert_eq!(f.parameters.total, 5_994);
    assert_eq!(f.parameters.bytes, 5_994 * 4);
    assert_eq!(f.parameters.by_dtype.len(), 1);
    assert_eq!(f.tensors.len(), 6);
    assert!(f.tensors.iter().all(|t| t.content_hash.is_some()));
    let hist: Vec<(&str, u64)> = f
        .op_histogram
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        hist,
        [
            ("Conv", 2),
            ("Gemm", 1),
            ("MaxPool", 2),
            ("Relu", 2),
            ("Reshape", 1)
        ]
    );
    assert_eq!(f.inputs.len(), 1);
    assert_eq!(f.inputs[0].name, "Input3");
    assert_eq!(f.inputs[0].dtype, "float32");
    assert_eq!(
        f.inputs[0].shape,
        Some(vec![
            Dim::Fixed(1),
            Dim::Fixed(1),
            Dim::Fixed(28),
            Dim::Fixed(28)
        ])
    );
    assert_eq!(
        f.outputs[0].shape,
        Some(vec![Dim::Fixed(1), Dim::Fixed(10)])
    );
    assert_eq!(f.opset, Some(8));
    assert_eq!(f.producer.as_deref(), Some("CNTK 2.5.1"));
    // conv1 8×28×28×(1×5×5) + conv2 16×14×14×(8×5×5) + fc 256×10.
    assert_eq!(f.macs_per_sample, Some(156_800 + 627_200 + 2_560));
    assert_eq!(f.depth, Some(8));
    // Peak: conv1's 8×28×28 output and its Relu's output, live together (the input is freed).
    assert_eq!(f.activation_memory_bytes, Some((6_272 + 6_272) * 4));
}

#[test]
fn normalization_work_counts_only_what_cannot_fold_into_a_convolution() {
    let work = |file: &str| {
        analyze_path(&data(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .normalization_work
            .expect("normalization work")
    };
    // Every batch norm of ResNet-50 follows a convolution; MNIST has none.
    assert_eq!(work("light_resnet50.onnx"), 0);
    assert_eq!(work("mnist-8.onnx"), 0);
    // GoogLeNet's two LRNs (size 5) over 64 and 192 channels of 55×55.
    assert_eq!(work("light_inception_v1.onnx"), 5 * (64 + 192) * 55 * 55);
    // DenseNet-121 normalises every concatenation before its next convolution: at least the
    // 58 concatenations' outputs, the smallest being 1024×7×7 values.
    let dense = work("light_densenet121.onnx");
    assert!(dense > 58 * 1024 * 7 * 7, "densenet {dense}");
}

#[test]
fn im2col_bytes_count_gathered_patches_of_real_convolutions_only() {
    let bytes = |file: &str| {
        analyze_path(&data(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .im2col_bytes
            .expect("im2col bytes")
    };
    // conv1 (1·5·5) × 28·28 and conv2 (8·5·5) × 14·14 float32 patches.
    assert_eq!(bytes("mnist-8.onnx"), 4 * (25 * 784 + 200 * 196));
    // AlexNet: 11×11 stem over 54×54, 5×5 (two groups of 48 channels) over 26×26, then three
    // 3×3 (256, 2×192, 2×192 channels in) over 12×12.
    assert_eq!(
        bytes("light_bvlc_alexnet.onnx"),
        4 * (363 * 2916 + 2400 * 676 + 2304 * 144 + 2 * 3456 * 144)
    );
    // ShuffleNet: the 3×3 stride-2 stem alone; its grouped 1×1 convolutions read their input as
    // it is and its depthwise ones run as a kernel of their own.
    assert_eq!(bytes("light_shufflenet.onnx"), 4 * 27 * 112 * 112);
}
