-- AI assistants (src/assistants): memory per (assistant, customer identifier).

CREATE TABLE assistant_threads (
    id              TEXT PRIMARY KEY,
    assistant       TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    handed_off_at   INTEGER,
    hand_off_reason TEXT,
    -- What the assistant recorded (declared variables), a JSON object.
    variables_json  TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (assistant, customer_id)
);

-- Each question and each answer; an answer carries what it cost.
CREATE TABLE assistant_turns (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id         TEXT    NOT NULL REFERENCES assistant_threads (id) ON DELETE CASCADE,
    at                INTEGER NOT NULL,
    role              TEXT    NOT NULL,
    content           TEXT    NOT NULL,
    -- model, knowledge or hand_off (answers only)
    source            TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cost              REAL,
    latency_ms        INTEGER,
    error             TEXT
);
CREATE INDEX assistant_turns_thread ON assistant_turns (thread_id, id);
-- Retention takes the threads not replied to for longest.
CREATE INDEX assistant_threads_updated ON assistant_threads (updated_at);

-- Auto-reply paused for a customer of a number (a person answered through the API, or the
-- assistant handed off): for that conversation, or, when none was open, for conversations
-- that started by `at`. The customer's next conversation is answered again.
CREATE TABLE assistant_pauses (
    sender_id       TEXT NOT NULL,
    contact         TEXT NOT NULL,
    conversation_id TEXT,
    at        INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (sender_id, contact)
);

-- Conversations that ended on a number whose assistant extracts variables: `conversation.ended`
-- (its payload here) is published once the extraction is done (src/assistants/evaluate.rs).
CREATE TABLE assistant_endings (
    conversation_id TEXT PRIMARY KEY,
    assistant       TEXT NOT NULL,
    at              INTEGER NOT NULL,
    payload_json    TEXT NOT NULL,
    -- Set once `Fact::Evaluated` is journaled: the row stays a week, so that a conversation
    -- ended again by a tracker pass that had to be redone is not evaluated (and published)
    -- twice.
    evaluated_at    INTEGER
);
