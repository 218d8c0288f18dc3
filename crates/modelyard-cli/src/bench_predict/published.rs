//! The published data: measured training and inference step times of 32 torchvision models on
//! four GPUs (`../shared/data/runtime/`, from ryujaehun/pytorch-gpu-benchmark, MIT; single GPU,
//! float32, batch 12), with each model's structure.
//!
//! Structure comes from modelyard's analyser where an ONNX of the architecture is at hand
//! (`../shared/data/models/`: ResNet-50, VGG-19, SqueezeNet 1.1, DenseNet-121 — MACs, parameters
//! and weighted layers), else from [`TABLE`]: parameter counts and per-image multiply-adds at
//! 224×224 as published in torchvision's model documentation (the "Params" and "GFLOPS" columns
//! of <https://pytorch.org/vision/stable/models.html>; torchvision's "GFLOPS" count
//! multiply-adds, e.g. 4.09 for ResNet-50), and weighted layers (convolutions + linear layers)
//! counted from torchvision's model definitions. The other ops are estimated as one activation
//! per weighted layer, plus one batch norm per weighted layer in the families that use it.

use std::path::Path;

use anyhow::{bail, Context};
use modelyard_predict::{gpus, Features, Observation, Structure, Work, Workload};

use super::Labeled;

/// `(torchvision name, parameters, GMACs per 224×224 image, weighted layers, batch norm)`.
const TABLE: &[(&str, f64, f64, f64, bool)] = &[
    ("mnasnet0_5", 2_218_512.0, 0.10, 53.0, true),
    ("mnasnet0_75", 3_170_208.0, 0.21, 53.0, true),
    ("mnasnet1_0", 4_383_312.0, 0.31, 53.0, true),
    ("mnasnet1_3", 6_282_256.0, 0.53, 53.0, true),
    ("resnet18", 11_689_512.0, 1.81, 21.0, true),
    ("resnet34", 21_797_672.0, 3.66, 37.0, true),
    ("resnet50", 25_557_032.0, 4.09, 54.0, true),
    ("resnet101", 44_549_160.0, 7.80, 105.0, true),
    ("resnet152", 60_192_808.0, 11.51, 156.0, true),
    ("resnext50_32x4d", 25_028_904.0, 4.23, 54.0, true),
    ("resnext101_32x8d", 88_791_336.0, 16.41, 105.0, true),
    ("wide_resnet50_2", 68_883_240.0, 11.40, 54.0, true),
    ("wide_resnet101_2", 126_886_696.0, 22.75, 105.0, true),
    ("densenet121", 7_978_856.0, 2.83, 121.0, true),
    ("densenet169", 14_149_480.0, 3.36, 169.0, true),
    ("densenet201", 20_013_928.0, 4.29, 201.0, true),
    ("densenet161", 28_681_000.0, 7.73, 161.0, true),
    ("squeezenet1_0", 1_248_424.0, 0.82, 26.0, false),
    ("squeezenet1_1", 1_235_496.0, 0.35, 26.0, false),
    ("vgg11", 132_863_336.0, 7.61, 11.0, false),
    ("vgg11_bn", 132_868_840.0, 7.61, 11.0, true),
    ("vgg13", 133_047_848.0, 11.31, 13.0, false),
    ("vgg13_bn", 133_053_736.0, 11.31, 13.0, true),
    ("vgg16", 138_357_544.0, 15.47, 16.0, false),
    ("vgg16_bn", 138_365_992.0, 15.47, 16.0, true),
    ("vgg19", 143_667_240.0, 19.63, 19.0, false),
    ("vgg19_bn", 143_678_248.0, 19.63, 19.0, true),
    ("mobilenet_v2", 3_504_872.0, 0.30, 53.0, true),
    ("shufflenet_v2_x0_5", 1_366_792.0, 0.04, 57.0, true),
    ("shufflenet_v2_x1_0", 2_278_604.0, 0.14, 57.0, true),
    ("shufflenet_v2_x1_5", 3_503_624.0, 0.30, 57.0, true),
    ("shufflenet_v2_x2_0", 7_393_996.0, 0.58, 57.0, true),
];

/// torchvision names with an ONNX of the same architecture in `../shared/data/models/`.
const ONNX: &[(&str, &str)] = &[
    ("resnet50", "light_resnet50.onnx"),
    ("vgg19", "light_vgg19.onnx"),
    ("squeezenet1_1", "light_squeezenet.onnx"),
    ("densenet121", "light_densenet121.onnx"),
];

/// The batch size of every measurement.
const BATCH: f64 = 12.0;

/// Each model's structure: analysed from ONNX where possible, else from the table.
fn structures(models_dir: &Path) -> anyhow::Result<Vec<(String, Structure, &'static str)>> {
    let mut out = Vec::new();
    for &(name, params, gmacs, layers, bn) in TABLE {
        let other_ops = layers * if bn { 2.0 } else { 1.0 };
        let table = Structure {
            macs_per_sample: gmacs * 1e9,
            parameters: params,
            parameter_bytes: params * 4.0,
            weighted_layers: layers,
            other_ops,
            activation_bytes: 0.0,
            memory_access_bytes: 0.0,
            normalization_work: 0.0,
            input_elements: 3.0 * 224.0 * 224.0,
            im2col_bytes: 0.0,
        };
        let onnx = ONNX.iter().find(|(n, _)| *n == name).map(|(_, f)| f);
        let (structure, source) = match onnx {
            Some(file) => {
                let path = models_dir.join(file);
                let f = modelyard_analyze::analyze_path(&path)
                    .with_context(|| format!("analysing {}", path.display()))?;
                let a = modelyard_server::predict::structure_of(&f);
                // MACs, parameters and weighted layers from the graph; the rest as for the
                // table's models, so that every model's features mean the same.
                let s = Structure {
                    macs_per_sample: a.macs_per_sample,
                    parameters: a.parameters,
                    parameter_bytes: a.parameter_bytes,
                    weighted_layers: a.weighted_layers,
                    other_ops: a.weighted_layers * if bn { 2.0 } else { 1.0 },
                    ..table
                };
                (s, "analyser")
            }
            None => (table, "table"),
        };
        out.push((name.to_owned(), structure, source));
    }
    Ok(out)
}

/// Median of a CSV column of step times in milliseconds (the first rows include warm-up).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One observation per (model, GPU, training or inference): the median step time.
pub fn load(runtime_dir: &Path, models_dir: &Path) -> anyhow::Result<Vec<Labeled>> {
    let structures = structures(models_dir)?;
    let mut files: Vec<_> = std::fs::read_dir(runtime_dir)
        .with_context(|| format!("reading {}", runtime_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some((gpu, mode)) = stem.split_once("__") else {
            bail!("{}: expected GPU__mode.csv", file.display());
        };
        let work = match mode {
            "train" => Work::Training,
            "inference" => Work::Inference,
            o => bail!("{}: unknown mode {o}", file.display()),
        };
        let node =
            gpus::gpu_node(gpu).with_context(|| format!("no published figures for {gpu}"))?;
        let text = std::fs::read_to_string(&file)?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let mut columns: Vec<Vec<f64>> = vec![Vec::new(); header.len()];
        for line in lines.filter(|l| !l.trim().is_empty()) {
            for (i, v) in line.split(',').enumerate() {
                if let (Some(col), Ok(ms)) = (columns.get_mut(i), v.trim().parse::<f64>()) {
                    col.push(ms);
                }
            }
        }
        for (name, col) in header.iter().zip(columns) {
            let Some((_, structure, _)) = structures.iter().find(|(n, ..)| n == name) else {
                bail!("{}: no structure for model {name}", file.display());
            };
            if col.is_empty() {
                continue;
            }
            out.push(Labeled {
                model: (*name).to_owned(),
                node: node.class.clone(),
                obs: Observation {
                    features: Features {
                        structure: structure.clone(),
                        workload: Workload {
                            work,
                            samples: BATCH,
                            batch_size: BATCH,
                            epochs: 1.0,
                            setup: false,
                            decode: false,
                        },
                        node: node.clone(),
                    },
                    seconds: median(col) / 1000.0,
                },
            });
        }
    }
    Ok(out)
}

/// Which models' structure came from the analyser.
pub fn analysed_models() -> Vec<&'static str> {
    ONNX.iter().map(|(n, _)| *n).collect()
}
