//! `POST /api/predict`: how long a job would take on each kind of alive node, and when it would
//! start and finish if submitted now — before submitting it.

use axum::extract::State;
use axum::Json;
use modelyard_core::job::{JobKind, JobSpec};
use modelyard_sched::PendingJob;
use serde_json::{json, Value};

use crate::api::fmt_date;
use crate::auth::Auth;
use crate::error::AppResult;
use crate::master::jobs_api::{job_spec, SubmitBody};
use crate::state::AppState;

/// When a job predicted to take `reference_s` would start and finish behind today's queue.
pub async fn eta_if_submitted(state: &AppState, spec: &JobSpec, reference_s: f64) -> Value {
    let Ok(mut snap) = crate::master::scheduler::snapshot(state).await else {
        return Value::Null;
    };
    let ahead = snap.pending.len();
    snap.pending.push(PendingJob {
        id: i64::MAX,
        resources: spec.resources,
        is_command: spec.kind == JobKind::Command,
        inputs: Vec::new(),
        submitted_ms: modelyard_store::now_ms(),
        predicted_s: reference_s,
    });
    let now = modelyard_store::now_ms();
    let etas = modelyard_sched::eta::queue_eta(&snap.pending, &snap.views, now);
    match etas.last().copied().flatten() {
        Some(e) => json!({
            "jobs_ahead": ahead,
            "start_in_s": e.start_s,
            "estimated_start_at": fmt_date(now + (e.start_s * 1000.0) as i64),
            "expected_finish_at": fmt_date(now + (e.finish_s * 1000.0) as i64),
        }),
        None => {
            json!({"jobs_ahead": ahead, "reason": "no alive node has the resources this job asks for"})
        }
    }
}

/// `POST /api/predict` with the body of `POST /api/jobs`. Answers `predicted: false` and the
/// reason when the job cannot be predicted (its model not yet analysed, no worker alive...).
pub async fn predict(
    State(state): State<AppState>,
    auth: Auth,
    Json(b): Json<SubmitBody>,
) -> AppResult<Json<Value>> {
    let (spec, _) = job_spec(&state, &auth, &b).await?;
    match super::predict_spec(&state, &spec, b.workload.as_ref()).await {
        Ok(p) => {
            let queue = eta_if_submitted(&state, &spec, p.reference_s).await;
            let mut v = serde_json::to_value(&p).unwrap_or(Value::Null);
            v["predicted"] = json!(true);
            v["queue"] = queue;
            Ok(Json(v))
        }
        Err(reason) => Ok(Json(json!({"predicted": false, "reason": reason}))),
    }
}

/// `GET /api/predict/observations` (admins): the finished jobs the predictor learns from, with
/// the features each ran with and its measured seconds, oldest first.
pub async fn observations(State(state): State<AppState>, auth: Auth) -> AppResult<Json<Value>> {
    if !auth.require()?.is_admin {
        return Err(crate::error::AppError::forbidden(
            "only admins may read the predictor's observations",
        ));
    }
    let rows = state
        .store
        .runtime_observations(super::KEEP_OBSERVATIONS)
        .await?;
    Ok(Json(Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "job_id": r.job_id,
                    "node_class": r.node_class,
                    "features": serde_json::from_str::<Value>(&r.features).unwrap_or(Value::Null),
                    "seconds": r.seconds,
                    "recorded_at": fmt_date(r.created_at),
                })
            })
            .collect(),
    )))
}
