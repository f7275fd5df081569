-- Indexes for the purge (tools/purge, README "Purging"), which deletes
-- sessions that expired or were revoked more than a day ago: the SQLite twin
-- of migrations/0005_purge.sql. Without them each run would scan the whole
-- sessions table. Plain DDL split at line-ending semicolons (see 0001).

CREATE INDEX IF NOT EXISTS ix_sessions_expires ON sessions (expires_at_ms);
CREATE INDEX IF NOT EXISTS ix_sessions_revoked ON sessions (revoked_at_ms);
