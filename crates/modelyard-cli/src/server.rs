//! `up`, `serve` and `admin`: configuration from flags, environment and a config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use modelyard_server::ServerConfig;
use serde::Deserialize;

/// Where the server keeps its state. Flags win over environment variables, which win over
/// the config file, which wins over the defaults.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MODELYARD_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory for the SQLite database, blobs and keys [default: ./modelyard-data].
    #[arg(long, env = "MODELYARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (default: sqlite inside the
    /// data directory).
    #[arg(long, env = "MODELYARD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Blob store: s3://BUCKET[/PREFIX]?endpoint=URL&region=R, or a directory (default: blobs/
    /// inside the data directory).
    #[arg(long, env = "MODELYARD_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// The URL clients use to reach this server (default: from each request's Host header).
    #[arg(long, env = "MODELYARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Milliseconds without a heartbeat after which a worker is lost [default: 15000].
    #[arg(long, env = "MODELYARD_NODE_LEASE_MS")]
    pub node_lease_ms: Option<u64>,
    /// Answer metadata reads and token checks from this replica's memory, at most about a
    /// second behind other replicas' writes [default: true]; false asks the database every time.
    #[arg(long, env = "MODELYARD_READ_CACHE")]
    pub read_cache: Option<bool>,
    /// Redirect downloads of LFS files in an S3 blob store to pre-signed URLs, so clients fetch
    /// the bytes from the object store [default: false].
    #[arg(long, env = "MODELYARD_DOWNLOAD_REDIRECT")]
    pub download_redirect: Option<bool>,
    /// A TOML file with the same settings (bind, data_dir, database_url, blob_store, public_url,
    /// node_lease_ms, read_cache, download_redirect); ./modelyard.toml is read when present.
    #[arg(long, env = "MODELYARD_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    blob_store: Option<String>,
    public_url: Option<String>,
    node_lease_ms: Option<u64>,
    read_cache: Option<bool>,
    download_redirect: Option<bool>,
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from("modelyard.toml")).filter(|p| p.exists()),
        };
        let file: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let bind = self
            .bind
            .or(file.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid"));
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("modelyard-data"));
        let mut config = ServerConfig::new(bind, data_dir);
        config.database_url = self.database_url.clone().or(file.database_url);
        config.blob_store = self.blob_store.clone().or(file.blob_store);
        config.public_url = self.public_url.clone().or(file.public_url);
        if let Some(ms) = self.node_lease_ms.or(file.node_lease_ms) {
            config.node_lease = std::time::Duration::from_millis(ms.max(300));
        }
        if let Some(on) = self.read_cache.or(file.read_cache) {
            config.read_cache = on;
        }
        if let Some(on) = self.download_redirect.or(file.download_redirect) {
            config.download_redirect = on;
        }
        Ok(config)
    }
}

pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODELYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if std::env::var("MODELYARD_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// `up`: the server flags plus the local worker's.
#[derive(Args, Clone, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Let the local worker run `command` jobs (arbitrary user commands).
    #[arg(long)]
    pub allow_commands: bool,
    /// Do not publish the MNIST demo (model, dataset and its queued evaluation) on a first start.
    #[arg(long)]
    pub no_demo: bool,
}

/// Starts the server and prints where it listens (tests read the `listening on` line). With
/// `local_worker`, a worker runs in the same process, on the same embedded defaults.
async fn start(
    args: ServeArgs,
    newcomer: bool,
    demo: bool,
    local_worker: Option<bool>,
) -> anyhow::Result<()> {
    init_logs();
    let config = args.resolve()?;
    let data_dir = config.data_dir.clone();
    let state = modelyard_server::open_state(config.clone()).await?;
    let admin_token = modelyard_server::bootstrap_admin(&state).await?;
    let demo = demo && admin_token.is_some();
    if demo {
        modelyard_server::seed_demo(&state).await?;
    }
    let (listener, addr) = modelyard_server::bind(&config).await?;
    let url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    println!("modelyard listening on {url}");
    match &admin_token {
        Some(token) => {
            println!("created the admin account; its token is shown only this once:");
            println!("{token}");
        }
        None => {
            println!("users exist already; new tokens: modelyard admin create-user NAME --token")
        }
    }
    if newcomer {
        println!();
        println!("  open {url} in a browser");
        println!("  data directory: {}", data_dir.display());
        match &admin_token {
            Some(t) => println!("  log in:  modelyard login --server {url} --token {t}"),
            None => println!("  log in:  modelyard login --server {url} --token <token>   (new tokens: modelyard admin create-user NAME --token)"),
        }
        if demo {
            println!(
                "  demo:    {url}/admin/mnist-8 (model) and {url}/datasets/admin/mnist (dataset)"
            );
            println!("           its evaluation is queued: {url}/leaderboards/admin/mnist");
        }
        println!("  publish: modelyard push ./my-model admin/my-model");
        println!(
            "  jobs:    a local worker runs them; modelyard submit --model admin/mnist-8 --dataset admin/mnist ...{}",
            if local_worker == Some(true) { "" } else { " (command jobs need `up --allow-commands`)" }
        );
        println!("  HF client: HF_ENDPOINT={url} HF_HUB_DISABLE_XET=1 HF_TOKEN=<token> python ...");
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = match local_worker {
        Some(allow_commands) => {
            let config = modelyard_worker::WorkerConfig {
                server: format!("http://{addr}"),
                join_token: modelyard_server::master::join_token(&state.store).await?,
                name: format!("{}-local", crate::worker::host_name()),
                cache_dir: data_dir.join("worker").join("cache"),
                cache_bytes: 20 << 30,
                work_dir: data_dir.join("worker").join("work"),
                allow_commands,
                grace: std::time::Duration::from_secs(10),
                gflops: None,
                advertise_addr: None,
            };
            let stop = stop.clone();
            Some(tokio::spawn(async move {
                modelyard_worker::run(config, stop.cancelled_owned()).await
            }))
        }
        None => None,
    };
    let server_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        server_stop.cancel();
    });
    let served = modelyard_server::serve(state, listener, stop.clone().cancelled_owned()).await;
    stop.cancel();
    if let Some(w) = worker {
        if let Ok(Err(e)) = w.await {
            tracing::warn!(error = %e, "local worker stopped with an error");
        }
    }
    served
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    start(args, false, false, None).await
}

/// `up`: the hub and one local worker on embedded defaults, with a guide for newcomers.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    start(args.serve, true, !args.no_demo, Some(args.allow_commands)).await
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Print the cluster join token that workers register with.
    JoinToken {
        #[command(flatten)]
        server: ServeArgs,
    },
    /// Create a user; with --token, print a fresh API token for it alone on stdout.
    CreateUser {
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        token: bool,
        #[command(flatten)]
        server: ServeArgs,
    },
}

pub async fn admin(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::JoinToken { server } => {
            let state = modelyard_server::open_state(server.resolve()?).await?;
            let token = modelyard_server::master::join_token(&state.store).await?;
            state.store.close().await;
            println!("{token}");
            Ok(())
        }
        AdminCommand::CreateUser {
            name,
            admin,
            token,
            server,
        } => {
            let config = server.resolve()?;
            let state = modelyard_server::open_state(config).await?;
            let t = modelyard_server::create_user(&state, &name, admin, token).await?;
            state.store.close().await;
            match t {
                Some(t) => println!("{t}"),
                None => eprintln!("created user {name}; use --token to get an API token"),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(config: Option<PathBuf>) -> ServeArgs {
        ServeArgs {
            bind: None,
            data_dir: None,
            database_url: None,
            blob_store: None,
            public_url: None,
            node_lease_ms: None,
            read_cache: None,
            download_redirect: None,
            config,
        }
    }

    #[test]
    fn defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = args(Some(dir.path().join("absent.toml")));
        assert!(c.resolve().is_err(), "a named config file must exist");
        let c = ServeArgs {
            config: None,
            ..args(None)
        }
        .resolve()
        .unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("modelyard-data"));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "bind = \"127.0.0.1:9000\"\ndata_dir = \"/srv/yard\"\npublic_url = \"http://hub.lab\"\nblob_store = \"s3://yard?region=eu-west-1\"\n").unwrap();
        let from_file = args(Some(file.clone())).resolve().unwrap();
        assert_eq!(
            from_file.blob_store.as_deref(),
            Some("s3://yard?region=eu-west-1")
        );
        assert_eq!(from_file.bind.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.data_dir, PathBuf::from("/srv/yard"));
        assert_eq!(from_file.public_url.as_deref(), Some("http://hub.lab"));
        let flagged = ServeArgs {
            bind: Some("0.0.0.0:1234".parse().unwrap()),
            ..args(Some(file.clone()))
        }
        .resolve()
        .unwrap();
        assert_eq!(flagged.bind.to_string(), "0.0.0.0:1234");
        let s3_flag = ServeArgs {
            blob_store: Some("s3://other".into()),
            ..args(Some(file.clone()))
        }
        .resolve()
        .unwrap();
        assert_eq!(s3_flag.blob_store.as_deref(), Some("s3://other"));
        assert_eq!(flagged.data_dir, PathBuf::from("/srv/yard"));
        std::fs::write(&file, "port = 1\n").unwrap();
        assert!(
            args(Some(file)).resolve().is_err(),
            "unknown keys are refused"
        );
    }
}
