-- The browser half of OAuth2 (RFC 6749 §4.1): authorization codes, remembered
-- consents, parked authorization requests, browser sessions and the login throttle.
-- PostgreSQL flavour. Secrets (codes, session ids, request handles) appear only as SHA-256 digests.

-- RFC 6749 §4.1.2: single use, short-lived, bound to client, redirect URI, scope, user and the
-- PKCE challenge (RFC 7636 §4.4). `family_id` links the tokens minted from the code so that a
-- replay can revoke them; `replayed_at` records a second use.
CREATE TABLE authorization_codes (
    hash               BYTEA PRIMARY KEY,
    client_pk          BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id            BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given BOOLEAN NOT NULL,
    scope              TEXT NOT NULL,
    code_challenge     TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    replayed_at        BIGINT,
    family_id          BIGINT REFERENCES token_families(id) ON DELETE SET NULL
);
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);

-- What a user has approved for a client; a later request within it skips the approval screen.
CREATE TABLE consents (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_pk  BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_pk)
);
CREATE INDEX consents_client ON consents(client_pk);

-- A validated authorization request parked server-side while the user signs in or decides.
CREATE TABLE authorization_requests (
    hash       BYTEA PRIMARY KEY,
    client_pk  BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    request    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX authorization_requests_expires ON authorization_requests(expires_at);

-- Browser sessions (the `__Host-` cookie holds the id; the database only its digest).
CREATE TABLE browser_sessions (
    hash         BYTEA PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions(user_id);
CREATE INDEX browser_sessions_expires ON browser_sessions(expires_at);

-- Failed sign-ins per account and per client IP in a fixed window (OWASP ASVS 2.2.1). The key
-- is a digest, so mistyped names (or passwords typed into the name field) are not kept.
CREATE TABLE login_throttle (
    key          BYTEA PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL
);
CREATE INDEX login_throttle_window ON login_throttle(window_start);
