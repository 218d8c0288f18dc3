//! `modelyard up` on a fresh data directory: admin token, demo repositories, pages.

mod common;

use serde_json::Value;

#[tokio::test]
async fn up_publishes_the_demo_and_serves_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, token) = common::spawn_cmd("up", &dir.path().join("data"), dir.path());
    assert!(token.is_some(), "a fresh install prints the admin token");
    let http = reqwest::Client::new();

    let models: Value = http
        .get(format!("{url}/api/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models[0]["id"], "admin/mnist-8");
    assert_eq!(models[0]["pipeline_tag"], "image-classification");
    let datasets: Value = http
        .get(format!("{url}/api/datasets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(datasets[0]["id"], "admin/mnist");

    let onnx = http
        .get(format!("{url}/admin/mnist-8/resolve/main/mnist-8.onnx"))
        .send()
        .await
        .unwrap();
    assert_eq!(onnx.status(), 200);
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/mnist/mnist-8.onnx"
    ))
    .unwrap();
    assert_eq!(onnx.bytes().await.unwrap().to_vec(), fixture);
    let labels = http
        .get(format!(
            "{url}/datasets/admin/mnist/resolve/main/t10k-labels-idx1-ubyte.gz"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(labels.bytes().await.unwrap().len(), 4542);

    let home = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        home.contains("admin/mnist-8") && home.contains("admin/mnist"),
        "{home}"
    );
    let page = http
        .get(format!("{url}/admin/mnist-8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<h1>mnist-8</h1>"),
        "the card is rendered: {page}"
    );
    assert!(page.contains("mnist-8.onnx"));
    let ds = http
        .get(format!("{url}/datasets/admin/mnist"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ds.contains("t10k-images-idx3-ubyte.gz"));
    let missing = http
        .get(format!("{url}/nobody/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // The demo's evaluation was queued at first start and the local worker runs it: the
    // leaderboard shows the verified accuracy within a minute, beside the card's claim.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let board = loop {
        let b: Value = http
            .get(format!("{url}/api/leaderboards/admin/mnist"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !b["verified"].as_array().unwrap().is_empty() {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no verified result within a minute: {b}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(board["verified"][0]["model"], "admin/mnist-8");
    assert_eq!(board["verified"][0]["metrics"]["correct"], 9890.0);
    assert_eq!(board["verified"][0]["self_reported"], 0.989);
    assert_eq!(board["verified"][0]["disagrees"], false);
    let page = http
        .get(format!("{url}/leaderboards/admin/mnist"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("98.90%"), "{page}");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn up_without_the_demo_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, token) =
        common::spawn_cmd("up --no-demo", &dir.path().join("data"), dir.path());
    assert!(token.is_some());
    let models: Value = reqwest::get(format!("{url}/api/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models, serde_json::json!([]));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn cards_cannot_run_scripts() {
    let s = common::Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/xss", "model", false).await;
    let card = b"# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[link](javascript:alert(3))\n";
    s.commit_files(&a, "alice/xss", &[("README.md", card)], None)
        .await;
    let page = s.get("/alice/xss", None).await.text().await.unwrap();
    assert!(page.contains("<h1>Title</h1>"));
    assert!(page.contains(">link</a>"), "the link text stays");
    for bad in ["<script>alert", "onerror", "href=\"javascript:"] {
        assert!(!page.contains(bad), "{bad} survived sanitizing");
    }
    // A file served from the repository runs nothing, even HTML opened in the browser.
    let html = b"<html><script>alert(4)</script></html>";
    s.commit_files(&a, "alice/xss", &[("page.html", html)], None)
        .await;
    let file = s.get("/alice/xss/resolve/main/page.html", None).await;
    assert_eq!(file.status(), 200);
    assert_eq!(
        file.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
}
