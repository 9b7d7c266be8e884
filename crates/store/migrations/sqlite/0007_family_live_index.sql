-- Every refresh rotation revokes its family's live access tokens
-- (`UPDATE access_tokens SET revoked_at = … WHERE family_id = … AND revoked_at IS NULL`).
-- With an index on family_id alone that visited every token the chain ever had (one more per
-- rotation), so a long-lived chain made each rotation slower. (family_id, revoked_at) seeks
-- straight to the live ones and still serves the foreign-key cascade (its prefix).
DROP INDEX access_tokens_family;
CREATE INDEX access_tokens_family ON access_tokens(family_id, revoked_at);
DROP INDEX refresh_tokens_family;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id, revoked_at);
