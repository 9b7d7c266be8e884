-- Optimistic concurrency for read-modify-write updates (partial camera PUTs): an UPDATE only
-- applies if the row still has the version that was read, so no concurrent update is lost.
ALTER TABLE cameras ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_disabled ON users(disabled) WHERE disabled;
