//! [`LinkStore`](super::LinkStore), written once for both backends (see [`super::twin`] for why
//! that works). It is expanded in the module where [`super::twin::twin_store!`] is, and
//! journals `link.clicked` with that macro's `journal_fact`.

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type.
macro_rules! twin_link_store {
    ($store:ty, $read:ident, $row:ty) => {
        use $crate::links::Link;
        use $crate::store::LinkStore;

        fn link_from_row(r: &$row) -> Result<Link, sqlx::Error> {
            Ok(Link {
                code: r.try_get("code")?,
                sender_id: r.try_get("sender_id")?,
                number: r.try_get("number")?,
                text: r.try_get("text")?,
                source: r.try_get("source")?,
                tracked: r.try_get("tracked")?,
                meta_code: r.try_get("meta_code")?,
                meta_deep_link: r.try_get("meta_deep_link")?,
                clicks: r.try_get("clicks")?,
                conversations: r.try_get("conversations")?,
                created_at: r.try_get("created_at")?,
                last_clicked_at: r.try_get("last_clicked_at")?,
            })
        }

        #[async_trait]
        impl LinkStore for $store {
            async fn create_link(&self, l: &Link) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let n = sqlx::query(
                    "INSERT INTO links (code, sender_id, number, text, source, tracked, meta_code,
                         meta_deep_link, clicks, conversations, created_at, last_clicked_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, NULL)
                     ON CONFLICT (code) DO NOTHING",
                )
                .bind(&l.code)
                .bind(&l.sender_id)
                .bind(&l.number)
                .bind(&l.text)
                .bind(&l.source)
                .bind(l.tracked)
                .bind(&l.meta_code)
                .bind(&l.meta_deep_link)
                .bind(l.created_at)
                .execute(tx.as_mut())
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn links(&self, limit: u32) -> Result<Vec<Link>, StoreError> {
                let rows =
                    sqlx::query("SELECT * FROM links ORDER BY created_at DESC, code LIMIT $1")
                        .bind(i64::from(limit))
                        .fetch_all(&self.$read)
                        .await?;
                Ok(rows.iter().map(link_from_row).collect::<Result<_, _>>()?)
            }

            async fn link(&self, code: &str) -> Result<Option<Link>, StoreError> {
                let row = sqlx::query("SELECT * FROM links WHERE code = $1")
                    .bind(code)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(link_from_row).transpose()?)
            }

            async fn link_contact_seen(
                &self,
                code: &str,
                sender_id: &str,
                contact: &str,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "SELECT 1 FROM link_contacts WHERE code = $1 AND sender_id = $2 AND contact = $3",
                )
                .bind(code)
                .bind(sender_id)
                .bind(contact)
                .fetch_optional(&self.$read)
                .await?;
                Ok(row.is_some())
            }

            async fn link_clicked(&self, code: &str, at: i64) -> Result<Option<Link>, StoreError> {
                let mut tx = self.tx().await?;
                let row = sqlx::query(
                    "UPDATE links SET clicks = clicks + 1, last_clicked_at = $2
                     WHERE code = $1 AND tracked RETURNING *",
                )
                .bind(code)
                .bind(at)
                .fetch_optional(tx.as_mut())
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let link = link_from_row(&row)?;
                journal_fact(
                    tx.as_mut(),
                    &Fact::LinkClicked {
                        code: link.code.clone(),
                        source: link.source.clone(),
                        sender_id: link.sender_id.clone(),
                        clicks: link.clicks,
                        at,
                    },
                )
                .await?;
                tx.commit().await?;
                self.journaled.notify_one();
                Ok(Some(link))
            }
        }
    };
}

pub(crate) use twin_link_store;
