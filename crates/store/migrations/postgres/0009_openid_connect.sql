-- OpenID Connect (Core 1.0): RS256 signing keys, the sign-in facts an id_token states
-- (auth_time, amr) on codes and token families, the nonce of a code, per-client OIDC settings,
-- and whether a user's email address is verified.

-- Signing keys gain RS256 and a purpose: `access` keys (EdDSA/ES256, one active) sign access
-- tokens, `id` keys (one active per algorithm) sign id_tokens, so neither kind of token can be
-- passed off as the other (RFC 8725 §3.12).
ALTER TABLE signing_keys DROP CONSTRAINT IF EXISTS signing_keys_alg_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_alg_check
    CHECK (alg IN ('EdDSA', 'ES256', 'RS256'));
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access'
    CHECK (purpose IN ('access', 'id'));
DROP INDEX IF EXISTS signing_keys_active;
CREATE INDEX signing_keys_active ON signing_keys(purpose, alg, created_at)
    WHERE retired_at IS NULL;

-- The code's nonce (OIDC Core §3.1.2.1, echoed in the id_token), when and how the user signed
-- in (auth_time, §2; amr, RFC 8176 names separated by spaces).
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;

-- Set only for a grant with the openid scope: its refreshes carry a new id_token (§12.2).
ALTER TABLE token_families ADD COLUMN auth_time BIGINT;
ALTER TABLE token_families ADD COLUMN amr TEXT;

-- JSON: post_logout_redirect_uris, subject_type, sector_identifier, id_token_alg.
ALTER TABLE clients ADD COLUMN oidc TEXT NOT NULL DEFAULT '{}';

ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
