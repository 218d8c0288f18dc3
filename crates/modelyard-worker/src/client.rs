//! The HTTP client for the master's `/api/cluster/...` endpoints, with the node token it holds.

use std::sync::RwLock;
use std::time::Duration;

use modelyard_core::protocol::{
    Heartbeat, HeartbeatResponse, JobEvents, RegisterRequest, RegisterResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Extra time the heartbeat request may take beyond the long-poll wait before it counts as lost.
const POLL_SLACK: Duration = Duration::from_secs(10);
/// Limit for calls that are not long polls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a blob download to start (the body itself may take longer).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to the master did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request never got an HTTP answer (refused, reset, timed out).
    #[error("cannot reach the master at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The master answered with an error status and (usually) the JSON error shape.
    #[error("the master answered {status} ({code}): {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

impl ClientError {
    /// The HTTP status, when the master answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Transport { .. } => None,
            ClientError::Status { status, .. } => Some(*status),
        }
    }

    /// The error code of the JSON error shape, when the master sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Transport { .. } => None,
            ClientError::Status { code, .. } => Some(code),
        }
    }

    /// Whether trying the same call again later may succeed: the master is unreachable,
    /// overloaded, restarting, or has not yet accepted our new node token.
    pub fn is_transient(&self) -> bool {
        match self.status() {
            None => true,
            Some(s) => s >= 500 || s == 401 || s == 408 || s == 429,
        }
    }
}

/// Talks to one master. Cheap to share behind an `Arc`; the node token is swapped in place
/// when the worker re-registers, so every in-flight job reporter picks up the new one.
#[derive(Debug)]
pub struct MasterClient {
    http: reqwest::Client,
    base: String,
    token: RwLock<String>,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(serde::Deserialize)]
struct ErrorInner {
    code: String,
    message: String,
}

impl MasterClient {
    /// A client for the master at `base` (e.g. `http://127.0.0.1:8080`), holding `token`
    /// (empty until registration).
    pub fn new(base: &str, token: String) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: RwLock::new(token),
        })
    }

    pub fn set_token(&self, token: String) {
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    fn token(&self) -> String {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/cluster/register`.
    pub async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, ClientError> {
        self.post("/api/cluster/register", req, CALL_TIMEOUT, false)
            .await
    }

    /// `POST /api/cluster/heartbeat`: a long poll of up to `hb.wait_ms`.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatResponse, ClientError> {
        let timeout = Duration::from_millis(hb.wait_ms) + POLL_SLACK;
        self.post("/api/cluster/heartbeat", hb, timeout, true).await
    }

    /// `POST /api/cluster/leave`: this worker stops; the master requeues its unfinished jobs.
    pub async fn leave(&self) -> Result<(), ClientError> {
        let resp = self
            .send(
                self.http.post(self.url("/api/cluster/leave")),
                CALL_TIMEOUT,
                true,
            )
            .await?;
        drop(resp);
        Ok(())
    }

    /// `POST /api/cluster/jobs/{job_id}/events`.
    pub async fn events(&self, job_id: i64, events: &JobEvents) -> Result<(), ClientError> {
        let path = format!("/api/cluster/jobs/{job_id}/events");
        let resp = self
            .send(
                self.http.post(self.url(&path)).json(events),
                CALL_TIMEOUT,
                true,
            )
            .await?;
        // The body, if any, carries nothing the worker needs.
        drop(resp);
        Ok(())
    }

    /// `PUT /api/cluster/jobs/{job_id}/outputs`: streams one output file of an attempt.
    pub async fn put_output(
        &self,
        job: modelyard_core::protocol::AttemptRef,
        path: &str,
        file: tokio::fs::File,
        len: u64,
    ) -> Result<(), ClientError> {
        let url = self.url(&format!("/api/cluster/jobs/{}/outputs", job.job_id));
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let resp = self
            .http
            .put(&url)
            .query(&[
                ("attempt", job.attempt.to_string()),
                ("path", path.to_owned()),
            ])
            .header(reqwest::header::CONTENT_LENGTH, len)
            .bearer_auth(self.token())
            .body(body)
            .send()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        check(resp).await.map(drop)
    }

    /// `GET /api/cluster/blobs/{sha256}`: the response, ready to be streamed.
    pub async fn blob(&self, sha256: &str) -> Result<reqwest::Response, ClientError> {
        let url = self.url(&format!("/api/cluster/blobs/{sha256}"));
        let req = self.http.get(url).bearer_auth(self.token());
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: self.url("/api/cluster/blobs"),
            source,
        })?;
        check(resp).await
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        timeout: Duration,
        auth: bool,
    ) -> Result<R, ClientError> {
        let url = self.url(path);
        let resp = self
            .send(self.http.post(&url).json(body), timeout, auth)
            .await?;
        resp.json::<R>()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
        auth: bool,
    ) -> Result<reqwest::Response, ClientError> {
        let req = if auth {
            req.bearer_auth(self.token())
        } else {
            req
        };
        let resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: self.base.clone(),
                source,
            })?;
        check(resp).await
    }
}

/// Turns an error status into a `ClientError`, reading the JSON error shape when present.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => {
            let mut msg: String = text.chars().take(500).collect();
            if msg.trim().is_empty() {
                msg = status.canonical_reason().unwrap_or("error").to_owned();
            }
            (String::new(), msg)
        }
    };
    Err(ClientError::Status {
        status: status.as_u16(),
        code,
        message,
    })
}
