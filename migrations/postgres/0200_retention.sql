-- Retention (src/retention.rs): indexes that let the worker find old rows in small batches
-- without scanning whole tables, and let the database check foreign keys when a parent row is
-- deleted (PostgreSQL, like SQLite, does not index a referencing column by itself).
-- (PostgreSQL twin of migrations/sqlite/0200.)
CREATE INDEX IF NOT EXISTS raw_payloads_received ON raw_payloads(received_at);
CREATE INDEX IF NOT EXISTS inbound_events_raw ON inbound_events(raw_id);
CREATE INDEX IF NOT EXISTS inbound_events_processed ON inbound_events(received_at)
    WHERE processed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbound_messages_event ON inbound_messages(event_id);
CREATE INDEX IF NOT EXISTS inbound_messages_sent ON inbound_messages(sent_at);
CREATE INDEX IF NOT EXISTS calls_occurred ON calls(occurred_at);
CREATE INDEX IF NOT EXISTS attempts_started ON attempts(started_at);
CREATE INDEX IF NOT EXISTS message_statuses_at ON message_statuses(at);
CREATE INDEX IF NOT EXISTS number_events_at ON number_events(at);
-- A contact's last activity of any kind, the column the worker compares with the limit.
-- SQLite's multi-argument scalar max() is GREATEST() here: a PostgreSQL retention query must
-- spell the expression exactly like this for the planner to use the index.
CREATE INDEX IF NOT EXISTS contacts_last_activity ON contacts((
    GREATEST(coalesce(last_inbound_at, 0), coalesce(last_reply_at, 0),
             coalesce(referral_at, 0), coalesce(free_until, 0))));
