//! The content-addressed input cache: `cache_dir/blobs/<sha256>`, verified on download,
//! fetched once however many jobs ask at the same time, evicted least-recently-used.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;
use modelyard_core::protocol::CacheItem;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::client::{ClientError, MasterClient};

/// Why a blob could not be put in the cache.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not a SHA-256 (64 lowercase hex digits)")]
    BadHash(String),
    #[error("downloading blob {sha256}: {source}")]
    Download {
        sha256: String,
        #[source]
        source: ClientError,
    },
    #[error("downloading blob {sha256}: the connection broke: {source}")]
    Stream {
        sha256: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("blob {expected} failed verification: got {got_size} bytes hashing to {got}, expected {size} bytes")]
    Mismatch {
        expected: String,
        size: u64,
        got: String,
        got_size: u64,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl FetchError {
    /// Whether a later try may succeed (network trouble or a master restart).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Download { source, .. } => source.is_transient(),
            FetchError::Stream { .. } | FetchError::Mismatch { .. } => true,
            FetchError::BadHash(_) | FetchError::Io { .. } => false,
        }
    }
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> FetchError {
    let context = context.into();
    move |source| FetchError::Io { context, source }
}

#[derive(Debug)]
struct Entry {
    size: u64,
    /// Logical clock of the last use; smaller is older.
    last_used: u64,
    /// Running jobs using this blob; a pinned blob is never evicted.
    pins: u32,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    clock: u64,
    total: u64,
}

/// The cache. Share it behind an `Arc`.
#[derive(Debug)]
pub struct BlobCache {
    blobs: PathBuf,
    tmp: PathBuf,
    capacity: u64,
    state: Arc<Mutex<State>>,
    /// One async lock per hash being fetched, so a blob is downloaded once.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A blob held for a running job: it cannot be evicted until this is dropped.
#[derive(Debug)]
pub struct Pinned {
    state: Arc<Mutex<State>>,
    blobs: PathBuf,
    capacity: u64,
    sha256: String,
    path: PathBuf,
}

impl Pinned {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if let Some(e) = st.entries.get_mut(&self.sha256) {
            e.pins = e.pins.saturating_sub(1);
        }
        // A blob larger than what was free may have pushed the cache over its size.
        evict(&mut st, &self.blobs, self.capacity, 0);
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Removes unpinned blobs, oldest first, until `need` more bytes fit in `capacity`.
/// Pinned blobs stay even when that leaves the cache over its size.
fn evict(st: &mut State, blobs: &Path, capacity: u64, need: u64) {
    while st.total + need > capacity {
        let victim = st
            .entries
            .iter()
            .filter(|(_, e)| e.pins == 0)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| k.clone());
        let Some(sha) = victim else {
            tracing::warn!(
                cache.bytes = st.total,
                cache.capacity = capacity,
                "cache over its size; every remaining blob is in use"
            );
            return;
        };
        let entry = st.entries.remove(&sha).expect("victim exists");
        st.total -= entry.size;
        if let Err(e) = std::fs::remove_file(blobs.join(&sha)) {
            tracing::warn!(blob.sha256 = %sha, error = %e, "cannot remove evicted blob");
        }
        tracing::debug!(blob.sha256 = %sha, blob.size = entry.size, "evicted blob");
    }
}

impl BlobCache {
    /// Opens (creating) the cache under `dir`, indexing the blobs already there (oldest
    /// modification first) and removing leftovers of interrupted downloads.
    pub fn open(dir: &Path, capacity: u64) -> Result<Self, FetchError> {
        let blobs = dir.join("blobs");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&blobs).map_err(io_err(format!("creating {}", blobs.display())))?;
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_err(format!("clearing {}", tmp.display())))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;

        let mut found = Vec::new();
        let read =
            std::fs::read_dir(&blobs).map_err(io_err(format!("reading {}", blobs.display())))?;
        for item in read {
            let item = item.map_err(io_err(format!("reading {}", blobs.display())))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Ok(meta) = item.metadata() else { continue };
            if !is_sha256(&name) || !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, name, meta.len()));
        }
        found.sort();
        let mut st = State::default();
        for (_, sha, size) in found {
            st.clock += 1;
            st.total += size;
            let entry = Entry {
                size,
                last_used: st.clock,
                pins: 0,
            };
            st.entries.insert(sha, entry);
        }
        evict(&mut st, &blobs, capacity, 0);
        tracing::info!(
            cache.blobs = st.entries.len(),
            cache.bytes = st.total,
            "opened input cache"
        );
        Ok(Self {
            blobs,
            tmp,
            capacity,
            state: Arc::new(Mutex::new(st)),
            fetching: Mutex::new(HashMap::new()),
        })
    }

    /// What the cache holds, for the heartbeat.
    pub fn inventory(&self) -> Vec<CacheItem> {
        let st = lock(&self.state);
        let mut items: Vec<CacheItem> = st
            .entries
            .iter()
            .map(|(sha, e)| CacheItem {
                sha256: sha.clone(),
                size: e.size,
            })
            .collect();
        items.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        items
    }

    /// Returns the blob pinned, downloading and verifying it first if it is not cached.
    pub async fn fetch(
        &self,
        client: &MasterClient,
        sha256: &str,
        size: u64,
    ) -> Result<Pinned, FetchError> {
        if !is_sha256(sha256) {
            return Err(FetchError::BadHash(sha256.to_owned()));
        }
        let gate = {
            let mut map = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(sha256.to_owned()).or_default().clone()
        };
        let result = {
            let _held = gate.lock().await;
            match self.pin(sha256) {
                Some(p) => Ok(p),
                None => self.download(client, sha256, size).await,
            }
        };
        {
            let mut map = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
            // Only the map and our clone left: nobody else waits on this hash.
            if Arc::strong_count(&gate) == 2 {
                map.remove(sha256);
            }
        }
        result
    }

    fn pin(&self, sha256: &str) -> Option<Pinned> {
        let mut st = lock(&self.state);
        st.clock += 1;
        let now = st.clock;
        let e = st.entries.get_mut(sha256)?;
        e.pins += 1;
        e.last_used = now;
        let path = self.blobs.join(sha256);
        // Keeps the order across restarts; a failure only costs LRU accuracy.
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(self.pinned(sha256, path))
    }

    fn pinned(&self, sha256: &str, path: PathBuf) -> Pinned {
        Pinned {
            state: self.state.clone(),
            blobs: self.blobs.clone(),
            capacity: self.capacity,
            sha256: sha256.to_owned(),
            path,
        }
    }

    async fn download(
        &self,
        client: &MasterClient,
        sha256: &str,
        size: u64,
    ) -> Result<Pinned, FetchError> {
        evict(&mut lock(&self.state), &self.blobs, self.capacity, size);
        let tmp = self
            .tmp
            .join(format!("{sha256}.{:016x}", rand::random::<u64>()));
        let result = self.download_to(client, sha256, size, &tmp).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        let path = self.blobs.join(sha256);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(io_err(format!("moving blob into {}", path.display())))?;
        let mut st = lock(&self.state);
        st.clock += 1;
        let entry = Entry {
            size,
            last_used: st.clock,
            pins: 1,
        };
        st.total += size;
        st.entries.insert(sha256.to_owned(), entry);
        evict(&mut st, &self.blobs, self.capacity, 0);
        tracing::info!(blob.sha256 = %sha256, blob.size = size, "cached blob");
        Ok(self.pinned(sha256, path))
    }

    async fn download_to(
        &self,
        client: &MasterClient,
        sha256: &str,
        size: u64,
        tmp: &Path,
    ) -> Result<(), FetchError> {
        let download = |source| FetchError::Download {
            sha256: sha256.to_owned(),
            source,
        };
        let resp = client.blob(sha256).await.map_err(download)?;
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut hasher = Sha256::new();
        let mut got_size = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| FetchError::Stream {
                sha256: sha256.to_owned(),
                source,
            })?;
            got_size += chunk.len() as u64;
            if got_size > size {
                break;
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(io_err(format!("writing {}", tmp.display())))?;
        }
        let got = hex::encode(hasher.finalize());
        if got_size != size || got != sha256 {
            return Err(FetchError::Mismatch {
                expected: sha256.to_owned(),
                size,
                got,
                got_size,
            });
        }
        file.sync_all()
            .await
            .map_err(io_err(format!("syncing {}", tmp.display())))?;
        drop(file);
        set_read_only(tmp)
            .await
            .map_err(io_err(format!("making {} read-only", tmp.display())))?;
        Ok(())
    }
}

/// `chmod a-w` (mode 0444).
pub async fn set_read_only(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).await
}

#[cfg(test)]
mod tests;
