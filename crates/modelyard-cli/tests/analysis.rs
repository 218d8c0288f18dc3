//! Model analysis end to end: files pushed to a real hub are analysed in the background once
//! per content, served by the API, shown on the model page, compared, and the CLI's offline
//! `analyze` and `diff`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Server, BIN};
use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn mnist() -> PathBuf {
    fixture("fixtures/mnist/mnist-8.onnx")
}

fn resnet() -> PathBuf {
    fixture("crates/modelyard-analyze/tests/data/light_resnet50.onnx")
}

/// `os.system("whoami")` the protocol-2 way: GLOBAL, an argument tuple, REDUCE.
const EVIL_PICKLE: &[u8] =
    b"\x80\x02cos\nsystem\nq\x00X\x06\x00\x00\x00whoamiq\x01\x85q\x02Rq\x03.";

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pushes one local file as `name` to a (new) model repo with the CLI.
fn push(s: &Server, token: &str, repo: &str, file: &Path, name: &str, private: bool) {
    let dir = s.dir.path().join("src").join(repo.replace('/', "_"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(file, dir.join(name)).unwrap();
    let dir_s = dir.to_str().unwrap();
    let mut args = vec!["push", dir_s, repo];
    if private {
        args.push("--private");
    }
    ok(&s.cli(Some(token), &args));
}

/// Polls the analysis endpoint until no file of `repo@rev` is pending.
async fn analysed(s: &Server, repo: &str, rev: &str, token: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s
            .get(&format!("/api/models/{repo}/analysis/{rev}"), token)
            .await;
        assert_eq!(r.status(), 200, "analysis of {repo}@{rev}");
        let v: Value = r.json().await.unwrap();
        let files = v["files"].as_array().unwrap();
        if !files.is_empty() && files.iter().all(|f| f["status"] != "pending") {
            return v;
        }
        assert!(Instant::now() < deadline, "analysis still pending: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SHA-256 of a local file, hex.
fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

async fn compare(s: &Server, a: &str, b: &str, token: Option<&str>) -> reqwest::Response {
    s.req(reqwest::Method::GET, "/api/compare/structure", token)
        .query(&[("a", a), ("b", b)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pushed_models_are_analysed_once_served_and_compared() {
    let s = Server::start();
    let a = s.user("alice");
    let b = s.user("bob");
    push(&s, &a, "alice/mnist", &mnist(), "mnist-8.onnx", false);
    push(&s, &a, "alice/resnet", &resnet(), "model.onnx", false);

    let m = analysed(&s, "alice/mnist", "main", None).await;
    let f = &m["files"][0];
    assert_eq!(f["path"], "mnist-8.onnx");
    assert_eq!(f["status"], "ok", "{f}");
    assert_eq!(f["features"]["parameters"]["total"], 5994);
    assert_eq!(f["features"]["macs_per_sample"], 786_560);
    assert_eq!(f["attempts"], 1);

    let r = analysed(&s, "alice/resnet", "main", None).await;
    let f = &r["files"][0];
    assert_eq!(f["status"], "ok", "{f}");
    let params = f["features"]["parameters"]["total"].as_u64().unwrap() as f64;
    assert!(
        (params / 25.6e6 - 1.0).abs() < 0.01,
        "resnet50 parameters {params}"
    );
    let macs = f["features"]["macs_per_sample"].as_u64().unwrap() as f64;
    assert!((macs / 4.1e9 - 1.0).abs() < 0.03, "resnet50 MACs {macs}");

    // The same content in another repo is served from the first analysis, not redone.
    push(&s, &b, "bob/copy", &mnist(), "renamed.onnx", false);
    let c = analysed(&s, "bob/copy", "main", None).await;
    assert_eq!(c["files"][0]["status"], "ok");
    assert_eq!(c["files"][0]["sha256"], m["files"][0]["sha256"]);
    assert_eq!(c["files"][0]["analyzed_at"], m["files"][0]["analyzed_at"]);
    assert_eq!(c["files"][0]["attempts"], 1, "analysed exactly once");

    // The model page shows the structure.
    let page = s.get("/alice/resnet", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Model structure"), "{html}");
    assert!(html.contains("25.6 M"), "human-readable parameters");
    assert!(
        html.contains("gpu_0/data_0") || html.contains("float32 ["),
        "inputs listed"
    );
    let page = s.get("/alice/mnist", None).await.text().await.unwrap();
    assert!(
        page.contains("786.6 K") && page.contains("opset 8"),
        "{page}"
    );

    // Same file at two commits: same architecture; mnist against resnet: different.
    let first = s.head("alice/mnist", None).await;
    assert_eq!(
        s.commit_files(&a, "alice/mnist", &[("README.md", b"# mnist\n")], None)
            .await
            .status(),
        200
    );
    let d: Value = compare(
        &s,
        &format!("alice/mnist@{first}"),
        "alice/mnist@main",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(d["verdict"], "same_architecture", "{d}");
    assert!(d["summary"]
        .as_str()
        .unwrap()
        .starts_with("same architecture"));
    assert_eq!(d["a"]["commit"], first.as_str());
    let d: Value = compare(&s, "alice/mnist", "alice/resnet", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["verdict"], "different_architecture", "{d}");
    assert!(d["parameter_delta"].as_i64().unwrap() > 25_000_000);

    // The CLI compares hub models through the same API.
    let out = ok(&s.cli(
        None,
        &["diff", &format!("alice/mnist@{first}"), "alice/mnist"],
    ));
    assert!(out.contains("verdict:    same architecture"), "{out}");
    let out = ok(&s.cli(None, &["diff", mnist().to_str().unwrap(), "alice/resnet"]));
    assert!(out.contains("different architecture"), "{out}");

    // Private models: 404 to others, for both endpoints; the owner sees them.
    push(&s, &a, "alice/secret", &mnist(), "m.onnx", true);
    assert_eq!(
        analysed(&s, "alice/secret", "main", Some(&a)).await["files"][0]["status"],
        "ok"
    );
    for token in [None, Some(b.as_str())] {
        let r = s.get("/api/models/alice/secret/analysis/main", token).await;
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-error-code"], "RepoNotFound");
        let r = compare(&s, "alice/secret", "alice/mnist", token).await;
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-error-code"], "RepoNotFound");
    }
    assert_eq!(
        compare(&s, "alice/secret", "alice/mnist", Some(&a))
            .await
            .status(),
        200
    );
    let r = compare(&s, "alice/nothing", "alice/mnist", None).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn unsafe_pickles_and_broken_files_are_flagged_not_fatal() {
    let s = Server::start();
    let a = s.user("alice");
    assert_eq!(
        s.create_repo(&a, "alice/bad", "model", false)
            .await
            .status(),
        200
    );
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let r = s
        .commit_files(
            &a,
            "alice/bad",
            &[
                ("pytorch_model.bin", EVIL_PICKLE),
                ("broken.onnx", &noise),
                ("notes.txt", b"not a model"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = analysed(&s, "alice/bad", "main", None).await;
    let files = v["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "only model files are analysed: {v}");
    let broken = files.iter().find(|f| f["path"] == "broken.onnx").unwrap();
    assert_eq!(broken["status"], "error", "{broken}");
    let msg = broken["error"].as_str().unwrap();
    assert!(!msg.is_empty() && !msg.contains("analysis-tmp"), "{msg}");
    let evil = files
        .iter()
        .find(|f| f["path"] == "pytorch_model.bin")
        .unwrap();
    assert_eq!(evil["status"], "unsafe", "{evil}");
    assert_eq!(evil["unsafe_imports"], serde_json::json!(["os.system"]));
    assert_eq!(evil["features"]["safety"]["verdict"], "unsafe");

    let page = s.get("/alice/bad", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("unsafe: imports os.system"), "{html}");
    assert!(html.contains("could not be analysed"), "{html}");

    // Comparing a file that failed analysis is a clear client error.
    let r = s
        .req(reqwest::Method::GET, "/api/compare/structure", None)
        .query(&[
            ("a", "alice/bad"),
            ("b", "alice/bad"),
            ("file_a", "broken.onnx"),
            ("file_b", "broken.onnx"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["x-error-code"], "AnalysisFailed");
}

/// A safetensors file holding `tensors` (name, shape) of float32 zeros plus `fill`.
fn safetensors(tensors: &[(&str, &[u64])], fill: u8) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<u64>() * 4;
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.resize(out.len() + offset as usize, fill);
    out
}

#[tokio::test]
async fn safetensors_files_and_sharded_indexes_are_analysed() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/st", "model", false).await;
    let single = safetensors(&[("embed.weight", &[10, 4]), ("mlp.fc.weight", &[4, 4])], 1);
    let shard1 = safetensors(&[("layers.0.attn.q.weight", &[8, 8])], 2);
    let shard2 = safetensors(&[("layers.1.mlp.weight", &[8, 2])], 3);
    let index = serde_json::json!({"metadata": {}, "weight_map": {
        "layers.0.attn.q.weight": "model-00001-of-00002.safetensors",
        "layers.1.mlp.weight": "model-00002-of-00002.safetensors"}})
    .to_string();
    let r = s
        .commit_files(
            &a,
            "alice/st",
            &[
                ("model.safetensors", &single),
                ("sharded/model.safetensors.index.json", index.as_bytes()),
                ("sharded/model-00001-of-00002.safetensors", &shard1),
                ("sharded/model-00002-of-00002.safetensors", &shard2),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = analysed(&s, "alice/st", "main", None).await;
    let by_path = |p: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} missing in {v}"))
    };
    let one = by_path("model.safetensors");
    assert_eq!(one["status"], "ok", "{one}");
    assert_eq!(one["features"]["parameters"]["total"], 56);
    assert!(one["features"]["tensors"][0]["content_hash"].is_string());
    let idx = by_path("sharded/model.safetensors.index.json");
    assert_eq!(idx["status"], "ok", "{idx}");
    assert_eq!(idx["features"]["parameters"]["total"], 80);
    assert_eq!(
        by_path("sharded/model-00001-of-00002.safetensors")["status"],
        "ok"
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 4);
}

#[test]
fn analyze_and_diff_work_offline_on_local_files() {
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            // Nothing listens here: these commands must not need a server.
            .env("MODELYARD_SERVER", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let m = mnist();
    let m = m.to_str().unwrap();
    let r = resnet();
    let r = r.to_str().unwrap();
    let json: Value = serde_json::from_str(&ok(&run(&["analyze", m, "--json"]))).unwrap();
    assert_eq!(json["parameters"]["total"], 5994);
    assert_eq!(json["format"], "onnx");
    let table = ok(&run(&["analyze", r]));
    assert!(
        table.contains("25,6") && table.contains("MACs/sample"),
        "{table}"
    );
    assert!(table.contains("safety"), "{table}");
    let same = ok(&run(&["diff", m, m]));
    assert!(same.contains("verdict:    same architecture"), "{same}");
    let other = ok(&run(&["diff", m, r]));
    assert!(
        other.contains("verdict:    different architecture"),
        "{other}"
    );
    let d: Value = serde_json::from_str(&ok(&run(&["diff", m, r, "--json"]))).unwrap();
    assert_eq!(d["verdict"], "different_architecture");
    let missing = run(&["analyze", "/nonexistent/model.onnx"]);
    assert!(!missing.status.success());
}

#[tokio::test]
async fn analyses_by_an_older_analyser_are_redone() {
    let s = Server::start();
    let a = s.user("alice");
    // What an older hub left behind: an analysis of this very file by analyser version 1,
    // without the features the current one reports.
    let store = modelyard_store::Store::connect(&format!(
        "sqlite://{}",
        s.data_dir().join("modelyard.db").display()
    ))
    .await
    .unwrap();
    let sha = sha256_of(&mnist());
    let stale = serde_json::json!({"format": "onnx", "parameters": {"total": 1}});
    store
        .put_analysis(&modelyard_store::NewAnalysis {
            sha256: &sha,
            status: modelyard_store::AnalysisStatus::Ok,
            format: Some("onnx"),
            features: Some(&stale),
            error: None,
            analyzer_version: 1,
            parameters: Some(1),
        })
        .await
        .unwrap();
    push(&s, &a, "alice/mnist", &mnist(), "mnist-8.onnx", false);
    let deadline = Instant::now() + Duration::from_secs(60);
    let f = loop {
        let v = analysed(&s, "alice/mnist", "main", None).await;
        let f = v["files"][0].clone();
        if f["analyzer_version"] != 1 {
            break f;
        }
        assert!(Instant::now() < deadline, "never re-analysed: {f}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(f["sha256"], sha);
    assert_eq!(f["analyzer_version"], modelyard_analyze::ANALYZER_VERSION);
    assert_eq!(f["features"]["parameters"]["total"], 5994);
    assert_eq!(f["features"]["normalization_work"], 0);
    assert_eq!(f["features"]["im2col_bytes"], 235_200);
    assert!(
        f["features"]["memory_access_bytes"].as_u64().unwrap() > 0,
        "{f}"
    );
    assert_eq!(f["attempts"], 2, "the old result counted, then replaced");
}
