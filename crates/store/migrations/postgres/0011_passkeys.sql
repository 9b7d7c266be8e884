-- Passkeys (WebAuthn): a user's registered credentials, and the server side of a ceremony
-- between its two requests.

-- passkey: the credential as webauthn-rs keeps it (JSON: public key, counter, flags); public
-- material only, nothing secret. cred_id is unique across users (a credential belongs to one
-- account; the sign-in finds the account by it).
CREATE TABLE passkeys (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    cred_id      BYTEA NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    passkey      TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- A registration or sign-in in progress: its challenge state (JSON) under the SHA-256 digest of
-- the id handed to the browser; taken once (a challenge is single use), dropped when expired.
CREATE TABLE webauthn_ceremonies (
    hash       BYTEA PRIMARY KEY,
    user_id    BIGINT REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires ON webauthn_ceremonies(expires_at);
