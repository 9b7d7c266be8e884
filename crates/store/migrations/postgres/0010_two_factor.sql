-- Two-factor sign-in: a TOTP authenticator per user (RFC 6238), its single-use recovery codes,
-- what a browser session's sign-in used, and the per-client exception for the password grant.

-- secret_enc: the TOTP key sealed with AES-256-GCM under the server's data key (it must be read
-- back to verify codes, so it cannot be a digest); bound to the user id as associated data.
-- confirmed_at is NULL while enrolling (until a first code proves the authenticator has it).
-- last_step: the highest RFC 6238 time step accepted, so a code is never accepted twice.
CREATE TABLE user_totp (
    user_id      BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_enc   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT
);

-- Recovery codes as SHA-256 digests; each works once.
CREATE TABLE recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, hash)
);

-- RFC 8176 names of the factors the sign-in used ("pwd", "pwd otp"); NULL on sessions made
-- before this migration (a password sign-in).
ALTER TABLE browser_sessions ADD COLUMN amr TEXT;

-- Legacy devices that cannot run a browser: their password grant works for users with a second
-- factor (each such grant is audited).
ALTER TABLE clients ADD COLUMN allow_password_without_mfa BOOLEAN NOT NULL DEFAULT FALSE;
