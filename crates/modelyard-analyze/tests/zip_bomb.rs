//! A zip bomb named `.pt` is refused with a clear error while memory stays bounded.

use std::io::Write;

use modelyard_analyze::{analyze_path, analyze_path_with, AnalyzeError, AnalyzeOptions};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn zip_bomb_is_refused_with_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.pt");
    // A valid pickle opening a 1.5 GiB BINBYTES8 of zeros: deflates to ~1.5 MB.
    let size: u64 = 3 << 29;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create"));
    let deflate = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("archive/data.pkl", deflate).expect("entry");
    let mut head = b"\x80\x04\x8e".to_vec();
    head.extend(size.to_le_bytes());
    zip.write_all(&head).expect("write");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        zip.write_all(&zeros).expect("write");
    }
    zip.write_all(b".").expect("write");
    zip.finish().expect("finish");
    let compressed = std::fs::metadata(&path).expect("meta").len();
    assert!(compressed < 8 << 20, "bomb is {compressed} bytes");

    let before = peak_rss_kib();
    // The declared size alone is over the default 1 GiB cap.
    let err = analyze_path(&path).expect_err("bomb");
    assert!(
        matches!(err, AnalyzeError::ZipBomb { limit } if limit == 1 << 30),
        "{err}"
    );
    assert!(err.to_string().contains("zip bomb"), "{err}");
    // With a cap above it, the 1.5 GiB member is streamed through the scanner, not buffered.
    let opts = AnalyzeOptions {
        max_uncompressed_bytes: size + 64,
        ..AnalyzeOptions::default()
    };
    let f = analyze_path_with(&path, &opts).expect("streamed scan");
    assert_eq!(f.safety, Some(modelyard_analyze::Safety::Safe));
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
}
