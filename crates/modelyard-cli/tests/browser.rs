//! The web experience in a real browser: headless Chromium driven through chromedriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/services` installs them when missing).
//! Signs up through the form, creates a model repository and uploads its files through the
//! pages, looks at its structure panel, asks the evaluate form for a
//! prediction, watches an evaluation finish live on its job page, finds the model on the
//! leaderboard, compares two models, and checks that a card's scripts never run. Every page
//! visited is saved as a PNG under `target/browser-screenshots/`.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::jobs::{json, mnist_fixtures, push, push_mnist_digits, wait_job, worker};
use common::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const DRIVER_ENV: &str = "MODELYARD_TEST_CHROMEDRIVER";
const CHROMIUM_ENV: &str = "MODELYARD_TEST_CHROMIUM";

/// chromedriver, killed when dropped.
/// chromedriver in a process group of its own, with the browsers it starts: all of them are
/// killed when the test ends, a failed test included.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(env: &str, default: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_owned()));
    p.is_file().then_some(p)
}

/// chromedriver on a free loopback port, or `None` (skip) outside CI when it is not installed.
fn chromedriver() -> Option<(Driver, u16, PathBuf)> {
    let (Some(driver), Some(chromium)) = (
        which(DRIVER_ENV, "/usr/bin/chromedriver"),
        which(CHROMIUM_ENV, "/usr/bin/chromium"),
    ) else {
        assert!(
            !modelyard_store::testing::in_ci(),
            "chromium and chromedriver must be installed in CI (scripts/services installs them)"
        );
        eprintln!("skipping the browser test: apt-get install chromium chromium-driver");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Driver(child), port, chromium))
}

async fn browser(port: u16, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromium session")
}

fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The visible text of the current page.
async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Loads `path` until its text contains `needle` (background work shows up on reload).
async fn until_text(c: &Client, s: &Server, path: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        c.goto(&format!("{}{path}", s.url)).await.unwrap();
        let text = body_text(c).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {needle:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(d.path().join(name), bytes).unwrap();
    }
    d
}

async fn evaluate(s: &Server, token: &str, model: &str) -> i64 {
    let r = s
        .req(reqwest::Method::POST, "/api/jobs", Some(token))
        .json(
            &json!({"kind": "evaluate", "model": model, "dataset": "alice/digits",
                      "eval": {"task": "image-classification", "limit": 2000}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_researcher_in_a_real_browser() {
    let Some((_driver, port, chromium)) = chromedriver() else {
        return;
    };
    // Screenshots of an earlier run (whose pages may have been named differently) go first.
    let _ = std::fs::remove_dir_all(shots_dir());
    let s = Server::start();
    let _w = worker(&s, "w1");
    let c = browser(port, &chromium).await;

    // Sign up through the form.
    c.goto(&format!("{}/signup", s.url)).await.unwrap();
    shot(&c, "01-signup").await;
    let form = c.form(Locator::Css("form.card")).await.unwrap();
    form.set_by_name("username", "alice").await.unwrap();
    form.set_by_name("password", "long enough pw")
        .await
        .unwrap();
    form.submit().await.unwrap();
    // Wait for the page after the form (the sign-up page's own header would go stale): only a
    // logged-in header links to the viewer's tokens.
    let me = c
        .wait()
        .for_element(Locator::Css("header a[href='/settings/tokens']"))
        .await
        .unwrap();
    assert_eq!(me.text().await.unwrap(), "alice");
    shot(&c, "02-home").await;

    // A model repository created and filled through the pages.
    c.goto(&format!("{}/new", s.url)).await.unwrap();
    let form = c.form(Locator::Css("#new-repo")).await.unwrap();
    form.set_by_name("name", "mnist-cnn").await.unwrap();
    shot(&c, "03-new-repo").await;
    form.submit().await.unwrap();
    c.wait()
        .for_element(Locator::Css("#upload input[type=file]"))
        .await
        .unwrap();
    assert_eq!(
        c.current_url().await.unwrap().path(),
        "/alice/mnist-cnn",
        "created and opened"
    );
    let onnx = std::fs::read(mnist_fixtures().join("mnist-8.onnx")).unwrap();
    let card_of = |name: &str| {
        format!("---\npipeline_tag: image-classification\n---\n# {name}\n\nA small CNN.\n")
    };
    let card = card_of("mnist-cnn");
    let local = folder(&[("mnist-8.onnx", &onnx), ("README.md", card.as_bytes())]);
    let chosen = ["mnist-8.onnx", "README.md"]
        .map(|f| local.path().join(f).display().to_string())
        .join("\n");
    c.find(Locator::Css("#upload input[type=file]"))
        .await
        .unwrap()
        .send_keys(&chosen)
        .await
        .unwrap();
    c.find(Locator::Css("#upload input[name=message]"))
        .await
        .unwrap()
        .send_keys("Upload the trained CNN")
        .await
        .unwrap();
    shot(&c, "04-upload").await;
    c.find(Locator::Css("#upload button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let text = until_text(&c, &s, "/alice/mnist-cnn", "Upload the trained CNN").await;
    assert!(text.contains("mnist-8.onnx"), "{text}");

    // Another model and a dataset arrive through the CLI with a token from the log-in API.
    let token = s.login("alice", "long enough pw").await;
    let twin = card_of("mnist-twin");
    let m = folder(&[("mnist-8.onnx", &onnx), ("README.md", twin.as_bytes())]);
    push(&s, &token, m.path(), "alice/mnist-twin", false);
    push_mnist_digits(&s, &token, "alice/digits");

    // The structure panel, once the analysis has run.
    let text = until_text(&c, &s, "/alice/mnist-cnn", "MACs per sample").await;
    assert!(text.contains("A small CNN."), "the card renders: {text}");
    shot(&c, "05-model-structure").await;

    // The dataset page: its split sizes, label distribution and a preview of the images.
    let text = until_text(&c, &s, "/datasets/alice/digits", "10000 rows").await;
    assert!(text.contains("Label"), "label distribution: {text}");
    let previews = c
        .find_all(Locator::Css("#dataset-summary .preview img"))
        .await
        .unwrap();
    assert!(!previews.is_empty(), "image previews");
    shot(&c, "05b-dataset").await;

    // The evaluate form predicts before anything runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        c.goto(&format!("{}/alice/mnist-cnn", s.url)).await.unwrap();
        let form = c.form(Locator::Css("#evaluate form")).await.unwrap();
        form.set_by_name("evaluate_on", "alice/digits")
            .await
            .unwrap();
        form.set_by_name("limit", "2000").await.unwrap();
        form.submit().await.unwrap();
        // The form navigates (GET); read the section of the page it leads to.
        while !c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("evaluate_on=")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.wait()
            .for_element(Locator::Css("#evaluate table, #evaluate p.muted"))
            .await
            .unwrap();
        let text = c
            .find(Locator::Css("#evaluate"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("about") {
            assert!(
                text.contains("2000 samples at batch 1") && text.contains("w1"),
                "{text}"
            );
            break;
        }
        // The dataset summary may still be running.
        assert!(Instant::now() < deadline, "no prediction: {text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    shot(&c, "06-evaluate-prediction").await;

    // Submitted from the page, the evaluation finishes live on its job page: the state
    // changes without a reload.
    c.form(Locator::Id("submit-evaluation"))
        .await
        .unwrap()
        .submit()
        .await
        .unwrap();
    while !c.current_url().await.unwrap().path().starts_with("/jobs/") {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job_page = c.current_url().await.unwrap().path().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = c
            .find(Locator::Id("state"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if state == "succeeded" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed the end: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = body_text(&c).await;
    assert!(
        page.contains("Predicted about"),
        "the job page shows its prediction: {page}"
    );
    shot(&c, "07-job-finished-live").await;

    // The leaderboard ranks it; a second model makes a comparison.
    let twin = evaluate(&s, &token, "alice/mnist-twin").await;
    assert_eq!(wait_job(&s, &token, twin).await["state"], "succeeded");
    let board = until_text(&c, &s, "/leaderboards/alice/digits", "alice/mnist-twin").await;
    assert!(board.contains("alice/mnist-cnn"), "{board}");
    shot(&c, "08-leaderboard").await;
    let compare = until_text(
        &c,
        &s,
        "/compare?models=alice/mnist-cnn,alice/mnist-twin",
        "alice/mnist-twin",
    )
    .await;
    assert!(compare.contains("alice/mnist-cnn"), "{compare}");
    shot(&c, "09-compare").await;

    // A card's scripts never run: sanitized away, and forbidden by the page's policy anyway.
    let evil = folder(&[(
        "README.md",
        b"# Evil\n\n<script>window.pwned = 1</script>\n\n<img src=x onerror=\"window.pwned = 2\">\n\n[click](javascript:window.pwned=3)\n",
    )]);
    push(&s, &token, evil.path(), "alice/evil", false);
    c.goto(&format!("{}/alice/evil", s.url)).await.unwrap();
    c.wait().for_element(Locator::Css("h1")).await.unwrap();
    let pwned = c
        .execute("return window.pwned === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "a script from the card ran");
    shot(&c, "10-card-without-scripts").await;

    // Browsing with filters: image classifiers under 10M parameters.
    c.goto(&format!(
        "{}/models?task=image-classification&params=0-10M",
        s.url
    ))
    .await
    .unwrap();
    let listed = body_text(&c).await;
    assert!(
        listed.contains("alice/mnist-cnn") && !listed.contains("alice/evil"),
        "{listed}"
    );
    shot(&c, "11-models-filtered").await;

    // The cluster page and the jobs list.
    c.goto(&format!("{}/cluster", s.url)).await.unwrap();
    assert!(body_text(&c).await.contains("w1"));
    shot(&c, "12-cluster").await;
    c.goto(&format!("{}/jobs", s.url)).await.unwrap();
    shot(&c, "13-jobs").await;

    // The simulator page replays a trace kept in a dataset repository through every policy.
    let trace = folder(&[("trace.csv", synthetic_trace(400).as_bytes())]);
    push(&s, &token, trace.path(), "alice/traces", true);
    let simulate = "/cluster/simulate?trace=alice/traces&file=trace.csv&nodes=4".to_owned();
    c.goto(&format!("{}{simulate}", s.url)).await.unwrap();
    let text = body_text(&c).await;
    assert!(text.contains("400 jobs on 32 GPUs"), "{text}");
    let drawn =
        "const i = document.getElementById('jct-cdf'); return i.complete && i.naturalWidth > 0";
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.execute(drawn, vec![]).await.unwrap() != json!(true) {
        assert!(Instant::now() < deadline, "the JCT chart never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&c, "13b-simulate").await;

    // Access tokens: one made from the page works for the API.
    c.goto(&format!("{}/settings/tokens", s.url)).await.unwrap();
    let form = c.form(Locator::Css("#create-token")).await.unwrap();
    form.set_by_name("label", "laptop").await.unwrap();
    form.set_by_name("scope", "write").await.unwrap();
    form.submit().await.unwrap();
    let made = c
        .wait()
        .for_element(Locator::Css("#token-value"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let who = json(&s, "/api/whoami-v2", Some(&made)).await;
    assert_eq!(who["auth"]["accessToken"]["role"], "write");
    shot(&c, "13c-tokens").await;

    // On a phone: nothing wider than the screen (wide tables scroll inside themselves).
    c.set_window_size(390, 844).await.unwrap();
    for (path, name) in [
        ("/alice/mnist-cnn".to_owned(), "14-phone-model"),
        (job_page.clone(), "15-phone-job"),
        ("/cluster".to_owned(), "16-phone-cluster"),
        (simulate, "16b-phone-simulate"),
        (
            "/models?task=image-classification".to_owned(),
            "17-phone-models",
        ),
    ] {
        c.goto(&format!("{}{path}", s.url)).await.unwrap();
        let fits = c
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        shot(&c, name).await;
        assert_eq!(fits, json!(true), "{path} is wider than a phone");
    }
    let nodes = json(&s, "/api/cluster/nodes", Some(&token)).await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    c.close().await.unwrap();
}

/// A generic-CSV trace of `n` jobs: bursts of arrivals, durations from seconds to hours, 1 to 8
/// GPUs, four teams (deterministic, from a linear congruential generator).
fn synthetic_trace(n: usize) -> String {
    let mut x: u64 = 42;
    let mut next = || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (x >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut csv = String::from("submit_s,duration_s,gpus,group\n");
    let mut t = 0.0;
    for _ in 0..n {
        t += 60.0 * next();
        let duration = 10f64.powf(1.0 + 3.0 * next());
        let gpus = [1, 1, 1, 2, 4, 8][(next() * 6.0) as usize];
        let team = ["vision", "speech", "nlp", "rl"][(next() * 4.0) as usize];
        csv += &format!("{t:.0},{duration:.0},{gpus},{team}\n");
    }
    csv
}
