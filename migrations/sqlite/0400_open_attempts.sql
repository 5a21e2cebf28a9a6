-- The attempts still open (claimed ahead, or in flight): the leader looks for them on every
-- maintenance pass (after a restart, or a node's lease lapsing). Without these, each pass
-- scanned every attempt ever made, hundreds of milliseconds per second at 100k sends a day.
CREATE INDEX IF NOT EXISTS attempts_claimed ON attempts(message_id) WHERE outcome = 'claimed';
CREATE INDEX IF NOT EXISTS attempts_in_flight ON attempts(message_id) WHERE outcome = 'in_flight';
