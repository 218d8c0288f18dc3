//! The analysis endpoints and the model page's analysis panel.

use super::queue::enqueue;
use super::{targets, Target};
use crate::api::{fmt_date, readable, resolve, RevParams};
use crate::auth::Auth;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use modelyard_analyze::ModelFeatures;
use modelyard_core::{RepoId, RepoKind};
use modelyard_store::{AnalysisRow, AnalysisStatus, TreeEntry};
use serde::Deserialize;
use serde_json::{json, Value};

/// One file's analysis as the API shows it.
fn file_json(t: &Target, row: Option<&AnalysisRow>) -> Value {
    let status = row.map_or("pending", |r| r.status.as_str());
    json!({
        "path": t.path,
        "sha256": t.sha256,
        "size": t.size,
        "status": status,
        "format": row.and_then(|r| r.format.clone()),
        "features": row.and_then(|r| r.features.clone()),
        "error": row.and_then(|r| r.error.clone()),
        "unsafe_imports": row.and_then(|r| r.features.as_ref())
            .and_then(|f| f["safety"]["imports"].as_array().cloned())
            .unwrap_or_default(),
        "analyzed_at": row.map(|r| fmt_date(r.created_at)),
        "attempts": row.map_or(0, |r| r.attempts),
        "analyzer_version": row.map(|r| r.analyzer_version),
    })
}

async fn lookup(state: &AppState, targets: &[Target]) -> AppResult<Vec<Option<AnalysisRow>>> {
    let mut rows = Vec::with_capacity(targets.len());
    for t in targets {
        rows.push(state.store.analysis(&t.key).await?);
    }
    Ok(rows)
}

/// `GET /api/models/{ns}/{name}/analysis/{rev}`: every analysable file at `rev`.
pub async fn file_analyses(
    State(state): State<AppState>,
    UrlPath(p): UrlPath<RevParams>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let repo = readable(&state, &auth, RepoKind::Model, &p.ns, &p.name).await?;
    let commit = resolve(&state, &repo, &p.rev).await?;
    let targets = targets(&state.store.tree(&commit, "").await?);
    let rows = lookup(&state, &targets).await?;
    let missing: Vec<Target> = targets
        .iter()
        .zip(&rows)
        .filter(|(_, r)| r.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    if !missing.is_empty() {
        // Self-healing: a file dropped by a full queue is queued again when someone asks.
        enqueue(&state, &missing, false).await;
    }
    let files: Vec<Value> = targets
        .iter()
        .zip(&rows)
        .map(|(t, r)| file_json(t, r.as_ref()))
        .collect();
    Ok(Json(json!({
        "id": repo.id.to_string(),
        "revision": p.rev,
        "commit": commit,
        "files": files,
    })))
}

#[derive(Deserialize)]
pub struct CompareQuery {
    pub a: String,
    pub b: String,
    pub file_a: Option<String>,
    pub file_b: Option<String>,
}

/// One side of a comparison, loaded and checked.
struct Side {
    summary: Value,
    features: ModelFeatures,
}

async fn load_side(
    state: &AppState,
    auth: &Auth,
    spec: &str,
    file: Option<&str>,
) -> AppResult<Side> {
    let (repo, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let (ns, name) = repo.split_once('/').ok_or_else(|| {
        AppError::bad_request(format!("{spec:?} is not NAMESPACE/NAME[@REVISION]"))
    })?;
    RepoId::new(ns, name).map_err(|_| AppError::repo_not_found(repo))?;
    let repo = readable(state, auth, RepoKind::Model, ns, name).await?;
    let commit = resolve(state, &repo, rev).await?;
    let all = targets(&state.store.tree(&commit, "").await?);
    let target = match file {
        Some(f) => all.into_iter().find(|t| t.path == f).ok_or_else(|| {
            AppError::entry_not_found(format!("{}@{rev} has no analysable file {f:?}", repo.id))
        })?,
        None => all.into_iter().next().ok_or_else(|| {
            AppError::entry_not_found(format!("{}@{rev} has no model file to compare", repo.id))
        })?,
    };
    let where_ = format!("{}@{rev}:{}", repo.id, target.path);
    let row = match state.store.analysis(&target.key).await? {
        Some(r) => r,
        None => {
            enqueue(state, std::slice::from_ref(&target), false).await;
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "AnalysisPending",
                format!("the analysis of {where_} is still pending; retry in a few seconds"),
            ));
        }
    };
    let features = match (&row.status, &row.features) {
        (AnalysisStatus::Error, _) | (_, None) => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "AnalysisFailed",
                format!(
                    "{where_} could not be analysed: {}",
                    row.error.as_deref().unwrap_or("no features stored")
                ),
            ))
        }
        (_, Some(f)) => serde_json::from_value::<ModelFeatures>(f.clone())
            .map_err(|e| AppError::internal(format!("stored features of {where_}: {e}")))?,
    };
    Ok(Side {
        summary: json!({
            "id": repo.id.to_string(), "revision": rev, "commit": commit,
            "path": target.path, "sha256": target.sha256, "status": row.status.as_str(),
        }),
        features,
    })
}

/// `GET /api/compare/structure?a=NS/NAME@REV&b=NS/NAME@REV[&file_a=..&file_b=..]`: the
/// structural diff of the main model file of each (the first analysable one, or the named).
pub async fn compare_structure(
    State(state): State<AppState>,
    Query(q): Query<CompareQuery>,
    auth: Auth,
) -> AppResult<Json<Value>> {
    let a = load_side(&state, &auth, &q.a, q.file_a.as_deref()).await?;
    let b = load_side(&state, &auth, &q.b, q.file_b.as_deref()).await?;
    let d = modelyard_analyze::diff(&a.features, &b.features);
    let mut out = serde_json::to_value(&d).map_err(|e| AppError::internal(e.to_string()))?;
    out["a"] = a.summary;
    out["b"] = b.summary;
    Ok(Json(out))
}

/// `25.6 M`, `6.0 K`, `4.1 G`: counts as people read them.
pub fn human_count(n: u64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in units {
        if n as f64 >= scale {
            return format!("{:.1} {unit}", n as f64 / scale);
        }
    }
    n.to_string()
}

fn shape_text(io: &Value) -> String {
    let dims = io["shape"].as_array().map(|dims| {
        dims.iter()
            .map(|d| {
                d.as_u64()
                    .map_or_else(|| d.as_str().unwrap_or("?").to_owned(), |n| n.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    format!(
        "{}: {} [{}]",
        io["name"].as_str().unwrap_or("?"),
        io["dtype"].as_str().unwrap_or("?"),
        dims.unwrap_or_else(|| "unknown shape".into())
    )
}

/// The model page's analysis panel for a commit's tree: one entry per analysable file.
pub async fn panel(state: &AppState, tree: &[TreeEntry]) -> AppResult<Vec<Value>> {
    let targets = targets(tree);
    let rows = lookup(state, &targets).await?;
    Ok(targets
        .iter()
        .zip(&rows)
        .map(|(t, row)| {
            let Some(row) = row else {
                return json!({"path": t.path, "status": "pending"});
            };
            let f = row.features.clone().unwrap_or(Value::Null);
            let count = |v: &Value| v.as_u64().map(human_count);
            let params = f["parameters"]["total"].as_u64();
            let by_dtype: Vec<String> = f["parameters"]["by_dtype"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            format!("{k} {}", human_count(v["count"].as_u64().unwrap_or(0)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let list = |key: &str| -> Vec<String> {
                f[key]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
                    .unwrap_or_default()
            };
            let ios = |key: &str| -> Vec<String> {
                f[key]
                    .as_array()
                    .map(|a| a.iter().map(shape_text).collect())
                    .unwrap_or_default()
            };
            json!({
                "path": t.path,
                "status": row.status.as_str(),
                "error": row.error,
                "format": row.format,
                "params_h": params.map(human_count),
                "params": params,
                "by_dtype": by_dtype,
                "macs_h": count(&f["macs_per_sample"]),
                "flops_h": count(&f["flops_per_sample"]),
                "depth": f["depth"].as_u64(),
                "categories": list("op_categories"),
                "ops": list("op_histogram"),
                "inputs": ios("inputs"),
                "outputs": ios("outputs"),
                "opset": f["opset"].as_i64(),
                "producer": f["producer"].as_str(),
                "unsafe_imports": f["safety"]["imports"].as_array().cloned().unwrap_or_default(),
            })
        })
        .collect())
}
