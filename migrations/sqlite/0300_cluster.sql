-- Several Ringback nodes on one database (twin of migrations/postgres/0300).
-- nodes: one row per running node, refreshed while it runs (last_seen), so the others can
-- tell a live node from a dead one. leases: named exclusive jobs (the leader that processes
-- events and sends, ...): `holder` owns `name` until `expires_at`; `token` grows with every
-- change of holder, so a node that lost its lease cannot act on a stale grant (a fencing token).
-- Times are unix milliseconds. NOT NULL on the TEXT keys: SQLite would otherwise accept a
-- NULL primary key, which PostgreSQL (and `ringback store copy`) would not.
CREATE TABLE nodes (
    id         TEXT    NOT NULL PRIMARY KEY,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    address    TEXT,
    version    TEXT
);

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- A claimed send (state 'sending') belongs to one node until lease_until; after that another
-- node may treat it as abandoned by a dead node. NULL when not claimed.
ALTER TABLE messages ADD COLUMN lease_owner TEXT;
ALTER TABLE messages ADD COLUMN lease_until INTEGER;
