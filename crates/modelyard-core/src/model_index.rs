//! Self-reported results: the `model-index` of a model card, flattened to one row per metric.
//! These are what authors typed; modelyard lists them apart from what it measured.

use serde::Serialize;
use serde_json::Value;

/// One claimed number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfReported {
    /// The dataset as the card names it (`dataset.type`, e.g. `ns/name`, else `dataset.name`).
    pub dataset: String,
    pub split: String,
    pub task: String,
    pub metric: String,
    /// Accuracy-like metrics written as percentages (e.g. 98.9) are stored as fractions.
    pub value: f64,
}

/// Metrics that are fractions of 1 (shown as percentages, compared in percentage points).
const FRACTIONS: &[&str] = &[
    "accuracy",
    "top5_accuracy",
    "macro_f1",
    "f1",
    "precision",
    "recall",
    "r2",
];

/// Whether `metric` (as [`metric_name`] spells it) is a fraction of 1.
pub fn is_fraction(metric: &str) -> bool {
    FRACTIONS.contains(&metric)
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
        _ => None,
    }
}

/// Metric names as modelyard spells them (`top-5 accuracy` → `top5_accuracy`, `F1` → `f1`).
pub fn metric_name(raw: &str) -> String {
    let lower = raw.trim().to_lowercase().replace(['-', ' '], "_");
    match lower.as_str() {
        "top_5_accuracy" | "top5" | "top_5" | "acc@5" => "top5_accuracy".into(),
        "acc" | "top_1_accuracy" | "top1_accuracy" | "acc@1" => "accuracy".into(),
        "f1_macro" | "macro_f1_score" => "macro_f1".into(),
        _ => lower,
    }
}

/// Every result of a `model-index` value; entries without a dataset or a numeric value are
/// skipped.
pub fn self_reported(model_index: &Value) -> Vec<SelfReported> {
    let mut out = Vec::new();
    let models = model_index.as_array().cloned().unwrap_or_default();
    for model in &models {
        let results = model.get("results").and_then(Value::as_array);
        for r in results.into_iter().flatten() {
            let Some(ds) = r.get("dataset") else { continue };
            let Some(dataset) = text(ds.get("type")).or_else(|| text(ds.get("name"))) else {
                continue;
            };
            let split = text(ds.get("split")).unwrap_or_else(|| "test".into());
            let task = r
                .get("task")
                .and_then(|t| text(t.get("type")))
                .unwrap_or_default();
            let metrics = r.get("metrics").and_then(Value::as_array);
            for m in metrics.into_iter().flatten() {
                let (Some(name), Some(mut value)) = (text(m.get("type")), number(m.get("value")))
                else {
                    continue;
                };
                let metric = metric_name(&name);
                if is_fraction(&metric) && value > 1.0 && value <= 100.0 {
                    value /= 100.0;
                }
                out.push(SelfReported {
                    dataset: dataset.clone(),
                    split: split.clone(),
                    task: task.clone(),
                    metric,
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_hub_model_index() {
        let v: Value = serde_json::json!([{
            "name": "m",
            "results": [
                {"task": {"type": "image-classification"},
                 "dataset": {"name": "MNIST", "type": "admin/mnist", "split": "test"},
                 "metrics": [{"type": "accuracy", "value": 98.9}, {"type": "Top-5 Accuracy", "value": "0.999"},
                             {"type": "loss"}]},
                {"task": {"type": "x"}, "metrics": [{"type": "accuracy", "value": 1}]}
            ]
        }]);
        let rows = self_reported(&v);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].dataset, "admin/mnist");
        assert!((rows[0].value - 0.989).abs() < 1e-12);
        assert_eq!(rows[1].metric, "top5_accuracy");
        assert_eq!(rows[1].value, 0.999);
        assert!(self_reported(&Value::Null).is_empty());
    }
}
