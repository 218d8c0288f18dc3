//! Layer kinds guessed from tensor names, for formats that store weights but no graph.

use std::collections::BTreeSet;

use crate::{LayerKinds, TensorEntry};

const ATTENTION: &[&str] = &["attn", "attention", "self_attention", "cross_attention"];
const MLP: &[&str] = &[
    "mlp",
    "ffn",
    "feed_forward",
    "feedforward",
    "intermediate",
    "ff",
];
const EMBEDDING: &[&str] = &[
    "embed",
    "embedding",
    "embeddings",
    "embed_tokens",
    "wte",
    "wpe",
    "tok_embeddings",
    "word_embeddings",
    "position_embeddings",
    "token_type_embeddings",
];
const NORM: &[&str] = &[
    "norm",
    "layernorm",
    "layer_norm",
    "ln",
    "ln_1",
    "ln_2",
    "ln_f",
    "rmsnorm",
    "bn",
    "batchnorm",
    "groupnorm",
];

fn matches_any(part: &str, words: &[&str]) -> bool {
    let p = part.to_ascii_lowercase();
    words
        .iter()
        .any(|w| p == *w || p.ends_with(&format!("_{w}")) || p.starts_with(&format!("{w}_")))
        || (words == ATTENTION && p.contains("attn"))
        || (words == NORM && (p.contains("norm") || p.starts_with("ln") && p.len() <= 4))
        || (words == EMBEDDING && p.contains("embed"))
}

/// Counts distinct modules of each kind. Attention and MLP count blocks (the path up to the
/// `attn`/`mlp` component), so q/k/v/o projections make one attention block.
pub fn infer(tensors: &[TensorEntry]) -> LayerKinds {
    let mut sets: [BTreeSet<String>; 5] = Default::default();
    for t in tensors {
        let parts: Vec<&str> = t.name.split('.').collect();
        let module = parts[..parts.len().saturating_sub(1)].join(".");
        let prefix = |k: usize| parts[..=k].join(".");
        if let Some(k) = parts.iter().position(|p| matches_any(p, ATTENTION)) {
            sets[0].insert(prefix(k));
        }
        if let Some(k) = parts.iter().position(|p| matches_any(p, MLP)) {
            sets[1].insert(prefix(k));
        }
        let leaf = parts.iter().rev().nth(1).copied().unwrap_or(parts[0]);
        let is_weight = parts.last().is_some_and(|l| *l == "weight");
        if parts
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("conv"))
            || (is_weight && (3..=5).contains(&t.shape.len()))
        {
            sets[2].insert(module.clone());
        }
        if parts[..parts.len().saturating_sub(1)]
            .iter()
            .any(|p| matches_any(p, EMBEDDING))
        {
            sets[3].insert(module.clone());
        }
        if matches_any(leaf, NORM) {
            sets[4].insert(module);
        }
    }
    let [a, m, c, e, n] = sets.map(|s| s.len() as u64);
    LayerKinds {
        attention: a,
        mlp: m,
        convolution: c,
        embedding: e,
        norm: n,
    }
}
