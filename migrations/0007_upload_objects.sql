-- Uploads on object storage (README "Uploads on object storage").
-- With `upload_storage = s3` a blob's bytes live in the bucket under
-- `object_key` and `data` is NULL; with `mysql` (the default) `data` holds
-- them as before. A blob is in exactly one place, so a deployment that moves
-- from MySQL to S3 keeps serving its older blobs from MySQL.
ALTER TABLE upload_blobs
    MODIFY data LONGBLOB NULL,
    ADD COLUMN object_key VARCHAR(255) CHARACTER SET ascii NULL AFTER data,
    ADD CONSTRAINT ck_upload_blobs_one_place CHECK ((data IS NULL) <> (object_key IS NULL));

-- Direct uploads announced with `POST /api/v1/uploads/presign` and not yet
-- completed. The announced size counts against the owner's quota until the
-- row expires, so presigning cannot be used to pass the quota; completing
-- moves the row to `uploads` in one transaction.
CREATE TABLE IF NOT EXISTS pending_uploads (
    id              CHAR(32)      NOT NULL,
    user_id         CHAR(32)      NOT NULL,
    filename        VARCHAR(255)  NOT NULL,
    size            BIGINT        NOT NULL,
    sha256          CHAR(64)      CHARACTER SET ascii NOT NULL,
    visibility      VARCHAR(8)    NOT NULL,
    -- Where the presigned PUT puts the bytes (`incoming/<id>`); `complete`
    -- copies them to a key of the blob's own, which no client can write.
    object_key      VARCHAR(255)  CHARACTER SET ascii NOT NULL,
    created_at_ms   BIGINT        NOT NULL,
    expires_at_ms   BIGINT        NOT NULL,
    PRIMARY KEY (id),
    KEY ix_pending_uploads_user (user_id, expires_at_ms),
    KEY ix_pending_uploads_expires (expires_at_ms),
    CONSTRAINT fk_pending_uploads_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
