//! SQLite: nodes and leases. One node owns an SQLite file, so its leases are always free to
//! take; they are kept anyway so the code above the store is the same on every backend.

use super::*;

fn lease_from_row(r: &SqliteRow) -> Result<Lease, sqlx::Error> {
    Ok(Lease {
        name: r.try_get("name")?,
        holder: r.try_get("holder")?,
        token: r.try_get("token")?,
        expires_at: r.try_get("expires_at")?,
    })
}

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let node = node.clone();
        self.writer
            .run(move |c| {
                c.prepare_cached(
                    "INSERT INTO nodes (id, started_at, last_seen, address, version) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen,
                         address = excluded.address, version = excluded.version",
                )?
                .execute(rusqlite::params![node.id, node.started_at, node.last_seen, node.address, node.version])?;
                Ok(())
            })
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY last_seen DESC, id")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeInfo {
                    id: r.try_get("id")?,
                    started_at: r.try_get("started_at")?,
                    last_seen: r.try_get("last_seen")?,
                    address: r.try_get("address")?,
                    version: r.try_get("version")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Millis,
        until: Millis,
    ) -> Result<Option<Lease>, StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .run(move |c| {
                use rusqlite::OptionalExtension;
                Ok(c.prepare_cached(
                    "INSERT INTO leases (name, holder, token, expires_at) VALUES (?1, ?2, 1, ?4)
                     ON CONFLICT (name) DO UPDATE SET
                         token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END,
                         holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3
                     RETURNING name, holder, token, expires_at",
                )?
                .query_row(rusqlite::params![name, holder, now, until], |r| {
                    Ok(Lease {
                        name: r.get(0)?,
                        holder: r.get(1)?,
                        token: r.get(2)?,
                        expires_at: r.get(3)?,
                    })
                })
                .optional()?)
            })
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_string(), holder.to_string());
        // Lapsed at once but kept, so the next holder's token is still higher.
        self.writer
            .run(move |c| {
                c.prepare_cached(
                    "UPDATE leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2",
                )?
                .execute([name, holder])?;
                Ok(())
            })
            .await
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query("SELECT name, holder, token, expires_at FROM leases ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(lease_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
