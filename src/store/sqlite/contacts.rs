//! SQLite: contacts and consent: who wrote when (the 24-hour window), the consent ledger, click-to-WhatsApp entry points.

use super::*;

#[async_trait]
impl ContactStore for SqliteStore {
    async fn contacts(&self, keys: &[(String, String)]) -> Result<Vec<Contact>, StoreError> {
        let keys = keys.to_vec();
        self.reader
            .run(move |c| {
                rows_for_pairs(
                    c,
                    "SELECT sender_id, wa_id, name, last_inbound_at, last_reply_at, last_reply_message_id
                     FROM contacts WHERE (sender_id, wa_id) IN (VALUES {})",
                    &keys,
                    |r| {
                        Ok(Contact {
                            sender_id: r.get(0)?,
                            wa_id: r.get(1)?,
                            name: r.get(2)?,
                            last_inbound_at: r.get(3)?,
                            last_reply_at: r.get(4)?,
                            last_reply_message_id: r.get(5)?,
                        })
                    },
                )
            })
            .await
    }
    async fn policy_facts(
        &self,
        sender_id: &str,
        subject: &str,
    ) -> Result<PolicyFacts, StoreError> {
        // From memory: this process is the only writer of the file, so the index is exact.
        Ok(self.index.policy_facts(sender_id, subject))
    }
    async fn open_free_entry_point(
        &self,
        sender_id: &str,
        subject: &str,
        until: Millis,
    ) -> Result<(), StoreError> {
        let _turn = self.writer.turn().await?;
        sqlx::query("UPDATE contacts SET free_until = $1 WHERE sender_id = $2 AND wa_id = $3 AND free_until IS NULL")
            .bind(until)
            .bind(sender_id)
            .bind(subject)
            .execute(&self.write)
            .await?;
        self.index.free_until(sender_id, subject, until);
        Ok(())
    }
    async fn record_consent(&self, record: &crate::consent::Record) -> Result<(), StoreError> {
        let owned = record.clone();
        self.writer
            .run(move |c| {
                effects::record_consent(c, &owned)?;
                super::conversations::journal(c, &crate::events::consent(&owned))
            })
            .await?;
        self.journaled.notify_one();
        self.index.consent(
            &record.sender_id,
            &record.subject,
            (record.category, record.action, record.at),
        );
        Ok(())
    }
    async fn consent_records(
        &self,
        sender_id: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<crate::consent::Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM consent_records WHERE ($1 IS NULL OR sender_id = $1) AND ($2 IS NULL OR subject = $2) ORDER BY at, id",
        )
        .bind(sender_id)
        .bind(subject)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(consent_record_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
    async fn consent_records_after(
        &self,
        subject: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, crate::consent::Record)>, StoreError> {
        consent_page::after(&self.read, subject, after_id, limit).await
    }
}
