//! `modelyard bench transfer`: upload and download rates of one large file through a real
//! server process, next to the limits of this machine (openssl's SHA-256, nginx's sendfile).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::Digest;

// Declared here rather than in main.rs, which other work is changing.

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Upload and download MB/s of one large file, against openssl and nginx on this machine.
    Transfer {
        /// File size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
        /// Runs of each measurement; the best run is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
    },
    /// Submit-to-process-start latency of tiny command jobs, and master CPU time per job.
    Jobs {
        /// How many jobs.
        #[arg(long, default_value_t = 1000)]
        jobs: usize,
        /// Worker processes.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Submissions per second (kept below capacity, so latency is not queueing time).
        #[arg(long, default_value_t = 25.0)]
        rate: f64,
    },
    /// Images/s of the evaluator on one core (MNIST; ResNet-50 at batch 1), next to onnxruntime.
    Eval {
        /// MNIST test images to time (the split has 10,000).
        #[arg(long, default_value_t = 10_000)]
        mnist_samples: usize,
        /// Random 224×224 images for ResNet-50 (0.1 s or more each, per engine).
        #[arg(long, default_value_t = 32)]
        resnet_images: usize,
        /// The core both engines are pinned to.
        #[arg(long, default_value_t = 0)]
        core: usize,
        /// Alternating runs of each engine; each one's fastest is reported.
        #[arg(long, default_value_t = 2)]
        runs: u32,
    },
    /// MAPE of the runtime predictor on unseen architectures / models / GPUs, against baselines.
    Predict {
        /// Only the live evaluation jobs.
        #[arg(long, conflicts_with = "published_only")]
        live_only: bool,
        /// Only the published GPU step times (no jobs run; a second).
        #[arg(long)]
        published_only: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Images per live evaluation, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [4, 16, 32])]
        sizes: Vec<usize>,
        /// Save the live runs (features and measured seconds, JSON lines) to this file.
        #[arg(long)]
        save_runs: Option<PathBuf>,
        /// Score live runs saved earlier with --save-runs instead of running jobs.
        #[arg(long)]
        runs: Option<PathBuf>,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Predict {
            live_only,
            published_only,
            json,
            sizes,
            save_runs,
            runs,
        } => {
            crate::bench_predict::run(crate::bench_predict::Options {
                live: !published_only,
                published: !live_only,
                json,
                sizes,
                save_runs,
                runs,
            })
            .await
        }
        BenchCommand::Transfer { size_mib, runs } => transfer(size_mib << 20, runs.max(1)).await,
        BenchCommand::Jobs {
            jobs,
            workers,
            rate,
        } => crate::bench_jobs::run(jobs, workers, rate).await,
        BenchCommand::Eval {
            mnist_samples,
            resnet_images,
            core,
            runs,
        } => crate::bench_eval::run(mnist_samples, resnet_images, core, runs).await,
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Writes `size` pseudo-random bytes (xorshift; incompressible enough for a transfer test).
fn make_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
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
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// The file's bytes with the first 8 replaced by `variant`, so every run uploads new content.
fn variant_stream(
    path: PathBuf,
    variant: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(8);
    std::thread::spawn(move || {
        let run = || -> std::io::Result<()> {
            let mut f = std::fs::File::open(&path)?;
            let mut first = true;
            loop {
                let mut buf = vec![0u8; 1 << 20];
                let n = std::io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if first && n >= 8 {
                    buf[..8].copy_from_slice(&variant.to_le_bytes());
                    first = false;
                }
                if tx.blocking_send(Ok(buf.into())).is_err() {
                    return Ok(());
                }
            }
        };
        if let Err(e) = run() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures_util::stream::poll_fn({
        let mut rx = rx;
        move |cx| rx.poll_recv(cx)
    })
}

async fn sha_of_variant(path: &Path, variant: u64) -> anyhow::Result<String> {
    let mut h = sha2::Sha256::new();
    let mut s = Box::pin(variant_stream(path.to_owned(), variant));
    while let Some(c) = s.next().await {
        h.update(&c?);
    }
    Ok(hex::encode(h.finalize()))
}

pub fn start_server(data: &Path) -> anyhow::Result<(Proc, String, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("MODELYARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("server stdout")?).lines();
    let first = lines.next().context("server exited")??;
    let url = first
        .strip_prefix("modelyard listening on ")
        .context("unexpected server output")?
        .to_owned();
    lines.next();
    let token = lines.next().context("no admin token")??;
    std::thread::spawn(move || for _ in lines {});
    Ok((Proc(child), url, token))
}

/// Starts `n` worker processes against the server of `data` and waits until all are alive.
pub async fn start_workers(
    data: &Path,
    dir: &Path,
    url: &str,
    token: &str,
    n: usize,
    allow_commands: bool,
) -> anyhow::Result<Vec<Proc>> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .args(["admin", "join-token", "--data-dir"])
        .arg(data)
        .output()?;
    let join = String::from_utf8(out.stdout)?.trim().to_owned();
    let mut procs = Vec::new();
    for i in 0..n {
        let base = dir.join(format!("w{i}"));
        let mut cmd = Command::new(&exe);
        cmd.args(["worker", "--server", url, "--join-token", &join])
            .args(["--name", &format!("bench-{i}")])
            .arg("--cache-dir")
            .arg(base.join("cache"))
            .arg("--work-dir")
            .arg(base.join("work"))
            .env("MODELYARD_LOG", "warn")
            .stdout(Stdio::null());
        if allow_commands {
            cmd.arg("--allow-commands");
        }
        procs.push(Proc(cmd.spawn()?));
    }
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes: Vec<Value> = http
            .get(format!("{url}/api/cluster/nodes"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if nodes.iter().filter(|n| n["state"] == "alive").count() == n {
            return Ok(procs);
        }
        if Instant::now() > deadline {
            bail!("workers did not register");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn find_nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts nginx serving `root` on a free loopback port, with sendfile on.
fn start_nginx(nginx: &Path, root: &Path, work: &Path) -> anyhow::Result<(Proc, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::create_dir_all(work.join("logs"))?;
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {w}/nginx.pid;\nerror_log {w}/logs/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  client_body_temp_path {w}/body;\n  proxy_temp_path {w}/proxy;\n  fastcgi_temp_path {w}/fastcgi;\n  uwsgi_temp_path {w}/uwsgi;\n  scgi_temp_path {w}/scgi;\n\
             server {{ listen 127.0.0.1:{port}; root {r}; }}\n}}\n",
            w = work.display(),
            r = root.display()
        ),
    )?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(work)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nginx did not start; see {}/logs/error.log", work.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((proc, port))
}

/// Downloads `url`, discarding the bytes; returns how many arrived and how long it took.
async fn download(http: &reqwest::Client, url: &str) -> anyhow::Result<(u64, Duration)> {
    let t = Instant::now();
    let resp = http.get(url).send().await?.error_for_status()?;
    let mut n = 0u64;
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        n += c?.len() as u64;
    }
    Ok((n, t.elapsed()))
}

async fn transfer(size: u64, runs: u32) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("modelyard-bench-")
        .tempdir_in(std::env::temp_dir())?;
    let file_dir = dir.path().join("files");
    std::fs::create_dir_all(&file_dir)?;
    let file = file_dir.join("blob.bin");
    eprintln!(
        "writing a {} MiB test file in {}",
        size >> 20,
        dir.path().display()
    );
    make_file(&file, size)?;

    // Limit 1: SHA-256 hashing by openssl (every verified upload has to hash its bytes).
    let mut hash_best = 0f64;
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new("openssl")
            .arg("dgst")
            .arg("-sha256")
            .arg(&file)
            .output()
            .context("running openssl")?;
        if !out.status.success() {
            bail!("openssl failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        hash_best = hash_best.max(mbps(size, t.elapsed()));
    }

    let (server, url, token) = start_server(&dir.path().join("data"))?;
    let pid = server.0.id();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{url}/api/repos/create"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "organization": "admin"}))
        .send()
        .await?;
    crate::client::check(created).await?;
    let (rss_before, _) = rss(pid);

    // Uploads: a new variant of the file each run, streamed to a signed LFS link.
    let mut up_best = 0f64;
    let mut last_oid = String::new();
    for run in 0..runs {
        let oid = sha_of_variant(&file, run as u64 + 1).await?;
        let batch: Value = http
            .post(format!("{url}/admin/bench.git/info/lfs/objects/batch"))
            .bearer_auth(&token)
            .json(&json!({"operation": "upload", "objects": [{"oid": oid, "size": size}]}))
            .send()
            .await?
            .json()
            .await?;
        let href = batch["objects"][0]["actions"]["upload"]["href"]
            .as_str()
            .context("no upload link")?
            .to_owned();
        let body = reqwest::Body::wrap_stream(variant_stream(file.clone(), run as u64 + 1));
        let t = Instant::now();
        let resp = http
            .put(&href)
            .header("content-length", size)
            .body(body)
            .send()
            .await?;
        crate::client::check(resp).await?;
        up_best = up_best.max(mbps(size, t.elapsed()));
        last_oid = oid;
    }
    let commit = [
        json!({"key": "header", "value": {"summary": "bench"}}).to_string(),
        json!({"key": "lfsFile", "value": {"path": "blob.bin", "algo": "sha256", "oid": last_oid, "size": size}}).to_string(),
    ]
    .join("\n");
    let resp = http
        .post(format!("{url}/api/models/admin/bench/commit/main"))
        .bearer_auth(&token)
        .body(commit)
        .send()
        .await?;
    crate::client::check(resp).await?;

    // Downloads through /resolve, bytes discarded by the client.
    let mut down_best = 0f64;
    for _ in 0..runs {
        let (n, d) = download(&http, &format!("{url}/admin/bench/resolve/main/blob.bin")).await?;
        if n != size {
            bail!("downloaded {n} bytes, expected {size}");
        }
        down_best = down_best.max(mbps(size, d));
    }
    let (rss_after, hwm) = rss(pid);
    drop(server);

    // Limit 2: nginx serving the same file with sendfile, read by the same client.
    let nginx_best = match find_nginx() {
        Some(nginx) => {
            let (proc, port) = start_nginx(&nginx, &file_dir, &dir.path().join("nginx"))?;
            let mut best = 0f64;
            for _ in 0..runs {
                let (n, d) = download(&http, &format!("http://127.0.0.1:{port}/blob.bin")).await?;
                if n != size {
                    bail!("nginx sent {n} bytes, expected {size}");
                }
                best = best.max(mbps(size, d));
            }
            drop(proc);
            Some(best)
        }
        None => None,
    };

    println!();
    println!(
        "transfer of one {} MiB file, best of {runs} runs, MB = 10^6 bytes",
        size >> 20
    );
    println!();
    println!("| measurement                                   |     MB/s | ratio  | target  |");
    println!("|-----------------------------------------------|---------:|--------|---------|");
    println!(
        "| SHA-256 hashing, `openssl dgst -sha256`       | {hash_best:>8.0} |        |         |"
    );
    println!(
        "| modelyard upload (hashed, verified, synced)   | {up_best:>8.0} | {:>5.2}× | ≥ 0.70× |",
        up_best / hash_best
    );
    match nginx_best {
        Some(n) => {
            println!(
                "| nginx download (sendfile)                     | {n:>8.0} |        |         |"
            );
            println!("| modelyard download (`/resolve`)               | {down_best:>8.0} | {:>5.2}× | ≥ 0.80× |", down_best / n);
        }
        None => {
            println!("| nginx download                                | not installed (apt-get install nginx-light) |");
            println!("| modelyard download (`/resolve`)               | {down_best:>8.0} |        |         |");
        }
    }
    println!();
    println!(
        "server memory: {} MiB resident before the transfers, {} MiB after, {} MiB peak (VmHWM)",
        rss_before >> 20,
        rss_after >> 20,
        hwm >> 20
    );
    Ok(())
}
