//! Test harness: a real `modelyard serve` process on port 0 with its own data directory.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod jobs;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_modelyard");

pub struct Server {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The admin token printed at first start.
    pub admin: String,
    pub http: reqwest::Client,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// A server started with extra environment variables (scheduler settings).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (child, url, admin) = spawn_env("serve", &dir.path().join("data"), dir.path(), env);
        let admin = admin.expect("a fresh data directory prints an admin token");
        Server {
            child,
            url,
            dir,
            admin,
            http: reqwest::Client::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates a user with `modelyard admin create-user NAME --token` and returns the token.
    pub fn user(&self, name: &str) -> String {
        let out = Command::new(BIN)
            .args(["admin", "create-user", name, "--token", "--data-dir"])
            .arg(self.data_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "create-user failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "the token is alone on stdout: {text:?}");
        lines[0].to_owned()
    }

    /// An API token for `user` from the log-in API (as a browser user gets one).
    pub async fn login(&self, user: &str, password: &str) -> String {
        let v: Value = self
            .req(reqwest::Method::POST, "/api/login", None)
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().expect("a token").to_owned()
    }

    /// Runs a client command against this server with `token`.
    pub fn cli(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("MODELYARD_SERVER", &self.url)
            .env("MODELYARD_CONFIG_DIR", self.dir.path().join("client"))
            .env_remove("MODELYARD_TOKEN");
        if let Some(t) = token {
            cmd.env("MODELYARD_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        self.req(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_repo(
        &self,
        token: &str,
        id: &str,
        kind: &str,
        private: bool,
    ) -> reqwest::Response {
        let (ns, name) = id.split_once('/').unwrap();
        self.req(reqwest::Method::POST, "/api/repos/create", Some(token))
            .json(&json!({"name": name, "organization": ns, "type": kind, "private": private}))
            .send()
            .await
            .unwrap()
    }

    /// Commits inline files (`path`, content) to `main` of a model repo.
    pub async fn commit_files(
        &self,
        token: &str,
        id: &str,
        files: &[(&str, &[u8])],
        parent: Option<&str>,
    ) -> reqwest::Response {
        use base64::Engine;
        let mut body =
            json!({"key": "header", "value": {"summary": "test commit", "parentCommit": parent}})
                .to_string();
        for (path, content) in files {
            body.push('\n');
            body += &json!({"key": "file", "value": {"path": path, "encoding": "base64",
                "content": base64::engine::general_purpose::STANDARD.encode(content)}})
            .to_string();
        }
        self.req(
            reqwest::Method::POST,
            &format!("/api/models/{id}/commit/main"),
            Some(token),
        )
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
    }

    pub async fn head(&self, id: &str, token: Option<&str>) -> String {
        let v: Value = self
            .get(&format!("/api/models/{id}/revision/main"), token)
            .await
            .json()
            .await
            .unwrap();
        v["sha"].as_str().unwrap().to_owned()
    }

    /// Resident and peak resident memory of the server process, in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `modelyard serve` and waits for its `listening on` line; returns the admin token
/// when this start created the admin account.
pub fn spawn(data_dir: &Path, log_dir: &Path) -> (Child, String, Option<String>) {
    spawn_cmd("serve", data_dir, log_dir)
}

/// Like `spawn`, for `serve` or `up`.
pub fn spawn_cmd(cmd: &str, data_dir: &Path, log_dir: &Path) -> (Child, String, Option<String>) {
    spawn_env(cmd, data_dir, log_dir, &[])
}

/// Like `spawn_cmd`, with extra environment variables.
pub fn spawn_env(
    cmd: &str,
    data_dir: &Path,
    log_dir: &Path,
    env: &[(&str, &str)],
) -> (Child, String, Option<String>) {
    let log = std::fs::File::create(log_dir.join("server.log")).unwrap();
    let mut child = Command::new(BIN)
        .args(cmd.split_whitespace())
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .envs(env.iter().copied())
        .env("MODELYARD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("server printed a line").unwrap();
    let url = first
        .strip_prefix("modelyard listening on ")
        .expect("listening line")
        .to_owned();
    let mut token = None;
    if let Some(Ok(line)) = lines.next() {
        if line.starts_with("created the admin account") {
            token = Some(lines.next().unwrap().unwrap());
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url, token)
}

/// Files of a blob directory, excluding unfinished writes.
pub fn blob_files(data_dir: &Path) -> Vec<PathBuf> {
    walk(&data_dir.join("blobs").join("blobs"))
}

pub fn tmp_files(data_dir: &Path) -> Vec<PathBuf> {
    walk(&data_dir.join("blobs").join("tmp"))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The CSRF token of the first form on a page.
pub fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("a form with a CSRF field in {html}"))
        + 19;
    html[at..].split('"').next().unwrap().to_owned()
}
