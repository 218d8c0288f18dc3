//! Jobs in tests: real worker processes, pushes through the CLI, waiting for a job's end.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, BIN};

/// A worker process, killed when dropped.
pub struct Worker(Child);

impl Worker {
    /// `kill -9`: the worker gets no chance to hand its jobs back.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn worker(s: &Server, name: &str) -> Worker {
    worker_with(s, name, &[])
}

/// A worker started with extra arguments (`--allow-commands`, `--gflops 10`...).
pub fn worker_with(s: &Server, name: &str, extra: &[&str]) -> Worker {
    worker_env(s, name, extra, &[])
}

/// A worker started with extra arguments and environment variables.
pub fn worker_env(s: &Server, name: &str, extra: &[&str], env: &[(&str, &str)]) -> Worker {
    let out = Command::new(BIN)
        .args(["admin", "join-token", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let join = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let base = s.dir.path().join(name);
    let child = Command::new(BIN)
        .args([
            "worker",
            "--server",
            &s.url,
            "--join-token",
            &join,
            "--name",
            name,
        ])
        .arg("--cache-dir")
        .arg(base.join("cache"))
        .arg("--work-dir")
        .arg(base.join("work"))
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(s.dir.path().join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    Worker(child)
}

pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn push(s: &Server, token: &str, dir: &Path, repo: &str, dataset: bool) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["push", d, repo];
    if dataset {
        args.push("--dataset");
    }
    ok(s.cli(Some(token), &args));
}

pub async fn json(s: &Server, path: &str, token: Option<&str>) -> Value {
    let r = s.get(path, token).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

pub async fn wait_job(s: &Server, token: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = json(s, &format!("/api/jobs/{id}"), Some(token)).await;
        if matches!(
            j["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The MNIST fixtures: `mnist-8.onnx` and the test split in IDX files.
pub fn mnist_fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/mnist"))
}

/// Pushes the MNIST test split (the two IDX files) as dataset `repo`.
pub fn push_mnist_digits(s: &Server, token: &str, repo: &str) {
    let d = tempfile::tempdir().unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist_fixtures().join(f), d.path().join(f)).unwrap();
    }
    push(s, token, d.path(), repo, true);
}
