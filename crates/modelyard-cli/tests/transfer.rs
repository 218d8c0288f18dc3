//! Uploads and downloads over real HTTP: interrupted and bad uploads, the CLI round trip,
//! and a 1 GiB file with the server's memory watched from /proc.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{blob_files, tmp_files, Server};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;

fn sha256(d: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(d))
}

async fn batch(s: &Server, token: &str, repo: &str, oid: &str, size: u64) -> Value {
    s.req(Method::POST, &format!("/{repo}.git/info/lfs/objects/batch"), Some(token))
        .json(&json!({"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn commit_lfs(
    s: &Server,
    token: &str,
    repo: &str,
    path: &str,
    oid: &str,
    size: u64,
) -> reqwest::Response {
    let body = [
        json!({"key": "header", "value": {"summary": "lfs"}}).to_string(),
        json!({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}).to_string(),
    ]
    .join("\n");
    s.req(
        Method::POST,
        &format!("/api/models/{repo}/commit/main"),
        Some(token),
    )
    .body(body)
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn cut_off_or_wrong_uploads_leave_nothing() {
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/m", "model", false).await;
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let oid = sha256(&data);
    let size = data.len() as u64;
    let blobs_before = blob_files(&s.data_dir()).len();

    let b = batch(&s, &a, "alice/m", &oid, size).await;
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_owned();

    // A client that sends a quarter of the body and hangs up.
    let url = reqwest::Url::parse(&href).unwrap();
    let mut tcp =
        std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    write!(
        tcp,
        "PUT {}?{} HTTP/1.1\r\nHost: {}\r\nContent-Length: {size}\r\n\r\n",
        url.path(),
        url.query().unwrap(),
        url.host_str().unwrap()
    )
    .unwrap();
    tcp.write_all(&data[..1 << 20]).unwrap();
    tcp.flush().unwrap();
    drop(tcp);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tmp_files(&s.data_dir()).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tmp_files(&s.data_dir()).is_empty(),
        "no partial file is left"
    );
    assert_eq!(
        blob_files(&s.data_dir()).len(),
        blobs_before,
        "no blob appeared"
    );
    let again = batch(&s, &a, "alice/m", &oid, size).await;
    assert!(
        again["objects"][0]["actions"]["upload"].is_object(),
        "the server still lacks it"
    );
    let early = commit_lfs(&s, &a, "alice/m", "w.bin", &oid, size).await;
    assert_eq!(
        early.status(),
        400,
        "a commit cannot reference a blob that never landed"
    );

    // Content that does not match the oid is refused and not kept.
    let mut wrong = data.clone();
    wrong[12345] ^= 1;
    let r = s.http.put(&href).body(wrong).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(blob_files(&s.data_dir()).len(), blobs_before);
    // A tampered link or a size that disagrees is refused before anything is read. (Empty bodies:
    // unread bytes of a refused request would turn the server's close into a reset.)
    let tampered = href.replace("sig=", "sig=0");
    assert_eq!(
        s.http
            .put(&tampered)
            .body(Vec::new())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let short = s.http.put(&href).body(Vec::new()).send().await.unwrap();
    assert_eq!(short.status(), 400);

    // The next, complete upload succeeds and the file reads back intact.
    let ok = s.http.put(&href).body(data.clone()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        commit_lfs(&s, &a, "alice/m", "w.bin", &oid, size)
            .await
            .status(),
        200
    );
    let head = s.get("/alice/m/resolve/main/w.bin", None).await;
    assert_eq!(head.headers()["etag"], format!("\"{oid}\"").as_str());
    assert_eq!(head.headers()["x-linked-size"], size.to_string().as_str());
    assert_eq!(sha256(&head.bytes().await.unwrap()), oid);
    let done = batch(&s, &a, "alice/m", &oid, size).await;
    assert!(
        done["objects"][0].get("actions").is_none(),
        "stored objects need no upload"
    );
}

fn write_tree(root: &std::path::Path, files: &[(&str, &[u8])]) {
    for (p, d) in files {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, d).unwrap();
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn push_pull_round_trip_with_the_cli() {
    let s = Server::start();
    let a = s.user("alice");
    let src = s.dir.path().join("src");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    write_tree(
        &src,
        &[
            ("README.md", b"---\nlicense: mit\n---\n# round trip\n"),
            ("config.json", b"{\"hidden\": 64}"),
            ("weights/model.bin", &big),
            ("weights/deep/nested/file with space.txt", b"nested"),
        ],
    );
    let src_s = src.to_str().unwrap();
    let out = ok(&s.cli(Some(&a), &["push", src_s, "alice/rt", "-m", "first"]));
    assert!(
        out.contains("pushed 4 changed file(s) (4 uploaded"),
        "{out}"
    );
    let first = s.head("alice/rt", None).await;

    let dst = s.dir.path().join("dst");
    let dst_s = dst.to_str().unwrap();
    ok(&s.cli(None, &["pull", "alice/rt", dst_s]));
    for p in [
        "README.md",
        "config.json",
        "weights/model.bin",
        "weights/deep/nested/file with space.txt",
    ] {
        assert_eq!(
            std::fs::read(src.join(p)).unwrap(),
            std::fs::read(dst.join(p)).unwrap(),
            "{p}"
        );
    }

    // Unchanged: nothing is uploaded, no commit is made.
    let out = ok(&s.cli(Some(&a), &["push", src_s, "alice/rt"]));
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(s.head("alice/rt", None).await, first);

    // One file changed: one blob is uploaded; a copy of existing content uploads nothing.
    std::fs::write(src.join("config.json"), b"{\"hidden\": 128}").unwrap();
    std::fs::write(src.join("weights/copy.bin"), &big).unwrap();
    let out = ok(&s.cli(Some(&a), &["push", src_s, "alice/rt"]));
    assert!(
        out.contains("pushed 2 changed file(s) (1 uploaded, 1 already on the server)"),
        "{out}"
    );

    // Pull at the first commit gets the old content back; pulling again downloads nothing.
    let old = s.dir.path().join("old");
    ok(&s.cli(
        None,
        &["pull", &format!("alice/rt@{first}"), old.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read(old.join("config.json")).unwrap(),
        b"{\"hidden\": 64}"
    );
    assert!(!old.join("weights/copy.bin").exists());
    let out = ok(&s.cli(None, &["pull", "alice/rt", dst_s]));
    assert!(
        out.contains(": 2 file(s) downloaded"),
        "only the changed files: {out}"
    );

    // Private pushes, saved logins and clear errors.
    let out = ok(&s.cli(
        Some(&a),
        &["push", src_s, "alice/hidden", "--private", "--dataset"],
    ));
    assert!(out.contains("alice/hidden"));
    let anon = s.cli(
        None,
        &[
            "pull",
            "alice/hidden",
            s.dir.path().join("h").to_str().unwrap(),
            "--dataset",
        ],
    );
    assert!(!anon.status.success());
    assert!(
        String::from_utf8_lossy(&anon.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&anon.stderr)
    );
    let bad = s.cli(Some("my_wrong"), &["repos"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("401") && err.contains("modelyard login"),
        "{err}"
    );
    ok(&s.cli(None, &["login", "--token", &a]));
    let listing = ok(&s.cli(None, &["repos", "--dataset"]));
    assert!(
        listing.contains("alice/hidden"),
        "saved login sees private repos: {listing}"
    );
    let listing = ok(&s.cli(None, &["repos", "--search", "rt"]));
    assert!(listing.contains("alice/rt"), "{listing}");
}

#[tokio::test]
async fn first_start_prints_an_admin_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut c1, url, token) = common::spawn(&data, dir.path());
    let token = token.expect("first start prints a token");
    let me: Value = reqwest::Client::new()
        .get(format!("{url}/api/whoami-v2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "admin");
    assert_eq!(me["isAdmin"], true);
    c1.kill().unwrap();
    c1.wait().unwrap();
    let (mut c2, url2, again) = common::spawn(&data, dir.path());
    assert!(again.is_none(), "the token is shown only once");
    let me: Value = reqwest::Client::new()
        .get(format!("{url2}/api/whoami-v2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["name"], "admin",
        "the token survives restarts (only its hash is stored)"
    );
    let mut stored = std::fs::read(data.join("modelyard.db")).unwrap();
    stored.extend(std::fs::read(data.join("modelyard.db-wal")).unwrap_or_default());
    assert!(stored.len() > 4096, "the database was read");
    let hash = sha2::Sha256::digest(token.as_bytes());
    let hash_hex = hex::encode(hash);
    let found = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(found(hash_hex.as_bytes()), "the token's hash is stored");
    assert!(!found(token.as_bytes()), "the token itself is not stored");
    c2.kill().unwrap();
    c2.wait().unwrap();
}

/// Writes `size` pseudo-random bytes and returns their SHA-256.
fn make_file(path: &std::path::Path, size: u64) -> String {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut h = sha2::Sha256::new();
    let mut x = 0x9E3779B97F4A7C15u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

#[tokio::test]
async fn one_gib_file_round_trip_keeps_server_memory_flat() {
    const SIZE: u64 = 1 << 30;
    let s = Server::start();
    let a = s.user("alice");
    s.create_repo(&a, "alice/big", "model", false).await;
    let path = s.dir.path().join("big.bin");
    let oid = make_file(&path, SIZE);
    let (rss_before, _) = s.memory();

    // Watch the server's resident memory while the file goes up and comes back down.
    let pid = s.pid();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = st
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                {
                    peak = peak.max(kb.parse::<u64>().unwrap() * 1024);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });

    let b = batch(&s, &a, "alice/big", &oid, SIZE).await;
    let href = b["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = tokio::fs::File::open(&path).await.unwrap();
    let body =
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
    let up = s
        .http
        .put(&href)
        .header("content-length", SIZE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 200);
    assert_eq!(
        commit_lfs(&s, &a, "alice/big", "big.bin", &oid, SIZE)
            .await
            .status(),
        200
    );

    let resp = s.get("/alice/big/resolve/main/big.bin", None).await;
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = watcher.join().unwrap().max(s.memory().1);
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(h.finalize()), oid);
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "server rss before {} MiB, peak {} MiB, growth {} MiB",
        rss_before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth < 100 << 20,
        "server memory grew by {} MiB",
        growth >> 20
    );
}
