//! `modelyard pull NS/NAME[@REV] DIR`: download a repo at one commit, verifying every file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use modelyard_core::{RepoId, RepoKind, RepoPath};
use serde_json::Value;
use sha1::Digest as _;

use crate::client::{api_repo_path, enc_path, enc_segment};
use crate::credentials::ClientArgs;
use crate::push::bar;

#[derive(Args)]
pub struct PullArgs {
    /// NAMESPACE/NAME, optionally @BRANCH, @TAG or @COMMIT (default @main).
    pub repo: String,
    /// Folder to download into (created if missing).
    pub dir: PathBuf,
    /// The repository is a dataset (default: a model).
    #[arg(long)]
    pub dataset: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// What a file's content must hash to.
enum Want {
    Sha256(String),
    GitSha1(String),
}

/// Hashes the way the server identifies the file, so a download is checked end to end.
enum Hasher {
    Sha256(sha2::Sha256),
    GitSha1(sha1::Sha1),
}

impl Hasher {
    fn new(want: &Want, size: u64) -> Self {
        match want {
            Want::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
            Want::GitSha1(_) => {
                let mut h = sha1::Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Hasher::GitSha1(h)
            }
        }
    }
    fn update(&mut self, d: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(d),
            Hasher::GitSha1(h) => h.update(d),
        }
    }
    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::GitSha1(h) => hex::encode(h.finalize()),
        }
    }
}

fn local_matches(path: &Path, want: &Want, size: u64) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.len() != size {
        return false;
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut h = Hasher::new(want, size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(_) => return false,
        }
    }
    let got = h.finish();
    match want {
        Want::Sha256(w) | Want::GitSha1(w) => &got == w,
    }
}

pub async fn pull(args: PullArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let kind = if args.dataset {
        RepoKind::Dataset
    } else {
        RepoKind::Model
    };
    let (repo, rev) = args.repo.split_once('@').unwrap_or((&args.repo, "main"));
    let id: RepoId = repo.parse()?;
    let info: Value = client
        .get_json(&format!(
            "{}/revision/{}?blobs=true",
            api_repo_path(kind, &id),
            enc_segment(rev)
        ))
        .await?;
    let sha = info["sha"]
        .as_str()
        .context("server sent no commit")?
        .to_owned();
    let mut files = Vec::new();
    for s in info["siblings"].as_array().into_iter().flatten() {
        let path = s["rfilename"].as_str().context("file without a name")?;
        let path = RepoPath::parse(path)
            .with_context(|| format!("server sent an unsafe path {path:?}"))?;
        let size = s["size"].as_u64().context("file without a size")?;
        let want = match s["lfs"]["sha256"].as_str() {
            Some(h) => Want::Sha256(h.to_owned()),
            None => Want::GitSha1(
                s["blobId"]
                    .as_str()
                    .context("file without an id")?
                    .to_owned(),
            ),
        };
        files.push((path, size, want));
    }
    tokio::fs::create_dir_all(&args.dir).await?;
    let mut todo = Vec::new();
    for (path, size, want) in files {
        let dest = args.dir.join(path.as_str());
        let skip = {
            let (dest, want2) = (
                dest.clone(),
                match &want {
                    Want::Sha256(s) => Want::Sha256(s.clone()),
                    Want::GitSha1(s) => Want::GitSha1(s.clone()),
                },
            );
            tokio::task::spawn_blocking(move || local_matches(&dest, &want2, size)).await?
        };
        if !skip {
            todo.push((path, size, want, dest));
        }
    }
    let pb = bar(todo.iter().map(|t| t.1).sum(), "pulling");
    let n = todo.len();
    for (path, size, want, dest) in todo {
        let url = format!(
            "/{}{id}/resolve/{sha}/{}",
            kind.url_prefix(),
            enc_path(path.as_str())
        );
        let resp = client
            .send(client.request(reqwest::Method::GET, &url))
            .await?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let tmp = dest.with_file_name(format!(".{}.modelyard-part", path.file_name()));
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        let mut h = Hasher::new(&want, size);
        let mut got = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(|| format!("downloading {path}"))?;
            h.update(&chunk);
            out.write_all(&chunk)?;
            got += chunk.len() as u64;
            pb.inc(chunk.len() as u64);
        }
        out.flush()?;
        drop(out);
        let digest = h.finish();
        let expected = match &want {
            Want::Sha256(w) | Want::GitSha1(w) => w,
        };
        if got != size || &digest != expected {
            let _ = std::fs::remove_file(&tmp);
            bail!("{path}: downloaded {got} bytes hashing to {digest}, expected {size} bytes hashing to {expected}");
        }
        std::fs::rename(&tmp, &dest)?;
    }
    pb.finish_and_clear();
    println!(
        "pulled {id}@{rev} ({sha}) into {}: {n} file(s) downloaded",
        args.dir.display()
    );
    Ok(())
}
