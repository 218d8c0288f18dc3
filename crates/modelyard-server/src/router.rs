//! Every route of the hub in one table.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use modelyard_core::RepoKind;
use serde_json::json;

use crate::analysis;
use crate::api::{commit, files, lfs, refs, repos, users};
use crate::error::AppError;
use crate::master::{cluster_api, jobs_api, outputs};
use crate::results::api as results_api;
use crate::state::AppState;
use crate::web;

/// The repository API under `/api/models` or `/api/datasets`.
fn repo_api(kind: RepoKind) -> Router<AppState> {
    let p = format!("/api/{}/{{ns}}/{{name}}", kind.plural());
    Router::new()
        .route(&format!("/api/{}", kind.plural()), get(repos::list))
        .route(&p, get(repos::info))
        .route(&format!("{p}/revision/{{rev}}"), get(repos::info_revision))
        .route(&format!("{p}/tree/{{rev}}"), get(files::tree_root))
        .route(&format!("{p}/tree/{{rev}}/{{*path}}"), get(files::tree))
        .route(&format!("{p}/paths-info/{{rev}}"), post(files::paths_info))
        .route(&format!("{p}/refs"), get(refs::list_refs))
        .route(&format!("{p}/commits/{{rev}}"), get(refs::list_commits))
        .route(
            &format!("{p}/branch/{{rev}}"),
            post(refs::create_branch).delete(refs::delete_branch),
        )
        .route(
            &format!("{p}/tag/{{rev}}"),
            post(refs::create_tag).delete(refs::delete_tag),
        )
        .route(&format!("{p}/preupload/{{rev}}"), post(commit::preupload))
        .route(&format!("{p}/commit/{{rev}}"), post(commit::commit))
        .route(&format!("{p}/settings"), put(repos::settings))
        .layer(Extension(kind))
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/signup", post(users::signup))
        .route("/api/login", post(users::login))
        .route("/api/whoami-v2", get(users::whoami))
        .route(
            "/api/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route(
            "/api/tokens/{id}",
            axum::routing::delete(users::delete_token),
        )
        .route("/api/repos/create", post(repos::create))
        .route("/api/repos/delete", axum::routing::delete(repos::delete))
        .route("/api/repos/move", post(repos::move_repo))
        .route("/api/validate-yaml", post(commit::validate_yaml))
        .route(
            "/api/models/{ns}/{name}/analysis/{rev}",
            get(analysis::file_analyses),
        )
        .route("/api/compare/structure", get(analysis::compare_structure))
        .route("/api/compare", get(results_api::compare_models))
        .route("/api/compare/runs", post(results_api::contrast_runs))
        .route("/api/results", get(results_api::list))
        .route("/api/results/{id}", get(results_api::get))
        .route("/api/leaderboards", get(results_api::boards))
        .route(
            "/api/leaderboards/{ns}/{name}",
            get(results_api::leaderboard),
        )
        .route("/api/lfs/objects/{oid}", put(lfs::upload))
        .route("/api/lfs/verify", post(lfs::verify))
        .route("/api/jobs", get(jobs_api::list).post(jobs_api::submit))
        .route("/api/predict", post(crate::predict::api::predict))
        .route(
            "/api/predict/observations",
            get(crate::predict::api::observations),
        )
        .route("/api/jobs/{id}", get(jobs_api::get))
        .route("/api/jobs/{id}/cancel", post(jobs_api::cancel))
        .route("/api/jobs/{id}/logs", get(jobs_api::logs))
        .route("/api/cluster/nodes", get(jobs_api::nodes))
        .route("/api/cluster/register", post(cluster_api::register))
        .route("/api/cluster/heartbeat", post(cluster_api::heartbeat))
        .route("/api/cluster/leave", post(cluster_api::leave))
        .route("/api/cluster/jobs/{id}/events", post(cluster_api::events))
        .route("/api/cluster/jobs/{id}/outputs", put(outputs::upload))
        .route("/api/cluster/blobs/{sha}", get(cluster_api::blob))
        .merge(repo_api(RepoKind::Model))
        .merge(repo_api(RepoKind::Dataset))
        .route(
            "/{ns}/{name_git}/info/lfs/objects/batch",
            post(lfs::batch).layer(Extension(RepoKind::Model)),
        )
        .route(
            "/datasets/{ns}/{name_git}/info/lfs/objects/batch",
            post(lfs::batch).layer(Extension(RepoKind::Dataset)),
        )
        .route(
            "/{ns}/{name}/resolve/{rev}/{*path}",
            get(files::resolve_file).layer(Extension(RepoKind::Model)),
        )
        .route(
            "/datasets/{ns}/{name}/resolve/{rev}/{*path}",
            get(files::resolve_file).layer(Extension(RepoKind::Dataset)),
        )
        .route("/", get(web::home))
        .route("/models", get(web::browse::browse_models))
        .route(
            "/login",
            get(web::session::login_form).post(web::session::login),
        )
        .route(
            "/signup",
            get(web::session::signup_form).post(web::session::signup),
        )
        .route("/logout", post(web::session::logout))
        .route(
            "/settings/tokens",
            get(web::tokens::tokens_page).post(web::tokens::create_token),
        )
        .route(
            "/settings/tokens/{id}/revoke",
            post(web::tokens::revoke_token),
        )
        .route("/jobs", get(web::jobs::jobs_page))
        .route("/jobs/{id}", get(web::jobs::job_page))
        .route("/jobs/{id}/metrics.svg", get(web::jobs::metric_chart))
        .route("/cluster", get(web::jobs::cluster_page))
        .route("/cluster/simulate", get(web::simulate::simulate_page))
        .route("/cluster/simulate.svg", get(web::simulate::simulate_chart))
        .route(
            "/cluster/utilization.svg",
            get(web::jobs::utilization_chart),
        )
        .route("/leaderboards", get(web::results::leaderboards_page))
        .route(
            "/leaderboards/{ns}/{name}",
            get(web::results::leaderboard_page),
        )
        .route(
            "/leaderboards/{ns}/{name}/chart.svg",
            get(web::results::leaderboard_chart),
        )
        .route("/compare", get(web::results::compare_page))
        .route("/compare/runs", post(web::results::compare_runs_form))
        .route("/compare/chart.svg", get(web::results::compare_chart))
        .route("/datasets", get(web::browse::browse_datasets))
        .route("/{ns}/{name}", get(web::model_page))
        .route("/{ns}/{name}/evaluate", post(web::evaluate_form))
        .route(
            "/new",
            get(web::upload::new_repo_page).post(web::upload::new_repo),
        )
        // Each file's size is checked while it streams (`max_file_bytes`), not the body's.
        .route(
            "/{ns}/{name}/upload",
            post(web::upload::upload_model).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/datasets/{ns}/{name}/upload",
            post(web::upload::upload_dataset).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/datasets/{ns}/{name}", get(web::dataset_page))
        .route("/static/job-log.js", get(job_log_js))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::read_cache::layer,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(close_after_refused_upload))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Pages run only the hub's own scripts (a card's `<script>` would not run even if the
/// sanitizer missed it); files served from repositories run nothing at all.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";
const FILE_CSP: &str = "default-src 'none'; sandbox";

/// Content-Security-Policy and related headers on every response.
async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let user_file = req.uri().path().contains("/resolve/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static(if user_file { FILE_CSP } else { PAGE_CSP }),
    );
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        axum::http::header::X_FRAME_OPTIONS,
        axum::http::HeaderValue::from_static("DENY"),
    );
    resp
}

/// The job page's live log follower (a file, so that the page needs no inline script).
async fn job_log_js() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../static/job-log.js"),
    )
        .into_response()
}

/// A request with a body that was refused may not have been read to its end; asking the client
/// to close the connection keeps it from sending its next request into the unread rest.
async fn close_after_refused_upload(req: Request, next: axum::middleware::Next) -> Response {
    let has_body = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let mut resp = next.run(req).await;
    if has_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.count_users().await {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            format!("database: {e}"),
        )
        .into_response(),
    }
}

async fn fallback(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        AppError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no API endpoint {} {}", req.method(), req.uri().path()),
        )
        .into_response()
    } else {
        web::not_found().await
    }
}
