//! Change notices between replicas sharing one PostgreSQL database (LISTEN/NOTIFY on one
//! channel), so that a replica drops what it cached as soon as another one writes.

use sqlx::postgres::PgListener;

use crate::{Backend, Result, Store};

/// The channel every replica listens on.
const CHANNEL: &str = "modelyard_changes";

/// A replica's subscription to other replicas' change notices.
pub struct ChangeListener(PgListener);

impl Store {
    /// Tells every replica (this one included) that something they may have cached changed.
    /// Nothing to tell on SQLite, whose database belongs to one process.
    pub async fn announce_change(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Subscribes to change notices on a connection of its own; `None` on SQLite.
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(ChangeListener(listener)))
    }
}

impl ChangeListener {
    /// Resolves at the next notice, and also when the connection was lost and made again
    /// (notices sent meanwhile are lost, so the caller should assume something changed).
    pub async fn changed(&mut self) -> Result<()> {
        self.0.try_recv().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::testing::{postgres_url, TestDatabase};
    use crate::Store;

    #[tokio::test]
    async fn a_notice_reaches_every_listener_and_sqlite_needs_none() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let sqlite = Store::connect(&url).await.unwrap();
        assert!(sqlite.change_listener().await.unwrap().is_none());
        sqlite.announce_change().await.unwrap();

        let Some(server) = postgres_url("changes") else {
            return;
        };
        let db = TestDatabase::create(&server).await;
        let (a, b) = (
            Store::connect(&db.url).await.unwrap(),
            Store::connect(&db.url).await.unwrap(),
        );
        let mut la = a.change_listener().await.unwrap().unwrap();
        let mut lb = b.change_listener().await.unwrap().unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(200), lb.changed()).await;
        assert!(quiet.is_err(), "no notice before a change");
        a.announce_change().await.unwrap();
        for l in [&mut la, &mut lb] {
            tokio::time::timeout(Duration::from_secs(5), l.changed())
                .await
                .expect("the notice arrives")
                .unwrap();
        }
        drop((la, lb, a, b));
        db.drop_database().await;
    }
}
