-- Index-friendly cleanup. A family records the latest expiry of any of its tokens (NULL: a
-- token that never expires, e.g. a CameraManager refresh token), so the sweeper removes whole
-- families with one range scan and the tokens go with them (ON DELETE CASCADE). Revocation
-- times get partial indexes so revoked rows are found without scanning live ones.
ALTER TABLE token_families ADD COLUMN expires_at BIGINT;
UPDATE token_families SET expires_at = CASE
    WHEN EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = token_families.id AND r.expires_at IS NULL) THEN NULL
    ELSE GREATEST(
        COALESCE((SELECT MAX(a.expires_at) FROM access_tokens a WHERE a.family_id = token_families.id), 0),
        COALESCE((SELECT MAX(r.expires_at) FROM refresh_tokens r WHERE r.family_id = token_families.id), 0))
    END;
CREATE INDEX token_families_expires ON token_families(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX token_families_revoked ON token_families(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX access_tokens_revoked ON access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX refresh_tokens_revoked ON refresh_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX pats_expires ON personal_access_tokens(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX pats_revoked ON personal_access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
