//! The verified write pipeline: bytes are hashed as they arrive and written by another thread.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::hash::{check_running, verify, Digests};
use crate::{BlobError, Expect, Sha256};

/// Size of the buffers handed to the writing thread; full buffers are written with O_DIRECT.
const BATCH: usize = 2 << 20;
/// Alignment O_DIRECT needs for buffer addresses, sizes and file offsets.
const ALIGN: usize = 4096;
/// Buffers in flight between the network side and the writer.
const DEPTH: usize = 2;

/// A `BATCH`-byte buffer whose start is `ALIGN`-aligned, carved out of a slightly larger Vec
/// (so no unsafe allocation is needed). Buffers are recycled, so a transfer of any size
/// allocates `DEPTH + 1` of them.
struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn new() -> Self {
        let raw = vec![0u8; BATCH + ALIGN];
        let off = (ALIGN - raw.as_ptr() as usize % ALIGN) % ALIGN;
        Self { raw, off, len: 0 }
    }
    fn spare(&self) -> usize {
        BATCH - self.len
    }
    fn push(&mut self, data: &[u8]) {
        let start = self.off + self.len;
        self.raw[start..start + data.len()].copy_from_slice(data);
        self.len += data.len();
    }
    fn data(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }
}

/// Writes full buffers with O_DIRECT where the file system allows it (no page-cache copy,
/// data on the device when the call returns) and the final partial buffer through the page
/// cache; then syncs.
fn writer(
    path: &Path,
    mut rx: mpsc::Receiver<AlignedBuf>,
    recycle: std::sync::mpsc::Sender<AlignedBuf>,
) -> io::Result<()> {
    let mut direct = open_direct(path);
    let mut buffered: Option<File> = None;
    while let Some(buf) = rx.blocking_recv() {
        match (&mut direct, buf.len == BATCH) {
            (Some(f), true) => f.write_all(buf.data())?,
            _ => {
                direct = None;
                if buffered.is_none() {
                    buffered = Some(std::fs::OpenOptions::new().append(true).open(path)?);
                }
                buffered
                    .as_mut()
                    .expect("opened above")
                    .write_all(buf.data())?;
            }
        }
        let _ = recycle.send(AlignedBuf { len: 0, ..buf });
    }
    match (buffered, direct) {
        (Some(f), _) | (None, Some(f)) => f.sync_data(),
        (None, None) => File::open(path)?.sync_data(),
    }
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// Hashes and sizes of what was written.
pub(crate) struct Written {
    pub sha256: Sha256,
    pub size: u64,
    pub git_sha1: Option<String>,
}

/// Streams `body` into the file at `path` through a three-stage pipeline: this task copies
/// network chunks into large aligned buffers (checking the limits in `expect` as bytes
/// arrive), a hashing thread hashes each buffer, and a writing thread writes it. The file is
/// synced before returning, so a later rename publishes complete content.
pub(crate) async fn write_hashed<S>(
    mut body: S,
    path: &Path,
    expect: &Expect,
) -> Result<Written, BlobError>
where
    S: Stream<Item = Result<Bytes, io::Error>> + Unpin + Send,
{
    let (to_hash, hash_rx) = mpsc::channel::<AlignedBuf>(DEPTH);
    let (to_write, write_rx) = mpsc::channel::<AlignedBuf>(DEPTH);
    let (recycle_tx, recycle) = std::sync::mpsc::channel::<AlignedBuf>();
    let writer_path = path.to_owned();
    let writer = tokio::task::spawn_blocking(move || writer(&writer_path, write_rx, recycle_tx));
    let keep_for_git = expect.git_sha1;
    let hasher = tokio::task::spawn_blocking(move || hasher(hash_rx, to_write, keep_for_git));

    let mut received = 0u64;
    let mut failure: Option<BlobError> = None;
    let mut pending = AlignedBuf::new();
    'receive: loop {
        let chunk = match body.next().await {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                failure = Some(BlobError::Interrupted(e));
                break;
            }
        };
        received += chunk.len() as u64;
        if let Err(e) = check_running(expect, received) {
            failure = Some(e);
            break;
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let n = rest.len().min(pending.spare());
            pending.push(&rest[..n]);
            rest = &rest[n..];
            if pending.spare() == 0 {
                let next = recycle.try_recv().unwrap_or_else(|_| AlignedBuf::new());
                if to_hash
                    .send(std::mem::replace(&mut pending, next))
                    .await
                    .is_err()
                {
                    break 'receive; // a worker failed; its error is reported below
                }
            }
        }
    }
    if failure.is_none() && pending.len > 0 {
        let _ = to_hash.send(pending).await;
    }
    drop(to_hash);
    let (sha256, git_sha1) = hasher.await.map_err(io::Error::other)?;
    let write_result = writer.await.map_err(io::Error::other)?;
    if let Some(f) = failure {
        return Err(f);
    }
    write_result?;
    verify(expect, received, &sha256)?;
    Ok(Written {
        sha256,
        size: received,
        git_sha1,
    })
}

/// Hashes each buffer and passes it on to the writer; returns the SHA-256 and, for inputs
/// small enough to keep, the git blob SHA-1.
fn hasher(
    mut rx: mpsc::Receiver<AlignedBuf>,
    to_write: mpsc::Sender<AlignedBuf>,
    keep_for_git: bool,
) -> (Sha256, Option<String>) {
    let mut digests = Digests::new(keep_for_git);
    while let Some(buf) = rx.blocking_recv() {
        digests.update(buf.data());
        if to_write.blocking_send(buf).is_err() {
            break; // the writer failed; the caller reports its error
        }
    }
    digests.finish()
}

/// Creates `dir` and its parents if missing.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}
