-- Retention of what the conversations work added (src/retention.rs): finished webhook
-- deliveries by when they finished, events by when they happened (kept while a delivery
-- points at one), ended conversations by when they ended.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries(finished_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
CREATE INDEX events_at ON events(at);
CREATE INDEX conversations_ended ON conversations(ended_at) WHERE ended_at IS NOT NULL;
