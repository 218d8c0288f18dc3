//! Where client commands find their server and token: flags, environment, or what `login` saved.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::client::Client;

/// Server and token options shared by every client command.
#[derive(Args, Clone, Debug)]
pub struct ClientArgs {
    /// Server URL [default: what `modelyard login` saved, else http://127.0.0.1:8080].
    #[arg(long, env = "MODELYARD_SERVER", global = true)]
    pub server: Option<String>,
    /// API token [default: what `modelyard login` saved].
    #[arg(long, env = "MODELYARD_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct Saved {
    server: Option<String>,
    token: Option<String>,
}

fn saved_path() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("MODELYARD_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("credentials.toml"));
    }
    let base =
        dirs::config_dir().context("no configuration directory; set MODELYARD_CONFIG_DIR")?;
    Ok(base.join("modelyard").join("credentials.toml"))
}

fn load_saved() -> Saved {
    saved_path()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| toml::from_str(&t).ok())
        .unwrap_or_default()
}

impl ClientArgs {
    pub fn client(&self) -> anyhow::Result<Client> {
        let saved = load_saved();
        let server = self
            .server
            .clone()
            .or(saved.server)
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        Client::new(&server, self.token.clone().or(saved.token))
    }
}

#[derive(Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Log in with a user name and a password read from stdin, creating a new token.
    #[arg(long)]
    pub username: Option<String>,
}

/// Checks the token (or exchanges name and password for one) and saves it with the server URL.
pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let mut client = args.client.client()?;
    if let Some(user) = &args.username {
        eprintln!("password for {user} (read from stdin):");
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let resp: serde_json::Value = client
            .post_json("/api/login", &serde_json::json!({"username": user, "password": password.trim_end_matches(['\r', '\n']), "label": "cli"}))
            .await?;
        let token = resp["token"]
            .as_str()
            .context("server returned no token")?
            .to_owned();
        client = client.with_token(Some(token));
    }
    if client.token().is_none() {
        anyhow::bail!("give a token with --token (or MODELYARD_TOKEN), or --username to log in with a password");
    }
    let me: serde_json::Value = client.get_json("/api/whoami-v2").await?;
    let path = saved_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let saved = Saved {
        server: Some(client.base().to_owned()),
        token: client.token().map(str::to_owned),
    };
    std::fs::write(&path, toml::to_string(&saved)?)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "logged in to {} as {} (saved in {})",
        client.base(),
        me["name"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}
