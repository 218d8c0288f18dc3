//! The browse pages (`/models`, `/datasets`): search, filters by task, license, library and
//! model size, sorting, and cursor pages that keep the filters.

use axum::extract::{Query, State};
use modelyard_core::RepoKind;
use modelyard_store::{ListQuery, RepoFilters, RepoSort};
use serde::Deserialize;
use serde_json::json;

use super::{render, repo_cards, PageResult};
use crate::api::repos::parameter_range;
use crate::auth::Auth;
use crate::error::AppError;
use crate::state::AppState;

/// The size ranges offered on the page: `(query value, label)`.
const SIZES: &[(&str, &str)] = &[
    ("0-10M", "under 10M parameters"),
    ("10M-100M", "10M–100M"),
    ("100M-1B", "100M–1B"),
    ("1B-", "over 1B"),
];

/// What a query value escapes: everything but the unreserved characters of RFC 3986.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `k=v&…` with the values percent-encoded, for links that keep a page's query.
pub(crate) fn query_string(pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect();
    pairs.join("&")
}

#[derive(Deserialize, Default)]
pub struct BrowseQuery {
    pub search: Option<String>,
    pub sort: Option<String>,
    pub author: Option<String>,
    pub tag: Option<String>,
    pub task: Option<String>,
    pub license: Option<String>,
    pub library: Option<String>,
    /// A parameter range such as `10M-100M` or `1B-`.
    pub params: Option<String>,
    pub cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub async fn browse_models(
    state: State<AppState>,
    auth: Auth,
    q: Query<BrowseQuery>,
) -> PageResult {
    browse(state, auth, RepoKind::Model, q).await
}

pub async fn browse_datasets(
    state: State<AppState>,
    auth: Auth,
    q: Query<BrowseQuery>,
) -> PageResult {
    browse(state, auth, RepoKind::Dataset, q).await
}

async fn browse(
    State(state): State<AppState>,
    auth: Auth,
    kind: RepoKind,
    Query(q): Query<BrowseQuery>,
) -> PageResult {
    let sort = if q.sort.as_deref() == Some("downloads") {
        RepoSort::Downloads
    } else {
        RepoSort::Recent
    };
    let after = q.cursor.as_deref().and_then(|c| {
        let (k, uid) = c.split_once('.')?;
        Some((k.parse().ok()?, uid.to_owned()))
    });
    let params = given(&q.params);
    let (min_parameters, max_parameters) = match &params {
        Some(p) if kind == RepoKind::Model => parameter_range(p)?,
        _ => (None, None),
    };
    let filters = RepoFilters {
        task: given(&q.task),
        license: given(&q.license),
        library: given(&q.library),
        min_parameters,
        max_parameters,
    };
    let page = state
        .store
        .list_repos(&ListQuery {
            kind,
            viewer: auth.name().map(str::to_owned),
            viewer_is_admin: auth.is_admin(),
            search: given(&q.search),
            author: given(&q.author),
            tags: given(&q.tag).into_iter().collect(),
            filters,
            sort,
            limit: 30,
            after,
        })
        .await
        .map_err(AppError::from)?;
    // Every link on the page keeps the filters in force.
    let kept: Vec<(&str, String)> = [
        ("search", given(&q.search)),
        ("author", given(&q.author)),
        ("tag", given(&q.tag)),
        ("task", given(&q.task)),
        ("license", given(&q.license)),
        ("library", given(&q.library)),
        ("params", params.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let query = |extra: &[(&str, String)]| {
        let pairs: Vec<(&str, &str)> = kept
            .iter()
            .chain(extra)
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        format!("?{}", query_string(&pairs))
    };
    let sort_name = if sort == RepoSort::Downloads {
        "downloads"
    } else {
        "recent"
    };
    let next = page.next.map(|(k, uid)| {
        query(&[
            ("sort", sort_name.to_owned()),
            ("cursor", format!("{k}.{uid}")),
        ])
    });
    let heading = if kind == RepoKind::Model {
        "Models"
    } else {
        "Datasets"
    };
    let repos = repo_cards(&state, &page.repos).await?;
    render(
        &state,
        &auth,
        "list.html",
        json!({
            "heading": heading,
            "path": if kind == RepoKind::Model { "/models" } else { "/datasets" },
            "models": kind == RepoKind::Model,
            "repos": repos,
            "search": q.search,
            "filters": {
                "task": given(&q.task), "license": given(&q.license),
                "library": given(&q.library), "params": params,
            },
            "sizes": SIZES,
            "sort": sort_name,
            "by_recent": query(&[("sort", "recent".to_owned())]),
            "by_downloads": query(&[("sort", "downloads".to_owned())]),
            "next": next,
        }),
    )
}
