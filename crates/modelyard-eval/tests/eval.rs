//! End-to-end evaluations on real and generated data, one per dataset format, and the bad inputs
//! that must fail with a message naming the problem.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{GrayImage, ImageFormat};
use modelyard_eval::linear::linear_onnx;
use modelyard_eval::{evaluate, EvalArgs, EvalReport, EvalRequest, Task};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist")
}

fn run(model: &Path, dataset: &Path, args: EvalArgs) -> modelyard_eval::Result<EvalReport> {
    evaluate(
        &EvalRequest {
            model: model.into(),
            dataset: dataset.into(),
            args,
            ..EvalRequest::default()
        },
        &mut |_, _| {},
    )
}

fn image_task() -> EvalArgs {
    EvalArgs {
        task: Some(Task::ImageClassification),
        ..EvalArgs::default()
    }
}

/// The first `n` MNIST test images and labels.
fn mnist_head(n: usize) -> Vec<(Vec<u8>, u8)> {
    use std::io::Read;
    let read = |name: &str| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(fixtures().join(name)).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let images = read("t10k-images-idx3-ubyte.gz");
    let labels = read("t10k-labels-idx1-ubyte.gz");
    (0..n)
        .map(|i| {
            (
                images[16 + i * 784..16 + (i + 1) * 784].to_vec(),
                labels[8 + i],
            )
        })
        .collect()
}

fn png(pixels: &[u8], side: u32) -> Vec<u8> {
    let img = GrayImage::from_raw(side, side, pixels.to_vec()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn mnist_full_test_split_gives_9890_correct() {
    let r = run(&fixtures().join("mnist-8.onnx"), &fixtures(), image_task()).unwrap();
    assert_eq!(r.samples, 10_000);
    assert_eq!(r.metrics["correct"], 9890.0);
    assert!((r.metrics["accuracy"] - 0.989).abs() < 1e-12);
    assert!(r.metrics["top5_accuracy"] > 0.99);
    let confusion = r.confusion.unwrap();
    assert_eq!(confusion.len(), 10);
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 10_000);
    assert_eq!(r.batch_size, 1, "mnist-8 fixes its batch at 1");
    assert_eq!(r.record.dataset.files.len(), 2);
    assert_eq!(r.record.model.sha256.len(), 64);
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p95 >= r.latency_ms.p50);
}

#[test]
fn image_folders_and_parquet_images_agree_with_idx() {
    let n = 64;
    let head = mnist_head(n);
    let idx = run(
        &fixtures().join("mnist-8.onnx"),
        &fixtures(),
        EvalArgs {
            limit: Some(n),
            ..image_task()
        },
    )
    .unwrap();
    assert_eq!(idx.samples, n as u64);

    // Class folders of PNG files.
    let dir = tempfile::tempdir().unwrap();
    for (i, (pixels, label)) in head.iter().enumerate() {
        let class = dir.path().join("test").join(label.to_string());
        fs::create_dir_all(&class).unwrap();
        fs::write(class.join(format!("{i:03}.png")), png(pixels, 28)).unwrap();
    }
    let folder = run(&fixtures().join("mnist-8.onnx"), dir.path(), image_task()).unwrap();
    assert_eq!(folder.samples, n as u64);
    assert_eq!(folder.metrics["correct"], idx.metrics["correct"]);

    // Parquet as Hugging Face writes image datasets: image = {bytes, path}, label = int64.
    let pq = tempfile::tempdir().unwrap();
    write_image_parquet(&pq.path().join("test-00000.parquet"), &head);
    let parquet = run(&fixtures().join("mnist-8.onnx"), pq.path(), image_task()).unwrap();
    assert_eq!(parquet.samples, n as u64);
    assert_eq!(parquet.metrics["correct"], idx.metrics["correct"]);
}

fn write_image_parquet(path: &Path, rows: &[(Vec<u8>, u8)]) {
    let schema = Arc::new(
        parse_message_type(
            "message hf { required group image { optional binary bytes; optional binary path (UTF8); } \
             required int64 label; }",
        )
        .unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut w = SerializedFileWriter::new(fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let bytes: Vec<ByteArray> = rows
        .iter()
        .map(|(p, _)| ByteArray::from(png(p, 28)))
        .collect();
    let labels: Vec<i64> = rows.iter().map(|(_, l)| i64::from(*l)).collect();
    let present = vec![1i16; rows.len()];
    let absent = vec![0i16; rows.len()];
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&bytes, Some(&present), None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&[], Some(&absent), None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&labels, None, None)
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

/// A dataset directory with a card and `test.csv`.
fn csv_dataset(card: &str, csv: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("README.md"), card).unwrap();
    fs::write(d.path().join("test.csv"), csv).unwrap();
    d
}

#[test]
fn tabular_classification_on_csv_with_named_labels() {
    let m = tempfile::tempdir().unwrap();
    // Identity weights: the predicted class is the larger of the two features.
    let model = m.path().join("argmax.onnx");
    fs::write(
        &model,
        linear_onnx(2, 2, &[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0]),
    )
    .unwrap();
    let d = csv_dataset(
        "---\ntask_categories: [tabular-classification]\nlabel_names: [no, yes]\n---\n",
        "a,b,label\n1,0,no\n0,1,yes\n2,3,yes\n5,1,yes\n",
    );
    let r = run(&model, d.path(), EvalArgs::default()).unwrap();
    assert_eq!(r.task, Task::TabularClassification);
    assert_eq!(r.metrics["accuracy"], 0.75);
    assert_eq!(r.confusion.unwrap(), vec![vec![1, 0], vec![1, 2]]);
    // no: F1 = 2/3; yes: F1 = 4/5.
    assert!((r.metrics["macro_f1"] - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
    assert_eq!(r.batch_size, 256);
}

#[test]
fn tabular_regression_on_csv_and_parquet() {
    let m = tempfile::tempdir().unwrap();
    // y = 2a + 3b + 1
    let model = m.path().join("reg.onnx");
    fs::write(&model, linear_onnx(2, 1, &[2.0, 3.0], &[1.0])).unwrap();
    // Predictions 1, 6, 13; targets 1, 7, 11: errors 0, -1, 2.
    let d = csv_dataset(
        "---\nlabel_column: y\n---\n",
        "a,b,y\n0,0,1\n1,1,7\n3,2,11\n",
    );
    let args = EvalArgs {
        task: Some(Task::TabularRegression),
        ..EvalArgs::default()
    };
    let r = run(&model, d.path(), args.clone()).unwrap();
    assert!((r.metrics["rmse"] - (5.0f64 / 3.0).sqrt()).abs() < 1e-6);
    assert!((r.metrics["mae"] - 1.0).abs() < 1e-6);
    // Targets mean 19/3; SS_tot = 1 + 49 + 121 - 361/3 = 50.666…
    assert!((r.metrics["r2"] - (1.0 - 5.0 / (171.0 - 361.0 / 3.0))).abs() < 1e-6);

    let pq = tempfile::tempdir().unwrap();
    write_table_parquet(&pq.path().join("test.parquet"));
    let p = run(
        &model,
        pq.path(),
        EvalArgs {
            label_column: Some("y".into()),
            ..args
        },
    )
    .unwrap();
    assert_eq!(p.metrics, r.metrics);
}

fn write_table_parquet(path: &Path) {
    use parquet::data_type::DoubleType;
    let schema = Arc::new(
        parse_message_type(
            "message t { required double a; required double b; required double y; }",
        )
        .unwrap(),
    );
    let mut w = SerializedFileWriter::new(
        fs::File::create(path).unwrap(),
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut rg = w.next_row_group().unwrap();
    for values in [[0.0, 1.0, 3.0], [0.0, 1.0, 2.0], [1.0, 7.0, 11.0]] {
        let mut col = rg.next_column().unwrap().unwrap();
        col.typed::<DoubleType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
    }
    rg.close().unwrap();
    w.close().unwrap();
}

fn err(r: modelyard_eval::Result<EvalReport>) -> String {
    r.expect_err("the evaluation should fail").to_string()
}

#[test]
fn images_of_the_wrong_size_name_both_sizes() {
    let d = tempfile::tempdir().unwrap();
    let class = d.path().join("3");
    fs::create_dir_all(&class).unwrap();
    fs::write(class.join("big.png"), png(&[0u8; 32 * 32], 32)).unwrap();
    let e = err(run(
        &fixtures().join("mnist-8.onnx"),
        d.path(),
        image_task(),
    ));
    assert!(
        e.contains("3/big.png") && e.contains("32×32") && e.contains("28×28"),
        "{e}"
    );
}

#[test]
fn a_corrupt_png_is_named() {
    let d = tempfile::tempdir().unwrap();
    let class = d.path().join("1");
    fs::create_dir_all(&class).unwrap();
    fs::write(class.join("ok.png"), png(&[0u8; 784], 28)).unwrap();
    let mut bad = png(&[7u8; 784], 28);
    bad.truncate(bad.len() / 2);
    fs::write(class.join("torn.png"), bad).unwrap();
    let e = err(run(
        &fixtures().join("mnist-8.onnx"),
        d.path(),
        image_task(),
    ));
    assert!(
        e.contains("1/torn.png") && e.contains("cannot decode"),
        "{e}"
    );
}

#[test]
fn a_missing_label_column_is_named() {
    let m = tempfile::tempdir().unwrap();
    let model = m.path().join("m.onnx");
    fs::write(
        &model,
        linear_onnx(2, 2, &[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0]),
    )
    .unwrap();
    let d = csv_dataset("", "a,b,class\n1,0,0\n");
    let args = EvalArgs {
        task: Some(Task::TabularClassification),
        ..EvalArgs::default()
    };
    let e = err(run(&model, d.path(), args));
    assert!(
        e.contains("label column \"label\" is missing") && e.contains("a, b, class"),
        "{e}"
    );
}

#[test]
fn an_empty_split_is_an_error() {
    let m = tempfile::tempdir().unwrap();
    let model = m.path().join("m.onnx");
    fs::write(
        &model,
        linear_onnx(2, 2, &[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0]),
    )
    .unwrap();
    let args = EvalArgs {
        task: Some(Task::TabularClassification),
        ..EvalArgs::default()
    };
    // A header and no rows.
    let d = csv_dataset("", "a,b,label\n");
    let e = err(run(&model, d.path(), args.clone()));
    assert!(e.contains("\"test\" has no samples"), "{e}");
    // A card whose split matches no file.
    let d = csv_dataset(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n    path: holdout/*.csv\n---\n",
        "a,b,label\n1,0,0\n",
    );
    let e = err(run(&model, d.path(), args));
    assert!(e.contains("split \"test\" is empty"), "{e}");
}

#[test]
fn truncated_idx_and_wrong_feature_counts_fail_clearly() {
    let d = tempfile::tempdir().unwrap();
    let labels = fs::read(fixtures().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    fs::write(d.path().join("t10k-labels-idx1-ubyte.gz"), labels).unwrap();
    // An uncompressed header promising 10 images of 28×28, with one image's bytes.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28];
    images.extend([0u8; 784]);
    fs::write(d.path().join("t10k-images-idx3-ubyte"), images).unwrap();
    let e = err(run(
        &fixtures().join("mnist-8.onnx"),
        d.path(),
        image_task(),
    ));
    assert!(
        e.contains("holds 10 images but") || e.contains("truncated"),
        "{e}"
    );

    let m = tempfile::tempdir().unwrap();
    let model = m.path().join("m.onnx");
    fs::write(&model, linear_onnx(3, 2, &[0.0; 6], &[0.0, 0.0])).unwrap();
    let d = csv_dataset("", "a,b,label\n1,0,0\n");
    let e = err(run(
        &model,
        d.path(),
        EvalArgs {
            task: Some(Task::TabularClassification),
            ..EvalArgs::default()
        },
    ));
    assert!(
        e.contains("test.csv row 1") && e.contains("2 feature columns") && e.contains("takes 3"),
        "{e}"
    );
}

#[test]
fn a_batch_size_the_graph_cannot_take_is_refused_with_the_reason() {
    // mnist-8 declares batch 1 and reshapes to [1, 256]: batch 4 is tried, and refused clearly.
    let e = err(run(
        &fixtures().join("mnist-8.onnx"),
        &fixtures(),
        EvalArgs {
            batch_size: Some(4),
            limit: Some(8),
            ..image_task()
        },
    ));
    assert!(
        e.contains("cannot run the model at input shape [4, 1, 28, 28]")
            && e.contains("[1, 1, 28, 28]"),
        "{e}"
    );
    // Batch 1, as the graph declares, still runs.
    let r = run(
        &fixtures().join("mnist-8.onnx"),
        &fixtures(),
        EvalArgs {
            batch_size: Some(1),
            limit: Some(8),
            ..image_task()
        },
    )
    .unwrap();
    assert_eq!((r.batch_size, r.samples), (1, 8));
}
