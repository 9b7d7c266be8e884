-- OpenID Connect (Core 1.0): RS256 signing keys, the sign-in facts an id_token states
-- (auth_time, amr) on codes and token families, the nonce of a code, per-client OIDC settings,
-- and whether a user's email address is verified.

-- Signing keys gain RS256 and a purpose: `access` keys (EdDSA/ES256, one active) sign access
-- tokens, `id` keys (one active per algorithm) sign id_tokens, so neither kind of token can be
-- passed off as the other (RFC 8725 §3.12). SQLite cannot alter a CHECK constraint: the table
-- is rebuilt. No foreign key points at it.
CREATE TABLE signing_keys_new (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256', 'RS256')),
    purpose      TEXT NOT NULL DEFAULT 'access' CHECK (purpose IN ('access', 'id')),
    private_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER,
    verify_until INTEGER
);
INSERT INTO signing_keys_new (kid, alg, private_key, created_at, retired_at, verify_until)
    SELECT kid, alg, private_key, created_at, retired_at, verify_until FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE INDEX signing_keys_active ON signing_keys(purpose, alg, created_at)
    WHERE retired_at IS NULL;

-- The code's nonce (OIDC Core §3.1.2.1, echoed in the id_token), when and how the user signed
-- in (auth_time, §2; amr, RFC 8176 names separated by spaces).
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time INTEGER;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;

-- Set only for a grant with the openid scope: its refreshes carry a new id_token (§12.2).
ALTER TABLE token_families ADD COLUMN auth_time INTEGER;
ALTER TABLE token_families ADD COLUMN amr TEXT;

-- JSON: post_logout_redirect_uris, subject_type, sector_identifier, id_token_alg.
ALTER TABLE clients ADD COLUMN oidc TEXT NOT NULL DEFAULT '{}';

ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT 0;
