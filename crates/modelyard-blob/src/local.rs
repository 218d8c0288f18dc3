//! The local-directory backend: `blobs/ab/cd/<sha256>`, written through `tmp/` and renamed.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::write::{ensure_dir, write_hashed};
use crate::{BlobError, BlobStream, Expect, Sha256, Stored};

/// Read-ahead chunk size for downloads: large chunks keep per-chunk overhead small.
const READ_CHUNK: usize = 1 << 20;

/// Blobs in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Opens (creating if needed) a blob directory and removes writes a crash left unfinished.
    pub async fn open(root: PathBuf) -> Result<Self, BlobError> {
        let this = Self { root };
        let tmp = this.tmp_dir();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)?;
            }
            ensure_dir(&tmp)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(this)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// How many unfinished writes lie in `tmp/`.
    #[cfg(test)]
    pub(crate) fn temporaries(&self) -> usize {
        std::fs::read_dir(self.tmp_dir()).map_or(0, |d| d.count())
    }

    fn path_of(&self, sha: &Sha256) -> PathBuf {
        let s = sha.as_str();
        self.root.join("blobs").join(&s[..2]).join(&s[2..4]).join(s)
    }

    pub(crate) async fn put<S>(&self, body: S, expect: Expect) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin + Send,
    {
        let tmp_path = self
            .tmp_dir()
            .join(format!("{:016x}.part", rand::random::<u64>()));
        std::fs::File::create(&tmp_path)?;
        let guard = RemoveOnDrop(Some(tmp_path.clone()));
        let written = write_hashed(body, &tmp_path, &expect).await?;
        let dest = self.path_of(&written.sha256);
        let created = tokio::task::spawn_blocking(move || -> io::Result<bool> {
            if dest.exists() {
                return Ok(false);
            }
            ensure_dir(dest.parent().expect("blob paths have a parent"))?;
            std::fs::rename(&tmp_path, &dest)?;
            Ok(true)
        })
        .await
        .map_err(io::Error::other)??;
        if created {
            guard.disarm();
        }
        Ok(Stored {
            sha256: written.sha256,
            size: written.size,
            git_sha1: written.git_sha1,
            created,
        })
    }

    pub(crate) async fn size(&self, sha: &Sha256) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.path_of(sha)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn get(
        &self,
        sha: &Sha256,
        range: Option<Range<u64>>,
    ) -> Result<BlobStream, BlobError> {
        let path = self.path_of(sha);
        let sha = sha.clone();
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let mut file = tokio::task::spawn_blocking(move || open_existing(&path, sha))
            .await
            .map_err(io::Error::other)??;
        let size = file.metadata()?.len();
        let range = range.unwrap_or(0..size);
        if range.start > range.end || range.end > size {
            return Err(BlobError::BadRange {
                start: range.start,
                end: range.end,
                size,
            });
        }
        tokio::task::spawn_blocking(move || {
            if let Err(e) = file.seek(SeekFrom::Start(range.start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            let mut left = range.end - range.start;
            while left > 0 {
                let want = left.min(READ_CHUNK as u64) as usize;
                // read_to_end fills spare capacity without zeroing it first.
                let mut buf = Vec::with_capacity(want);
                match (&mut file).take(want as u64).read_to_end(&mut buf) {
                    Ok(n) if n == want => {}
                    Ok(n) => {
                        let e = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("blob ended {} bytes early", want - n),
                        );
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
                left -= want as u64;
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    return; // the reader went away
                }
            }
        });
        Ok(Box::pin(tokio_stream_from(rx)))
    }

    pub(crate) async fn delete(&self, sha: &Sha256) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.path_of(sha)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

fn open_existing(path: &Path, sha: Sha256) -> Result<std::fs::File, BlobError> {
    std::fs::File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => BlobError::NotFound(sha),
        _ => e.into(),
    })
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Deletes a temporary file unless the write succeeded and moved it.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}
