//! Structural diff of two analysed models, with a one-line verdict.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::{ModelFeatures, OpCategory, TensorEntry};

/// How `b` relates to `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Same tensors (names, shapes and, where known, contents) or the same graph.
    SameArchitecture,
    /// `b` has `a`'s tensor names and shapes, with some contents changed.
    FineTune,
    /// `b` is `a` plus a few small added tensors (LoRA, adapters, heads).
    Adapter,
    DifferentArchitecture,
}

/// A tensor present in both models with different shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshaped {
    pub name: String,
    pub from: Vec<u64>,
    pub to: Vec<u64>,
}

/// What changed from `a` to `b`. Deltas are `b - a`, zero entries left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDiff {
    pub op_deltas: BTreeMap<String, i64>,
    pub category_deltas: BTreeMap<OpCategory, i64>,
    pub parameter_delta: i64,
    pub tensors_added: Vec<String>,
    pub tensors_removed: Vec<String>,
    pub tensors_reshaped: Vec<Reshaped>,
    /// Same name and shape, different content hash.
    pub tensors_changed: Vec<String>,
    /// Same name and shape, but at least one side has no hash, so contents were not compared.
    pub tensors_unhashed: usize,
    pub verdict: Verdict,
    /// The verdict as a sentence, e.g. "b is a fine-tune of a: 3 of 200 tensors changed".
    pub summary: String,
}

fn deltas<K: Ord + Clone>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>) -> BTreeMap<K, i64> {
    let keys: BTreeSet<&K> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let d = b.get(k).copied().unwrap_or(0) as i64 - a.get(k).copied().unwrap_or(0) as i64;
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn looks_like_adapter(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["lora", "adapter", "prefix", "prompt_encoder", "ia3", "dora"]
        .iter()
        .any(|w| n.contains(w))
}

/// Compares two models' structure and tensors.
pub fn diff(a: &ModelFeatures, b: &ModelFeatures) -> ModelDiff {
    let ta: HashMap<&str, &TensorEntry> = a.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let tb: HashMap<&str, &TensorEntry> = b.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut d = ModelDiff {
        op_deltas: deltas(&a.op_histogram, &b.op_histogram),
        category_deltas: deltas(&a.op_categories, &b.op_categories),
        parameter_delta: b.parameters.total as i64 - a.parameters.total as i64,
        tensors_added: b
            .tensors
            .iter()
            .filter(|t| !ta.contains_key(t.name.as_str()))
            .map(|t| t.name.clone())
            .collect(),
        tensors_removed: a
            .tensors
            .iter()
            .filter(|t| !tb.contains_key(t.name.as_str()))
            .map(|t| t.name.clone())
            .collect(),
        tensors_reshaped: Vec::new(),
        tensors_changed: Vec::new(),
        tensors_unhashed: 0,
        verdict: Verdict::DifferentArchitecture,
        summary: String::new(),
    };
    for t in &a.tensors {
        let Some(u) = tb.get(t.name.as_str()) else {
            continue;
        };
        if t.shape != u.shape || t.dtype != u.dtype && t.elements != u.elements {
            d.tensors_reshaped.push(Reshaped {
                name: t.name.clone(),
                from: t.shape.clone(),
                to: u.shape.clone(),
            });
        } else {
            match (&t.content_hash, &u.content_hash) {
                (Some(x), Some(y)) if x != y => d.tensors_changed.push(t.name.clone()),
                (Some(_), Some(_)) => {}
                _ => d.tensors_unhashed += 1,
            }
        }
    }
    let shared = a.tensors.len() - d.tensors_removed.len();
    let added_params: u64 = b
        .tensors
        .iter()
        .filter(|t| !ta.contains_key(t.name.as_str()))
        .map(|t| t.elements)
        .sum();
    let same_tensors =
        d.tensors_added.is_empty() && d.tensors_removed.is_empty() && d.tensors_reshaped.is_empty();
    let have_tensors = !a.tensors.is_empty() && !b.tensors.is_empty();
    let small_addition = added_params.saturating_mul(10) <= a.parameters.total
        || d.tensors_added.iter().all(|n| looks_like_adapter(n));
    (d.verdict, d.summary) = if have_tensors && same_tensors && !d.tensors_changed.is_empty() {
        (
            Verdict::FineTune,
            format!(
                "b is a fine-tune of a: {} of {shared} tensors changed, same names and shapes",
                d.tensors_changed.len()
            ),
        )
    } else if have_tensors && same_tensors {
        let note = if d.tensors_unhashed > 0 {
            format!(" ({} not compared by content)", d.tensors_unhashed)
        } else {
            String::new()
        };
        (
            Verdict::SameArchitecture,
            format!("same architecture: {shared} tensors with the same names and shapes{note}"),
        )
    } else if have_tensors
        && d.tensors_removed.is_empty()
        && d.tensors_reshaped.is_empty()
        && small_addition
    {
        (Verdict::Adapter, format!(
            "b is an adapter on a: {} tensors added ({added_params} parameters), none removed or reshaped",
            d.tensors_added.len()
        ))
    } else if !have_tensors
        && d.op_deltas.is_empty()
        && d.parameter_delta == 0
        && a.format == b.format
    {
        (
            Verdict::SameArchitecture,
            "same architecture: identical op counts and parameter count".into(),
        )
    } else {
        (Verdict::DifferentArchitecture, format!(
            "different architecture: {} tensors added, {} removed, {} reshaped, parameters {:+}",
            d.tensors_added.len(), d.tensors_removed.len(), d.tensors_reshaped.len(), d.parameter_delta
        ))
    };
    d
}
