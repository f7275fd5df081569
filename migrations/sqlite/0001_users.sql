-- Users and login sessions (login and users components): the SQLite twin of
-- migrations/0001_users.sql, same tables, columns, index and constraint names.
-- Applied by the app itself on first use (shared::db::sqlite::migrate) or by
-- tools/migrate with a sqlite: URL. Plain DDL only, split at line-ending
-- semicolons: no triggers, no semicolon inside a comment or a string.
-- Times are INTEGER epoch milliseconds, as on MySQL. TEXT compares bytewise,
-- like MySQL's utf8mb4_bin, so email and hash lookups behave the same.

CREATE TABLE IF NOT EXISTS users (
    id              TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    role            TEXT    NOT NULL DEFAULT 'user',
    -- argon2id PHC string, never leaves the repository.
    password_hash   TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_users_email ON users (email);
-- The admin list orders by (created_at_ms, id).
CREATE INDEX IF NOT EXISTS ix_users_created ON users (created_at_ms, id);

-- One row per login. refresh_hash is the SHA-256 (hex) of the session's
-- current refresh token, the token itself is never stored.
CREATE TABLE IF NOT EXISTS sessions (
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    refresh_hash    TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    revoked_at_ms   INTEGER NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_sessions_refresh_hash ON sessions (refresh_hash);
CREATE INDEX IF NOT EXISTS ix_sessions_user ON sessions (user_id);

-- Refresh tokens a session has rotated away from, kept to detect reuse (a
-- replayed old token revokes its whole session). Every superseded hash is
-- kept, not only the last, and rows go with their session.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash        TEXT    NOT NULL,
    session_id        TEXT    NOT NULL,
    superseded_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (token_hash),
    CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_session ON refresh_tokens (session_id);
