//! Pages of verified results: the leaderboards, one leaderboard with its charts, and the
//! comparison of models side by side.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::{json, Value};

use super::{render, PageError, PageResult};
use crate::analysis::api::human_count;
use crate::auth::{form_caller, page_csrf, Auth};
use crate::error::AppError;
use crate::results::api::{list_param, load_board, BoardQuery, CompareQuery};
use crate::results::board::{is_fraction, visible, Board};
use crate::results::runs::{run, RunsBody};
use crate::results::{charts, compare};
use crate::state::AppState;

/// `98.90%` for fractions, `0.1234` otherwise.
pub fn show_metric(metric: &str, v: f64) -> String {
    if is_fraction(metric) {
        format!("{:.2}%", v * 100.0)
    } else {
        format!("{v:.4}")
    }
}

pub async fn leaderboards_page(State(state): State<AppState>, auth: Auth) -> PageResult {
    let boards = state.store.boards().await.map_err(AppError::from)?;
    let boards: Vec<Value> = boards
        .iter()
        .filter(|b| visible(&auth, b.dataset_private, &b.dataset_owner))
        .map(|b| {
            let q = format!("split={}&task={}", b.split, b.task);
            json!({"dataset": b.dataset_id.to_string(), "split": b.split, "task": b.task,
                   "models": b.models, "results": b.results,
                   "url": format!("/leaderboards/{}?{q}", b.dataset_id)})
        })
        .collect();
    render(
        &state,
        &auth,
        "leaderboards.html",
        json!({ "boards": boards }),
    )
}

fn board_ctx(b: &Board, query: &str) -> Value {
    let rows: Vec<Value> = b
        .verified
        .iter()
        .map(|e| {
            json!({
                "rank": e.rank, "model": e.model, "commit": &e.commit[..12.min(e.commit.len())],
                "value": show_metric(&b.metric, e.value),
                "parameters": e.parameters.map(human_count),
                "macs": e.macs.map(human_count),
                "latency": format!("{:.3}", e.latency_p50_ms),
                "throughput": format!("{:.0}", e.throughput),
                "hardware": e.hardware, "date": &e.date[..10.min(e.date.len())],
                "job_id": e.job_id, "samples": e.samples,
                "self_reported": e.self_reported.map(|v| show_metric(&b.metric, v)),
                "disagrees": e.disagrees,
            })
        })
        .collect();
    let claims: Vec<Value> = b
        .self_reported
        .iter()
        .map(|c| {
            json!({"model": c.model, "value": show_metric(&b.metric, c.value),
                   "verified": c.verified.map(|v| show_metric(&b.metric, v)),
                   "disagrees": c.disagrees})
        })
        .collect();
    json!({
        "dataset": b.dataset, "split": b.split, "task": b.task, "metric": b.metric,
        "higher_is_better": b.higher_is_better, "metrics": b.metrics,
        "rows": rows, "claims": claims, "query": query,
    })
}

fn board_query_string(q: &BoardQuery) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("split", &q.split),
        ("task", &q.task),
        ("metric", &q.metric),
    ] {
        if let Some(v) = v {
            let v = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join("&")
}

pub async fn leaderboard_page(
    State(state): State<AppState>,
    auth: Auth,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BoardQuery>,
) -> PageResult {
    let b = load_board(&state, &auth, &ns, &name, &q).await?;
    let query = board_query_string(&BoardQuery {
        split: Some(b.split.clone()),
        task: Some(b.task.clone()),
        metric: Some(b.metric.clone()),
    });
    render(&state, &auth, "leaderboard.html", board_ctx(&b, &query))
}

/// An SVG chart response (served as an image, so nothing in it can run as the page's script).
pub(crate) fn svg(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(serde::Deserialize, Default)]
pub struct ChartQuery {
    #[serde(flatten)]
    pub board: BoardQuery,
    /// `bars` (metric per model) or `macs` (metric against MACs).
    pub kind: Option<String>,
}

/// `GET /leaderboards/{ns}/{name}/chart.svg?split=&task=&metric=&kind=bars|macs`.
pub async fn leaderboard_chart(
    State(state): State<AppState>,
    auth: Auth,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, PageError> {
    let b = load_board(&state, &auth, &ns, &name, &q.board).await?;
    let title = format!("{} · {} · {}", b.dataset, b.split, b.metric);
    let body = if q.kind.as_deref() == Some("macs") {
        let pts: Vec<(String, f64, f64)> = b
            .verified
            .iter()
            .filter_map(|e| Some((e.model.clone(), e.macs? as f64, e.value)))
            .collect();
        charts::against_macs(&title, &b.metric, &pts)
    } else {
        let items: Vec<(String, f64)> = b
            .verified
            .iter()
            .map(|e| (e.model.clone(), e.value))
            .collect();
        charts::bars(&title, &b.metric, &items)
    };
    Ok(svg(body))
}

pub async fn compare_page(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Query(q): Query<CompareQuery>,
) -> PageResult {
    // Logged-in browsers get the contrast-run form, protected by a per-session CSRF token.
    let csrf = page_csrf(&state, &headers, &auth);
    let models = list_param(&q.models);
    if models.is_empty() {
        return render(
            &state,
            &auth,
            "compare.html",
            json!({ "models_param": "", "csrf": csrf }),
        );
    }
    let c = compare::compare(&state, &auth, &models, &list_param(&q.datasets)).await?;
    let models_json: Vec<Value> = c
        .models
        .iter()
        .map(|m| {
            json!({"id": m.id, "commit": &m.commit[..12.min(m.commit.len())], "file": m.file,
                   "format": m.format, "parameters": m.parameters.map(human_count),
                   "macs": m.macs.map(human_count), "depth": m.depth,
                   "ops": m.op_categories.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>()})
        })
        .collect();
    let boards: Vec<Value> = c
        .boards
        .iter()
        .map(|b| {
            let cells: Vec<Value> = b
                .values
                .iter()
                .map(|v| match v {
                    Some(c) => json!({"value": show_metric(&b.metric, c.value),
                                      "latency": format!("{:.3}", c.latency_p50_ms),
                                      "throughput": format!("{:.0}", c.throughput)}),
                    None => Value::Null,
                })
                .collect();
            let chart = format!(
                "/compare/chart.svg?models={}&dataset={}&split={}&task={}",
                q.models.clone().unwrap_or_default(),
                b.dataset,
                b.split,
                b.task
            );
            json!({"dataset": b.dataset, "split": b.split, "task": b.task, "metric": b.metric,
                   "shared": b.shared, "cells": cells, "chart": chart})
        })
        .collect();
    render(
        &state,
        &auth,
        "compare.html",
        json!({"models_param": q.models, "datasets_param": q.datasets, "models": models_json,
               "boards": boards, "csrf": csrf, "submitted": q.submitted}),
    )
}

#[derive(serde::Deserialize, Default)]
pub struct CompareChartQuery {
    pub models: Option<String>,
    pub dataset: Option<String>,
    pub split: Option<String>,
    pub task: Option<String>,
    pub kind: Option<String>,
}

/// `GET /compare/chart.svg?models=A,B&dataset=X&split=&task=&kind=bars|macs`.
pub async fn compare_chart(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<CompareChartQuery>,
) -> Result<Response, PageError> {
    let models = list_param(&q.models);
    let datasets: Vec<String> = q.dataset.iter().cloned().collect();
    let c = compare::compare(&state, &auth, &models, &datasets).await?;
    let board = c.boards.iter().find(|b| {
        q.split.as_ref().is_none_or(|s| *s == b.split)
            && q.task.as_ref().is_none_or(|t| *t == b.task)
    });
    let Some(b) = board else {
        return Ok(svg(charts::bars("no shared results", "", &[])));
    };
    let title = format!("{} · {} · {}", b.dataset, b.split, b.metric);
    let body = if q.kind.as_deref() == Some("macs") {
        let pts: Vec<(String, f64, f64)> = c
            .models
            .iter()
            .zip(&b.values)
            .filter_map(|(m, v)| Some((m.id.clone(), m.macs? as f64, v.as_ref()?.value)))
            .collect();
        charts::against_macs(&title, &b.metric, &pts)
    } else {
        let items: Vec<(String, f64)> = c
            .models
            .iter()
            .zip(&b.values)
            .filter_map(|(m, v)| Some((m.id.clone(), v.as_ref()?.value)))
            .collect();
        charts::bars(&title, &b.metric, &items)
    };
    Ok(svg(body))
}

/// The compare page's contrast-run form.
#[derive(serde::Deserialize)]
pub struct RunsForm {
    pub models: String,
    pub datasets: String,
    #[serde(default)]
    pub split: String,
    pub csrf: String,
}

/// `POST /compare/runs`: queues the evaluations the compared models lack, then shows the page.
pub async fn compare_runs_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RunsForm>,
) -> Result<Response, PageError> {
    let caller = form_caller(&state, &headers, &f.csrf).await?;
    let auth = Auth(Some(caller));
    let body = RunsBody {
        models: list_param(&Some(f.models.clone())),
        datasets: list_param(&Some(f.datasets.clone())),
        split: Some(f.split.trim().to_owned()).filter(|s| !s.is_empty()),
        ..RunsBody::default()
    };
    let runs = run(&state, &auth, &body).await?;
    let submitted = runs.iter().filter(|r| r.status == "submitted").count();
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Ok(Redirect::to(&format!(
        "/compare?models={}&datasets={}&submitted={submitted}",
        enc(&f.models),
        enc(&f.datasets)
    ))
    .into_response())
}
