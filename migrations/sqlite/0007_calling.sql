-- WhatsApp Business Calling.
-- The call-permission state of each (business number, user) pair: the whole record of
-- calling::permission::PermissionRecord as JSON, because it is only ever read and written whole
-- by the permission book (which holds a lock around read-modify-write).
CREATE TABLE call_permissions (
    sender_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    record     TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sender_id, user_id)
);

-- Every change of a permission: the call.permission_changed events, append-only.
CREATE TABLE call_permission_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX call_permission_events_pair ON call_permission_events (sender_id, user_id, id);

-- Calls the business placed through POST /api/v1/calls, and what became of them.
CREATE TABLE business_calls (
    id         TEXT PRIMARY KEY,
    sender_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    wacid      TEXT UNIQUE,
    status     TEXT NOT NULL,
    reason     TEXT,
    duration   INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
