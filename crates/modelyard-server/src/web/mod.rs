//! Server-rendered pages at the Hub's URLs: home, browse, and a repository page with its card.

pub mod browse;
pub mod jobs;
pub mod results;
pub mod session;
pub mod simulate;
pub mod tokens;
pub mod upload;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use modelyard_core::card::split_front_matter;
use modelyard_core::{RepoId, RepoKind};
use modelyard_store::{ListQuery, RepoRow, RepoSort};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{can_read, fmt_date, RepoParams};
use crate::auth::Auth;
use crate::error::AppError;
use crate::repo_ops::read_small;
use crate::state::AppState;

/// Builds the template environment from the templates compiled into the binary.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_formatter(html_formatter);
    for (name, src) in [
        ("layout.html", include_str!("../../templates/layout.html")),
        ("home.html", include_str!("../../templates/home.html")),
        (
            "repo_list.html",
            include_str!("../../templates/repo_list.html"),
        ),
        ("list.html", include_str!("../../templates/list.html")),
        ("repo.html", include_str!("../../templates/repo.html")),
        (
            "analysis.html",
            include_str!("../../templates/analysis.html"),
        ),
        ("error.html", include_str!("../../templates/error.html")),
        ("login.html", include_str!("../../templates/login.html")),
        ("new.html", include_str!("../../templates/new.html")),
        ("jobs.html", include_str!("../../templates/jobs.html")),
        ("job.html", include_str!("../../templates/job.html")),
        ("cluster.html", include_str!("../../templates/cluster.html")),
        (
            "leaderboards.html",
            include_str!("../../templates/leaderboards.html"),
        ),
        (
            "leaderboard.html",
            include_str!("../../templates/leaderboard.html"),
        ),
        ("compare.html", include_str!("../../templates/compare.html")),
        (
            "simulate.html",
            include_str!("../../templates/simulate.html"),
        ),
        ("tokens.html", include_str!("../../templates/tokens.html")),
    ] {
        env.add_template(name, src).expect("templates are valid");
    }
    env
}

/// Escapes like minijinja's HTML formatter, except that `/` stays readable in paths and ids.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if value.is_safe()
        || matches!(state.auto_escape(), minijinja::AutoEscape::None)
        || value.is_none()
    {
        if value.is_none() {
            return Ok(());
        }
        return write!(out, "{value}")
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()));
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// A page-level error: rendered as HTML, not JSON.
pub struct PageError(pub(crate) AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let message = if status.is_server_error() {
            tracing::error!(error = %self.0.message, "page failed");
            "Something went wrong on the server.".to_owned()
        } else {
            self.0.message
        };
        let env = templates();
        let html = env
            .get_template("error.html")
            .and_then(|t| t.render(json!({ "status": status.as_u16(), "message": message })))
            .unwrap_or(message);
        (status, Html(html)).into_response()
    }
}

pub(crate) type PageResult = Result<Html<String>, PageError>;

/// Renders a page; every page knows who is logged in (for the header).
pub(crate) fn render(state: &AppState, auth: &Auth, name: &str, mut ctx: Value) -> PageResult {
    if let Value::Object(m) = &mut ctx {
        m.insert("viewer".into(), json!(auth.name()));
    }
    state
        .templates
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map(Html)
        .map_err(|e| PageError(AppError::internal(format!("template {name}: {e}"))))
}

/// Cards of a list of repos; models show their size when an analysed model is on `main`.
async fn repo_cards(state: &AppState, repos: &[RepoRow]) -> Result<Vec<Value>, PageError> {
    let models: Vec<&str> = repos
        .iter()
        .filter(|r| r.kind == RepoKind::Model)
        .map(|r| r.uid.as_str())
        .collect();
    let sizes = state
        .store
        .main_parameters(&models)
        .await
        .map_err(AppError::from)?;
    Ok(repos
        .iter()
        .map(|r| {
            let mut card = repo_card(r);
            if let Some(n) = sizes.get(&r.uid) {
                card["parameters"] = json!(crate::analysis::api::human_count(*n as u64));
            }
            card
        })
        .collect())
}

fn repo_card(r: &RepoRow) -> Value {
    json!({
        "id": r.id.to_string(),
        "name": r.id.name(),
        "url": format!("/{}{}", r.kind.url_prefix(), r.id),
        "private": r.private,
        "task": r.pipeline_tag,
        "license": r.license,
        "tags": r.tags,
        "downloads": r.downloads,
        "updated": fmt_date(r.updated_at)[..10].to_owned(),
    })
}

/// The newest (or most downloaded) repos of `kind` the viewer may see, as cards.
async fn top(
    state: &AppState,
    auth: &Auth,
    kind: RepoKind,
    sort: RepoSort,
    limit: i64,
) -> Result<Vec<Value>, PageError> {
    let page = state
        .store
        .list_repos(&ListQuery {
            filters: Default::default(),
            kind,
            viewer: auth.name().map(str::to_owned),
            viewer_is_admin: auth.is_admin(),
            search: None,
            author: None,
            tags: vec![],
            sort,
            limit,
            after: None,
        })
        .await
        .map_err(AppError::from)?;
    repo_cards(state, &page.repos).await
}

pub async fn home(State(state): State<AppState>, auth: Auth) -> PageResult {
    let (model, dataset) = (RepoKind::Model, RepoKind::Dataset);
    let models = top(&state, &auth, model, RepoSort::Recent, 12).await?;
    let datasets = top(&state, &auth, dataset, RepoSort::Recent, 12).await?;
    // Popular: downloaded at least once, most first (a fresh hub has none to show).
    let popular = |cards: Vec<Value>| -> Vec<Value> {
        cards
            .into_iter()
            .filter(|c| c["downloads"].as_i64() > Some(0))
            .collect()
    };
    let popular_models = popular(top(&state, &auth, model, RepoSort::Downloads, 6).await?);
    let popular_datasets = popular(top(&state, &auth, dataset, RepoSort::Downloads, 6).await?);
    render(
        &state,
        &auth,
        "home.html",
        json!({
            "repos": models,
            "datasets": datasets,
            "popular_models": popular_models,
            "popular_datasets": popular_datasets,
        }),
    )
}

/// The model page's "evaluate on a dataset" form, submitted with GET to see the prediction.
#[derive(Deserialize, Default)]
pub struct EvaluateQuery {
    /// `ns/name` of a dataset.
    pub evaluate_on: Option<String>,
    pub split: Option<String>,
    pub limit: Option<String>,
}

pub async fn model_page(
    state: State<AppState>,
    headers: HeaderMap,
    auth: Auth,
    p: Path<RepoParams>,
    Query(q): Query<EvaluateQuery>,
) -> PageResult {
    let ns_name = format!("{}/{}", p.ns, p.name);
    let evaluate = match q.evaluate_on.as_deref().map(str::trim) {
        Some(ds) if !ds.is_empty() => Some(evaluate_view(&state, &auth, &ns_name, ds, &q).await),
        _ => None,
    };
    repo_page(
        state,
        headers,
        auth,
        RepoKind::Model,
        p,
        evaluate.unwrap_or(Value::Null),
    )
    .await
}

/// The model page's "Submit evaluation" form.
#[derive(Deserialize)]
pub struct EvaluateForm {
    pub csrf: String,
    pub dataset: String,
    #[serde(default)]
    pub split: String,
    #[serde(default)]
    pub limit: String,
}

/// `POST /{ns}/{name}/evaluate`: queues the evaluation and opens its job page.
pub async fn evaluate_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(p): Path<RepoParams>,
    axum::Form(f): axum::Form<EvaluateForm>,
) -> Result<Response, PageError> {
    let caller = crate::auth::form_caller(&state, &headers, &f.csrf).await?;
    let auth = Auth(Some(caller));
    let mut eval = json!({});
    if !f.split.trim().is_empty() {
        eval["split"] = json!(f.split.trim());
    }
    if let Ok(l) = f.limit.trim().parse::<u64>() {
        eval["limit"] = json!(l);
    }
    let body = crate::master::jobs_api::SubmitBody {
        kind: Some("evaluate".into()),
        model: Some(format!("{}/{}", p.ns, p.name)),
        dataset: Some(f.dataset.trim().to_owned()),
        eval: Some(eval),
        ..Default::default()
    };
    let job = crate::master::jobs_api::submit_job(&state, &auth, &body).await?;
    Ok(axum::response::Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

/// The prediction for evaluating `model` on `dataset`, and when it would start if submitted.
async fn evaluate_view(
    state: &AppState,
    auth: &Auth,
    model: &str,
    dataset: &str,
    q: &EvaluateQuery,
) -> Value {
    let mut eval = json!({});
    if let Some(split) = q.split.as_deref().filter(|s| !s.trim().is_empty()) {
        eval["split"] = json!(split.trim());
    }
    let limit = q
        .limit
        .as_deref()
        .and_then(|l| l.trim().parse::<u64>().ok());
    if let Some(l) = limit {
        eval["limit"] = json!(l);
    }
    let body = crate::master::jobs_api::SubmitBody {
        kind: Some("evaluate".into()),
        model: Some(model.to_owned()),
        dataset: Some(dataset.to_owned()),
        eval: Some(eval.clone()),
        ..Default::default()
    };
    let form = json!({"split": q.split.clone().unwrap_or_default(), "limit": limit});
    let mut command = format!("modelyard submit --model {model} --dataset {dataset}");
    if eval.as_object().is_some_and(|o| !o.is_empty()) {
        command += &format!(" --eval '{eval}'");
    }
    let spec = match crate::master::jobs_api::job_spec(state, auth, &body).await {
        Ok((spec, _)) => spec,
        Err(e) => return json!({"dataset": dataset, "error": e.message, "form": form}),
    };
    match crate::predict::predict_spec(state, &spec, None).await {
        Ok(p) => {
            let queue = crate::predict::api::eta_if_submitted(state, &spec, p.reference_s).await;
            json!({"dataset": dataset, "prediction": p, "queue": queue, "command": command, "form": form})
        }
        Err(reason) => {
            json!({"dataset": dataset, "error": reason, "command": command, "form": form})
        }
    }
}

pub async fn dataset_page(
    state: State<AppState>,
    headers: HeaderMap,
    auth: Auth,
    p: Path<RepoParams>,
) -> PageResult {
    repo_page(state, headers, auth, RepoKind::Dataset, p, Value::Null).await
}

/// Markdown to HTML with everything unsafe (scripts, event handlers, `javascript:`) removed.
pub fn render_markdown(md: &str) -> String {
    let mut opts = pulldown_cmark::Options::empty();
    opts.insert(pulldown_cmark::Options::ENABLE_TABLES);
    opts.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    let parser = pulldown_cmark::Parser::new_ext(md, opts);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::clean(&html)
}

pub(crate) fn human_size(n: i64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

async fn repo_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Auth,
    kind: RepoKind,
    Path(p): Path<RepoParams>,
    evaluate: Value,
) -> PageResult {
    let not_found = || PageError(AppError::repo_not_found(format!("{}/{}", p.ns, p.name)));
    let id = RepoId::new(&p.ns, &p.name).map_err(|_| not_found())?;
    let repo = state.store.repo(kind, &id).await.map_err(AppError::from)?;
    let repo = repo.filter(|r| can_read(&auth, r)).ok_or_else(not_found)?;
    let rev = "main";
    let commit = state
        .store
        .resolve_revision(&repo.uid, rev)
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| PageError(AppError::revision_not_found(rev)))?;
    let files = state
        .store
        .tree(&commit, "")
        .await
        .map_err(AppError::from)?;
    let analyses = if kind == RepoKind::Model {
        crate::analysis::panel(&state, &files).await?
    } else {
        Vec::new()
    };
    let dataset = if kind == RepoKind::Dataset {
        dataset_view(&state, &commit).await?
    } else {
        Value::Null
    };
    let results = results_view(&state, &auth, &repo).await?;
    let prefix = format!("/{}{}", kind.url_prefix(), repo.id);
    let card_html = match files.iter().find(|f| f.path == "README.md") {
        Some(f) => read_small(&state, &f.sha256, 1 << 20)
            .await?
            .map(|text| render_markdown(split_front_matter(&text).1)),
        None => None,
    };
    let commits = state
        .store
        .history(&repo.uid, &commit, 0, 20)
        .await
        .map_err(AppError::from)?;
    let files: Vec<Value> = files
        .iter()
        .map(|f| json!({
            "path": f.path,
            "size_h": human_size(f.size),
            "url": format!("{prefix}/resolve/{commit}/{}", percent_encoding::utf8_percent_encode(&f.path, PATH_SET)),
        }))
        .collect();
    let commits: Vec<Value> = commits
        .iter()
        .map(|c| json!({"id": c.id, "title": c.title, "author": c.author, "date": fmt_date(c.created_at)[..16].replace('T', " ")}))
        .collect();
    render(
        &state,
        &auth,
        "repo.html",
        json!({
            "repo": repo_card(&repo),
            "kind": kind.as_str(),
            "rev": rev,
            "commit": commit,
            "card_html": card_html,
            "card_error": repo.card_error,
            "files": files,
            "commits": commits,
            "analyses": analyses,
            "dataset": dataset,
            "results": results,
            "evaluate": evaluate,
            // Logged-in browsers may submit the evaluation, with a per-session CSRF token.
            "csrf": crate::auth::page_csrf(&state, &headers, &auth),
            "base": state.base_url(&headers),
            "can_write": auth.name() == Some(repo.owner.as_str()) || auth.is_admin(),
            "upload_url": format!("{prefix}/upload"),
        }),
    )
}

/// The dataset page's summary: splits with rows, label bars and a preview (or "summarizing").
async fn dataset_view(state: &AppState, commit: &str) -> Result<Value, PageError> {
    let Some(row) = state
        .store
        .dataset_summary(commit)
        .await
        .map_err(AppError::from)?
    else {
        crate::datasets::ensure(state, commit);
        return Ok(json!({"pending": true}));
    };
    let Some(summary) = row.summary else {
        return Ok(json!({"error": row.error}));
    };
    let splits: Vec<Value> = summary["splits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut s| {
            let labels = s["labels"].as_object().cloned().unwrap_or_default();
            let max = labels
                .values()
                .filter_map(Value::as_u64)
                .max()
                .unwrap_or(1)
                .max(1);
            s["label_bars"] = labels
                .iter()
                .map(|(k, v)| {
                    let n = v.as_u64().unwrap_or(0);
                    json!({"label": k, "count": n, "width": n * 100 / max})
                })
                .collect();
            s
        })
        .collect();
    Ok(json!({ "splits": splits }))
}

/// Verified results of a model (or on a dataset), and a model's self-reported claims.
async fn results_view(state: &AppState, auth: &Auth, repo: &RepoRow) -> Result<Value, PageError> {
    use crate::results::board::visible;
    use crate::web::results::show_metric;
    let mut filter = modelyard_store::ResultFilter::default();
    match repo.kind {
        RepoKind::Model => filter.model_repo = Some(repo.uid.clone()),
        RepoKind::Dataset => filter.dataset_repo = Some(repo.uid.clone()),
    }
    let rows = state.store.results(&filter).await.map_err(AppError::from)?;
    let verified: Vec<Value> = rows
        .iter()
        .filter(|r| {
            visible(auth, r.model_private, &r.model_owner)
                && visible(auth, r.dataset_private, &r.dataset_owner)
        })
        .take(50)
        .map(|r| {
            let metric = r
                .task
                .parse::<modelyard_eval::Task>()
                .map(|t| t.primary_metric().0)
                .unwrap_or("accuracy");
            json!({"model": r.model_id.to_string(), "dataset": r.dataset_id.to_string(),
                   "split": r.split, "task": r.task, "metric": metric,
                   "value": r.metrics.get(metric).map(|v| show_metric(metric, *v)),
                   "commit": &r.model_commit[..12.min(r.model_commit.len())],
                   "job_id": r.job_id, "date": &fmt_date(r.created_at)[..10]})
        })
        .collect();
    let claims: Vec<Value> = if repo.kind == RepoKind::Model {
        state
            .store
            .self_reported(None, Some(&repo.uid))
            .await
            .map_err(AppError::from)?
            .iter()
            .map(|c| {
                json!({"dataset": c.claim.dataset, "split": c.claim.split, "metric": c.claim.metric,
                       "value": show_metric(&c.claim.metric, c.claim.value)})
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({"verified": verified, "claims": claims}))
}

/// Characters escaped in a file path inside a URL (slashes stay).
const PATH_SET: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub async fn not_found() -> Response {
    PageError(AppError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        "There is no page at this address.",
    ))
    .into_response()
}
