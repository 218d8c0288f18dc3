//! Runtime prediction end to end with real processes: a job is predicted before submission
//! (`POST /api/predict`) from its model's analysis and its dataset's summary, the prediction is
//! stored with the job, finished jobs become observations the predictor learns from, and
//! queued jobs carry estimated start and finish times.

mod common;

use std::time::{Duration, Instant};

use common::jobs::{json, mnist_fixtures, ok, push, push_mnist_digits, wait_job, worker};
use common::Server;
use serde_json::{json, Value};

async fn post(s: &Server, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = s
        .req(reqwest::Method::POST, path, Some(token))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn evaluation(limit: u64, cpus: u64) -> Value {
    json!({"kind": "evaluate", "model": "alice/mnist-cnn", "dataset": "alice/digits",
           "eval": {"task": "image-classification", "limit": limit},
           "resources": {"cpus": cpus, "memory_mb": 0, "gpus": 0}})
}

/// alice/mnist-cnn (the MNIST model) and alice/digits (the MNIST test set).
fn publish_mnist(s: &Server, alice: &str) {
    let m = tempfile::tempdir().unwrap();
    std::fs::copy(
        mnist_fixtures().join("mnist-8.onnx"),
        m.path().join("mnist-8.onnx"),
    )
    .unwrap();
    push(s, alice, m.path(), "alice/mnist-cnn", false);
    push_mnist_digits(s, alice, "alice/digits");
}

#[tokio::test]
async fn jobs_are_predicted_before_they_run_and_teach_the_predictor() {
    let s = Server::start();
    let _w = worker(&s, "w1");
    let alice = s.user("alice");
    publish_mnist(&s, &alice);

    // Unknown inputs and unpredictable jobs are told apart from predictions.
    let (status, _) = post(
        &s,
        &alice,
        "/api/predict",
        &json!({"model": "alice/nope", "dataset": "alice/digits"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, v) = post(
        &s,
        &alice,
        "/api/predict",
        &json!({"kind": "command", "command": "true", "model": "alice/mnist-cnn"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["predicted"], false);
    assert!(v["reason"].as_str().unwrap().contains("workload"), "{v}");

    // Once the model is analysed and the dataset summarised, the prior predicts.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let (status, v) = post(&s, &alice, "/api/predict", &evaluation(1000, 1)).await;
        assert_eq!(status, 200, "{v}");
        if v["predicted"] == true {
            break v;
        }
        assert!(Instant::now() < deadline, "never predicted: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(first["workload"]["samples"], 1000.0);
    assert_eq!(
        first["workload"]["batch_size"], 1.0,
        "mnist-8 fixes batch 1"
    );
    assert_eq!(first["structure"]["macs_per_sample"], 786_560.0);
    assert_eq!(
        first["workload"]["decode"], false,
        "IDX digits are read as they are"
    );
    let node = &first["nodes"][0];
    assert_eq!(node["class"], "cpu");
    assert_eq!(node["nodes"], json!(["w1"]));
    assert_eq!(node["basis"], "prior");
    let (p10, sec, p90) = (
        node["p10"].as_f64().unwrap(),
        node["seconds"].as_f64().unwrap(),
        node["p90"].as_f64().unwrap(),
    );
    assert!(p10 < sec && sec < p90, "{node}");
    assert_eq!(first["queue"]["jobs_ahead"], 0);
    assert!(first["queue"]["start_in_s"].as_f64().unwrap() < 1.0);

    // The same model on PNG files: each sample is decoded first, which the workload says.
    let pngs = tempfile::tempdir().unwrap();
    for (class, i) in [("0", 0u8), ("1", 1), ("1", 2)] {
        let dir = pngs.path().join("test").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([((x ^ y) as u8).wrapping_mul(9).wrapping_add(i)])
        })
        .save(dir.join(format!("{i}.png")))
        .unwrap();
    }
    push(&s, &alice, pngs.path(), "alice/digit-pngs", true);
    let body = json!({"kind": "evaluate", "model": "alice/mnist-cnn", "dataset": "alice/digit-pngs",
                      "eval": {"task": "image-classification"}});
    let decoded = loop {
        let (status, v) = post(&s, &alice, "/api/predict", &body).await;
        assert_eq!(status, 200, "{v}");
        if v["predicted"] == true {
            break v;
        }
        assert!(Instant::now() < deadline, "never predicted: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(decoded["workload"]["samples"], 3.0);
    assert_eq!(decoded["workload"]["decode"], true, "{decoded}");

    // The same from the command line and on the model page.
    let out = ok(s.cli(
        Some(&alice),
        &[
            "predict",
            "--model",
            "alice/mnist-cnn",
            "--dataset",
            "alice/digits",
            "--task",
            "image-classification",
            "--eval",
            r#"{"limit": 1000}"#,
        ],
    ));
    assert!(out.contains("| cpu | w1 |"), "{out}");
    assert!(out.contains("the analytic prior"), "{out}");
    let page = s
        .get(
            "/alice/mnist-cnn?evaluate_on=alice/digits&limit=1000",
            Some(&alice),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("1000 samples at batch 1"), "{page}");
    assert!(page.contains("<b>about "), "{page}");
    let page = s
        .get("/alice/mnist-cnn?evaluate_on=alice/none", Some(&alice))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Cannot predict this evaluation"), "{page}");
    // The page's submit form needs a browser session and its CSRF token; a bearer token or a
    // forged form gets nothing queued.
    let forged = s
        .req(
            reqwest::Method::POST,
            "/alice/mnist-cnn/evaluate",
            Some(&alice),
        )
        .form(&[("csrf", "forged"), ("dataset", "alice/digits")])
        .send()
        .await
        .unwrap();
    assert!(forged.status().is_client_error(), "{}", forged.status());
    let jobs = json(&s, "/api/jobs", Some(&alice)).await;
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs}");

    // Jobs run; each is stored with its prediction and becomes an observation.
    let nodes = json(&s, "/api/cluster/nodes", Some(&alice)).await;
    let cores = nodes[0]["inventory"]["cpus"].as_u64().unwrap();
    let mut measured = Vec::new();
    for limit in [500, 2000, 5000] {
        let (status, job) = post(&s, &alice, "/api/jobs", &evaluation(limit, 1)).await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(
            job["prediction"]["workload"]["samples"], limit as f64,
            "{job}"
        );
        assert!(job["prediction"]["reference_s"].as_f64().unwrap() > 0.0);
        let done = wait_job(&s, &alice, job["id"].as_i64().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        measured.push((job["id"].as_i64().unwrap(), limit));
    }
    let admin = s.admin.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let obs = loop {
        let obs = json(&s, "/api/predict/observations", Some(&admin)).await;
        if obs.as_array().unwrap().len() == measured.len() {
            break obs;
        }
        assert!(Instant::now() < deadline, "observations: {obs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (o, (id, limit)) in obs.as_array().unwrap().iter().zip(&measured) {
        assert_eq!(o["job_id"], *id);
        assert_eq!(o["features"]["workload"]["samples"], *limit as f64);
        assert!(o["seconds"].as_f64().unwrap() > 0.0);
        assert_eq!(o["node_class"], "cpu");
    }
    let r = s.get("/api/predict/observations", Some(&alice)).await;
    assert_eq!(r.status(), 403, "only admins read the observations");

    // The predictor has learned from them (too few for a class fit of its own: pooled).
    let (_, learned) = post(&s, &alice, "/api/predict", &evaluation(5000, 1)).await;
    let node = &learned["nodes"][0];
    assert_eq!(node["basis"], "pooled", "{learned}");
    assert_eq!(node["observations"], 3);
    let actual = obs[2]["seconds"].as_f64().unwrap();
    let predicted = node["seconds"].as_f64().unwrap();
    assert!(
        (predicted - actual).abs() / actual < 0.5,
        "learned {predicted} s for a job measured at {actual} s: {obs} {learned}"
    );

    // A queued job behind one holding every core gets an estimated start after it.
    let (_, a) = post(&s, &alice, "/api/jobs", &evaluation(10_000, cores)).await;
    let (_, b) = post(&s, &alice, "/api/jobs", &evaluation(10_000, cores)).await;
    let queued = json(&s, &format!("/api/jobs/{}", b["id"]), Some(&alice)).await;
    // The first runs for a second or more (10,000 images), so the second is still waiting.
    assert_eq!(queued["state"], "queued", "{queued}");
    assert!(queued["estimated_start_at"].is_string(), "{queued}");
    assert!(queued["expected_finish_at"].is_string(), "{queued}");
    let page = s.get("/jobs", Some(&alice)).await.text().await.unwrap();
    assert!(
        page.contains("starts ~"),
        "the jobs page shows the queue's ETA: {page}"
    );
    for j in [a, b] {
        let done = wait_job(&s, &alice, j["id"].as_i64().unwrap()).await;
        assert_eq!(done["state"], "succeeded", "{done}");
    }
}

#[tokio::test]
async fn a_job_submitted_before_any_worker_is_predicted_once_one_joins() {
    let s = Server::start();
    let alice = s.user("alice");
    publish_mnist(&s, &alice);

    // Wait until only the missing worker stands in the way of a prediction.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = post(&s, &alice, "/api/predict", &evaluation(100, 1)).await;
        if v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no alive worker"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // More CPUs than the worker will have: the job stays queued, to be predicted there.
    let (status, job) = post(&s, &alice, "/api/jobs", &evaluation(100, 64)).await;
    assert_eq!(status, 200, "{job}");
    assert!(job["prediction"].is_null(), "{job}");
    let id = job["id"].as_i64().unwrap();

    let _w = worker(&s, "w1");
    let deadline = Instant::now() + Duration::from_secs(40);
    let job = loop {
        let j = json(&s, &format!("/api/jobs/{id}"), Some(&alice)).await;
        if !j["prediction"].is_null() {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "never predicted while queued: {j}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(job["state"], "queued");
    assert_eq!(job["prediction"]["workload"]["samples"], 100.0);
    assert_eq!(job["prediction"]["nodes"][0]["nodes"], json!(["w1"]));
}
