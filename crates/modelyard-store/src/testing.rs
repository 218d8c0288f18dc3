//! Test support: a fresh PostgreSQL database per test on the server named by an env var.
//!
//! `MODELYARD_TEST_POSTGRES` holds the URL of a server the tests may create databases on
//! (`scripts/services` starts a throwaway one). Without it the PostgreSQL variants of the
//! tests are skipped with a notice, except under `CI=true`, where a missing server is a failure.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::migrate::MigrateDatabase;

/// The variable that names the test PostgreSQL server.
pub const POSTGRES_ENV: &str = "MODELYARD_TEST_POSTGRES";

/// Whether this run is CI's, where every backend's tests must run rather than skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The test server's URL; `None` (after a notice on stderr) when it is not configured and
/// this is not CI. Panics under `CI=true` when it is missing.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => panic!(
            "{POSTGRES_ENV} is not set but CI=true: the PostgreSQL tests must run in CI \
             (scripts/services starts a throwaway server)"
        ),
        _ => {
            eprintln!("skipping {test} on PostgreSQL: set {POSTGRES_ENV}=postgres://... to run it");
            None
        }
    }
}

/// A database created for one test; `drop_database` removes it when the test passed.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connects to the new, empty database.
    pub url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name on the server at `server_url`.
    pub async fn create(server_url: &str) -> Self {
        sqlx::any::install_default_drivers();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "modelyard_t{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = with_database(server_url, &name);
        sqlx::Any::create_database(&url)
            .await
            .unwrap_or_else(|e| panic!("creating test database {name} on {server_url}: {e}"));
        Self { url }
    }

    /// Drops the database, closing connections still open on it.
    pub async fn drop_database(self) {
        if let Err(e) = sqlx::Any::force_drop_database(&self.url).await {
            eprintln!("could not drop test database {}: {e}", self.url);
        }
    }
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_replace_the_path() {
        use super::with_database as w;
        assert_eq!(w("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(w("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            w("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
    }
}
