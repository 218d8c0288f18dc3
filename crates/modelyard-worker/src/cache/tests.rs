//! Cache tests against a real HTTP blob server on loopback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::*;
use crate::testing::{serve, sha256};

#[derive(Default)]
struct Blobs {
    /// What the server answers for each requested hash (may be wrong on purpose).
    content: HashMap<String, Vec<u8>>,
    requests: AtomicUsize,
    delay: Duration,
}

async fn get_blob(
    State(blobs): State<Arc<Blobs>>,
    UrlPath(sha): UrlPath<String>,
) -> Result<Vec<u8>, StatusCode> {
    blobs.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(blobs.delay).await;
    blobs
        .content
        .get(&sha)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

async fn blob_server(blobs: Blobs) -> (MasterClient, Arc<Blobs>) {
    let blobs = Arc::new(blobs);
    let app = Router::new()
        .route("/api/cluster/blobs/{sha}", get(get_blob))
        .with_state(blobs.clone());
    let base = serve(app).await;
    (
        MasterClient::new(&base, "node-token".into()).unwrap(),
        blobs,
    )
}

fn blob(fill: u8, len: usize) -> (String, Vec<u8>) {
    let data = vec![fill; len];
    (sha256(&data), data)
}

fn names(cache: &BlobCache) -> Vec<String> {
    cache.inventory().into_iter().map(|i| i.sha256).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn verification_rejects_a_wrong_hash_or_size() {
    let (good_sha, good) = blob(b'g', 100);
    let (short_sha, _) = blob(b's', 100);
    let mut blobs = Blobs::default();
    blobs
        .content
        .insert(good_sha.clone(), b"not the right bytes".to_vec());
    blobs.content.insert(short_sha.clone(), vec![b's'; 99]);
    let (client, _) = blob_server(blobs).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path(), 1 << 20).unwrap();

    let err = cache
        .fetch(&client, &good_sha, good.len() as u64)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Mismatch { .. }), "{err}");
    let err = cache.fetch(&client, &short_sha, 100).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Mismatch { got_size: 99, .. }),
        "{err}"
    );
    let err = cache
        .fetch(&client, "../../etc/passwd", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::BadHash(_)), "{err}");
    let (missing, _) = blob(b'm', 10);
    let err = cache.fetch(&client, &missing, 10).await.unwrap_err();
    assert!(!err.is_transient(), "404 is permanent: {err}");

    assert!(cache.inventory().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn evicts_least_recently_used_but_never_a_pinned_blob() {
    let all: Vec<(String, Vec<u8>)> = (0..5).map(|i| blob(b'a' + i, 100)).collect();
    let mut blobs = Blobs::default();
    for (sha, data) in &all {
        blobs.content.insert(sha.clone(), data.clone());
    }
    let (client, _) = blob_server(blobs).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path(), 250).unwrap();
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| all[i].0.clone());

    let pa = cache.fetch(&client, &a, 100).await.unwrap();
    assert_eq!(std::fs::read(pa.path()).unwrap(), all[0].1);
    drop(pa);
    drop(cache.fetch(&client, &b, 100).await.unwrap());
    // Using a again makes b the oldest.
    drop(cache.fetch(&client, &a, 100).await.unwrap());
    drop(cache.fetch(&client, &c, 100).await.unwrap());
    assert_eq!(names(&cache), sorted(vec![a.clone(), c.clone()]));
    assert!(!dir.path().join("blobs").join(&b).exists());

    // c is pinned, a is older than c: a goes.
    let pc = cache.fetch(&client, &c, 100).await.unwrap();
    let pd = cache.fetch(&client, &d, 100).await.unwrap();
    assert_eq!(names(&cache), sorted(vec![c.clone(), d.clone()]));
    // Everything pinned: the cache goes over its size rather than evict a blob in use...
    let pe = cache.fetch(&client, &e, 100).await.unwrap();
    assert_eq!(cache.inventory().len(), 3);
    assert!(pc.path().exists() && pd.path().exists() && pe.path().exists());
    // ...and comes back within it as the pins are released (c is the oldest).
    drop(pc);
    assert_eq!(names(&cache), sorted(vec![d.clone(), e.clone()]));
    drop((pd, pe));

    // A reopened cache finds what is on disk.
    let again = BlobCache::open(dir.path(), 250).unwrap();
    assert_eq!(names(&again), sorted(vec![d, e]));
}

#[tokio::test]
async fn concurrent_fetches_of_one_blob_download_it_once() {
    let (sha, data) = blob(b'x', 4096);
    let mut blobs = Blobs {
        delay: Duration::from_millis(200),
        ..Blobs::default()
    };
    blobs.content.insert(sha.clone(), data.clone());
    let (client, blobs) = blob_server(blobs).await;
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path(), 1 << 20).unwrap();

    let fetches = (0..8).map(|_| cache.fetch(&client, &sha, 4096));
    let pins = futures_util::future::join_all(fetches).await;
    for pin in &pins {
        let pin = pin.as_ref().unwrap();
        assert_eq!(std::fs::read(pin.path()).unwrap(), data);
    }
    assert_eq!(blobs.requests.load(Ordering::SeqCst), 1);
    assert!(
        cache.fetching.lock().unwrap().is_empty(),
        "per-hash locks are cleaned up"
    );
}
