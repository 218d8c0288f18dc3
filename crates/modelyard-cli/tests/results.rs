//! Verified evaluation end to end with real processes: push a model and a dataset, a worker
//! runs `modelyard eval`, the master stores the result, the leaderboard ranks it; contrast runs
//! reuse what is verified; bad datasets fail the job with their reason.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::jobs::{json, mnist_fixtures, ok, push, push_mnist_digits, wait_job, worker};
use common::Server;
use modelyard_eval::linear::linear_onnx;
use serde_json::Value;

#[tokio::test]
async fn mnist_push_evaluate_and_rank_as_verified() {
    let s = Server::start();
    let _w = worker(&s, "w1");
    let alice = s.user("alice");
    let m = tempfile::tempdir().unwrap();
    std::fs::copy(
        mnist_fixtures().join("mnist-8.onnx"),
        m.path().join("mnist-8.onnx"),
    )
    .unwrap();
    // The card claims more than the model does: the board must flag it.
    std::fs::write(
        m.path().join("README.md"),
        "---\npipeline_tag: image-classification\nmodel-index:\n- name: m\n  results:\n  - task: \
         {type: image-classification}\n    dataset: {name: MNIST, type: alice/digits, split: test}\n    \
         metrics:\n    - {type: accuracy, value: 99.5}\n---\n# mnist\n",
    )
    .unwrap();
    push(&s, &alice, m.path(), "alice/mnist-cnn", false);
    push_mnist_digits(&s, &alice, "alice/digits");

    let out = ok(s.cli(
        Some(&alice),
        &[
            "submit",
            "--model",
            "alice/mnist-cnn",
            "--dataset",
            "alice/digits",
            "--task",
            "image-classification",
        ],
    ));
    let id: i64 = out.trim().parse().unwrap();
    let job = wait_job(&s, &alice, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let metrics: Vec<&str> = job["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(metrics.contains(&"accuracy"), "{job}");

    let board = json(&s, "/api/leaderboards/alice/digits", None).await;
    assert_eq!(board["task"], "image-classification");
    assert_eq!(board["split"], "test");
    let top = &board["verified"][0];
    assert_eq!(top["model"], "alice/mnist-cnn");
    assert_eq!(top["metrics"]["correct"], 9890.0);
    assert!((top["value"].as_f64().unwrap() - 0.989).abs() < 1e-12);
    assert_eq!(top["samples"], 10000);
    assert_eq!(top["job_id"], id);
    assert_eq!(top["self_reported"], 0.995);
    assert_eq!(top["disagrees"], true);
    assert_eq!(board["self_reported"][0]["model"], "alice/mnist-cnn");
    assert_eq!(board["self_reported"][0]["verified"], 0.989);

    let page = s
        .get("/leaderboards/alice/digits", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("98.90%") && page.contains("verified"),
        "{page}"
    );
    assert!(
        page.contains("99.50%") && page.contains("disagrees"),
        "{page}"
    );
    let chart = s
        .get("/leaderboards/alice/digits/chart.svg?kind=bars", None)
        .await;
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    assert!(chart.text().await.unwrap().contains("mnist-cnn"));

    // The full record of what ran.
    let rid = top["result_id"].as_i64().unwrap();
    let r = json(&s, &format!("/api/results/{rid}"), None).await;
    let rec = &r["report"]["record"];
    assert_eq!(
        rec["model"]["source"],
        format!("alice/mnist-cnn@{}", top["commit"].as_str().unwrap())
    );
    assert_eq!(rec["dataset"]["files"].as_array().unwrap().len(), 2);
    assert!(rec["versions"]["modelyard"].is_string() && rec["elapsed_s"].as_f64().unwrap() > 0.0);

    // The dataset page: split, rows, label distribution, image preview; the model page lists
    // the verified result and the card's claim apart.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let p = s
            .get("/datasets/alice/digits", None)
            .await
            .text()
            .await
            .unwrap();
        if !p.contains("Reading the dataset") {
            break p;
        }
        assert!(Instant::now() < deadline, "no dataset summary: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        page.contains("10000 rows") && page.contains("<td>1135</td>"),
        "{page}"
    );
    assert!(page.contains("data:image/png;base64,"), "{page}");
    let model_page = s.get("/alice/mnist-cnn", None).await.text().await.unwrap();
    assert!(
        model_page.contains("98.90%") && model_page.contains("self-reported"),
        "{model_page}"
    );

    // Private models stay off boards for others.
    let bob = s.user("bob");
    let p = tempfile::tempdir().unwrap();
    std::fs::copy(
        mnist_fixtures().join("mnist-8.onnx"),
        p.path().join("secret.onnx"),
    )
    .unwrap();
    ok(s.cli(
        Some(&bob),
        &[
            "push",
            p.path().to_str().unwrap(),
            "bob/secret",
            "--private",
        ],
    ));
    let out = ok(s.cli(
        Some(&bob),
        &[
            "submit",
            "--model",
            "bob/secret",
            "--dataset",
            "alice/digits",
            "--task",
            "image-classification",
            "--eval",
            "{\"limit\": 100}",
        ],
    ));
    let job = wait_job(&s, &bob, out.trim().parse().unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let public = json(&s, "/api/leaderboards/alice/digits", None).await;
    assert_eq!(public["verified"].as_array().unwrap().len(), 1);
    let own = json(&s, "/api/leaderboards/alice/digits", Some(&bob)).await;
    assert_eq!(own["verified"].as_array().unwrap().len(), 2);
    let page = s
        .get("/leaderboards/alice/digits", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("bob/secret"));
}

fn write_model(dir: &Path, weights: &[f32]) {
    std::fs::write(
        dir.join("README.md"),
        "---\npipeline_tag: tabular-classification\n---\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("model.onnx"),
        linear_onnx(2, 2, weights, &[0.0, 0.0]),
    )
    .unwrap();
}

#[tokio::test]
async fn tabular_contrast_runs_reuse_verified_results() {
    let s = Server::start();
    let _w = worker(&s, "w1");
    let t = s.user("carol");
    // `argmax` predicts the larger feature; `flip` the smaller one.
    let a = tempfile::tempdir().unwrap();
    write_model(a.path(), &[1.0, 0.0, 0.0, 1.0]);
    push(&s, &t, a.path(), "carol/argmax", false);
    let b = tempfile::tempdir().unwrap();
    write_model(b.path(), &[0.0, 1.0, 1.0, 0.0]);
    push(&s, &t, b.path(), "carol/flip", false);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("README.md"),
        "---\ntask_categories: [tabular-classification]\nlabel_names: [no, yes]\n---\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("test.csv"),
        "a,b,label\n1,0,no\n0,1,yes\n2,3,yes\n5,1,yes\n",
    )
    .unwrap();
    push(&s, &t, d.path(), "carol/pairs", true);

    let run = |_: ()| {
        ok(s.cli(
            Some(&t),
            &[
                "compare",
                "--models",
                "carol/argmax,carol/flip",
                "--datasets",
                "carol/pairs",
                "--json",
            ],
        ))
    };
    let first: Value = serde_json::from_str(&run(())).unwrap();
    let board = &first["boards"][0];
    assert_eq!(board["dataset"], "carol/pairs");
    assert_eq!(board["metric"], "accuracy");
    assert_eq!(board["shared"], true);
    assert_eq!(board["values"][0]["value"], 0.75);
    assert_eq!(board["values"][1]["value"], 0.25);
    let jobs_before = json(&s, "/api/jobs", Some(&t))
        .await
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs_before, 2);

    // The same commits again: nothing is recomputed.
    let second: Value = serde_json::from_str(&run(())).unwrap();
    assert_eq!(second["boards"], first["boards"]);
    let jobs_after = json(&s, "/api/jobs", Some(&t))
        .await
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        jobs_after, 2,
        "verified results are reused, never recomputed"
    );
    let runs: Value = s
        .req(reqwest::Method::POST, "/api/compare/runs", Some(&t))
        .json(&serde_json::json!({"models": ["carol/argmax"], "datasets": ["carol/pairs"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs[0]["status"], "verified");

    let page = s
        .get("/compare?models=carol/argmax,carol/flip", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("75.00%") && page.contains("25.00%"), "{page}");
    let svg = s
        .get(
            "/compare/chart.svg?models=carol/argmax,carol/flip&dataset=carol/pairs&kind=bars",
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("argmax") && svg.contains("flip"),
        "{svg}"
    );
    form_queues_a_contrast_run(&s, &t).await;
}

/// The compare page's form: a browser session with its CSRF token queues a contrast run.
async fn form_queues_a_contrast_run(s: &Server, t: &str) {
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(
        d2.path().join("README.md"),
        "---\ntask_categories: [tabular-classification]\n---\n",
    )
    .unwrap();
    std::fs::write(d2.path().join("test.csv"), "a,b,label\n0,1,1\n").unwrap();
    push(s, t, d2.path(), "carol/more", true);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signup = browser
        .post(format!("{}/signup", s.url))
        .form(&[("username", "erin"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    let cookie = signup.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = browser
        .get(format!("{}/compare?models=carol/argmax", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = common::csrf_of(&page);
    let post = |csrf: &str, cookie: Option<&str>| {
        let mut rb = browser.post(format!("{}/compare/runs", s.url)).form(&[
            ("models", "carol/argmax,carol/flip"),
            ("datasets", "carol/pairs,carol/more"),
            ("split", ""),
            ("csrf", csrf),
        ]);
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        rb.send()
    };
    let forged = post("0000", Some(&cookie)).await.unwrap();
    assert_eq!(forged.status(), 403, "a wrong CSRF token is refused");
    let no_session = post(&csrf, None).await.unwrap();
    assert_eq!(no_session.status(), 401);
    let posted = post(&csrf, Some(&cookie)).await.unwrap();
    assert_eq!(posted.status(), 303);
    let to = posted.headers()["location"].to_str().unwrap();
    assert!(
        to.contains("submitted=2"),
        "only the two pairs on the new dataset run: {to}"
    );
}

#[tokio::test]
async fn bad_datasets_fail_the_job_with_their_reason() {
    let s = Server::start();
    let _w = worker(&s, "w1");
    let t = s.user("dave");
    let m = tempfile::tempdir().unwrap();
    write_model(m.path(), &[1.0, 0.0, 0.0, 1.0]);
    push(&s, &t, m.path(), "dave/m", false);
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("test.csv"), "a,b,class\n1,0,0\n").unwrap();
    push(&s, &t, d.path(), "dave/nolabel", true);
    let out = ok(s.cli(
        Some(&t),
        &[
            "submit",
            "--model",
            "dave/m",
            "--dataset",
            "dave/nolabel",
            "--task",
            "tabular-classification",
        ],
    ));
    let job = wait_job(&s, &t, out.trim().parse().unwrap()).await;
    assert_eq!(job["state"], "failed");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("label column \"label\" is missing"),
        "{reason}"
    );
    let board = json(&s, "/api/leaderboards/dave/nolabel", None).await;
    assert!(board["verified"].as_array().unwrap().is_empty());
}
