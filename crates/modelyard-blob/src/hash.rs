//! The digests every backend computes while a blob streams in: SHA-256 and the git blob SHA-1.

use sha1::Digest as _;

use crate::{BlobError, Expect, Sha256};

/// Inputs up to this size are kept for the git SHA-1 (whose header needs the length first);
/// past it the SHA-1 is dropped, as the Hub uses the SHA-256 for large (LFS) files.
const GIT_SHA1_BUFFER: usize = 64 << 20;

/// Running digests of one upload; fed off the async runtime (hashing is CPU-bound).
pub(crate) struct Digests {
    sha256: sha2::Sha256,
    kept: Option<Vec<u8>>,
}

impl Digests {
    pub(crate) fn new(keep_for_git: bool) -> Self {
        Self {
            sha256: sha2::Sha256::new(),
            kept: keep_for_git.then(Vec::new),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        if let Some(k) = &mut self.kept {
            if k.len() + data.len() > GIT_SHA1_BUFFER {
                self.kept = None;
            } else {
                k.extend_from_slice(data);
            }
        }
    }

    /// The SHA-256 and, for inputs small enough to keep, the git blob SHA-1.
    pub(crate) fn finish(self) -> (Sha256, Option<String>) {
        let git_sha1 = self.kept.map(|k| {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {}\0", k.len()).as_bytes());
            h.update(&k);
            hex::encode(h.finalize())
        });
        (Sha256(hex::encode(self.sha256.finalize())), git_sha1)
    }
}

/// Checks the final size and hash of an upload against what its writer claimed.
pub(crate) fn verify(expect: &Expect, size: u64, sha256: &Sha256) -> Result<(), BlobError> {
    if let Some(expected) = expect.size.filter(|s| *s != size) {
        return Err(BlobError::SizeMismatch {
            expected,
            actual: size,
        });
    }
    if let Some(expected) = expect.sha256.as_ref().filter(|e| *e != sha256) {
        return Err(BlobError::HashMismatch {
            expected: expected.clone(),
            actual: sha256.clone(),
        });
    }
    Ok(())
}

/// Checks the limits of `expect` once `received` bytes have arrived (before the end).
pub(crate) fn check_running(expect: &Expect, received: u64) -> Result<(), BlobError> {
    if let Some(limit) = expect.max_size.filter(|l| received > *l) {
        return Err(BlobError::TooLarge { limit });
    }
    if let Some(size) = expect.size.filter(|s| received > *s) {
        return Err(BlobError::SizeMismatch {
            expected: size,
            actual: received,
        });
    }
    Ok(())
}
