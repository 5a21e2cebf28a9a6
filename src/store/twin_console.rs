//! [`ConsoleStore`](super::ConsoleStore), written once for both backends (see [`super::twin`]
//! for why that works). It is expanded in the module where [`super::twin::twin_store!`] is,
//! and reads events with that macro's `event_from_row` and `placeholders`.

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type.
macro_rules! twin_console_store {
    ($store:ty, $read:ident, $row:ty) => {
        use $crate::store::{ActivityCount, ConsoleStore, NewSession, SignedIn, User};

        fn user_from_row(r: &$row) -> Result<User, sqlx::Error> {
            Ok(User {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                role: r.try_get("role")?,
                created_at: r.try_get("created_at")?,
                disabled_at: r.try_get("disabled_at")?,
            })
        }

        fn count_of(v: i64) -> u64 {
            u64::try_from(v).unwrap_or(0)
        }

        impl $store {
            /// The first event published at or after `since`: a binary search on the id,
            /// since ids follow publication (and `at`). (`events_at`, retention's index, would
            /// find it too, but the counts then read the rows in id order, which it does not.)
            async fn first_event_since(&self, since: i64) -> Result<Option<i64>, StoreError> {
                // Two subqueries, not `SELECT MIN(id), MAX(id)`: SQLite answers a lone MIN or
                // MAX from the end of the key, but both in one select scan the whole table
                // (90 ms at a million events).
                let bounds: (Option<i64>, Option<i64>) =
                    sqlx::query_as("SELECT (SELECT MIN(id) FROM events), (SELECT MAX(id) FROM events)")
                        .fetch_one(&self.$read)
                        .await?;
                let (Some(mut lo), Some(mut hi)) = bounds else {
                    return Ok(None);
                };

                let mut found = None;
                while lo <= hi {
                    let mid = lo + (hi - lo) / 2;
                    // Ids are dense but for what retention deleted: look the id up, and only
                    // when it is gone ask for the next one.
                    let mut next: Option<(i64, i64)> =
                        sqlx::query_as("SELECT id, at FROM events WHERE id = $1")
                            .bind(mid)
                            .fetch_optional(&self.$read)
                            .await?;
                    if next.is_none() {
                        next = sqlx::query_as(
                            "SELECT id, at FROM events WHERE id >= $1 ORDER BY id LIMIT 1",
                        )
                        .bind(mid)
                        .fetch_optional(&self.$read)
                        .await?;
                    }
                    match next {
                        Some((id, at)) if at >= since => {
                            found = Some(id);
                            hi = mid - 1;
                        }
                        Some((id, _)) => lo = id + 1,
                        None => hi = mid - 1,
                    }
                }
                Ok(found)
            }
        }

        #[async_trait]
        impl ConsoleStore for $store {
            async fn create_user(&self, user: &User, hash: &str) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let n = sqlx::query(
                    "INSERT INTO users (id, email, role, password_hash, created_at, disabled_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING",
                )
                .bind(&user.id)
                .bind(&user.email)
                .bind(&user.role)
                .bind(hash)
                .bind(user.created_at)
                .bind(user.disabled_at)
                .execute(tx.as_mut())
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn users(&self) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, id")
                    .fetch_all(&self.$read)
                    .await?;
                Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
            }

            async fn user_credentials(
                &self,
                email: &str,
            ) -> Result<Option<(User, String)>, StoreError> {
                let row = sqlx::query("SELECT * FROM users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(&self.$read)
                    .await?;
                match row {
                    Some(r) => Ok(Some((user_from_row(&r)?, r.try_get("password_hash")?))),
                    None => Ok(None),
                }
            }

            async fn disable_user(&self, email: &str, now: i64) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let id: Option<String> = sqlx::query_scalar(
                    "UPDATE users SET disabled_at = $1 WHERE email = $2 AND disabled_at IS NULL
                     RETURNING id",
                )
                .bind(now)
                .bind(email)
                .fetch_optional(tx.as_mut())
                .await?;
                if let Some(id) = &id {
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(id)
                        .execute(tx.as_mut())
                        .await?;
                }
                tx.commit().await?;
                Ok(id.is_some())
            }

            async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(s.created_at)
                    .execute(tx.as_mut())
                    .await?;
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.token_hash)
                .bind(&s.user_id)
                .bind(&s.csrf)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn session(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<SignedIn>, StoreError> {
                let row = sqlx::query(
                    "SELECT u.*, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.$read)
                .await?;
                match row {
                    Some(r) => Ok(Some(SignedIn {
                        user: user_from_row(&r)?,
                        csrf: r.try_get("csrf")?,
                        expires_at: r.try_get("expires_at")?,
                    })),
                    None => Ok(None),
                }
            }

            async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(tx.as_mut())
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn activity(
                &self,
                types: &[&str],
                since: i64,
                bucket_ms: i64,
            ) -> Result<Vec<ActivityCount>, StoreError> {
                // An event's `at` is when its fact happened, which may be a little before it
                // was published (a retried webhook, an inactivity ending): the search starts an
                // hour early and the query keeps only what happened since `since`.
                let Some(first) = self.first_event_since(since - 3_600_000).await? else {
                    return Ok(Vec::new());
                };
                if types.is_empty() || bucket_ms <= 0 {
                    return Ok(Vec::new());
                }
                // The rows since `first`, read in id order: SQLite would rather skip-scan the
                // (type, id) index and fetch each row's `at` from the table, four times slower.
                let sql = format!(
                    "SELECT type, (at / $2) * $2 AS bucket, COUNT(*) AS n FROM {EVENTS_BY_ID}
                     WHERE id >= $1 AND at >= $3 AND type IN ({}) GROUP BY type, (at / $2) * $2",
                    placeholders(4, types.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(first)
                    .bind(bucket_ms)
                    .bind(since);
                for t in types {
                    q = q.bind(*t);
                }
                let rows = q.fetch_all(&self.$read).await?;
                rows.iter()
                    .map(|r| {
                        Ok(ActivityCount {
                            kind: r.try_get("type")?,
                            bucket: r.try_get("bucket")?,
                            count: count_of(r.try_get("n")?),
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(StoreError::from)
            }

            async fn latest_events(
                &self,
                types: &[&str],
                limit: u32,
            ) -> Result<Vec<Event>, StoreError> {
                if types.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT * FROM events WHERE type IN ({}) ORDER BY id DESC LIMIT $1",
                    placeholders(2, types.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit));
                for t in types {
                    q = q.bind(*t);
                }
                let rows = q.fetch_all(&self.$read).await?;
                Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
            }

            async fn latest_event_id(&self) -> Result<i64, StoreError> {
                let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
                    .fetch_one(&self.$read)
                    .await?;
                Ok(id.unwrap_or(0))
            }

            async fn open_conversation_count(&self) -> Result<u64, StoreError> {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE ended_at IS NULL")
                        .fetch_one(&self.$read)
                        .await?;
                Ok(count_of(n))
            }
        }
    };
}

pub(crate) use twin_console_store;
