-- The developer dashboard. SQLite flavour.

-- Client secret rotation with an overlap: the secret being replaced may keep working until
-- `previous_secret_expires_at` (config `client_secret_overlap_secs`, default 0 = at once).
-- One previous secret at most; like the current one it is a SHA-256 digest (generated) or an
-- argon2id PHC string (imported).
ALTER TABLE clients ADD COLUMN previous_secret_sha256 BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_phc TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;

-- "Authorized apps": a user's token families per client (list, revoke).
CREATE INDEX token_families_user_client ON token_families(user_id, client_pk);
-- Revoking an app for a user closes its outstanding authorization codes.
CREATE INDEX authorization_codes_user_client ON authorization_codes(user_id, client_pk);
