-- Users and login sessions (login and users components).
-- Apply with: cargo run -p migrate -- <mysql://user:pass@host:port/db>  (see README).
-- Re-runnable: every statement is IF NOT EXISTS.
-- Times are BIGINT epoch milliseconds: Spin's MySQL interface cannot read DATETIME.

CREATE TABLE IF NOT EXISTS users (
    id              CHAR(32)     NOT NULL,
    email           VARCHAR(254) NOT NULL,
    name            VARCHAR(100) NOT NULL,
    role            VARCHAR(16)  NOT NULL DEFAULT 'user',
    -- argon2id PHC string; never leaves the repository.
    password_hash   VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_users_email (email),
    -- The admin list orders by (created_at_ms, id).
    KEY ix_users_created (created_at_ms, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per login. refresh_hash is the SHA-256 (hex) of the session's
-- current refresh token; the token itself is never stored.
CREATE TABLE IF NOT EXISTS sessions (
    id              CHAR(32)  NOT NULL,
    user_id         CHAR(32)  NOT NULL,
    refresh_hash    CHAR(64)  NOT NULL,
    created_at_ms   BIGINT    NOT NULL,
    expires_at_ms   BIGINT    NOT NULL,
    revoked_at_ms   BIGINT    NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_sessions_refresh_hash (refresh_hash),
    KEY ix_sessions_user (user_id),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Refresh tokens a session has rotated away from, kept to detect reuse
-- (a replayed old token revokes its whole session). Every superseded hash is
-- kept, not only the last, so a token stolen several rotations ago is still
-- recognised; rows go with their session.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash        CHAR(64)  NOT NULL,
    session_id        CHAR(32)  NOT NULL,
    superseded_at_ms  BIGINT    NOT NULL,
    PRIMARY KEY (token_hash),
    KEY ix_refresh_tokens_session (session_id),
    CONSTRAINT fk_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
