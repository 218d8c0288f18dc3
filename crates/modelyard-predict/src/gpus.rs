//! Published peak FP32 throughput and memory bandwidth of common GPUs, so a GPU node can be
//! predicted for before any job ran on it. Figures from NVIDIA's product datasheets and
//! architecture whitepapers (boost clock, dense FP32, no tensor cores).

use crate::features::Node;

/// `(name fragment, peak FP32 TFLOP/s, memory GB/s)`, most specific fragment first.
const GPUS: &[(&str, f64, f64)] = &[
    ("h200", 67.0, 4800.0),
    ("h100 pcie", 51.0, 2000.0),
    ("h100", 67.0, 3350.0),
    ("a100 sxm4 80gb", 19.5, 2039.0),
    ("a100 80gb", 19.5, 1935.0),
    ("a100", 19.5, 1555.0),
    ("l40s", 91.6, 864.0),
    ("l4", 30.3, 300.0),
    ("a10", 31.2, 600.0),
    ("t4", 8.1, 320.0),
    ("v100", 15.7, 900.0),
    ("p100", 9.3, 732.0),
    ("titan rtx", 16.3, 672.0),
    ("titan xp", 12.15, 547.7),
    ("rtx 2080 ti", 13.45, 616.0),
    ("rtx 3090", 35.6, 936.0),
    ("rtx 4090", 82.6, 1008.0),
];

/// Memory bandwidth assumed for CPU nodes, which report none (a coefficient learned per node
/// class absorbs the difference).
pub const CPU_MEMORY_GBS: f64 = 10.0;

/// `name` lowercased, with `_` and `-` read as spaces and runs of spaces collapsed.
fn normalise(name: &str) -> String {
    name.to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The table's peak TFLOP/s and GB/s for a GPU model name as `nvidia-smi` prints it
/// (`NVIDIA H100 80GB HBM3`) or as a file names it (`GeForce_RTX_2080_Ti`).
pub fn lookup(name: &str) -> Option<(f64, f64)> {
    let n = normalise(name);
    GPUS.iter()
        .find(|(frag, ..)| {
            // A fragment matches whole words: `a10` must not match `a100`.
            n.match_indices(frag).any(|(at, _)| {
                let before = n[..at].chars().last();
                let after = n[at + frag.len()..].chars().next();
                before.is_none_or(|c| c == ' ') && after.is_none_or(|c| c == ' ')
            })
        })
        .map(|&(_, tflops, gbs)| (tflops, gbs))
}

/// A GPU node of a known model, or `None` for one the table lacks.
pub fn gpu_node(name: &str) -> Option<Node> {
    lookup(name).map(|(tflops, gbs)| Node {
        class: normalise(name),
        gflops: tflops * 1000.0,
        memory_gbs: gbs,
    })
}

/// A CPU node measured at `gflops` by the worker's calibration.
pub fn cpu_node(gflops: f64) -> Node {
    Node {
        class: "cpu".to_owned(),
        gflops: gflops.max(0.1),
        memory_gbs: CPU_MEMORY_GBS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_gpus_by_whole_words() {
        assert_eq!(lookup("NVIDIA H100 80GB HBM3"), Some((67.0, 3350.0)));
        assert_eq!(lookup("NVIDIA H100 PCIe"), Some((51.0, 2000.0)));
        assert_eq!(lookup("GeForce_RTX_2080_Ti"), Some((13.45, 616.0)));
        assert_eq!(lookup("A100-SXM4-40GB"), Some((19.5, 1555.0)));
        assert_eq!(lookup("NVIDIA A10"), Some((31.2, 600.0)));
        assert_eq!(lookup("NVIDIA A100-SXM4-80GB"), Some((19.5, 2039.0)));
        assert_eq!(lookup("Radeon VII"), None);
        assert_eq!(gpu_node("TITAN_Xp").unwrap().class, "titan xp");
    }
}
