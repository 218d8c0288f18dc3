//! Browser sessions and the jobs and cluster pages, over real HTTP with cookies.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use reqwest::redirect::Policy;
use serde_json::{json, Value};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs up through the form and returns the session cookie.
async fn sign_up(s: &Server, name: &str) -> String {
    let resp = no_redirects()
        .post(format!("{}/signup", s.url))
        .form(&[
            ("username", name),
            ("password", "long enough pw"),
            ("next", "/jobs"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "signup redirects");
    assert_eq!(resp.headers()["location"], "/jobs");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(s: &Server, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut rb = no_redirects().get(format!("{}{path}", s.url));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    rb.send().await.unwrap()
}

#[tokio::test]
async fn sessions_jobs_pages_and_cluster_page() {
    let s = Server::start();
    // Anonymous visitors are sent to the log-in form, and come back afterwards.
    let anon = page(&s, "/jobs", None).await;
    assert_eq!(anon.status(), 303);
    assert_eq!(anon.headers()["location"], "/login?next=%2Fjobs");
    assert_eq!(page(&s, "/login?next=/jobs", None).await.status(), 200);

    let alice = sign_up(&s, "alice").await;
    let home = page(&s, "/", Some(&alice)).await.text().await.unwrap();
    assert!(
        home.contains("<a href=\"/settings/tokens\" title=\"Access tokens\">alice</a>"),
        "the header shows who is logged in"
    );

    // A job submitted through the API shows on alice's pages (with an API token: the login API).
    let token = &s.login("alice", "long enough pw").await;
    let job: Value = s
        .req(reqwest::Method::POST, "/api/jobs", Some(token))
        .json(&json!({"kind": "command", "command": "echo unique-marker-7781"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_i64().unwrap();
    let list = page(&s, "/jobs", Some(&alice)).await.text().await.unwrap();
    assert!(
        list.contains(&format!("/jobs/{id}")) && list.contains("unique-marker-7781"),
        "{list}"
    );
    let one = page(&s, &format!("/jobs/{id}"), Some(&alice)).await;
    assert_eq!(one.status(), 200);
    // Pages run only the hub's own script files: no inline script, and a policy that says so.
    let csp = one.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("object-src 'none'"),
        "{csp}"
    );
    assert_eq!(one.headers()["x-content-type-options"], "nosniff");
    let one = one.text().await.unwrap();
    assert!(
        one.contains("queued") && one.contains(r#"<script src="/static/job-log.js" defer>"#),
        "a waiting job's page follows its logs live: {one}"
    );
    assert_eq!(one.matches("<script").count(), 1, "no inline script: {one}");
    let js = page(&s, "/static/job-log.js", None).await;
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.text().await.unwrap().contains("EventSource"));

    // Someone else cannot see it.
    let bob = sign_up(&s, "bob").await;
    assert_eq!(
        page(&s, &format!("/jobs/{id}"), Some(&bob)).await.status(),
        404
    );
    assert!(!page(&s, "/jobs", Some(&bob))
        .await
        .text()
        .await
        .unwrap()
        .contains("unique-marker-7781"));

    // The session cookie reads; it never writes (no cross-site request can act for the user).
    let forged = no_redirects()
        .post(format!("{}/api/jobs", s.url))
        .header("cookie", &alice)
        .json(&json!({"kind": "command", "command": "echo forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let read = no_redirects()
        .get(format!("{}/api/jobs/{id}", s.url))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);

    // The cluster page lists registered nodes and the queue.
    let join = std::process::Command::new(common::BIN)
        .args(["admin", "join-token", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    let join = String::from_utf8(join.stdout).unwrap().trim().to_owned();
    let reg = s
        .req(reqwest::Method::POST, "/api/cluster/register", None)
        .json(&json!({"protocol_version": 1, "join_token": join, "name": "rack-7-node",
            "inventory": {"hostname": "h", "cpus": 4, "memory_mb": 1000, "gpus": [], "gflops": 12.5, "allow_commands": false, "cache_bytes": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 200);
    let cluster = page(&s, "/cluster", Some(&alice))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        cluster.contains("rack-7-node") && cluster.contains(&format!("#{id}")),
        "{cluster}"
    );

    // Wrong password: the form again, with an error, and no cookie.
    let bad = no_redirects()
        .post(format!("{}/login", s.url))
        .form(&[("username", "alice"), ("password", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
    // Open redirects are refused.
    let evil = no_redirects()
        .post(format!("{}/login", s.url))
        .form(&[
            ("username", "alice"),
            ("password", "long enough pw"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(evil.headers()["location"], "/");

    // Browse pages with a search render (their links carry the query, URL-encoded).
    let browse = page(&s, "/models?search=a%20b&sort=downloads", None).await;
    assert_eq!(browse.status(), 200);
    assert_eq!(
        page(&s, "/datasets?search=x", Some(&alice)).await.status(),
        200
    );

    // Logging out revokes the session.
    let out = no_redirects()
        .post(format!("{}/logout", s.url))
        .header("cookie", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(page(&s, "/jobs", Some(&alice)).await.status(), 303);
}

#[tokio::test]
async fn repositories_are_created_and_filled_from_the_browser() {
    use reqwest::multipart::{Form, Part};
    let s = Server::start();
    let login = page(&s, "/new", None).await;
    assert_eq!(login.status(), 303);
    assert_eq!(login.headers()["location"], "/login?next=/new");

    let alice = sign_up(&s, "alice").await;
    let form = page(&s, "/new", Some(&alice)).await.text().await.unwrap();
    let csrf = common::csrf_of(&form);
    let create = |name: &'static str, csrf: String| {
        no_redirects()
            .post(format!("{}/new", s.url))
            .header("cookie", &alice)
            .form(&[
                ("csrf", csrf.as_str()),
                ("kind", "model"),
                ("name", name),
                ("private", "1"),
            ])
            .send()
    };
    let made = create("digits", csrf.clone()).await.unwrap();
    assert_eq!(made.status(), 303);
    assert_eq!(made.headers()["location"], "/alice/digits");
    // A taken name shows the form again with the reason; a forged token creates nothing.
    let again = create("digits", csrf.clone()).await.unwrap();
    assert_eq!(again.status(), 409);
    let body = again.text().await.unwrap();
    assert!(
        body.contains("already exists") && body.contains("id=\"new-repo\""),
        "{body}"
    );
    let forged = create("other", "f".repeat(64)).await.unwrap();
    assert_eq!(forged.status(), 403);
    // Private: nobody else sees it.
    assert_eq!(page(&s, "/alice/digits", None).await.status(), 404);

    let repo_page = page(&s, "/alice/digits", Some(&alice)).await;
    let html = repo_page.text().await.unwrap();
    assert!(
        html.contains(r#"id="upload""#),
        "the owner gets the upload form"
    );
    let csrf = common::csrf_of(&html);
    let onnx = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mnist/mnist-8.onnx"),
    )
    .unwrap();
    let card = "---\nlicense: mit\n---\n# Digits\nUploaded from a browser.\n";
    let upload = |csrf: &str, files: Vec<(&'static str, Vec<u8>)>| {
        let mut form = Form::new()
            .text("csrf", csrf.to_owned())
            .text("message", "First files");
        for (name, bytes) in files {
            form = form.part("files", Part::bytes(bytes).file_name(name));
        }
        no_redirects()
            .post(format!("{}/alice/digits/upload", s.url))
            .header("cookie", &alice)
            .multipart(form)
            .send()
    };
    // Refused before anything is stored: a forged token, a traversing path.
    let forged = upload(&"0".repeat(64), vec![("a.txt", b"x".to_vec())])
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let traversal = upload(&csrf, vec![("../../etc/passwd", b"x".to_vec())])
        .await
        .unwrap();
    assert_eq!(traversal.status(), 400);

    let done = upload(
        &csrf,
        vec![
            ("README.md", card.as_bytes().to_vec()),
            ("mnist-8.onnx", onnx.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/alice/digits");

    // Through the Hub API: one commit on top of the initial one, README regular, ONNX in LFS.
    let tree: Value = s
        .get("/api/models/alice/digits/tree/main", Some(&s.admin))
        .await
        .json()
        .await
        .unwrap();
    let entry = |p: &str| {
        tree.as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("{p} in {tree}"))
            .clone()
    };
    assert!(entry("README.md")["lfs"].is_null(), "{tree}");
    assert_eq!(entry("mnist-8.onnx")["size"], onnx.len());
    use sha2::Digest;
    assert_eq!(
        entry("mnist-8.onnx")["lfs"]["oid"],
        hex::encode(sha2::Sha256::digest(&onnx))
    );
    let commits: Value = s
        .get("/api/models/alice/digits/commits/main", Some(&s.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(commits.as_array().unwrap().len(), 2, "{commits}");
    assert_eq!(commits[0]["title"], "First files");
    let bytes = s
        .get("/alice/digits/resolve/main/mnist-8.onnx", Some(&s.admin))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), onnx.as_slice());
    let shown = page(&s, "/alice/digits", Some(&alice))
        .await
        .text()
        .await
        .unwrap();
    assert!(shown.contains("Uploaded from a browser.") && shown.contains("mnist-8.onnx"));

    // Another user can neither see nor fill it.
    let bob = sign_up(&s, "bob").await;
    let bob_csrf = common::csrf_of(&page(&s, "/new", Some(&bob)).await.text().await.unwrap());
    let mut form = Form::new().text("csrf", bob_csrf);
    form = form.part("files", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let theirs = no_redirects()
        .post(format!("{}/alice/digits/upload", s.url))
        .header("cookie", &bob)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
}

#[tokio::test]
async fn models_are_browsed_by_task_library_license_and_size() {
    let s = Server::start();
    let token = s.user("alice");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::jobs::mnist_fixtures().join("mnist-8.onnx"),
        dir.path().join("mnist-8.onnx"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "---\npipeline_tag: image-classification\nlibrary_name: onnx\nlicense: mit\n---\n# CNN\n",
    )
    .unwrap();
    common::jobs::push(&s, &token, dir.path(), "alice/cnn", false);
    let plain = tempfile::tempdir().unwrap();
    std::fs::write(
        plain.path().join("README.md"),
        "---\nlicense: apache-2.0\n---\n",
    )
    .unwrap();
    common::jobs::push(&s, &token, plain.path(), "alice/notes", false);
    // The size filter reads the stored analysis: wait for it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let analysed = |v: Value| v["files"][0]["status"] == "ok";
    while !analysed(common::jobs::json(&s, "/api/models/alice/cnn/analysis/main", None).await) {
        assert!(Instant::now() < deadline, "analysis never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = |query: &'static str| {
        let s = &s;
        async move {
            let html = page(s, &format!("/models?{query}"), None)
                .await
                .text()
                .await
                .unwrap();
            (
                html.contains("alice/cnn"),
                html.contains("alice/notes"),
                html,
            )
        }
    };
    assert!(matches!(listed("").await, (true, true, _)));
    assert!(matches!(
        listed("task=image-classification").await,
        (true, false, _)
    ));
    assert!(matches!(listed("library=ONNX").await, (true, false, _)));
    assert!(matches!(
        listed("license=apache-2.0").await,
        (false, true, _)
    ));
    // MNIST's 5,994 parameters are under 10M, not in 10M-100M.
    let (cnn, notes, html) = listed("params=0-10M&sort=downloads").await;
    assert!(cnn && !notes, "{html}");
    assert!(
        html.contains("<option value=\"0-10M\" selected>"),
        "the form keeps it"
    );
    assert!(
        html.contains("href=\"?params=0-10M&amp;sort=recent\""),
        "sorting keeps it: {html}"
    );
    assert!(
        html.contains("<span class=\"params\">6.0 K params</span>"),
        "cards show a model's size: {html}"
    );
    let home = |s: &Server| {
        let url = s.url.clone();
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert!(
        !home(&s).await.contains("id=\"popular\""),
        "nothing downloaded yet"
    );
    let got = s.get("/alice/cnn/resolve/main/mnist-8.onnx", None).await;
    assert_eq!(got.status(), 200);
    let html = home(&s).await;
    let popular = &html[html.find("id=\"popular\"").expect("a popular section")..];
    let popular = &popular[..popular.find("</section>").unwrap()];
    assert!(
        popular.contains("alice/cnn") && !popular.contains("alice/notes"),
        "{popular}"
    );
    let (cnn, _, html) = listed("params=10M-100M").await;
    assert!(!cnn && html.contains("id=\"no-match\""));
    assert_eq!(page(&s, "/models?params=lots", None).await.status(), 400);
    // The Hub API's list parameters narrow the same way.
    let api = common::jobs::json(&s, "/api/models?pipeline_tag=image-classification", None).await;
    let ids: Vec<&str> = api
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice/cnn"]);
    let api = common::jobs::json(&s, "/api/models?parameters=1B-", None).await;
    assert!(api.as_array().unwrap().is_empty());
}

/// Cells of the simulator table's row for `policy`, tags stripped.
fn sim_row(html: &str, policy: &str) -> Vec<String> {
    let start = html
        .find(&format!("<b>{policy}</b>"))
        .unwrap_or_else(|| panic!("no {policy} row: {html}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td>")
        .map(|c| {
            let mut text = String::new();
            let mut in_tag = false;
            for ch in c.chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_trace_in_a_dataset_repo_is_replayed_through_every_policy() {
    let s = Server::start();
    let alice = s.user("alice");
    let bob = s.user("bob");
    // One node of 4 GPUs (speed 0.8): a 10,000 s job and 30 jobs of 10 s arrive together, the
    // long one first. FIFO makes the short ones wait behind it; shortest-predicted-first does not.
    let mut csv = String::from("submit_s,duration_s,gpus,group\n0,10000,4,a\n");
    for _ in 0..30 {
        csv += "0,10,4,b\n";
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jobs.csv"), &csv).unwrap();
    std::fs::write(
        dir.path().join("bad.csv"),
        "submit_s,duration_s,gpus\n0,5,1\n3,soon,1\n",
    )
    .unwrap();
    common::jobs::push(&s, &alice, dir.path(), "alice/traces", true);

    let form = page(&s, "/cluster/simulate", None).await;
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("id=\"simulate-form\""));

    let query = "trace=alice/traces&file=jobs.csv&nodes=1&gpus_per_node=4&sigma=0";
    let resp = page(&s, &format!("/cluster/simulate?{query}"), None).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("31 jobs on 4 GPUs"), "{html}");
    for policy in ["fifo", "sjf", "mct", "ga", "ga-delay"] {
        let cells = sim_row(&html, policy);
        let mean: f64 = cells[1].parse().unwrap();
        assert!(mean > 0.0, "{policy}: {cells:?}");
    }
    assert_eq!(sim_row(&html, "fifo")[2], "1.0");
    let sjf: f64 = sim_row(&html, "sjf")[2].parse().unwrap();
    assert!(
        sjf < 0.2,
        "sjf should not queue the short jobs behind the long one: {sjf}"
    );
    // The chart is the same replay, one curve per policy.
    let chart = format!("/cluster/simulate.svg?{query}");
    assert!(
        html.contains("src=\"/cluster/simulate.svg?trace=alice%2Ftraces&amp;file=jobs.csv&amp;"),
        "{html}"
    );
    let svg = page(&s, &chart, None).await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("ga-delay") && svg.contains("polyline"));

    // Bad input: the form again, saying what is wrong.
    let bad = |q: &'static str| {
        let s = &s;
        async move {
            let r = page(s, &format!("/cluster/simulate?{q}"), None).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, html) = bad("trace=alice/traces&file=bad.csv").await;
    assert_eq!(status, 400);
    assert!(
        html.contains("bad.csv: line 3: bad duration_s &quot;soon&quot;"),
        "{html}"
    );
    let (status, html) = bad("trace=alice/traces&file=missing.csv").await;
    assert_eq!(status, 404);
    assert!(html.contains("missing.csv"), "{html}");
    let (status, html) = bad("trace=alice/traces&file=jobs.csv&jobs=0").await;
    assert_eq!(status, 400);
    assert!(html.contains("jobs must be between 1 and 5000"), "{html}");
    let (status, _) = bad("trace=alice/traces&file=../jobs.csv").await;
    assert_eq!(status, 400);
    // A private trace is replayed for its owner only; others see the same 404 as for none.
    let private = tempfile::tempdir().unwrap();
    std::fs::write(private.path().join("jobs.csv"), &csv).unwrap();
    assert_eq!(
        s.create_repo(&bob, "bob/secret", "dataset", true)
            .await
            .status(),
        200
    );
    common::jobs::push(&s, &bob, private.path(), "bob/secret", true);
    let (status, _) = bad("trace=bob/secret&file=jobs.csv").await;
    assert_eq!(status, 404);
    let owner = s
        .get(
            "/cluster/simulate?trace=bob/secret&file=jobs.csv",
            Some(&bob),
        )
        .await;
    assert_eq!(owner.status(), 200);
}

#[tokio::test]
async fn tokens_are_issued_shown_once_and_revoked_from_the_browser() {
    let s = Server::start();
    let logged_out = page(&s, "/settings/tokens", None).await;
    assert_eq!(logged_out.status(), 303);
    assert_eq!(
        logged_out.headers()["location"],
        "/login?next=/settings/tokens"
    );
    let cookie = sign_up(&s, "carol").await;
    let html = page(&s, "/settings/tokens", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("web session"),
        "the session is listed: {html}"
    );
    let csrf = common::csrf_of(&html);
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (s, cookie) = (&s, cookie.clone());
        async move {
            no_redirects()
                .post(format!("{}{path}", s.url))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let form = |label: &str, scope: &str, days: &str, csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("label", label.to_owned()),
            ("scope", scope.to_owned()),
            ("expires_days", days.to_owned()),
        ]
    };
    // A forged form issues nothing.
    let forged = post("/settings/tokens", form("x", "write", "", "forged")).await;
    assert_eq!(forged.status(), 403);
    let bad = post("/settings/tokens", form("ci", "write", "soon", &csrf)).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("whole number of days"));
    let bad = post("/settings/tokens", form("ci", "admin", "", &csrf)).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("unknown scope"));

    let made = post("/settings/tokens", form("laptop", "write", "30", &csrf)).await;
    assert_eq!(made.status(), 200);
    let html = made.text().await.unwrap();
    let start = html
        .find("<code id=\"token-value\">")
        .expect("the new token")
        + 23;
    let token = html[start..start + html[start..].find('<').unwrap()].to_owned();
    assert!(token.starts_with("my_"), "{token}");
    let who = common::jobs::json(&s, "/api/whoami-v2", Some(&token)).await;
    assert_eq!(who["name"], "carol");
    assert_eq!(who["auth"]["accessToken"]["role"], "write");
    // Listed once made, with its use recorded; its value is never shown again.
    let listed = common::jobs::json(&s, "/api/tokens", Some(&token)).await;
    let laptop = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "laptop")
        .expect("listed")
        .clone();
    assert!(laptop["expiresAt"].is_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = common::jobs::json(&s, "/api/tokens", Some(&token)).await;
        let t = l
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == "laptop")
            .cloned();
        if t.is_some_and(|t| t["lastUsedAt"].is_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "last use never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let html = page(&s, "/settings/tokens", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("laptop") && !html.contains(&token));

    // Someone else's token cannot be revoked by id; one's own stops working at once.
    let id = laptop["id"].as_str().unwrap().to_owned();
    let dave = s.user("dave");
    let dave_id = common::jobs::json(&s, "/api/tokens", Some(&dave)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = no_redirects()
        .post(format!("{}/settings/tokens/{dave_id}/revoke", s.url))
        .header("cookie", cookie.clone())
        .form(&[("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    assert_eq!(s.get("/api/whoami-v2", Some(&dave)).await.status(), 200);
    let revoked = no_redirects()
        .post(format!("{}/settings/tokens/{id}/revoke", s.url))
        .header("cookie", cookie.clone())
        .form(&[("csrf", csrf.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 303);
    assert_eq!(s.get("/api/whoami-v2", Some(&token)).await.status(), 401);
}
