-- Attempt counters for every password check (login pair and address,
-- current_password per user, registration per address): one row per bucket,
-- the SHA-256 (hex) of what it counts, so no email or address is stored.
-- Counted atomically with INSERT … ON DUPLICATE KEY UPDATE before the
-- password is looked at; rows whose window ended are purged.

CREATE TABLE IF NOT EXISTS auth_attempts (
    bucket          CHAR(64)     NOT NULL,
    attempts        INT UNSIGNED NOT NULL,
    window_ends_ms  BIGINT       NOT NULL,
    PRIMARY KEY (bucket),
    KEY ix_auth_attempts_window (window_ends_ms)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
