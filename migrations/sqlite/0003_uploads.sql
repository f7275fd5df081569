-- Uploads (uploads component), content-addressed bytes plus per-upload
-- metadata: the SQLite twin of migrations/0003_uploads.sql, same tables,
-- columns, index and constraint names. Plain DDL split at line-ending
-- semicolons (see 0001).
-- upload_blobs is created here in its final shape, with what MySQL's 0007
-- adds by ALTER TABLE (object_key, data nullable, ck_upload_blobs_one_place):
-- SQLite cannot change a column or add a CHECK to a table, and these files
-- only ever build a fresh schema, in order.

-- Each distinct content once, keyed by the SHA-256 (lower-case hex) of its
-- bytes. References are the uploads rows with the same sha256 (computed,
-- never a counter that could drift). The bytes are in `data`, or, with
-- upload_storage = s3, in the bucket under `object_key` (exactly one of the two).
CREATE TABLE IF NOT EXISTS upload_blobs (
    sha256          TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    data            BLOB    NULL,
    object_key      TEXT    NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (sha256),
    CONSTRAINT ck_upload_blobs_one_place CHECK ((data IS NULL) <> (object_key IS NULL))
);

-- One row per upload. Deleting a user deletes their uploads (cascade), the
-- blobs those leave unreferenced are reclaimed by tools/purge.
CREATE TABLE IF NOT EXISTS uploads (
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    -- Sanitised, at most 255 bytes (UTF-8), bound here too.
    filename        TEXT    NOT NULL,
    -- Decided from the bytes, e.g. image/png.
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    -- 'private' or 'public'.
    visibility      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_uploads_filename_length CHECK (length(CAST(filename AS BLOB)) <= 255),
    CONSTRAINT fk_uploads_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_uploads_blob FOREIGN KEY (sha256) REFERENCES upload_blobs (sha256)
);
-- A user's list, newest first.
CREATE INDEX IF NOT EXISTS ix_uploads_user_created ON uploads (user_id, created_at_ms, id);
-- A blob's references.
CREATE INDEX IF NOT EXISTS ix_uploads_sha256 ON uploads (sha256);
