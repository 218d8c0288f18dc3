//! Content-addressed blob storage keyed by SHA-256: verified streaming writes, ranged reads.
//!
//! A blob becomes visible under its hash only after the bytes were hashed and checked; a write
//! that is cut off or does not match what the caller expected leaves nothing behind.

mod hash;
mod local;
mod s3;
mod write;

use std::io;
use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::Stream;

pub use local::LocalBlobs;
pub use s3::S3Blobs;

/// A SHA-256 content hash, as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(s: &str) -> Result<Self, BlobError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(BlobError::BadHash(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer of a blob claims about it; every claim is checked before the blob lands.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub sha256: Option<Sha256>,
    pub size: Option<u64>,
    /// Refuse writes longer than this many bytes (checked while streaming).
    pub max_size: Option<u64>,
    /// Also compute the git blob SHA-1 (the Hub's ETag of small, non-LFS files).
    pub git_sha1: bool,
}

/// A blob that was written and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: Sha256,
    pub size: u64,
    pub git_sha1: Option<String>,
    /// False when the same content was already stored (the new copy was dropped).
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0:?} is not a SHA-256 hash (64 lowercase hex digits)")]
    BadHash(String),
    #[error("content hashes to {actual}, not the expected {expected}")]
    HashMismatch { expected: Sha256, actual: Sha256 },
    #[error("content is {actual} bytes, not the expected {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("content is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("blob {0} not found")]
    NotFound(Sha256),
    #[error("range {start}..{end} is outside a blob of {size} bytes")]
    BadRange { start: u64, end: u64, size: u64 },
    #[error("upload was interrupted: {0}")]
    Interrupted(io::Error),
    #[error("blob storage: {0}")]
    Io(#[from] io::Error),
}

/// The configured blob backend. An enum rather than a trait object: every backend passes the
/// same test suite through these methods.
#[derive(Debug, Clone)]
pub enum BlobStore {
    Local(LocalBlobs),
    S3(S3Blobs),
}

impl BlobStore {
    pub async fn open_local(root: PathBuf) -> Result<Self, BlobError> {
        Ok(Self::Local(LocalBlobs::open(root).await?))
    }

    /// Opens the store a configuration names: `s3://BUCKET[/PREFIX]?endpoint=...&region=...`
    /// (see [`S3Blobs::open`]), or a local directory as `file:///PATH` or a plain path.
    pub async fn open(spec: &str) -> Result<Self, BlobError> {
        if spec.starts_with("s3://") {
            Ok(Self::S3(S3Blobs::open(spec).await?))
        } else {
            let path = spec.strip_prefix("file://").unwrap_or(spec);
            Self::open_local(PathBuf::from(path)).await
        }
    }

    /// Streams `body` into storage, hashing it on the way, and makes it visible under its
    /// SHA-256 only if it matches `expect`.
    pub async fn put<S>(&self, body: S, expect: Expect) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin + Send,
    {
        match self {
            BlobStore::Local(l) => l.put(body, expect).await,
            BlobStore::S3(s) => s.put(body, expect).await,
        }
    }

    /// Size of a stored blob, or `None`.
    pub async fn size(&self, sha: &Sha256) -> Result<Option<u64>, BlobError> {
        match self {
            BlobStore::Local(l) => l.size(sha).await,
            BlobStore::S3(s) => s.size(sha).await,
        }
    }

    /// Streams `range` (or all) of a blob, read ahead in large chunks off the async runtime.
    pub async fn get(
        &self,
        sha: &Sha256,
        range: Option<Range<u64>>,
    ) -> Result<BlobStream, BlobError> {
        match self {
            BlobStore::Local(l) => l.get(sha, range).await,
            BlobStore::S3(s) => s.get(sha, range).await,
        }
    }

    /// A URL from which a client downloads the blob straight from the object store, without
    /// credentials, until `expires_in` has passed; `None` for a local directory.
    pub async fn presigned_get(
        &self,
        sha: &Sha256,
        expires_in: std::time::Duration,
    ) -> Result<Option<String>, BlobError> {
        match self {
            BlobStore::Local(_) => Ok(None),
            BlobStore::S3(s) => s.presigned_get(sha, expires_in).await.map(Some),
        }
    }

    pub async fn delete(&self, sha: &Sha256) -> Result<bool, BlobError> {
        match self {
            BlobStore::Local(l) => l.delete(sha).await,
            BlobStore::S3(s) => s.delete(sha).await,
        }
    }
}

impl BlobStore {
    /// Temporary files or objects that exist now (a failed upload must leave none).
    #[cfg(test)]
    pub(crate) async fn temporaries(&self) -> usize {
        match self {
            BlobStore::Local(l) => l.temporaries(),
            BlobStore::S3(s) => s.temporaries().await,
        }
    }
}

/// A stream of blob bytes.
pub type BlobStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

#[cfg(test)]
mod tests;
