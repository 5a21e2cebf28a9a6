-- API keys for /api/v1, created with `ringback keys create`. Only a SHA-256 of each key is
-- kept; the key itself is shown once. (PostgreSQL twin of migrations/sqlite/0005.)
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT   NOT NULL,
    hash       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
