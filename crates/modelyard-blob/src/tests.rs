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

async fn local() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open_local(dir.path().to_path_buf())
        .await
        .unwrap();
    (dir, store)
}

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn round_trip_and_ranges() {
    let (_d, store) = local().await;
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

#[tokio::test]
async fn mismatching_hash_leaves_nothing() {
    let (dir, store) = local().await;
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
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn interrupted_or_oversized_uploads_leave_nothing() {
    let (dir, store) = local().await;
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
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    // The next upload of the same content succeeds.
    let ok = store
        .put(stream::iter(chunks(&data, 1000)), Expect::default())
        .await
        .unwrap();
    assert_eq!(read_all(&store, &ok.sha256, None).await, data);
}

#[tokio::test]
async fn missing_blobs_and_bad_ranges() {
    let (_d, store) = local().await;
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

#[test]
fn hash_parsing() {
    assert!(Sha256::parse(&"a".repeat(64)).is_ok());
    assert!(Sha256::parse(&"A".repeat(64)).is_err());
    assert!(Sha256::parse("../../etc/passwd").is_err());
}
