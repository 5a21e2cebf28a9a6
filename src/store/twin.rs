//! Queries written once for both backends: conversations, events and webhook endpoints.
//!
//! These tables were designed after the store split, with column types both engines read the
//! same way (`i64` for SQLite INTEGER and PostgreSQL BIGINT, `bool` for INTEGER 0/1 and
//! BOOLEAN, JSON as TEXT) and SQL both accept (`$N` parameters, row values, `RETURNING`). So
//! the statements are not written twice: [`twin_store!`] expands the same code into each
//! backend, where it is type-checked against that backend's sqlx driver. The writes a backend
//! does differently are the hot ones, [`ConversationStore::publish`] and
//! [`WebhookStore::record_deliveries`]: SQLite's go through its writer thread (and join its
//! group commits), PostgreSQL's are a few array statements; each backend has its own
//! `publish_impl` and `record_deliveries_impl`. So are the tracker's reads (`read_journal`,
//! `read_outbound`, `read_lines`, `read_open_conversations`): SQLite answers them on its reader
//! thread, without sqlx's per-row hops.

/// `$store`: the backend's store type; `$read`: its read pool field; `$row`: its row type;
/// `$conn`: its connection type.
/// The backend supplies `self.tx()` (a write transaction, `AsMut` to its connection) and
/// `self.publish_impl(p, fence)` and `self.record_deliveries_impl(…)`, the two hot writes.
macro_rules! twin_store {
    ($store:ty, $read:ident, $row:ty, $conn:ty) => {
        use $crate::conversation::{Conversation, Line, OutboundMessage};
        use $crate::events::{Event, Fact, JournalEntry};
        use $crate::store::{
            ConversationQuery, ConversationStore, Delivery, DeliveryAttempt, DeliveryQuery,
            DeliveryResult, DueDelivery, Endpoint, Publication, WebhookStore,
        };

        /// Journals one fact in the caller's transaction (a sqlx write: record_fact, an
        /// endpoint disabled, a call permission changed).
        pub(super) async fn journal_fact(conn: &mut $conn, fact: &Fact) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO event_journal (kind, at, fact_json) VALUES ($1, $2, $3)")
                .bind(fact.kind())
                .bind(fact.at())
                .bind(fact.to_json())
                .execute(conn)
                .await?;
            Ok(())
        }

        fn placeholders(from: usize, n: usize) -> String {
            (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        }

        fn u32_of(v: i64) -> u32 {
            u32::try_from(v).unwrap_or(u32::MAX)
        }

        fn conversation_from_row(r: &$row) -> Result<Conversation, sqlx::Error> {
            Ok(Conversation {
                id: r.try_get("id")?,
                sender_id: r.try_get("sender_id")?,
                contact: r.try_get("contact")?,
                contact_name: r.try_get("contact_name")?,
                kind: r.try_get("kind")?,
                started_at: r.try_get("started_at")?,
                last_message_at: r.try_get("last_message_at")?,
                message_count: u32_of(r.try_get("message_count")?),
                ended_at: r.try_get("ended_at")?,
                end_reason: r.try_get("end_reason")?,
            })
        }

        fn line_from_row(r: &$row) -> Result<Line, sqlx::Error> {
            Ok(Line {
                conversation_id: r.try_get("conversation_id")?,
                seq: u32_of(r.try_get("seq")?),
                direction: r.try_get("direction")?,
                message_id: r.try_get("message_id")?,
                wamid: r.try_get("wamid")?,
                kind: r.try_get("kind")?,
                text: r.try_get("text")?,
                status: r.try_get("status")?,
                at: r.try_get("at")?,
                status_at: r.try_get("status_at")?,
            })
        }

        fn event_from_row(r: &$row) -> Result<Event, sqlx::Error> {
            let data: String = r.try_get("data_json")?;
            Ok(Event {
                id: r.try_get("id")?,
                kind: r.try_get("type")?,
                at: r.try_get("at")?,
                conversation_id: r.try_get("conversation_id")?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            })
        }

        fn endpoint_from_row(r: &$row) -> Result<Endpoint, sqlx::Error> {
            let types: String = r.try_get("event_types")?;
            Ok(Endpoint {
                id: r.try_get("id")?,
                url: r.try_get("url")?,
                description: r.try_get("description")?,
                event_types: serde_json::from_str(&types).unwrap_or_default(),
                secret: r.try_get("secret")?,
                previous_secret: r.try_get("previous_secret")?,
                previous_until: r.try_get("previous_until")?,
                enabled: r.try_get("enabled")?,
                disabled_reason: r.try_get("disabled_reason")?,
                failing_since: r.try_get("failing_since")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn delivery_from_row(r: &$row) -> Result<Delivery, sqlx::Error> {
            Ok(Delivery {
                id: r.try_get("id")?,
                endpoint_id: r.try_get("endpoint_id")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                state: r.try_get("state")?,
                attempts: u32_of(r.try_get("attempts")?),
                next_attempt_at: r.try_get("next_attempt_at")?,
                created_at: r.try_get("created_at")?,
                finished_at: r.try_get("finished_at")?,
                last_status: r
                    .try_get::<Option<i64>, _>("last_status")?
                    .and_then(|s| u16::try_from(s).ok()),
                last_error: r.try_get("last_error")?,
            })
        }

        fn outbound_from_row(r: &$row) -> Result<OutboundMessage, sqlx::Error> {
            Ok(OutboundMessage {
                id: r.try_get("id")?,
                sender_id: r.try_get("sender_id")?,
                to: r.try_get("to_number")?,
                kind: r.try_get("kind")?,
                body_json: r.try_get("body_json")?,
                idempotency_key: r.try_get("idempotency_key")?,
                state: r.try_get("state")?,
                wamid: r.try_get("wamid")?,
                created_at: r.try_get("created_at")?,
            })
        }

        const DELIVERY_COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, d.event_type, d.state, d.attempts,
            d.next_attempt_at, d.created_at, d.finished_at, d.last_status, d.last_error";

        #[async_trait]
        impl ConversationStore for $store {
            fn journaled(&self) -> std::sync::Arc<tokio::sync::Notify> {
                self.journaled.clone()
            }

            async fn journal(&self, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
                self.read_journal(limit).await
            }

            async fn record_fact(&self, fact: &Fact) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                journal_fact(tx.as_mut(), fact).await?;
                tx.commit().await?;
                self.journaled.notify_one();
                Ok(())
            }

            async fn open_conversations(
                &self,
                pairs: &[(String, String)],
            ) -> Result<Vec<Conversation>, StoreError> {
                self.read_open_conversations(pairs).await
            }

            async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
                let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(conversation_from_row).transpose()?)
            }

            async fn conversations(
                &self,
                q: &ConversationQuery,
            ) -> Result<Vec<Conversation>, StoreError> {
                let mut clauses: Vec<String> = Vec::new();
                let mut texts: Vec<(usize, String)> = Vec::new();
                let mut ints: Vec<(usize, i64)> = Vec::new();
                let mut n = 0;
                let mut next = || {
                    n += 1;
                    n
                };
                match q.open {
                    Some(true) => clauses.push("ended_at IS NULL".into()),
                    Some(false) => clauses.push("ended_at IS NOT NULL".into()),
                    None => {}
                }
                if let Some(s) = &q.sender_id {
                    let i = next();
                    clauses.push(format!("sender_id = ${i}"));
                    texts.push((i, s.clone()));
                }
                if let Some(c) = &q.contact {
                    let i = next();
                    clauses.push(format!("contact = ${i}"));
                    texts.push((i, c.clone()));
                }
                if let Some(text) = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                    // LIKE patterns with the user's own % and _ taken literally.
                    let like = |t: &str| {
                        let escaped = t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                        format!("%{escaped}%")
                    };
                    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                    let (a, b) = (next(), next());
                    clauses.push(format!(
                        "(contact LIKE ${a} ESCAPE '\\' OR LOWER(COALESCE(contact_name, '')) LIKE ${b} ESCAPE '\\')"
                    ));
                    // A number is searched by its digits ("+91 98765" finds 9198765…); a
                    // search with no digit matches no number (no contact is empty).
                    let number = if digits.is_empty() { String::new() } else { like(&digits) };
                    texts.push((a, number));
                    texts.push((b, like(&text.to_lowercase())));
                }
                if let Some(t) = q.started_after {
                    let i = next();
                    clauses.push(format!("started_at >= ${i}"));
                    ints.push((i, t));
                }
                if let Some(t) = q.started_before {
                    let i = next();
                    clauses.push(format!("started_at < ${i}"));
                    ints.push((i, t));
                }
                if let Some((at, id)) = &q.before {
                    let (a, b) = (next(), next());
                    // A row value, which both engines answer from the index.
                    clauses.push(format!("(started_at, id) < (${a}, ${b})"));
                    ints.push((a, *at));
                    texts.push((b, id.clone()));
                }
                let limit = next();
                let filter = if clauses.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", clauses.join(" AND "))
                };
                let sql = format!(
                    "SELECT * FROM conversations {filter} ORDER BY started_at DESC, id DESC LIMIT ${limit}"
                );
                // Binds go in placeholder order.
                let mut binds: Vec<(usize, Result<i64, String>)> = texts
                    .into_iter()
                    .map(|(i, t)| (i, Err(t)))
                    .chain(ints.into_iter().map(|(i, v)| (i, Ok(v))))
                    .collect();
                binds.sort_by_key(|(i, _)| *i);
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (_, b) in binds {
                    query = match b {
                        Ok(v) => query.bind(v),
                        Err(t) => query.bind(t),
                    };
                }
                let rows = query.bind(i64::from(q.limit)).fetch_all(&self.$read).await?;
                Ok(rows.iter().map(conversation_from_row).collect::<Result<_, _>>()?)
            }

            async fn transcript(&self, id: &str) -> Result<Vec<Line>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM conversation_messages WHERE conversation_id = $1 ORDER BY seq",
                )
                .bind(id)
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(line_from_row).collect::<Result<_, _>>()?)
            }

            async fn lines_of_messages(&self, ids: &[String]) -> Result<Vec<Line>, StoreError> {
                self.read_lines(ids).await
            }

            async fn outbound_messages(
                &self,
                ids: &[String],
                wamids: &[String],
            ) -> Result<Vec<OutboundMessage>, StoreError> {
                self.read_outbound(ids, wamids).await
            }

            async fn messages_to(
                &self,
                sender_id: &str,
                to: &str,
                from: Millis,
                until: Millis,
            ) -> Result<Vec<OutboundMessage>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, sender_id, to_number, kind, body_json, idempotency_key, state, wamid, created_at
                     FROM messages WHERE sender_id = $1 AND to_number = $2 AND created_at BETWEEN $3 AND $4
                     ORDER BY created_at",
                )
                .bind(sender_id)
                .bind(to)
                .bind(from)
                .bind(until)
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(outbound_from_row).collect::<Result<_, _>>()?)
            }

            async fn idle_conversations(
                &self,
                before: Millis,
                limit: u32,
            ) -> Result<Vec<Conversation>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM conversations WHERE ended_at IS NULL AND last_message_at < $1
                     ORDER BY last_message_at LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(conversation_from_row).collect::<Result<_, _>>()?)
            }

            async fn publish(
                &self,
                p: Publication,
                fence: Option<&Fence>,
            ) -> Result<Vec<i64>, StoreError> {
                self.publish_impl(p, fence).await
            }

            async fn events_after(
                &self,
                after: i64,
                types: &[String],
                limit: u32,
            ) -> Result<Vec<Event>, StoreError> {
                let filter = if types.is_empty() {
                    String::new()
                } else {
                    format!("AND type IN ({})", placeholders(3, types.len()))
                };
                let sql = format!("SELECT * FROM events WHERE id > $1 {filter} ORDER BY id LIMIT $2");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(after).bind(i64::from(limit));
                for t in types {
                    q = q.bind(t);
                }
                let rows = q.fetch_all(&self.$read).await?;
                Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
            }

            async fn event(&self, id: i64) -> Result<Option<Event>, StoreError> {
                let row = sqlx::query("SELECT * FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(event_from_row).transpose()?)
            }
        }

        #[async_trait]
        impl WebhookStore for $store {
            async fn create_endpoint(&self, e: &Endpoint) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query(
                    "INSERT INTO webhook_endpoints (id, url, description, event_types, secret, previous_secret,
                         previous_until, enabled, disabled_reason, failing_since, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&e.id)
                .bind(&e.url)
                .bind(&e.description)
                .bind(serde_json::to_string(&e.event_types).unwrap_or_default())
                .bind(&e.secret)
                .bind(&e.previous_secret)
                .bind(e.previous_until)
                .bind(e.enabled)
                .bind(&e.disabled_reason)
                .bind(e.failing_since)
                .bind(e.created_at)
                .execute(tx.as_mut())
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
                let rows = sqlx::query("SELECT * FROM webhook_endpoints ORDER BY created_at, id")
                    .fetch_all(&self.$read)
                    .await?;
                Ok(rows.iter().map(endpoint_from_row).collect::<Result<_, _>>()?)
            }

            async fn endpoint(&self, id: &str) -> Result<Option<Endpoint>, StoreError> {
                let row = sqlx::query("SELECT * FROM webhook_endpoints WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$read)
                    .await?;
                Ok(row.as_ref().map(endpoint_from_row).transpose()?)
            }

            async fn update_endpoint(&self, e: &Endpoint) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                let n = sqlx::query(
                    "UPDATE webhook_endpoints SET url = $2, description = $3, event_types = $4, secret = $5,
                         previous_secret = $6, previous_until = $7, enabled = $8, disabled_reason = $9,
                         failing_since = $10 WHERE id = $1",
                )
                .bind(&e.id)
                .bind(&e.url)
                .bind(&e.description)
                .bind(serde_json::to_string(&e.event_types).unwrap_or_default())
                .bind(&e.secret)
                .bind(&e.previous_secret)
                .bind(e.previous_until)
                .bind(e.enabled)
                .bind(&e.disabled_reason)
                .bind(e.failing_since)
                .execute(tx.as_mut())
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn disable_endpoint(&self, id: &str, reason: &str, fact: &Fact) -> Result<(), StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query("UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3 WHERE id = $1")
                    .bind(id)
                    .bind(false)
                    .bind(reason)
                    .execute(tx.as_mut())
                    .await?;
                journal_fact(tx.as_mut(), fact).await?;
                tx.commit().await?;
                self.journaled.notify_one();
                Ok(())
            }

            async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
                let mut tx = self.tx().await?;
                sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(tx.as_mut())
                    .await?;
                let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                    .bind(id)
                    .execute(tx.as_mut())
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn due_deliveries(
                &self,
                endpoint_id: &str,
                now: Millis,
                limit: u32,
            ) -> Result<Vec<DueDelivery>, StoreError> {
                // A delivery waits while an earlier one of its conversation is pending: a
                // receiver sees a conversation's events in order, whatever the retries. The
                // queue is read in id order through its index and stops at the limit; the `+`
                // keeps the planner from ranging over `next_attempt_at` instead and sorting
                // the whole queue.
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS}, e.type, e.at, e.conversation_id, e.data_json
                     FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
                     WHERE d.endpoint_id = $1 AND d.state = 'pending' AND +d.next_attempt_at <= $2
                       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                           WHERE p.endpoint_id = d.endpoint_id AND p.state = 'pending'
                             AND p.ordering_key = d.ordering_key AND p.id < d.id)
                     ORDER BY d.id LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(endpoint_id)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$read)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let delivery = delivery_from_row(r)?;
                        let data: String = r.try_get("data_json")?;
                        let event = Event {
                            id: delivery.event_id,
                            kind: r.try_get("type")?,
                            at: r.try_get("at")?,
                            conversation_id: r.try_get("conversation_id")?,
                            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                        };
                        Ok(DueDelivery { delivery, event })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(StoreError::from)
            }

            async fn next_delivery_at(&self, endpoint_id: &str) -> Result<Option<Millis>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE endpoint_id = $1 AND state = 'pending'",
                )
                .bind(endpoint_id)
                .fetch_one(&self.$read)
                .await?)
            }

            async fn record_deliveries(
                &self,
                endpoint_id: &str,
                results: &[DeliveryResult],
                failing_since: Option<Millis>,
            ) -> Result<(), StoreError> {
                self.record_deliveries_impl(endpoint_id, results, failing_since).await
            }

            async fn deliveries(&self, q: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM webhook_deliveries d
                     WHERE ($1 IS NULL OR d.endpoint_id = $1) AND ($2 IS NULL OR d.state = $2)
                       AND ($3 IS NULL OR d.id < $3)
                     ORDER BY d.id DESC LIMIT $4",
                )
                .bind(&q.endpoint_id)
                .bind(&q.state)
                .bind(q.before_id)
                .bind(i64::from(q.limit))
                .fetch_all(&self.$read)
                .await?;
                Ok(rows.iter().map(delivery_from_row).collect::<Result<_, _>>()?)
            }

            async fn delivery(
                &self,
                id: i64,
            ) -> Result<Option<(Delivery, Vec<DeliveryAttempt>)>, StoreError> {
                let Some(row) = sqlx::query("SELECT * FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$read)
                    .await?
                else {
                    return Ok(None);
                };
                let attempts = sqlx::query(
                    "SELECT * FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_no",
                )
                .bind(id)
                .fetch_all(&self.$read)
                .await?
                .iter()
                .map(|r| {
                    Ok(DeliveryAttempt {
                        attempt_no: u32_of(r.try_get("attempt_no")?),
                        at: r.try_get("at")?,
                        status: r.try_get::<Option<i64>, _>("status")?.and_then(|s| u16::try_from(s).ok()),
                        latency_ms: u32_of(r.try_get("latency_ms")?),
                        response: r.try_get("response")?,
                        error: r.try_get("error")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?;
                Ok(Some((delivery_from_row(&row)?, attempts)))
            }

            async fn replay(
                &self,
                id: Option<i64>,
                endpoint_id: Option<&str>,
                range: Option<(Millis, Millis)>,
                now: Millis,
            ) -> Result<u64, StoreError> {
                let (from, to) = range.unwrap_or((Millis::MIN, Millis::MAX));
                let mut tx = self.tx().await?;
                let n = sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $4, finished_at = NULL
                     WHERE ($1 IS NULL OR id = $1) AND ($2 IS NULL OR endpoint_id = $2)
                       AND event_id IN (SELECT id FROM events WHERE at >= $3 AND at < $5)",
                )
                .bind(id)
                .bind(endpoint_id)
                .bind(from)
                .bind(now)
                .bind(to)
                .execute(tx.as_mut())
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n)
            }
        }
    };
}

pub(crate) use twin_store;
