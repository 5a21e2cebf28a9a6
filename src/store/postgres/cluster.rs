//! PostgreSQL: nodes and leases, shared by every node on the database.

use super::*;

/// Fails with [`StoreError::LeaseLost`] unless the fence's holder still holds its lease.
///
/// The lease row stays locked `FOR SHARE` until the caller's transaction ends: a node taking
/// the lease over (`acquire_lease`'s `UPDATE`) waits for this batch to commit, and so gets the
/// lease only after the last write made under the old token.
pub(super) async fn check_fence(
    tx: &mut Transaction<'static, Postgres>,
    f: &Fence,
) -> Result<(), StoreError> {
    let held: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND token = $3 FOR SHARE",
    )
    .bind(&f.name)
    .bind(&f.holder)
    .bind(f.token)
    .fetch_optional(&mut **tx)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(f.name.clone())),
    }
}

fn lease_from_row(r: &PgRow) -> Result<Lease, sqlx::Error> {
    Ok(Lease {
        name: r.try_get("name")?,
        holder: r.try_get("holder")?,
        token: r.try_get("token")?,
        expires_at: r.try_get("expires_at")?,
    })
}

#[async_trait]
impl ClusterStore for PostgresStore {
    async fn heartbeat(&self, node: &NodeInfo) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, started_at, last_seen, address, version) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen,
                 address = excluded.address, version = excluded.version",
        )
        .bind(&node.id)
        .bind(node.started_at)
        .bind(node.last_seen)
        .bind(&node.address)
        .bind(&node.version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY last_seen DESC, id")
            .fetch_all(&self.pool)
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
        // One statement: the row lock ON CONFLICT takes makes two nodes racing for a lapsed
        // lease serialise; the second then sees the first's fresh `expires_at` and gets nothing.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, $4)
             ON CONFLICT (name) DO UPDATE SET
                 token = CASE WHEN leases.holder = excluded.holder THEN leases.token ELSE leases.token + 1 END,
                 holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $3
             RETURNING name, holder, token, expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(lease_from_row).transpose()?)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        // Lapsed at once but kept, so the next holder's token is still higher.
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query("SELECT name, holder, token, expires_at FROM leases ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(lease_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
