-- The consent ledger: every opt-in and opt-out, never updated or deleted (an audit trail),
-- and the current state per (business number, person, category) for O(1) checks.
-- A person is their wa_id (digits) or, for username users without one, "bsuid:<user id>".
CREATE TABLE consent_records (
    id         INTEGER PRIMARY KEY,
    sender_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    wa_id      TEXT,
    user_id    TEXT,
    category   TEXT    NOT NULL,   -- all | marketing | utility
    action     TEXT    NOT NULL,   -- opt_in | opt_out
    source     TEXT    NOT NULL,   -- missed_call | website_form | api | whatsapp_message | import | meta_user_preferences
    evidence   TEXT    NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX consent_records_subject ON consent_records(sender_id, subject, at);

CREATE TABLE consent_state (
    sender_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    record_id  INTEGER NOT NULL REFERENCES consent_records(id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (sender_id, subject, category)
);
