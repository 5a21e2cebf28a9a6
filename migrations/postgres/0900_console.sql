-- The web console (src/users.rs, src/http/console): people who sign in, and their sessions.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    -- 'admin' or 'agent'.
    role          TEXT    NOT NULL,
    -- An Argon2id PHC string; the password itself is never stored.
    password_hash TEXT    NOT NULL,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The token every form of this session must send back (CSRF).
    csrf       TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_id);
