//! Server configuration: typed, built once at start-up, documented field by field.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `serve` needs; the CLI builds it from flags, environment and a config file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub bind: SocketAddr,
    /// Holds the SQLite database (`modelyard.db`), blobs (`blobs/`) and the server secret.
    pub data_dir: PathBuf,
    /// Overrides the database location (`sqlite://PATH` or `postgres://...`); default is
    /// SQLite inside `data_dir`. Several replicas share one PostgreSQL database.
    pub database_url: Option<String>,
    /// Where blobs live: `s3://BUCKET[/PREFIX]?endpoint=URL&region=R` (an S3-compatible
    /// store, shared by replicas; credentials from the URL or the `AWS_*` variables) or a
    /// local directory (`file:///PATH` or a plain path); default is `data_dir/blobs`.
    pub blob_store: Option<String>,
    /// The base URL clients use (e.g. as `HF_ENDPOINT`); default: taken from each request's
    /// `Host` header. URLs the server hands out (repo URLs, upload links, pagination) use it.
    pub public_url: Option<String>,
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// A worker silent this long is lost; its jobs go back to the queue.
    pub node_lease: std::time::Duration,
    /// Serve metadata reads and token checks from the replica's memory (see `read_cache`):
    /// other replicas' writes show within about a second. Off, every request asks the database.
    pub read_cache: bool,
    /// Answer downloads of LFS files stored in S3 with a redirect to a pre-signed URL, so the
    /// bytes flow from the object store, not through the replica. No effect on local blobs.
    pub download_redirect: bool,
}

impl ServerConfig {
    pub fn new(bind: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            bind,
            data_dir,
            database_url: None,
            blob_store: None,
            public_url: None,
            max_file_bytes: 1 << 40,
            node_lease: std::time::Duration::from_secs(15),
            read_cache: true,
            download_redirect: false,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("modelyard.db").display()))
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    /// The blob store to open: the configured one, else the directory in `data_dir`.
    pub fn blob_store(&self) -> String {
        self.blob_store
            .clone()
            .unwrap_or_else(|| self.blob_dir().display().to_string())
    }
}
