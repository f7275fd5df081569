-- Uploads (uploads component): content-addressed bytes plus per-upload metadata.
-- Apply with: cargo run -p migrate -- <mysql://user:pass@host:port/db>  (see README).
-- Re-runnable: every statement is IF NOT EXISTS.
-- Times are BIGINT epoch milliseconds: Spin's MySQL interface cannot read DATETIME.

-- Each distinct content once, keyed by the SHA-256 (lower-case hex) of its
-- bytes. References are the `uploads` rows with the same sha256 (computed,
-- never a counter that could drift); the uploads component deletes a blob in
-- the same transaction as its last reference, holding the blob row's lock.
-- LONGBLOB so no configured upload_max_bytes can be truncated; the server's
-- max_allowed_packet (16 MiB by default on MariaDB) bounds one statement and
-- must exceed upload_max_bytes.
CREATE TABLE IF NOT EXISTS upload_blobs (
    sha256          CHAR(64)  CHARACTER SET ascii NOT NULL,
    size            BIGINT    NOT NULL,
    data            LONGBLOB  NOT NULL,
    created_at_ms   BIGINT    NOT NULL,
    PRIMARY KEY (sha256)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per upload. Deleting a user deletes their uploads (cascade); the
-- blobs those leave unreferenced are reclaimed by:
--   DELETE b FROM upload_blobs b
--     LEFT JOIN uploads u ON u.sha256 = b.sha256 WHERE u.id IS NULL;
-- (a blob is re-used, not duplicated, if the same content is uploaded again first).
CREATE TABLE IF NOT EXISTS uploads (
    id              CHAR(32)      NOT NULL,
    user_id         CHAR(32)      NOT NULL,
    -- Sanitised, at most 255 bytes.
    filename        VARCHAR(255)  NOT NULL,
    -- Decided from the bytes, e.g. image/png.
    content_type    VARCHAR(64)   NOT NULL,
    size            BIGINT        NOT NULL,
    sha256          CHAR(64)      CHARACTER SET ascii NOT NULL,
    -- 'private' | 'public'
    visibility      VARCHAR(8)    NOT NULL,
    created_at_ms   BIGINT        NOT NULL,
    PRIMARY KEY (id),
    -- A user's list, newest first.
    KEY ix_uploads_user_created (user_id, created_at_ms, id),
    -- A blob's references.
    KEY ix_uploads_sha256 (sha256),
    CONSTRAINT fk_uploads_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_uploads_blob FOREIGN KEY (sha256) REFERENCES upload_blobs (sha256)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
