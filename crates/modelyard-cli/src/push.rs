//! `modelyard push DIR NS/NAME`: hash locally, upload only the blobs the server lacks, commit.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use modelyard_core::{RepoId, RepoKind, RepoPath};
use serde_json::{json, Value};
use sha2::Digest;

use crate::client::{api_repo_path, check, enc_segment, Client};
use crate::credentials::ClientArgs;

#[derive(Args)]
pub struct PushArgs {
    /// The folder to upload.
    pub dir: PathBuf,
    /// Target repository, NAMESPACE/NAME.
    pub repo: String,
    /// The repository is a dataset (default: a model).
    #[arg(long)]
    pub dataset: bool,
    /// Create the repository as private (only when it does not exist yet).
    #[arg(long)]
    pub private: bool,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Branch to commit to.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Also delete remote files that are not in the folder.
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A local file with the hashes the server identifies content by.
pub struct LocalFile {
    pub path: String,
    pub abs: PathBuf,
    pub size: u64,
    pub sha256: String,
}

pub fn bar(total: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// Lists the regular files under `dir` as repo paths (skipping `.git`), sorted.
fn walk(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf, u64)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir stays below its root");
        let parts: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_str()
                    .map(str::to_owned)
                    .context("file names must be UTF-8")
            })
            .collect::<anyhow::Result<_>>()?;
        if parts.first().map(String::as_str) == Some(".git") {
            continue;
        }
        let path = parts.join("/");
        RepoPath::parse(&path)
            .with_context(|| format!("cannot upload {}", entry.path().display()))?;
        out.push((path, entry.path().to_owned(), entry.metadata()?.len()));
    }
    Ok(out)
}

fn hash_file(path: &Path, pb: &ProgressBar) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        pb.inc(n as u64);
    }
    Ok(hex::encode(h.finalize()))
}

/// Hashes every file on a blocking thread, with one progress bar over all bytes.
pub async fn hash_all(dir: &Path) -> anyhow::Result<Vec<LocalFile>> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let files = walk(&dir)?;
        let pb = bar(files.iter().map(|f| f.2).sum(), "hashing");
        let out = files
            .into_iter()
            .map(|(path, abs, size)| {
                Ok(LocalFile {
                    sha256: hash_file(&abs, &pb)?,
                    path,
                    abs,
                    size,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>();
        pb.finish_and_clear();
        out
    })
    .await?
}

/// Creates the repo unless it exists.
async fn ensure_repo(
    client: &Client,
    kind: RepoKind,
    id: &RepoId,
    private: bool,
) -> anyhow::Result<()> {
    let resp = client
        .request(reqwest::Method::GET, &api_repo_path(kind, id))
        .send()
        .await?;
    if resp.status().is_success() {
        return Ok(());
    }
    if resp.status() != reqwest::StatusCode::NOT_FOUND {
        check(resp).await?;
    }
    let _: Value = client
        .post_json(
            "/api/repos/create",
            &json!({"name": id.name(), "organization": id.namespace(), "type": kind.as_str(), "private": private}),
        )
        .await
        .with_context(|| format!("creating {id}"))?;
    eprintln!("created {} {id}", kind.as_str());
    Ok(())
}

/// Uploads one file to a signed link, streaming it from disk.
pub async fn upload_file(
    client: &Client,
    href: &str,
    file: &LocalFile,
    pb: &ProgressBar,
) -> anyhow::Result<()> {
    let f = tokio::fs::File::open(&file.abs).await?;
    let pb2 = pb.clone();
    let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20).inspect(move |c| {
        if let Ok(c) = c {
            pb2.inc(c.len() as u64);
        }
    });
    let resp = client
        .http()
        .put(href)
        .header(reqwest::header::CONTENT_LENGTH, file.size)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .with_context(|| format!("uploading {}", file.path))?;
    check(resp)
        .await
        .with_context(|| format!("uploading {}", file.path))?;
    Ok(())
}

pub async fn push(args: PushArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let kind = if args.dataset {
        RepoKind::Dataset
    } else {
        RepoKind::Model
    };
    let id: RepoId = args.repo.parse()?;
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let files = hash_all(&args.dir).await?;
    ensure_repo(&client, kind, &id, args.private).await?;

    let info: Value = client
        .get_json(&format!(
            "{}/revision/{}?blobs=true",
            api_repo_path(kind, &id),
            enc_segment(&args.branch)
        ))
        .await?;
    let parent = info["sha"]
        .as_str()
        .context("server sent no head commit")?
        .to_owned();
    let remote: HashMap<String, Value> = info["siblings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["rfilename"].as_str()?.to_owned(), s.clone())))
        .collect();
    let changed: Vec<&LocalFile> = files
        .iter()
        .filter(|f| {
            remote.get(&f.path).is_none_or(|r| {
                r["lfs"]["sha256"].as_str() != Some(f.sha256.as_str())
                    && !(r["lfs"].is_null() && r["blobId"].as_str() == Some(&git_sha1_of(f)))
            })
        })
        .collect();
    let deleted: Vec<&String> = if args.delete {
        remote
            .keys()
            .filter(|p| *p != ".gitattributes" && !files.iter().any(|f| &f.path == *p))
            .collect()
    } else {
        Vec::new()
    };
    if changed.is_empty() && deleted.is_empty() {
        println!("{id} is up to date at {parent}");
        return Ok(());
    }

    // Ask which blobs the server lacks; upload only those.
    let prefix = kind.url_prefix();
    let batch: Value = client
        .post_json(
            &format!("/{prefix}{id}.git/info/lfs/objects/batch"),
            &json!({"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
                    "objects": changed.iter().map(|f| json!({"oid": f.sha256, "size": f.size})).collect::<Vec<_>>()}),
        )
        .await?;
    let mut to_upload = Vec::new();
    for obj in batch["objects"].as_array().into_iter().flatten() {
        if let Some(err) = obj.get("error") {
            bail!("server refused {}: {}", obj["oid"], err["message"]);
        }
        if let Some(href) = obj["actions"]["upload"]["href"].as_str() {
            let oid = obj["oid"].as_str().unwrap_or_default();
            let file = changed
                .iter()
                .find(|f| f.sha256 == oid)
                .context("server named an unknown object")?;
            to_upload.push((href.to_owned(), *file));
        }
    }
    let total: u64 = to_upload.iter().map(|(_, f)| f.size).sum();
    let pb = bar(total, "uploading");
    for (href, file) in &to_upload {
        upload_file(&client, href, file, &pb).await?;
    }
    pb.finish_and_clear();

    let mut body = String::new();
    let summary = args
        .message
        .clone()
        .unwrap_or_else(|| format!("Upload {} files", changed.len()));
    body += &json!({"key": "header", "value": {"summary": summary, "description": "", "parentCommit": parent}}).to_string();
    body.push('\n');
    for f in &changed {
        body += &json!({"key": "lfsFile", "value": {"path": f.path, "algo": "sha256", "oid": f.sha256, "size": f.size}}).to_string();
        body.push('\n');
    }
    for p in &deleted {
        body += &json!({"key": "deletedFile", "value": {"path": p}}).to_string();
        body.push('\n');
    }
    let resp: Value = client
        .send(
            client
                .request(
                    reqwest::Method::POST,
                    &format!(
                        "{}/commit/{}",
                        api_repo_path(kind, &id),
                        enc_segment(&args.branch)
                    ),
                )
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .body(body),
        )
        .await?
        .json()
        .await?;
    println!(
        "pushed {} changed file(s) ({} uploaded, {} already on the server){} to {id}@{}: {}",
        changed.len(),
        to_upload.len(),
        changed.len() - to_upload.len(),
        if deleted.is_empty() {
            String::new()
        } else {
            format!(", deleted {}", deleted.len())
        },
        args.branch,
        resp["commitOid"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// The git blob SHA-1 of a small local file (to match regular files the Hub client uploaded).
fn git_sha1_of(f: &LocalFile) -> String {
    if f.size > 10 << 20 {
        return String::new();
    }
    std::fs::read(&f.abs)
        .map(|d| modelyard_core::hash::git_blob_sha1(&d))
        .unwrap_or_default()
}
