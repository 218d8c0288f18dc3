//! The S3 backend (AWS S3 or any S3-compatible server, through `object_store`):
//! `[PREFIX/]blobs/ab/cd/<sha256>`, published only after the content was verified.
//!
//! An upload is hashed (off the runtime) while its parts go to a multipart upload, and the
//! upload is completed only once size and hash match the writer's claims, so unverified bytes
//! never become an object. With the hash known up front the multipart upload targets the
//! blob's own key; otherwise a temporary key under `tmp/`, copied to the blob's key once the
//! hash is known. An upload smaller than one part is held in memory and written with a single
//! PUT after verification. Memory per upload is bounded by `PART * (PARTS_IN_FLIGHT + 1)`.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::sync::mpsc;

use crate::hash::{check_running, verify, Digests};
use crate::{BlobError, BlobStream, Expect, Sha256, Stored};

/// Size of one multipart part (S3 wants at least 5 MiB for every part but the last).
const PART: usize = 8 << 20;
/// Parts uploaded concurrently.
const PARTS_IN_FLIGHT: usize = 4;
/// Bytes handed to the hashing thread at a time.
const HASH_BATCH: usize = 1 << 20;
/// The largest object a single S3 CopyObject may copy; larger ones are copied by streaming.
const MAX_COPY: u64 = 5 << 30;
/// Temporary objects older than this are leftovers of crashed uploads, removed at start-up
/// (younger ones may belong to another replica's upload in progress).
const STALE_TMP: chrono::Duration = chrono::Duration::hours(24);

/// Blobs in an S3 bucket, optionally under a key prefix.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    store: Arc<AmazonS3>,
    /// `""` or `"some/prefix/"`.
    prefix: String,
}

/// Where the bytes of an upload go while it streams in.
enum Sink {
    /// Held in memory until a part is full (or the upload ends).
    Buffer(BytesMut),
    /// Parts of an upload that becomes an object only when completed.
    Multipart(Dest, WriteMultipart),
    /// Nowhere: the claimed blob exists already.
    Discard,
}

/// Which key a multipart upload writes.
enum Dest {
    /// The blob's own key (the hash was known up front).
    Final(Path),
    /// A temporary key, copied to the blob's key afterwards.
    Temp(Path),
}

impl S3Blobs {
    /// Opens `s3://BUCKET[/PREFIX]?endpoint=URL&region=R&...`. Query keys are `object_store`'s
    /// S3 options (`endpoint`, `region`, `access_key_id`, `secret_access_key`, `session_token`,
    /// `virtual_hosted_style_request`, ...) plus `allow_http` (implied by an `http://`
    /// endpoint); what the URL leaves out comes from the `AWS_*` environment variables.
    /// Checks that the bucket answers and removes temporary objects of crashed uploads.
    pub async fn open(spec: &str) -> Result<Self, BlobError> {
        let url = url::Url::parse(spec).map_err(|e| config_error(format!("{spec:?}: {e}")))?;
        if url.scheme() != "s3" {
            return Err(config_error(format!("{spec:?} is not an s3:// URL")));
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| config_error(format!("{spec:?} names no bucket")))?;
        let prefix = url.path().trim_matches('/');
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let mut allow_http = None;
        let mut http_endpoint = false;
        for (key, value) in url.query_pairs() {
            if key == "allow_http" {
                allow_http = Some(value == "true" || value == "1");
                continue;
            }
            let parsed: AmazonS3ConfigKey = key
                .parse()
                .map_err(|_| config_error(format!("unknown S3 option {key:?} in {spec:?}")))?;
            if matches!(parsed, AmazonS3ConfigKey::Endpoint) {
                http_endpoint = value.starts_with("http://");
            }
            builder = builder.with_config(parsed, value.into_owned());
        }
        let store = builder
            .with_allow_http(allow_http.unwrap_or(http_endpoint))
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        let this = Self {
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        };
        this.remove_stale_temporaries().await?;
        Ok(this)
    }

    fn key(&self, rel: &str) -> Path {
        Path::from(format!("{}{rel}", self.prefix))
    }

    fn key_of(&self, sha: &Sha256) -> Path {
        let s = sha.as_str();
        self.key(&format!("blobs/{}/{}/{s}", &s[..2], &s[2..4]))
    }

    /// A URL that downloads the blob without credentials until `expires_in` has passed
    /// (AWS SigV4 query signing).
    pub async fn presigned_get(
        &self,
        sha: &Sha256,
        expires_in: std::time::Duration,
    ) -> Result<String, BlobError> {
        use object_store::signer::Signer;
        let url = self
            .store
            .signed_url(
                object_store::signer::Method::GET,
                &self.key_of(sha),
                expires_in,
            )
            .await
            .map_err(io::Error::from)?;
        Ok(url.to_string())
    }

    fn tmp_prefix(&self) -> Path {
        self.key("tmp")
    }

    async fn remove_stale_temporaries(&self) -> Result<(), BlobError> {
        let cutoff = chrono::Utc::now() - STALE_TMP;
        let mut listing = self.store.list(Some(&self.tmp_prefix()));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(io::Error::from)?;
            if meta.last_modified < cutoff {
                tracing::info!(key = %meta.location, "removing the leftover of a crashed upload");
                self.store
                    .delete(&meta.location)
                    .await
                    .map_err(io::Error::from)?;
            }
        }
        Ok(())
    }

    /// How many temporary objects exist (for tests: a failed upload must leave none).
    #[cfg(test)]
    pub(crate) async fn temporaries(&self) -> usize {
        self.store.list(Some(&self.tmp_prefix())).count().await
    }

    pub(crate) async fn put<S>(&self, mut body: S, expect: Expect) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Unpin + Send,
    {
        let (to_hash, mut hash_rx) = mpsc::channel::<Vec<Bytes>>(2);
        let keep_for_git = expect.git_sha1;
        let hasher = tokio::task::spawn_blocking(move || {
            let mut digests = Digests::new(keep_for_git);
            while let Some(batch) = hash_rx.blocking_recv() {
                for b in &batch {
                    digests.update(b);
                }
            }
            digests.finish()
        });
        let mut feed = HashFeed {
            tx: to_hash,
            batch: Vec::new(),
            len: 0,
        };

        let mut received = 0u64;
        let mut sink = Sink::Buffer(BytesMut::new());
        let mut failure: Option<BlobError> = None;
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    failure = Some(BlobError::Interrupted(e));
                    break;
                }
            };
            received += chunk.len() as u64;
            if let Err(e) = check_running(&expect, received) {
                failure = Some(e);
                break;
            }
            feed.push(chunk.clone()).await;
            if let Err(e) = self.send(&mut sink, chunk, &expect).await {
                failure = Some(e);
                break;
            }
        }
        feed.flush().await;
        drop(feed);
        let (sha256, git_sha1) = hasher.await.map_err(io::Error::other)?;
        let verified = match failure {
            Some(f) => Err(f),
            None => verify(&expect, received, &sha256),
        };
        let created = match sink {
            // Small: nothing was sent yet; write it in one PUT once verified.
            Sink::Buffer(buf) => {
                verified?;
                let key = self.key_of(&sha256);
                let created = !self.exists(&key).await?;
                if created {
                    self.store
                        .put(&key, PutPayload::from(buf.freeze()))
                        .await
                        .map_err(io::Error::from)?;
                }
                created
            }
            Sink::Discard => {
                verified?;
                false
            }
            Sink::Multipart(dest, w) => {
                complete_if_verified(w, verified).await?;
                match dest {
                    Dest::Final(_) => true,
                    Dest::Temp(tmp) => {
                        let promoted = self.promote(&tmp, &self.key_of(&sha256), received).await;
                        if let Err(e) = self.store.delete(&tmp).await {
                            tracing::warn!(key = %tmp, error = %e, "could not remove a temporary object");
                        }
                        promoted?
                    }
                }
            }
        };
        Ok(Stored {
            sha256,
            size: received,
            git_sha1,
            created,
        })
    }

    /// Passes one chunk on: buffered until a part is full, then into a multipart upload (or
    /// nowhere, when the claimed blob exists already: it is only hashed, to verify the claim).
    async fn send(&self, sink: &mut Sink, chunk: Bytes, expect: &Expect) -> Result<(), BlobError> {
        match sink {
            Sink::Discard => Ok(()),
            Sink::Multipart(_, w) => {
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(io::Error::from)?;
                w.put(chunk);
                Ok(())
            }
            Sink::Buffer(buf) => {
                buf.extend_from_slice(&chunk);
                if buf.len() < PART {
                    return Ok(());
                }
                let first = std::mem::take(buf).freeze();
                let dest = match &expect.sha256 {
                    Some(sha) if self.exists(&self.key_of(sha)).await? => {
                        *sink = Sink::Discard;
                        return Ok(());
                    }
                    Some(sha) => Dest::Final(self.key_of(sha)),
                    None => {
                        Dest::Temp(self.key(&format!("tmp/{:016x}.part", rand::random::<u64>())))
                    }
                };
                let key = match &dest {
                    Dest::Final(k) | Dest::Temp(k) => k,
                };
                let upload = self
                    .store
                    .put_multipart(key)
                    .await
                    .map_err(io::Error::from)?;
                let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                w.put(first);
                *sink = Sink::Multipart(dest, w);
                Ok(())
            }
        }
    }

    /// Copies a verified temporary object to its blob key unless the blob exists; returns
    /// whether it was created.
    async fn promote(&self, tmp: &Path, key: &Path, size: u64) -> Result<bool, BlobError> {
        if self.exists(key).await? {
            return Ok(false);
        }
        if size <= MAX_COPY {
            self.store.copy(tmp, key).await.map_err(io::Error::from)?;
            return Ok(true);
        }
        // Too large for CopyObject: stream it back through a multipart upload.
        let mut w = WriteMultipart::new_with_chunk_size(
            self.store
                .put_multipart(key)
                .await
                .map_err(io::Error::from)?,
            PART,
        );
        let mut source = self
            .store
            .get(tmp)
            .await
            .map_err(io::Error::from)?
            .into_stream();
        while let Some(chunk) = source.next().await {
            let step = match chunk {
                Ok(c) => match w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    Ok(()) => {
                        w.put(c);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                let _ = w.abort().await;
                return Err(io::Error::from(e).into());
            }
        }
        w.finish().await.map_err(io::Error::from)?;
        Ok(true)
    }

    async fn exists(&self, key: &Path) -> Result<bool, BlobError> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io::Error::from(e).into()),
        }
    }

    pub(crate) async fn size(&self, sha: &Sha256) -> Result<Option<u64>, BlobError> {
        match self.store.head(&self.key_of(sha)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io::Error::from(e).into()),
        }
    }

    pub(crate) async fn get(
        &self,
        sha: &Sha256,
        range: Option<Range<u64>>,
    ) -> Result<BlobStream, BlobError> {
        let key = self.key_of(sha);
        let mut options = GetOptions::default();
        if let Some(range) = range {
            let size = self
                .size(sha)
                .await?
                .ok_or_else(|| BlobError::NotFound(sha.clone()))?;
            if range.start > range.end || range.end > size {
                return Err(BlobError::BadRange {
                    start: range.start,
                    end: range.end,
                    size,
                });
            }
            if range.start == range.end {
                return Ok(Box::pin(futures_util::stream::empty()));
            }
            options.range = Some(GetRange::Bounded(range));
        }
        let result = match self.store.get_opts(&key, options).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::NotFound(sha.clone()))
            }
            Err(e) => return Err(io::Error::from(e).into()),
        };
        Ok(Box::pin(
            result
                .into_stream()
                .map(|chunk| chunk.map_err(io::Error::from)),
        ))
    }

    pub(crate) async fn delete(&self, sha: &Sha256) -> Result<bool, BlobError> {
        let key = self.key_of(sha);
        if !self.exists(&key).await? {
            return Ok(false);
        }
        self.store.delete(&key).await.map_err(io::Error::from)?;
        Ok(true)
    }
}

/// Completes a multipart upload whose content passed verification; aborts it otherwise.
async fn complete_if_verified(
    mut w: WriteMultipart,
    verified: Result<(), BlobError>,
) -> Result<(), BlobError> {
    let ready = match verified {
        Ok(()) => w
            .wait_for_capacity(0)
            .await
            .map_err(|e| io::Error::from(e).into()),
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        if let Err(abort) = w.abort().await {
            tracing::warn!(error = %abort, "could not abort a multipart upload");
        }
        return Err(e);
    }
    w.finish().await.map_err(io::Error::from)?;
    Ok(())
}

/// Batches chunks (without copying) for the hashing thread.
struct HashFeed {
    tx: mpsc::Sender<Vec<Bytes>>,
    batch: Vec<Bytes>,
    len: usize,
}

impl HashFeed {
    async fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.batch.push(chunk);
        if self.len >= HASH_BATCH {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.len = 0;
            let _ = self.tx.send(std::mem::take(&mut self.batch)).await;
        }
    }
}

fn config_error(message: String) -> BlobError {
    BlobError::Io(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("S3 blob store: {message}"),
    ))
}
