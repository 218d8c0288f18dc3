//! The modelyard hub: HTTP API (native and Hugging Face compatible), web pages, start-up.

pub mod analysis;
pub mod api;
pub mod auth;
pub mod config;
pub mod datasets;
pub mod demo;
pub mod error;
pub mod master;
pub mod predict;
pub mod read_cache;
pub mod repo_ops;
pub mod results;
pub mod router;
pub mod state;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use modelyard_blob::BlobStore;
use modelyard_store::Store;

pub use config::ServerConfig;
pub use state::AppState;

/// Opens the database and blob store a configuration points at.
pub async fn open_state(config: ServerConfig) -> anyhow::Result<AppState> {
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = Store::connect(&config.database_url())
        .await
        .with_context(|| format!("opening database {}", config.database_url()))?;
    let blobs = BlobStore::open(&config.blob_store())
        .await
        .with_context(|| format!("opening blob store {}", redact(&config.blob_store())))?;
    let secret = match store.backend() {
        // Replicas share PostgreSQL, so they share the key there: a link one signs, all accept.
        modelyard_store::Backend::Postgres => shared_secret(&store).await?,
        modelyard_store::Backend::Sqlite => load_secret(&config).await?,
    };
    let timing = master::ClusterTiming {
        lease: config.node_lease,
        poll: (config.node_lease / 3).min(std::time::Duration::from_secs(5)),
    };
    Ok(AppState {
        store,
        blobs,
        config: Arc::new(config),
        secret: Arc::new(secret),
        templates: Arc::new(web::templates()),
        master: Arc::new(master::Master::new(timing)),
        analysis: Arc::default(),
        runtime: Arc::default(),
        read_cache: Default::default(),
    })
}

/// The key that signs upload links, kept in the database for replicas that share it.
async fn shared_secret(store: &Store) -> anyhow::Result<[u8; 32]> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let text = store.setting_or_insert("server_secret", &fresh).await?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut key).context("the stored server secret is corrupt")?;
    Ok(key)
}

/// A store location with secrets in its query string (`secret_access_key=...`) elided.
fn redact(spec: &str) -> String {
    spec.split_once('?')
        .map_or_else(|| spec.to_owned(), |(base, _)| format!("{base}?..."))
}

/// The key that signs upload links, kept in the data directory so links survive restarts.
async fn load_secret(config: &ServerConfig) -> anyhow::Result<[u8; 32]> {
    let path = config.data_dir.join("secret.key");
    if let Ok(text) = tokio::fs::read_to_string(&path).await {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .with_context(|| format!("{} is corrupt", path.display()))?;
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, hex::encode(key)).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).await?;
    }
    tokio::fs::rename(&tmp, &path).await?;
    Ok(key)
}

/// On a fresh install, creates the `admin` user and returns a one-time token for it.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.store.count_users().await? > 0 {
        return Ok(None);
    }
    state.store.create_user("admin", None, true).await?;
    let (token, _) = auth::issue_token(state, "admin", "write", "bootstrap", None)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    tracing::info!(user = "admin", "created the first admin account");
    Ok(Some(token))
}

/// Publishes the demo repositories (for `up` on a fresh install).
pub async fn seed_demo(state: &AppState) -> anyhow::Result<()> {
    demo::seed(state)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))
}

/// Creates a user from the command line; with `with_token`, returns a fresh write token.
pub async fn create_user(
    state: &AppState,
    name: &str,
    admin: bool,
    with_token: bool,
) -> anyhow::Result<Option<String>> {
    api::users::validate_user_name(name).map_err(|e| anyhow::anyhow!(e.message))?;
    state.store.create_user(name, None, admin).await?;
    if !with_token {
        return Ok(None);
    }
    let (token, _) = auth::issue_token(state, name, "write", "cli", None)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(Some(token))
}

/// Binds the configured address; returns the listener and the address actually bound.
pub async fn bind(config: &ServerConfig) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| {
            format!(
                "binding {}: is another server using it? choose one with --bind",
                config.bind
            )
        })?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves the hub on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let app = router::router(state.clone());
    master::join_token(&state.store).await?;
    let scheduler = tokio::spawn(master::leader::run_scheduler(state.clone()));
    let analyzer = analysis::start(state.clone());
    let changes = tokio::spawn(read_cache::follow_changes(state.clone()));
    // Without TCP_NODELAY, Nagle's algorithm holds a small body back until the client's delayed
    // ACK arrives: ~40 ms per small file on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    scheduler.abort();
    analyzer.abort();
    changes.abort();
    state.store.close().await;
    Ok(served?)
}
