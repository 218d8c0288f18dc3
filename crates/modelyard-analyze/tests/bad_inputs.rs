//! Hostile and broken files: each is a clear error, never a panic or a huge allocation.

use std::path::{Path, PathBuf};

use modelyard_analyze::{analyze_path, AnalyzeError};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// Deterministic noise (xorshift), so the test never depends on luck.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn safetensors_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

#[test]
fn truncated_onnx_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = std::fs::read(data("mnist-8.onnx")).expect("mnist");
    for cut in [whole.len() / 2, whole.len() - 7, 100] {
        let p = write(dir.path(), "cut.onnx", &whole[..cut]);
        let err = analyze_path(&p).expect_err("truncated model");
        assert!(
            matches!(
                err,
                AnalyzeError::Truncated(_)
                    | AnalyzeError::NotOnnx(_)
                    | AnalyzeError::InvalidOnnx(_)
            ),
            "cut at {cut}: {err}"
        );
        assert!(!err.to_string().is_empty());
    }
    let p = write(dir.path(), "half.onnx", &whole[..whole.len() / 2]);
    let err = analyze_path(&p).expect_err("half");
    assert!(err.to_string().starts_with("truncated file"), "{err}");
}

#[test]
fn random_bytes_named_onnx_is_not_onnx() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in 1..20u64 {
        let p = write(dir.path(), "noise.onnx", &noise(4096, seed * 7919));
        let err = analyze_path(&p).expect_err("noise");
        assert!(
            matches!(
                err,
                AnalyzeError::NotOnnx(_)
                    | AnalyzeError::Truncated(_)
                    | AnalyzeError::InvalidOnnx(_)
            ),
            "seed {seed}: {err}"
        );
    }
    let p = write(dir.path(), "empty.onnx", b"");
    assert!(matches!(analyze_path(&p), Err(AnalyzeError::NotOnnx(_))));
}

#[test]
fn safetensors_claiming_a_100_gb_tensor_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let header =
        r#"{"huge":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,100000000000]}}"#;
    let p = write(
        dir.path(),
        "huge.safetensors",
        &safetensors_with_header(header, &[0u8; 64]),
    );
    let err = analyze_path(&p).expect_err("100 GB tensor");
    assert!(matches!(err, AnalyzeError::BadOffsets(_)), "{err}");
    assert!(
        err.to_string().contains("ends at byte 100000000000"),
        "{err}"
    );
}

#[test]
fn safetensors_lies_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &[u8], &str)] = &[
        // offsets that do not match dtype × shape
        (
            r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#,
            &[0; 16],
            "do not hold 16 bytes",
        ),
        // overlapping tensors
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
            &[0; 8],
            "overlap",
        ),
        // shape whose element count overflows u64
        (
            r#"{"w":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
            &[0; 8],
            "overflows",
        ),
        (
            r#"{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#,
            &[0; 1],
            "unknown dtype",
        ),
        (r#"[1,2,3]"#, &[], "not a JSON object"),
    ];
    for (header, body, needle) in cases {
        let p = write(
            dir.path(),
            "bad.safetensors",
            &safetensors_with_header(header, body),
        );
        let err = analyze_path(&p).expect_err(header);
        assert!(err.to_string().contains(needle), "{header}: {err}");
    }
    // A header length larger than the cap is refused before anything is allocated.
    let mut bytes = (u64::MAX / 2).to_le_bytes().to_vec();
    bytes.extend(b"{}");
    let p = write(dir.path(), "cap.safetensors", &bytes);
    assert!(matches!(
        analyze_path(&p),
        Err(AnalyzeError::HeaderTooLarge { .. })
    ));
    // A header length past the end of the file is a truncation.
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend(b"{}");
    let p = write(dir.path(), "short.safetensors", &bytes);
    assert!(matches!(analyze_path(&p), Err(AnalyzeError::Truncated(_))));
    let p = write(dir.path(), "tiny.safetensors", b"abc");
    assert!(matches!(analyze_path(&p), Err(AnalyzeError::Truncated(_))));
}

#[test]
fn unknown_extension_is_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "notes.txt", b"hello world");
    assert!(matches!(
        analyze_path(&p),
        Err(AnalyzeError::Unsupported(_))
    ));
    assert!(matches!(
        analyze_path(&dir.path().join("missing.onnx")),
        Err(AnalyzeError::Io { .. })
    ));
}
