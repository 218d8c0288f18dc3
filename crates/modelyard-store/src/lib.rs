//! The metadata database: migrations and every SQL statement of modelyard live here.
//!
//! One concrete `Store` over sqlx's `Any` driver, so SQLite (the embedded default) and
//! PostgreSQL run the same statements; the SQL is kept to the subset both understand.

mod analyses;
mod changes;
mod cluster;
mod commits;
mod gangs;
mod leader;
mod predictions;
mod repos;
mod results;
mod rows;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use analyses::{AnalysisRow, AnalysisStatus, NewAnalysis};
pub use cluster::{JobFilter, JobOutputRow, JobRow, LogRow, NodeRow};
pub use commits::{BlobHolder, CommitOp, NewCommit, TreeEntry};
pub use gangs::{GangPart, GangStatus, RankRow};
pub use leader::Leadership;
pub use predictions::ObservationRow;
pub use repos::{ListQuery, NewRepo, RepoFilters, RepoPage, RepoSort};
pub use results::{
    BoardRow, DatasetSummaryRow, NewResult, ResultFilter, ResultRow, SelfReportedRow,
};
pub use rows::{CommitRow, RefRow, RepoRow, TokenRow, UserRow};

/// Which SQL dialect a URL points at; decides the migration set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What went wrong, in terms the server maps to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The branch moved since the caller read it (optimistic concurrency).
    #[error("branch {branch} is at {actual}, not at the expected parent {expected}")]
    Stale {
        branch: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the metadata database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL it connected with (change notices listen on a connection of their own).
    url: Arc<str>,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://...`), creating a SQLite file if
    /// missing, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            )));
        };
        let url = if backend == Backend::Sqlite && !url.contains('?') {
            format!("{url}?mode=rwc")
        } else {
            url.to_owned()
        };
        let opts = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let store = Self {
            pool,
            backend,
            url: url.into(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            // sqlx holds a PostgreSQL advisory lock while it migrates, so replicas starting
            // together apply each migration once.
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; used before a process exits.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
mod results_tests;
#[cfg(test)]
mod tests;
