-- Fewer pages written per refresh rotation (each one a 4 KiB WAL frame, later copied back by
-- a checkpoint). Measured by replaying rotations and reading the page numbers of the WAL's
-- frames (BENCHMARKS.md, "Rotating refresh: pages per rotation"): 11.8 pages per rotation
-- before, 7.8 after both changes below.
--
-- 1. A refresh rotation makes every earlier access token of its family invalid (the Angelcam
--    refresh rule). It used to do so by writing `revoked_at` into each of them: the old
--    token's row and two entries of `access_tokens_family`, in every rotation. Now the family
--    counts its rotations (`access_generation`) and an access token records the count it was
--    issued under; a token whose generation is below its family's is revoked. The rotation
--    changes only the family row, which it updates anyway. Existing rows start at 0 on both
--    sides, so nothing changes meaning.
ALTER TABLE token_families ADD COLUMN access_generation BIGINT NOT NULL DEFAULT 0;

-- 2. The token tables get rowids. Keyed by the token's digest (WITHOUT ROWID), every new
--    token landed on a random leaf of the table and, through the digest appended to every
--    index entry, on a random leaf of `*_expires` (all tokens of one second share the
--    expiry); with a rowid the row and its expiry entry go to the end, shared by the
--    transaction's other tokens, and only the digest index takes a random leaf. No
--    AUTOINCREMENT: nothing refers to these ids, and it would write `sqlite_sequence` on every
--    insert. The tables have no dependants (no foreign key, trigger or view points at them),
--    so they are rebuilt in place. PostgreSQL's tables are heaps already.
CREATE TABLE access_tokens_new (
    id         INTEGER PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    family_id  INTEGER NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    generation BIGINT NOT NULL DEFAULT 0
);
INSERT INTO access_tokens_new (hash, family_id, scope, created_at, expires_at, revoked_at)
    SELECT hash, family_id, scope, created_at, expires_at, revoked_at FROM access_tokens
    ORDER BY created_at;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_family ON access_tokens(family_id, revoked_at);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);
CREATE INDEX access_tokens_revoked ON access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens_new (
    id         INTEGER PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    family_id  INTEGER NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_at    INTEGER,
    revoked_at INTEGER
);
INSERT INTO refresh_tokens_new (hash, family_id, scope, created_at, expires_at, used_at, revoked_at)
    SELECT hash, family_id, scope, created_at, expires_at, used_at, revoked_at FROM refresh_tokens
    ORDER BY created_at;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id, revoked_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);
CREATE INDEX refresh_tokens_revoked ON refresh_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
