//! Prints analysis time and peak RSS for every model in tests/data.
//!
//! Run with `cargo run --release -p modelyard-analyze --example bench`.

use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    println!(
        "{:<26} {:>10} {:>12} {:>14} {:>10} {:>12}",
        "model", "bytes", "time (ms)", "params", "GMACs", "VmHWM (MiB)"
    );
    for path in files {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        const RUNS: u32 = 5;
        let start = Instant::now();
        let mut result = None;
        for _ in 0..RUNS {
            result = Some(modelyard_analyze::analyze_path(&path));
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(RUNS);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match result {
            Some(Ok(f)) => println!(
                "{name:<26} {size:>10} {ms:>12.2} {:>14} {:>10.3} {:>12.1}",
                f.parameters.total,
                f.macs_per_sample.unwrap_or(0) as f64 / 1e9,
                peak_rss_kib() as f64 / 1024.0
            ),
            Some(Err(e)) => println!("{name:<26} error: {e}"),
            None => {}
        }
    }
}
