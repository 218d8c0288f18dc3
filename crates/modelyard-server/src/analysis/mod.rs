//! Model structure analysis in the hub: which files are analysed, a background queue (once per
//! content hash), the analysis and structure-compare endpoints, and the model page's panel.

pub mod api;
mod queue;

pub use api::{compare_structure, file_analyses, human_count, panel};
pub use queue::{after_commit, start, Queue};

use modelyard_store::TreeEntry;
use sha2::Digest;

/// Files waiting for analysis; past this, new work is dropped until the next restart scan.
const QUEUE_DEPTH: usize = 1024;

/// What the analyzer looks at: one model file, or a sharded safetensors index with its shards.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: String,
    /// SHA-256 of the file at `path`.
    pub sha256: String,
    /// What the analysis is stored under: the file's SHA-256, or for an index a hash over the
    /// index and the safetensors files beside it (their names and contents decide the result).
    pub key: String,
    pub size: i64,
    /// For an index: `(path relative to the index's folder, sha256)` of candidate shards.
    pub shards: Option<Vec<(String, String)>>,
}

fn is_index(path: &str) -> bool {
    path.to_ascii_lowercase()
        .ends_with(".safetensors.index.json")
}

/// Whether the analyzer handles a file of this name.
pub fn analysable(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    is_index(&lower)
        || [
            ".onnx",
            ".safetensors",
            ".bin",
            ".pt",
            ".pth",
            ".ckpt",
            ".pkl",
        ]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// The analysable files of a commit's tree, sorted by path.
pub fn targets(tree: &[TreeEntry]) -> Vec<Target> {
    tree.iter()
        .filter(|e| analysable(&e.path))
        .map(|e| {
            if !is_index(&e.path) {
                return Target {
                    path: e.path.clone(),
                    sha256: e.sha256.clone(),
                    key: e.sha256.clone(),
                    size: e.size,
                    shards: None,
                };
            }
            let folder = e.path.rsplit_once('/').map(|(f, _)| format!("{f}/"));
            let folder = folder.unwrap_or_default();
            let shards: Vec<(String, String)> = tree
                .iter()
                .filter(|s| s.path.starts_with(&folder) && s.path.ends_with(".safetensors"))
                .map(|s| (s.path[folder.len()..].to_owned(), s.sha256.clone()))
                .collect();
            let mut h = sha2::Sha256::new();
            h.update(b"safetensors-index\0");
            h.update(e.sha256.as_bytes());
            for (p, s) in &shards {
                h.update([0]);
                h.update(p.as_bytes());
                h.update([0]);
                h.update(s.as_bytes());
            }
            Target {
                path: e.path.clone(),
                sha256: e.sha256.clone(),
                key: hex::encode(h.finalize()),
                size: e.size,
                shards: Some(shards),
            }
        })
        .collect()
}
