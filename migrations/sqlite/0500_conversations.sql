-- Conversations and events (src/conversation.rs, src/events.rs).

-- Facts written in the same transaction as what they describe, until the conversation
-- tracker publishes them as events (and deletes them).
CREATE TABLE event_journal (
    id        INTEGER PRIMARY KEY,
    kind      TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    fact_json TEXT    NOT NULL
);

CREATE TABLE conversations (
    id              TEXT PRIMARY KEY,
    sender_id       TEXT    NOT NULL,
    contact         TEXT    NOT NULL,
    contact_name    TEXT,
    kind            TEXT    NOT NULL,
    started_at      INTEGER NOT NULL,
    last_message_at INTEGER NOT NULL,
    message_count   INTEGER NOT NULL,
    ended_at        INTEGER,
    end_reason      TEXT
);
-- At most one open conversation per (number, contact).
CREATE UNIQUE INDEX conversations_open ON conversations(sender_id, contact) WHERE ended_at IS NULL;
CREATE INDEX conversations_started ON conversations(started_at, id);
CREATE INDEX conversations_contact ON conversations(contact, started_at, id);
CREATE INDEX conversations_idle ON conversations(last_message_at) WHERE ended_at IS NULL;
-- The list of open conversations, newest first.
CREATE INDEX conversations_open_started ON conversations(started_at, id) WHERE ended_at IS NULL;

CREATE TABLE conversation_messages (
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    direction       TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    wamid           TEXT,
    kind            TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    status_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- A customer's messages from one number over a period: those a conversation that ends
-- claims when the journal has not reached them yet.
CREATE INDEX messages_recipient ON messages(sender_id, to_number, created_at);

-- Published events: id is the cursor of the API, the stream and the webhooks.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    type            TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    conversation_id TEXT,
    data_json       TEXT    NOT NULL
);
CREATE INDEX events_type ON events(type, id);

CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    event_types     TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    previous_secret TEXT,
    previous_until  INTEGER,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT,
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL,
    event_id        INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    ordering_key    TEXT,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    last_status     INTEGER,
    last_error      TEXT
);
-- The queue of each endpoint, oldest first; the earliest pending delivery of a conversation
-- (which holds the later ones back); when the next one is due; the delivery log.
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(endpoint_id, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint_id, ordering_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);

CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL,
    attempt_no  INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    response    TEXT    NOT NULL,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt_no)
);
