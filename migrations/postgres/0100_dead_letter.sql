-- Dead-lettered inbound events: an event whose stored JSON cannot be read (or whose
-- processing finds unreadable stored data) is set aside with the reason instead of blocking
-- every event after it. The row stays for inspection; `ringback events retry` clears both
-- columns so the processor picks it up again. (PostgreSQL twin of migrations/sqlite/0100.)
ALTER TABLE inbound_events ADD COLUMN dead_at BIGINT;
ALTER TABLE inbound_events ADD COLUMN dead_reason TEXT;
CREATE INDEX inbound_events_dead ON inbound_events(id) WHERE dead_at IS NOT NULL;
