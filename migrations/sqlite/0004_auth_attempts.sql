-- Attempt counters for every password check (login pair and address,
-- current_password per user, registration per address): the SQLite twin of
-- migrations/0004_auth_attempts.sql. One row per bucket, the SHA-256 (hex)
-- of what it counts, so no email or address is stored. Counted with one
-- upsert before the password is looked at, rows whose window ended are purged.
-- Plain DDL split at line-ending semicolons (see 0001).

CREATE TABLE IF NOT EXISTS auth_attempts (
    bucket          TEXT    NOT NULL,
    -- INT UNSIGNED on MySQL.
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    window_ends_ms  INTEGER NOT NULL,
    PRIMARY KEY (bucket)
);
CREATE INDEX IF NOT EXISTS ix_auth_attempts_window ON auth_attempts (window_ends_ms);
