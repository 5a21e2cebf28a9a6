-- Click-to-chat links (src/links.rs): wa.me links, QR codes and tracked short links.

CREATE TABLE links (
    code            TEXT PRIMARY KEY,
    sender_id       TEXT    NOT NULL,
    number          TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    tracked         INTEGER NOT NULL,
    meta_code       TEXT,
    meta_deep_link  TEXT,
    clicks          INTEGER NOT NULL DEFAULT 0,
    -- Customers whose message carried the link's reference (each counted once).
    conversations   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_clicked_at INTEGER
);
CREATE INDEX links_created ON links (created_at);

-- Who came through which link: a customer is attributed to a link once.
CREATE TABLE link_contacts (
    code      TEXT    NOT NULL,
    sender_id TEXT    NOT NULL,
    contact   TEXT    NOT NULL,
    first_at  INTEGER NOT NULL,
    PRIMARY KEY (code, sender_id, contact)
);
