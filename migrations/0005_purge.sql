-- Indexes for the purge (tools/purge; see README "Purging"), which deletes
-- sessions that expired or were revoked more than a day ago. Without them each
-- run would scan the whole sessions table.
-- One statement, so it is applied wholly or not at all (MySQL has no
-- ADD INDEX IF NOT EXISTS; schema_migrations records it once applied).
-- idempotency_keys already has ix_idempotency_created; orphaned blobs are
-- found through ix_uploads_sha256.
ALTER TABLE sessions
    ADD INDEX ix_sessions_expires (expires_at_ms),
    ADD INDEX ix_sessions_revoked (revoked_at_ms);
