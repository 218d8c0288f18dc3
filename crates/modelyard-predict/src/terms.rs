//! Cost terms: the seconds each kind of work in a job would take at the node's nominal rates.
//! A prediction is a non-negative combination of them (see the crate README).

use crate::features::Features;

/// Number of terms.
pub const K: usize = 13;

/// Nominal seconds per dispatched op per batch.
const DISPATCH_S: f64 = 10e-6;
/// Nominal seconds of framework overhead per batch (the step loop, data hand-off).
const BATCH_S: f64 = 1e-3;
/// Nominal seconds per element visit of a normalisation pass of its own.
const NORM_S: f64 = 1e-9;
/// Nominal seconds to parse and optimise one node of a graph at start-up (learned from zero).
const GRAPH_NODE_S: f64 = 1e-3;

/// Prior coefficients: work ÷ throughput × efficiency + overhead, for the terms whose rates are
/// known before any job ran. A process starts in a tenth of a second; weights load and pack at a
/// tenth of memory bandwidth; compute runs at the calibrated (or peak) GFLOP/s; every op's
/// memory traffic at nominal bandwidth; a normalisation pass visits an element a nanosecond.
/// The other terms (per-op graph set-up and batched im2col among them) start at zero and are
/// learned.
const PRIOR: [f64; K] = [
    0.1, 10.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0,
];

/// The per-op dispatch terms (weighted layers, other ops).
pub const DISPATCH: [usize; 2] = [4, 5];

/// The per-op dispatch terms that CPU fits hold near their prior (`fit::DISPATCH_BELIEF`): a
/// compiled CPU plan's per-op cost is small, and on a handful of architectures it is
/// indistinguishable from per-sample work. (The framework time per batch is not a CPU term at
/// all: see [`terms`].)
pub const HELD_ON_CPU: [usize; 2] = [4, 5];

/// The prior coefficients on a CPU or a GPU node. They differ in what an op costs beyond its
/// work: a GPU runtime launches a kernel per op (about the nominal 10 µs from an eager
/// framework), while a CPU runtime runs a compiled plan whose per-op cost is lost in the work.
/// On CPU nodes the fit holds these coefficients near the prior (see [`HELD_ON_CPU`]).
pub fn prior(gpu: bool) -> [f64; K] {
    let mut p = PRIOR;
    if gpu {
        for k in DISPATCH {
            p[k] = 1.0;
        }
    }
    p
}

/// The terms of one prediction.
pub fn terms(f: &Features) -> [f64; K] {
    let s = &f.structure;
    let w = &f.workload;
    let bw = f.node.memory_gbs.max(1e-3) * 1e9;
    let gflops = f.node.gflops.max(1e-3) * 1e9;
    let reps = w.epochs.max(1.0) * w.work.passes();
    let samples = w.samples.max(0.0) * w.epochs.max(1.0);
    let batches = w.batches() * reps;
    let setup = if w.setup { 1.0 } else { 0.0 };
    let batched = if w.batch_size > 1.0 { 1.0 } else { 0.0 };
    let decode = if w.decode { 1.0 } else { 0.0 };
    // The framework's time per step is a GPU node's term: on a CPU node the evaluator steps a
    // compiled plan in microseconds, and a learned per-batch cost only traded places with
    // per-image decoding, which a tiny model evaluated on thousands of images then paid for
    // (MNIST predicted twice too slow when it was learned, on the live runs).
    let per_step = if f.node.is_gpu() { BATCH_S } else { 0.0 };
    [
        setup,
        setup * s.parameter_bytes / bw,
        reps * w.samples.max(0.0) * 2.0 * s.macs_per_sample / gflops,
        batches * s.parameter_bytes / bw,
        batches * s.weighted_layers * DISPATCH_S,
        batches * s.other_ops * DISPATCH_S,
        reps * w.samples.max(0.0) * s.memory_access_bytes / bw,
        // Samples read as numbers at memory speed, or decoded from compressed images at a rate
        // learned from zero (decoding costs per pixel what no bandwidth figure says).
        samples * s.input_elements * 4.0 / bw * (1.0 - decode),
        batches * per_step,
        samples * s.input_elements * 4.0 / bw * decode,
        reps * w.samples.max(0.0) * s.normalization_work * NORM_S,
        // The runtime parses and optimises every node of the graph before the first sample.
        setup * (s.weighted_layers + s.other_ops) * GRAPH_NODE_S,
        // A runtime may gather a single sample's convolution patches as the product reads them
        // (tract does) but materialises the im2col matrices of a batch: written, then read.
        reps * w.samples.max(0.0) * s.im2col_bytes * batched / bw,
    ]
}

/// `Σ cₖ · termₖ`.
pub fn dot(c: &[f64; K], t: &[f64; K]) -> f64 {
    c.iter().zip(t).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Node, Structure, Work, Workload};

    fn features(samples: f64, batch: f64, work: Work) -> Features {
        Features {
            structure: Structure {
                macs_per_sample: 1e9,
                parameters: 1e6,
                parameter_bytes: 4e6,
                weighted_layers: 10.0,
                other_ops: 20.0,
                activation_bytes: 1e6,
                memory_access_bytes: 4e7,
                normalization_work: 0.0,
                input_elements: 1000.0,
                im2col_bytes: 5e6,
            },
            workload: Workload {
                work,
                samples,
                batch_size: batch,
                epochs: 1.0,
                setup: true,
                decode: false,
            },
            node: Node {
                class: "cpu".into(),
                gflops: 10.0,
                memory_gbs: 10.0,
            },
        }
    }

    #[test]
    fn terms_scale_with_the_work() {
        let one = terms(&features(100.0, 1.0, Work::Inference));
        // 100 samples × 2 GFLOP at 10 GFLOP/s.
        assert!((one[2] - 20.0).abs() < 1e-9);
        // 100 batches stream 4 MB each at 10 GB/s.
        assert!((one[3] - 0.04).abs() < 1e-9);
        let batched = terms(&features(100.0, 10.0, Work::Inference));
        assert_eq!(
            batched[2], one[2],
            "compute does not depend on the batch size"
        );
        assert!((batched[3] - one[3] / 10.0).abs() < 1e-12);
        let training = terms(&features(100.0, 1.0, Work::Training));
        assert!((training[2] - 3.0 * one[2]).abs() < 1e-9);
        assert_eq!(training[1], one[1], "weights load once either way");
    }

    #[test]
    fn im2col_counts_for_batches_and_steps_for_gpus() {
        let one = terms(&features(100.0, 1.0, Work::Inference));
        assert_eq!(
            one[12], 0.0,
            "one sample's patches are gathered as they are read"
        );
        let batched = terms(&features(100.0, 4.0, Work::Inference));
        // 100 samples × 5 MB of im2col at 10 GB/s.
        assert!((batched[12] - 0.05).abs() < 1e-12);
        assert_eq!(batched[8], 0.0, "no per-step framework term on a CPU node");
        let mut gpu = features(100.0, 4.0, Work::Inference);
        gpu.node.class = "H100".into();
        // 25 steps × 1 ms.
        assert!((terms(&gpu)[8] - 0.025).abs() < 1e-12);
    }
}
