-- Several nodes (PostgreSQL) or one (SQLite) share the same bookkeeping, so the code is one.
-- nodes: who is alive (a heartbeat); leases: who runs a singleton (the processor, a number's
-- lane, retention) until when, with a token that grows at every change of holder (fencing).
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    address TEXT,
    version TEXT
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Which node holds a claimed send, until when: after that another node may take it over.
ALTER TABLE messages ADD COLUMN lease_owner TEXT;
ALTER TABLE messages ADD COLUMN lease_until INTEGER;
