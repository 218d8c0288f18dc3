//! Test helpers: a real HTTP server on 127.0.0.1:0 and blob fixtures.

use sha2::{Digest, Sha256};

/// Serves `app` on a free loopback port; returns its base URL. The server lives as long as
/// the test's runtime.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The lowercase hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
