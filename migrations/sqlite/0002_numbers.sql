-- What Meta tells us about each sending number (throughput, quality, messaging tier, status),
-- and the history of those announcements.
CREATE TABLE numbers (
    phone_number_id TEXT PRIMARY KEY,
    throughput      INTEGER,
    quality_rating  TEXT,
    messaging_tier  TEXT,
    status          TEXT,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE number_events (
    id              INTEGER PRIMARY KEY,
    phone_number_id TEXT,
    field           TEXT    NOT NULL,
    event           TEXT,
    detail          TEXT    NOT NULL,
    at              INTEGER NOT NULL
);
CREATE INDEX number_events_number ON number_events(phone_number_id, at);
