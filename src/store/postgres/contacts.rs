//! PostgreSQL: contacts and consent: who wrote when (the 24-hour window), the consent ledger, click-to-WhatsApp entry points.

use super::*;

/// The person's `contacts` row and `consent_state` rows in one round trip: a `k` column says
/// which table each row comes from, the other table's columns are NULL.
const POLICY_ROWS: &str = "
SELECT 'contact' AS k, sender_id, wa_id AS subject, last_inbound_at, referral_at, free_until,
       NULL::text AS category, NULL::text AS action, NULL::bigint AS at
FROM contacts WHERE sender_id = $1 AND wa_id = $2
UNION ALL
SELECT 'consent', sender_id, subject, NULL, NULL, NULL, category, action, at
FROM consent_state WHERE sender_id = $1 AND subject = $2";

#[async_trait]
impl ContactStore for PostgresStore {
    async fn contacts(&self, keys: &[(String, String)]) -> Result<Vec<Contact>, StoreError> {
        let (senders, wa_ids): (Vec<&str>, Vec<&str>) =
            keys.iter().map(|(s, w)| (s.as_str(), w.as_str())).unzip();
        let rows = sqlx::query(
            "SELECT sender_id, wa_id, name, last_inbound_at, last_reply_at, last_reply_message_id
             FROM contacts WHERE (sender_id, wa_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))",
        )
        .bind(&senders)
        .bind(&wa_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Contact {
                    sender_id: r.try_get("sender_id")?,
                    wa_id: r.try_get("wa_id")?,
                    name: r.try_get("name")?,
                    last_inbound_at: r.try_get("last_inbound_at")?,
                    last_reply_at: r.try_get("last_reply_at")?,
                    last_reply_message_id: r.try_get("last_reply_message_id")?,
                })
            })
            .collect()
    }
    async fn policy_facts(
        &self,
        sender_id: &str,
        subject: &str,
    ) -> Result<PolicyFacts, StoreError> {
        // From the rows, every time: other nodes write them too, so no cache here is exact.
        let rows = sqlx::query(POLICY_ROWS)
            .bind(sender_id)
            .bind(subject)
            .fetch_all(&self.pool)
            .await?;
        let mut contact = None;
        let mut consent = Vec::new();
        for r in &rows {
            if r.try_get::<String, _>("k")? == "contact" {
                contact = Some(super::policy_index::ContactTimes {
                    sender_id: r.try_get("sender_id")?,
                    wa_id: r.try_get("subject")?,
                    last_inbound_at: r.try_get("last_inbound_at")?,
                    referral_at: r.try_get("referral_at")?,
                    free_until: r.try_get("free_until")?,
                });
            } else {
                consent.push(consent_state_row(r)?);
            }
        }
        Ok(super::policy_index::facts_from_rows(
            contact.as_ref(),
            &consent,
            crate::time::now_ms(),
        ))
    }
    async fn open_free_entry_point(
        &self,
        sender_id: &str,
        subject: &str,
        until: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE contacts SET free_until = $1 WHERE sender_id = $2 AND wa_id = $3 AND free_until IS NULL")
            .bind(until)
            .bind(sender_id)
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
    async fn record_consent(&self, record: &crate::consent::Record) -> Result<(), StoreError> {
        let mut tx = self.tx().await?;
        effects::record_consent(&mut tx, record).await?;
        conversations::journal(&mut tx, &[crate::events::consent(record)]).await?;
        tx.commit().await?;
        self.journaled.notify_one();
        Ok(())
    }
    async fn consent_records(
        &self,
        sender_id: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Vec<crate::consent::Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM consent_records WHERE ($1::text IS NULL OR sender_id = $1) AND ($2::text IS NULL OR subject = $2) ORDER BY at, id",
        )
        .bind(sender_id)
        .bind(subject)
        .fetch_all(&self.pool)
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
        consent_page::after(&self.pool, subject, after_id, limit).await
    }
}
