//! `modelyard repos`: list and search repositories.

use clap::Args;
use serde_json::Value;

use crate::client::enc_segment;
use crate::credentials::ClientArgs;

#[derive(Args)]
pub struct ReposArgs {
    /// List datasets instead of models.
    #[arg(long)]
    pub dataset: bool,
    /// Only names containing this text.
    #[arg(long)]
    pub search: Option<String>,
    /// Only this namespace.
    #[arg(long)]
    pub author: Option<String>,
    /// Only repos with this card tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Sort by `recent` or `downloads`.
    #[arg(long, default_value = "recent")]
    pub sort: String,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn repos(args: ReposArgs) -> anyhow::Result<()> {
    let client = args.client.client()?;
    let kind = if args.dataset { "datasets" } else { "models" };
    let mut q = vec![format!("limit={}", args.limit.min(1000))];
    q.push(format!(
        "sort={}",
        if args.sort == "downloads" {
            "downloads"
        } else {
            "lastModified"
        }
    ));
    for (k, v) in [
        ("search", &args.search),
        ("author", &args.author),
        ("filter", &args.tag),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc_segment(v)));
        }
    }
    let mut url = format!("/api/{kind}?{}", q.join("&"));
    let mut shown = 0;
    println!(
        "{:<40} {:>9} {:>10}  {:<20} updated",
        "repository", "private", "downloads", "task"
    );
    while shown < args.limit {
        let resp = client
            .send(client.request(reqwest::Method::GET, &url))
            .await?;
        let next = resp
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, _)| u.to_owned());
        let items: Vec<Value> = resp.json().await?;
        for r in &items {
            if shown >= args.limit {
                break;
            }
            println!(
                "{:<40} {:>9} {:>10}  {:<20} {}",
                r["id"].as_str().unwrap_or("?"),
                if r["private"].as_bool() == Some(true) {
                    "yes"
                } else {
                    ""
                },
                r["downloads"].as_i64().unwrap_or(0),
                r["pipeline_tag"]
                    .as_str()
                    .or(r["task"].as_str())
                    .unwrap_or(""),
                r["lastModified"]
                    .as_str()
                    .unwrap_or("")
                    .get(..10)
                    .unwrap_or("")
            );
            shown += 1;
        }
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    if shown == 0 {
        println!("(none)");
    }
    Ok(())
}
