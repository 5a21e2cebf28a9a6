-- Ringback core schema (SQLite). Times are unix milliseconds (INTEGER).
-- Never edit an applied migration; add a new file.

-- Every accepted webhook request, byte for byte: for audit and replay.
CREATE TABLE raw_payloads (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    received_at INTEGER NOT NULL
);

-- One row per event inside a request. dedup_key makes a redelivery a no-op.
CREATE TABLE inbound_events (
    id           INTEGER PRIMARY KEY,
    raw_id       INTEGER NOT NULL REFERENCES raw_payloads(id),
    source       TEXT    NOT NULL,
    dedup_key    TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    event_json   TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    processed_at INTEGER,
    note         TEXT
);
CREATE INDEX inbound_events_pending ON inbound_events(id) WHERE processed_at IS NULL;

-- One row per (business number, WhatsApp user).
CREATE TABLE contacts (
    sender_id              TEXT NOT NULL,
    wa_id                  TEXT NOT NULL,
    name                   TEXT,
    last_inbound_at        INTEGER,
    last_reply_at          INTEGER,
    last_reply_message_id  TEXT,
    PRIMARY KEY (sender_id, wa_id)
);

-- Messages users sent us.
CREATE TABLE inbound_messages (
    wamid        TEXT PRIMARY KEY,
    sender_id    TEXT NOT NULL,
    from_wa_id   TEXT,
    from_user_id TEXT,
    message_type TEXT NOT NULL,
    text         TEXT,
    context_id   TEXT,
    unknown_type INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL,
    event_id     INTEGER NOT NULL REFERENCES inbound_events(id)
);

-- Calls and what Ringback decided about each.
CREATE TABLE calls (
    id               INTEGER PRIMARY KEY,
    source           TEXT    NOT NULL,
    provider_call_id TEXT    NOT NULL,
    sender_id        TEXT,
    caller_raw       TEXT    NOT NULL,
    caller_e164      TEXT,
    callee_raw       TEXT,
    outcome          TEXT    NOT NULL,
    ring_seconds     INTEGER,
    missed           INTEGER NOT NULL,
    decision         TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    message_id       TEXT,
    occurred_at      INTEGER NOT NULL,
    UNIQUE (source, provider_call_id)
);

-- The outbox and the history of everything we sent.
-- state: queued -> sending -> accepted -> sent -> delivered -> read, or failed;
-- uncertain = in flight when the process stopped.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    sender_id       TEXT    NOT NULL,
    to_number       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    body_json       TEXT    NOT NULL,
    idempotency_key TEXT UNIQUE,
    reason          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    wamid           TEXT UNIQUE,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    error_code      INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_due ON messages(sender_id, next_attempt_at) WHERE state = 'queued';
CREATE INDEX messages_open ON messages(state) WHERE state IN ('queued', 'sending', 'uncertain');
CREATE INDEX messages_created ON messages(created_at);

-- One row per attempt, written before the request is made.
CREATE TABLE attempts (
    message_id  TEXT    NOT NULL REFERENCES messages(id),
    attempt_no  INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT    NOT NULL,
    error_code  INTEGER,
    detail      TEXT,
    PRIMARY KEY (message_id, attempt_no)
);

-- Status webhooks, deduplicated by (wamid, status).
CREATE TABLE message_statuses (
    wamid      TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    message_id TEXT,
    at         INTEGER NOT NULL,
    error_code INTEGER,
    detail     TEXT,
    PRIMARY KEY (wamid, status)
);
CREATE INDEX message_statuses_message ON message_statuses(message_id);
