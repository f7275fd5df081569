-- Uploads on object storage (README "Uploads on object storage"): the SQLite
-- twin of migrations/0007_upload_objects.sql. MySQL's ALTER TABLE of
-- upload_blobs (object_key, data nullable, ck_upload_blobs_one_place) is
-- already in sqlite/0003_uploads.sql, so this file holds pending_uploads only.
-- Plain DDL split at line-ending semicolons (see 0001).

-- Direct uploads announced with POST /api/v1/uploads/presign and not yet
-- completed. The announced size counts against the owner's quota until the
-- row expires, so presigning cannot be used to pass the quota. Completing
-- moves the row to uploads in one transaction.
CREATE TABLE IF NOT EXISTS pending_uploads (
    id              TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    -- Sanitised like uploads.filename, at most 255 bytes (UTF-8).
    filename        TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    sha256          TEXT    NOT NULL,
    visibility      TEXT    NOT NULL,
    -- Where the presigned PUT puts the bytes (incoming/<id>). Completing
    -- copies them to a key of the blob's own, which no client can write.
    object_key      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT ck_pending_uploads_filename_length CHECK (length(CAST(filename AS BLOB)) <= 255),
    CONSTRAINT fk_pending_uploads_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_pending_uploads_user ON pending_uploads (user_id, expires_at_ms);
CREATE INDEX IF NOT EXISTS ix_pending_uploads_expires ON pending_uploads (expires_at_ms);
