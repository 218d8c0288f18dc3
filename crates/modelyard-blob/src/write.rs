//! The verified write pipeline: hashing and file writing run on two threads beside the network.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::Digest as _;
use tokio::sync::mpsc;

use crate::{BlobError, Expect, Sha256};

/// Hashes and sizes of what was written.
pub(crate) struct Written {
    pub sha256: Sha256,
    pub size: u64,
    pub git_sha1: Option<String>,
}

/// Streams `body` into `file` while hashing it on another thread; checks `expect` limits.
/// The file is synced before returning so a later rename publishes complete content.
pub(crate) async fn write_hashed<S>(
    mut body: S,
    file: File,
    expect: &Expect,
) -> Result<Written, BlobError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin + Send,
{
    let (wtx, mut wrx) = mpsc::channel::<Bytes>(64);
    let (htx, mut hrx) = mpsc::channel::<Bytes>(64);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = wrx.blocking_recv() {
            out.write_all(&chunk)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()
    });
    let want_sha1 = expect.git_sha1;
    let hasher = tokio::task::spawn_blocking(move || {
        let mut sha256 = sha2::Sha256::new();
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut size = 0u64;
        while let Some(chunk) = hrx.blocking_recv() {
            sha256.update(&chunk);
            size += chunk.len() as u64;
            if want_sha1 {
                chunks.push(chunk);
                // The git header needs the length first; for big inputs hash on the fly below.
                if size > GIT_SHA1_BUFFER {
                    return finish_streaming_sha1(sha256, chunks, size, hrx);
                }
            }
        }
        let git = want_sha1.then(|| {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {size}\0").as_bytes());
            chunks.iter().for_each(|c| h.update(c));
            hex::encode(h.finalize())
        });
        (hex::encode(sha256.finalize()), size, git)
    });

    let mut received = 0u64;
    let mut failure: Option<BlobError> = None;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) if chunk.is_empty() => {}
            Ok(chunk) => {
                received += chunk.len() as u64;
                if let Some(limit) = expect.max_size {
                    if received > limit {
                        failure = Some(BlobError::TooLarge { limit });
                        break;
                    }
                }
                if let Some(size) = expect.size {
                    if received > size {
                        failure = Some(BlobError::SizeMismatch {
                            expected: size,
                            actual: received,
                        });
                        break;
                    }
                }
                if htx.send(chunk.clone()).await.is_err() || wtx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failure = Some(BlobError::Interrupted(e));
                break;
            }
        }
    }
    drop(htx);
    drop(wtx);
    let write_result = writer.await.map_err(io::Error::other)?;
    let (sha, size, git_sha1) = hasher.await.map_err(io::Error::other)?;
    if let Some(f) = failure {
        return Err(f);
    }
    write_result?;
    if let Some(expected) = expect.size {
        if size != expected {
            return Err(BlobError::SizeMismatch {
                expected,
                actual: size,
            });
        }
    }
    let sha256 = Sha256(sha);
    if let Some(expected) = &expect.sha256 {
        if *expected != sha256 {
            return Err(BlobError::HashMismatch {
                expected: expected.clone(),
                actual: sha256,
            });
        }
    }
    Ok(Written {
        sha256,
        size,
        git_sha1,
    })
}

/// Inputs up to this size are buffered for the git SHA-1 (whose header needs the length);
/// past it the SHA-1 is dropped, as the Hub uses the SHA-256 for large (LFS) files.
const GIT_SHA1_BUFFER: u64 = 64 << 20;

fn finish_streaming_sha1(
    mut sha256: sha2::Sha256,
    chunks: Vec<Bytes>,
    mut size: u64,
    mut hrx: mpsc::Receiver<Bytes>,
) -> (String, u64, Option<String>) {
    drop(chunks);
    while let Some(chunk) = hrx.blocking_recv() {
        sha256.update(&chunk);
        size += chunk.len() as u64;
    }
    (hex::encode(sha256.finalize()), size, None)
}

/// Creates `dir` and its parents if missing.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}
