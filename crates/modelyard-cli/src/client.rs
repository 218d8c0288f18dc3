//! A small HTTP client for the hub's API that turns error responses into advice.

use anyhow::{bail, Context};
use modelyard_core::{RepoId, RepoKind};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("modelyard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to `path` (or a full URL), with the token when there is one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let rb = self.http.request(method, url);
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn send(&self, rb: RequestBuilder) -> anyhow::Result<Response> {
        let resp = rb
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}: is it running?", self.base))?;
        check(resp).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self
            .send(self.request(reqwest::Method::GET, path))
            .await?
            .json()
            .await?)
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        Ok(self
            .send(self.request(reqwest::Method::POST, path).json(body))
            .await?
            .json()
            .await?)
    }
}

/// Turns a non-success response into an error that says what happened and what to do.
pub async fn check(resp: Response) -> anyhow::Result<Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let code = resp
        .headers()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["error"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or(text);
    let hint = match status {
        StatusCode::UNAUTHORIZED => {
            "\nhint: log in with `modelyard login --token <token>` or pass --token"
        }
        StatusCode::FORBIDDEN => "\nhint: this needs a write token of the repository's owner",
        StatusCode::CONFLICT => "\nhint: someone else committed first; pull and try again",
        _ => "",
    };
    bail!("server answered {status} {code}: {message}{hint}")
}

/// `/api/models/ns/name` or `/api/datasets/ns/name`.
pub fn api_repo_path(kind: RepoKind, id: &RepoId) -> String {
    format!("/api/{}/{id}", kind.plural())
}

pub fn enc_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Encodes a file path for a URL, keeping its slashes.
pub fn enc_path(p: &str) -> String {
    p.split('/').map(enc_segment).collect::<Vec<_>>().join("/")
}
