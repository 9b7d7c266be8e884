-- A refresh rotation makes every earlier access token of its family invalid (the Angelcam
-- refresh rule). It used to do so by writing `revoked_at` into each of them: the old token's
-- row and its `access_tokens_family` entry, in every rotation. Now the family counts its
-- rotations (`access_generation`) and an access token records the count it was issued under;
-- a token whose generation is below its family's is revoked. The rotation changes only the
-- family row, which it updates anyway. Existing rows start at 0 on both sides, so nothing
-- changes meaning. (SQLite's migration of the same number also gives its token tables rowids.)
ALTER TABLE token_families ADD COLUMN access_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE access_tokens ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
