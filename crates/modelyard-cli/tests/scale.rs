//! Scale mode: `modelyard serve` on PostgreSQL + S3, two replicas sharing them. What is pushed
//! through one is pulled through the other; with workers behind a load balancer, the replica
//! running the scheduler is killed mid-run and the other takes over. Needs
//! `MODELYARD_TEST_POSTGRES` and `MODELYARD_TEST_S3` (`scripts/services` starts both);
//! skipped without them, except in CI.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use modelyard_store::testing::{postgres_url, TestDatabase};
use serde_json::Value;

/// A fresh PostgreSQL database and a fresh prefix of the test bucket.
struct Backends {
    db: TestDatabase,
    blob_store: String,
}

impl Backends {
    async fn create(test: &str) -> Option<Self> {
        let server = postgres_url(test)?;
        let s3 = match std::env::var("MODELYARD_TEST_S3") {
            Ok(s) if !s.is_empty() => s,
            _ if modelyard_store::testing::in_ci() => {
                panic!("MODELYARD_TEST_S3 is not set but CI=true: the S3 tests must run in CI")
            }
            _ => {
                eprintln!("skipping {test}: set MODELYARD_TEST_S3=s3://BUCKET?endpoint=...");
                return None;
            }
        };
        let (base, query) = s3.split_once('?').unwrap_or((&s3, ""));
        let prefix = format!("{test}-{}-{}", std::process::id(), nanos());
        Some(Self {
            db: TestDatabase::create(&server).await,
            blob_store: format!("{}/{prefix}?{query}", base.trim_end_matches('/')),
        })
    }

    /// The flags that point a command at these backends.
    fn args(&self, data_dir: &Path) -> Vec<String> {
        vec![
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--database-url".into(),
            self.db.url.clone(),
            "--blob-store".into(),
            self.blob_store.clone(),
        ]
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// One `serve` process with its own (nearly unused) data directory.
struct Replica {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica; returns the admin token when this start created the admin account.
    fn start(b: &Backends) -> (Self, Option<String>) {
        Self::start_with(b, &[])
    }

    fn start_with(b: &Backends, extra: &[&str]) -> (Self, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(common::BIN)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(b.args(&dir.path().join("data")))
            .args(extra)
            .env("MODELYARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("server printed a line").unwrap();
        let Some(url) = first.strip_prefix("modelyard listening on ") else {
            let _ = child.kill();
            panic!(
                "no listening line ({first:?}); log: {}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
        };
        let url = url.to_owned();
        let mut token = None;
        if let Some(Ok(line)) = lines.next() {
            if line.starts_with("created the admin account") {
                token = Some(lines.next().unwrap().unwrap());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        (Self { child, url, dir }, token)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn cli(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(common::BIN);
        cmd.args(args)
            .env("MODELYARD_SERVER", &self.url)
            .env("MODELYARD_CONFIG_DIR", self.dir.path().join("client"))
            .env_remove("MODELYARD_TOKEN");
        if let Some(t) = token {
            cmd.env("MODELYARD_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    async fn head(&self, repo: &str) -> String {
        let v: Value = reqwest::get(format!("{}/api/models/{repo}/revision/main", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["sha"].as_str().unwrap().to_owned()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (p, d) in files {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, d).unwrap();
    }
}

fn same_files(a: &Path, b: &Path, paths: &[&str]) {
    for p in paths {
        assert_eq!(
            std::fs::read(a.join(p)).unwrap(),
            std::fs::read(b.join(p)).unwrap(),
            "{p}"
        );
    }
}

#[tokio::test]
async fn two_replicas_on_postgres_and_s3_share_pushes_and_pulls() {
    let Some(b) = Backends::create("two_replicas_on_postgres_and_s3").await else {
        return;
    };
    let (a, admin) = Replica::start(&b);
    assert!(
        admin.is_some(),
        "the first replica creates the admin account"
    );
    let mut create = Command::new(common::BIN);
    create
        .args(["admin", "create-user", "alice", "--token"])
        .args(b.args(&a.data_dir()));
    let alice = ok(&create.output().unwrap()).trim().to_owned();
    let (r2, admin2) = Replica::start(&b);
    assert!(
        admin2.is_none(),
        "the second replica finds the users in PostgreSQL"
    );

    // Pushed through the first replica (the large file goes through the LFS upload link the
    // first replica signs, in parts to S3), pulled through the second.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let big: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let paths = [
        "README.md",
        "config.json",
        "weights/model.bin",
        "weights/deep/file with space.txt",
    ];
    write_tree(
        &src,
        &[
            (
                paths[0],
                b"---\nlicense: mit\ntags: [scale]\n---\n# scale\n",
            ),
            (paths[1], b"{\"hidden\": 64}"),
            (paths[2], &big),
            (paths[3], b"nested"),
        ],
    );
    let src_s = src.to_str().unwrap();
    let out = ok(&a.cli(Some(&alice), &["push", src_s, "alice/rt", "-m", "first"]));
    assert!(out.contains("pushed 4 changed file(s)"), "{out}");
    let first = a.head("alice/rt").await;
    assert_eq!(r2.head("alice/rt").await, first);
    let dst = work.path().join("dst");
    ok(&r2.cli(None, &["pull", "alice/rt", dst.to_str().unwrap()]));
    same_files(&src, &dst, &paths);

    // And the other way round: a change pushed through the second replica.
    std::fs::write(src.join("config.json"), b"{\"hidden\": 128}").unwrap();
    let out = ok(&r2.cli(Some(&alice), &["push", src_s, "alice/rt"]));
    assert!(out.contains("pushed 1 changed file(s)"), "{out}");
    let back = work.path().join("back");
    ok(&a.cli(None, &["pull", "alice/rt@main", back.to_str().unwrap()]));
    same_files(&src, &back, &paths);
    let old = work.path().join("old");
    ok(&a.cli(
        None,
        &["pull", &format!("alice/rt@{first}"), old.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(old.join("config.json")).unwrap(),
        b"{\"hidden\": 64}"
    );

    // Ranged downloads stream from S3 through either replica.
    for r in [&a, &r2] {
        let part = reqwest::Client::new()
            .get(format!("{}/alice/rt/resolve/main/weights/model.bin", r.url))
            .header("range", "bytes=8388000-8389999")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.bytes().await.unwrap(), &big[8_388_000..8_390_000]);
    }

    // Reads are cached per replica and viewer; a write through one replica empties the others'
    // caches at once (PostgreSQL notices), not a second later.
    let sha_via = |r: &Replica| {
        let (url, token) = (r.url.clone(), alice.clone());
        async move {
            let v: Value = reqwest::Client::new()
                .get(format!("{url}/api/models/alice/rt"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["sha"].as_str().unwrap().to_owned()
        }
    };
    let cached = sha_via(&r2).await;
    assert_eq!(sha_via(&r2).await, cached);
    let noted = reqwest::Client::new()
        .post(format!("{}/api/models/alice/rt/commit/main", a.url))
        .bearer_auth(&alice)
        .header("content-type", "application/x-ndjson")
        .body(concat!(
            r#"{"key":"header","value":{"summary":"a note"}}"#,
            "\n",
            r#"{"key":"file","value":{"path":"NOTE.md","encoding":"base64","content":"aGk="}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(noted.status(), 200);
    let written = a.head("alice/rt").await;
    assert_ne!(written, cached);
    // The notice travels on its own connection: allow it a moment, far below the cache's second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
    while sha_via(&r2).await != written {
        assert!(
            std::time::Instant::now() < deadline,
            "the other replica still serves the cached head"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // A replica configured to redirect downloads sends LFS content to a pre-signed S3 URL,
    // with the Hub's metadata on the 302; small regular files it still serves itself.
    let (r3, _) = Replica::start_with(&b, &["--download-redirect", "true"]);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let big_url = format!("{}/alice/rt/resolve/main/weights/model.bin", r3.url);
    let moved = no_redirects.get(&big_url).send().await.unwrap();
    assert_eq!(moved.status(), 302, "{}", r3.log());
    let h = moved.headers();
    let location = h["location"].to_str().unwrap().to_owned();
    let s3_endpoint = b
        .blob_store
        .split("endpoint=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        location.starts_with(s3_endpoint) && location.contains("X-Amz-Signature="),
        "{location} is not a pre-signed URL on {s3_endpoint}"
    );
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big));
    assert_eq!(h["x-linked-etag"], format!("\"{sha}\"").as_str());
    assert_eq!(h["x-linked-size"], big.len().to_string().as_str());
    assert_eq!(h["x-repo-commit"], r3.head("alice/rt").await.as_str());
    let head = no_redirects.head(&big_url).send().await.unwrap();
    assert_eq!(head.status(), 302);
    // The URL works without credentials, for the whole file and for a range.
    let direct = reqwest::get(&location).await.unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.bytes().await.unwrap(), &big[..]);
    let part = reqwest::Client::new()
        .get(&big_url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap(), &big[100..200]);
    // A regular (non-LFS) file, committed inline, is served by the replica itself.
    let inline = reqwest::Client::new()
        .post(format!("{}/api/models/alice/rt/commit/main", r3.url))
        .bearer_auth(&alice)
        .header("content-type", "application/x-ndjson")
        .body(concat!(
            r#"{"key":"header","value":{"summary":"notes"}}"#,
            "\n",
            r#"{"key":"file","value":{"path":"NOTES.txt","encoding":"base64","content":"aGk="}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(inline.status(), 200);
    let notes = no_redirects
        .get(format!("{}/alice/rt/resolve/main/NOTES.txt", r3.url))
        .send()
        .await
        .unwrap();
    assert_eq!(notes.status(), 200);
    assert_eq!(notes.bytes().await.unwrap(), &b"hi"[..]);
    let via_redirect = work.path().join("via-redirect");
    ok(&r3.cli(None, &["pull", "alice/rt", via_redirect.to_str().unwrap()]));
    same_files(&src, &via_redirect, &paths);
    drop(r3);

    // Listing and search read PostgreSQL.
    let found: Value = reqwest::get(format!("{}/api/models?search=RT", r2.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "alice/rt"),
        "{found}"
    );

    // Nothing went to the replicas' local directories.
    for r in [&a, &r2] {
        let local = r.data_dir().join("blobs").join("blobs");
        assert!(
            !local.exists() || std::fs::read_dir(&local).unwrap().next().is_none(),
            "blobs were written to {}",
            local.display()
        );
    }
    drop((a, r2));
    b.db.drop_database().await;
}

/// A TCP load balancer on loopback: each connection goes to the next backend that accepts it.
async fn load_balancer(backends: Vec<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let backends: Vec<String> = backends
        .iter()
        .map(|u| u.trim_start_matches("http://").to_owned())
        .collect();
    tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let order: Vec<String> = (0..backends.len())
                .map(|i| backends[(next + i) % backends.len()].clone())
                .collect();
            next += 1;
            tokio::spawn(async move {
                for addr in order {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_fails_over_when_its_replica_is_killed() {
    use std::time::{Duration, Instant};
    let Some(b) = Backends::create("scheduler_fails_over").await else {
        return;
    };
    let lease = ["--node-lease-ms", "10000"];
    let (mut a, admin) = Replica::start_with(&b, &lease);
    let admin = admin.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.log().contains("this replica runs the scheduler") {
        assert!(
            Instant::now() < deadline,
            "replica A never led: {}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (r2, _) = Replica::start_with(&b, &lease);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !r2.log().contains("another replica runs the scheduler") {
        assert!(
            Instant::now() < deadline,
            "replica B did not stand by: {}",
            r2.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lb = load_balancer(vec![a.url.clone(), r2.url.clone()]).await;
    let join = ok(&Command::new(common::BIN)
        .args(["admin", "join-token"])
        .args(b.args(&a.data_dir()))
        .output()
        .unwrap())
    .trim()
    .to_owned();

    let work = tempfile::tempdir().unwrap();
    let mut workers: Vec<Child> = (1..=3)
        .map(|i| {
            let base = work.path().join(format!("w{i}"));
            Command::new(common::BIN)
                .args(["worker", "--server", &lb, "--join-token", &join])
                .args([
                    "--name",
                    &format!("w{i}"),
                    "--grace-ms",
                    "1000",
                    "--allow-commands",
                ])
                .arg("--cache-dir")
                .arg(base.join("cache"))
                .arg("--work-dir")
                .arg(base.join("work"))
                .env("MODELYARD_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.path().join(format!("w{i}.log"))).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();

    // 50 jobs, submitted through the load balancer; each appends its id to a shared file.
    let http = reqwest::Client::new();
    let ran = work.path().join("ran.txt");
    let mut ids = Vec::new();
    for _ in 0..50 {
        let r = http
            .post(format!("{lb}/api/jobs"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"kind": "command", "timeout_s": 120,
                "command": format!("sleep 0.5; echo $MODELYARD_JOB_ID >> {}", ran.display())}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let states = |url: String, token: String| {
        let http = http.clone();
        async move {
            let jobs: Vec<Value> = http
                .get(format!("{url}/api/jobs?limit=1000"))
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(jobs)
        }
    };
    let succeeded = |jobs: &[Value]| jobs.iter().filter(|j| j["state"] == "succeeded").count();

    // Mid-run: kill -9 the replica that runs the scheduler.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = states(r2.url.clone(), admin.clone())
            .await
            .map_or(0, |j| succeeded(&j));
        if done >= 5 {
            assert!(done < 50, "the run ended before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "no job finished in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed_at = Instant::now();

    // The other replica takes over within a node lease, and every job completes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !r2.log().contains("this replica runs the scheduler") {
        assert!(
            Instant::now() < deadline,
            "replica B never took over: {}",
            r2.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(180);
    let jobs = loop {
        let jobs = states(r2.url.clone(), admin.clone())
            .await
            .unwrap_or_default();
        let mine: Vec<Value> = jobs
            .into_iter()
            .filter(|j| ids.contains(&j["id"].as_i64().unwrap()))
            .collect();
        if mine.len() == ids.len() && succeeded(&mine) == ids.len() {
            break mine;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not all succeed: {}",
            Value::Array(mine)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let lines = std::fs::read_to_string(&ran).unwrap();
    for id in &ids {
        let n = lines.lines().filter(|l| l.trim() == id.to_string()).count();
        assert_eq!(n, 1, "job {id} ran exactly once: {lines}");
    }
    assert!(jobs.iter().all(|j| j["attempt"] == 1), "no job was retried");
    eprintln!(
        "scheduler takeover after kill -9: {} ms",
        takeover.as_millis()
    );
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    drop((a, r2));
    b.db.drop_database().await;
}
