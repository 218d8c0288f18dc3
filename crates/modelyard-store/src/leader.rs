//! Leadership among replicas sharing one database: a PostgreSQL session advisory lock, held on
//! a connection of its own for as long as the leader lives.
//!
//! When the leader's process dies (even by `kill -9`) its connection closes and PostgreSQL
//! releases the lock at once, so a standby that retries every second takes over within about
//! a second. A SQLite database belongs to one process, which always leads.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Row};

use crate::{Backend, Result, Store};

/// How often a leader checks that its lock connection is still alive.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Proof of leadership for one role; dropping it (or losing its connection) gives it up.
#[derive(Debug)]
pub struct Leadership {
    /// The connection holding the advisory lock; `None` on SQLite.
    conn: Option<sqlx::AnyConnection>,
}

impl Store {
    /// Becomes the one replica that performs `role` (e.g. `"scheduler"`), or returns `None`
    /// while another replica holds it.
    pub async fn try_lead(&self, role: &str) -> Result<Option<Leadership>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(Leadership { conn: None }));
        }
        // A connection of its own: the lock lives exactly as long as this session.
        let conn: PoolConnection<Any> = self.pool.acquire().await?;
        let mut conn = conn.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind(lock_key(role))
            .fetch_one(&mut conn)
            .await?;
        if row.try_get::<bool, _>("locked")? {
            Ok(Some(Leadership { conn: Some(conn) }))
        } else {
            conn.close().await?;
            Ok(None)
        }
    }
}

impl Leadership {
    /// Resolves when leadership is lost: the connection that holds the lock failed (the
    /// database restarted, or the network dropped it). Pending forever on SQLite.
    pub async fn lost(&mut self) {
        let Some(conn) = &mut self.conn else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let alive = tokio::time::timeout(CHECK_EVERY * 5, conn.ping()).await;
            if !matches!(alive, Ok(Ok(()))) {
                return;
            }
        }
    }
}

/// The advisory lock key of a role: a stable 64-bit hash (FNV-1a) of its name.
fn lock_key(role: &str) -> i64 {
    format!("modelyard:{role}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }) as i64
}
