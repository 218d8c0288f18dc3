//! Users and API tokens (only token hashes are stored).

use sqlx::Row;

use crate::rows::{TokenRow, UserRow};
use crate::{is_unique_violation, now_ms, Result, Store, StoreError};

impl Store {
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: Option<&str>,
        is_admin: bool,
    ) -> Result<UserRow> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO users (name, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(password_hash)
        .bind(is_admin as i64)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("user {name:?} already exists"))
            } else {
                e.into()
            }
        })?;
        Ok(UserRow {
            name: name.to_owned(),
            password_hash: password_hash.map(str::to_owned),
            is_admin,
            created_at: now,
        })
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query("SELECT * FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| UserRow::from_row(&r)).transpose()?)
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn create_token(
        &self,
        id: &str,
        user: &str,
        token_hash: &str,
        scope: &str,
        label: &str,
        expires_at: Option<i64>,
    ) -> Result<TokenRow> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO tokens (id, user_name, token_hash, scope, label, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(user)
        .bind(token_hash)
        .bind(scope)
        .bind(label)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(TokenRow {
            id: id.to_owned(),
            user_name: user.to_owned(),
            scope: scope.to_owned(),
            label: label.to_owned(),
            created_at: now,
            expires_at,
            last_used_at: None,
        })
    }

    /// Records that token `id` was used at `at` (milliseconds).
    pub async fn touch_token(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The token with this hash and its user, whether or not it has expired.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<(TokenRow, UserRow)>> {
        let row = sqlx::query(
            "SELECT t.id, t.user_name, t.scope, t.label, t.created_at, t.expires_at, t.last_used_at, \
             u.name, u.password_hash, u.is_admin, u.created_at AS user_created_at \
             FROM tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let token = TokenRow::from_row(&r)?;
        let user = UserRow {
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            is_admin: r.try_get::<i64, _>("is_admin")? != 0,
            created_at: r.try_get("user_created_at")?,
        };
        Ok(Some((token, user)))
    }

    pub async fn tokens_of(&self, user: &str) -> Result<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE user_name = $1 ORDER BY created_at")
            .bind(user)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(TokenRow::from_row)
            .collect::<sqlx::Result<_>>()?)
    }

    /// Revokes one of `user`'s tokens; false if there was none with that id.
    pub async fn delete_token(&self, user: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE user_name = $1 AND id = $2")
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
