//! The blob test suite; every backend must pass it.

use std::io;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use sha2::Digest;

use crate::{BlobError, BlobStore, Expect, Sha256};

fn chunks(data: &[u8], size: usize) -> Vec<Result<Bytes, io::Error>> {
    data.chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect()
}

fn sha(data: &[u8]) -> Sha256 {
    Sha256::parse(&hex::encode(sha2::Sha256::digest(data))).unwrap()
}

async fn read_all(store: &BlobStore, s: &Sha256, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut st = store.get(s, range).await.unwrap();
    while let Some(c) = st.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// The variable naming the test S3 server: `s3://BUCKET?endpoint=...&region=...&...`
/// (`scripts/services` starts moto and sets it). Each test works under its own key prefix.
const S3_ENV: &str = "MODELYARD_TEST_S3";

async fn local() -> (Option<tempfile::TempDir>, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_local(dir.path().to_path_buf())
        .await
        .unwrap();
    (Some(dir), store)
}

/// A store under a fresh prefix of the test bucket; `None` (after a notice) when no server is
/// configured, except under `CI=true`, where that is a failure.
async fn s3(test: &str) -> Option<(Option<tempfile::TempDir>, BlobStore)> {
    let spec = match std::env::var(S3_ENV) {
        Ok(s) if !s.is_empty() => s,
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
            "{S3_ENV} is not set but CI=true: the S3 tests must run in CI \
             (scripts/services starts a throwaway server)"
        ),
        _ => {
            eprintln!("skipping {test} on S3: set {S3_ENV}=s3://BUCKET?endpoint=... to run it");
            return None;
        }
    };
    let (base, query) = spec.split_once('?').unwrap_or((&spec, ""));
    let prefix = format!("{test}-{:016x}", rand::random::<u64>());
    let spec = format!("{}/{prefix}?{query}", base.trim_end_matches('/'));
    Some((None, BlobStore::open(&spec).await.unwrap()))
}

/// Runs each listed test of the suite on every backend: `local::NAME` and `s3::NAME`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::local().await).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(fixture) = super::s3(stringify!($name)).await {
                        super::$name(fixture).await;
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    round_trip_and_ranges,
    large_blobs_stream_in_parts,
    mismatching_hash_leaves_nothing,
    interrupted_or_oversized_uploads_leave_nothing,
    missing_blobs_and_bad_ranges,
);

type Fixture = (Option<tempfile::TempDir>, BlobStore);

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

async fn round_trip_and_ranges((_d, store): Fixture) {
    let data = sample(3_000_017);
    let stored = store
        .put(
            stream::iter(chunks(&data, 65_536)),
            Expect {
                git_sha1: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.sha256, sha(&data));
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(
        stored.git_sha1.unwrap(),
        modelyard_core::hash::git_blob_sha1(&data)
    );
    assert!(stored.created);
    assert_eq!(read_all(&store, &stored.sha256, None).await, data);
    assert_eq!(
        read_all(&store, &stored.sha256, Some(10..2_000_000)).await,
        &data[10..2_000_000]
    );
    assert_eq!(
        store.size(&stored.sha256).await.unwrap(),
        Some(data.len() as u64)
    );
    let again = store
        .put(stream::iter(chunks(&data, 999)), Expect::default())
        .await
        .unwrap();
    assert!(!again.created);
}

async fn mismatching_hash_leaves_nothing((_d, store): Fixture) {
    let data = sample(10_000);
    let wrong = sha(b"something else");
    let err = store
        .put(
            stream::iter(chunks(&data, 1000)),
            Expect {
                sha256: Some(wrong),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
    assert_eq!(store.size(&sha(&data)).await.unwrap(), None);
    assert_eq!(store.temporaries().await, 0);
}

async fn interrupted_or_oversized_uploads_leave_nothing((_d, store): Fixture) {
    let data = sample(10_000);
    let mut items = chunks(&data, 1000);
    items.push(Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "client went away",
    )));
    let err = store
        .put(stream::iter(items), Expect::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Interrupted(_)), "{err}");
    let err = store
        .put(
            stream::iter(chunks(&data, 1000)),
            Expect {
                max_size: Some(5000),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { .. }), "{err}");
    let err = store
        .put(
            stream::iter(chunks(&data, 1000)),
            Expect {
                size: Some(9999),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::SizeMismatch { .. }), "{err}");
    assert_eq!(store.size(&sha(&data)).await.unwrap(), None);
    assert_eq!(store.temporaries().await, 0);
    // The next upload of the same content succeeds.
    let ok = store
        .put(stream::iter(chunks(&data, 1000)), Expect::default())
        .await
        .unwrap();
    assert_eq!(read_all(&store, &ok.sha256, None).await, data);
}

async fn missing_blobs_and_bad_ranges((_d, store): Fixture) {
    let s = sha(b"absent");
    assert!(matches!(
        store.get(&s, None).await,
        Err(BlobError::NotFound(_))
    ));
    let data = sample(100);
    let stored = store
        .put(stream::iter(chunks(&data, 10)), Expect::default())
        .await
        .unwrap();
    assert!(matches!(
        store.get(&stored.sha256, Some(50..101)).await,
        Err(BlobError::BadRange { .. })
    ));
    assert!(store.delete(&stored.sha256).await.unwrap());
    assert!(!store.delete(&stored.sha256).await.unwrap());
}

/// Blobs larger than an S3 part, with and without a claimed hash; a mismatch after several
/// parts leaves nothing behind.
async fn large_blobs_stream_in_parts((_d, store): Fixture) {
    let data = sample(20_000_003);
    let unclaimed = store
        .put(stream::iter(chunks(&data, 1 << 20)), Expect::default())
        .await
        .unwrap();
    assert_eq!(unclaimed.sha256, sha(&data));
    assert!(unclaimed.created);
    let mut other = data.clone();
    other[0] ^= 1;
    let claimed = store
        .put(
            stream::iter(chunks(&other, 100_000)),
            Expect {
                sha256: Some(sha(&other)),
                size: Some(other.len() as u64),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(claimed.created);
    assert_eq!(read_all(&store, &unclaimed.sha256, None).await, data);
    let cut = 8_388_000..16_777_300;
    assert_eq!(
        read_all(&store, &claimed.sha256, Some(cut.clone())).await,
        &other[cut.start as usize..cut.end as usize]
    );
    // The same content again, claimed: verified, not stored twice.
    let again = store
        .put(
            stream::iter(chunks(&data, 1 << 20)),
            Expect {
                sha256: Some(sha(&data)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!again.created);
    let mut third = data.clone();
    third[1] ^= 1;
    let err = store
        .put(
            stream::iter(chunks(&third, 1 << 20)),
            Expect {
                sha256: Some(sha(b"not this")),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::HashMismatch { .. }), "{err}");
    assert_eq!(store.size(&sha(&third)).await.unwrap(), None);
    assert_eq!(store.size(&sha(b"not this")).await.unwrap(), None);
    assert_eq!(store.temporaries().await, 0);
}

#[test]
fn hash_parsing() {
    assert!(Sha256::parse(&"a".repeat(64)).is_ok());
    assert!(Sha256::parse(&"A".repeat(64)).is_err());
    assert!(Sha256::parse("../../etc/passwd").is_err());
}
