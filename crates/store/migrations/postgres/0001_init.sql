-- camgate schema, PostgreSQL flavour. Timestamps are Unix seconds. Secrets appear only as
-- SHA-256 digests (BYTEA) or argon2id PHC strings.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE users (
    id                  BIGSERIAL PRIMARY KEY,
    email               TEXT NOT NULL,
    email_norm          TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    first_name          TEXT NOT NULL DEFAULT '',
    last_name           TEXT NOT NULL DEFAULT '',
    phone               TEXT NOT NULL DEFAULT '',
    is_admin            BOOLEAN NOT NULL DEFAULT FALSE,
    disabled            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    password_changed_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id             BIGSERIAL PRIMARY KEY,
    client_id      TEXT NOT NULL UNIQUE,
    secret_sha256  BYTEA,
    secret_phc     TEXT,
    name           TEXT NOT NULL,
    owner_id       BIGINT REFERENCES users(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('public', 'confidential')),
    redirect_uris  TEXT NOT NULL,
    grants         TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    profile        TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX clients_owner ON clients(owner_id);

CREATE TABLE token_families (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT REFERENCES users(id) ON DELETE CASCADE,
    client_pk  BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    grant_type TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX token_families_user ON token_families(user_id);
CREATE INDEX token_families_client ON token_families(client_pk);

CREATE TABLE access_tokens (
    hash       BYTEA PRIMARY KEY,
    family_id  BIGINT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);

CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    family_id  BIGINT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    used_at    BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE personal_access_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    hash         BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX pats_user ON personal_access_tokens(user_id);

CREATE TABLE cameras (
    id           BIGSERIAL PRIMARY KEY,
    owner_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    codec        TEXT NOT NULL,
    status       TEXT NOT NULL,
    streams      TEXT NOT NULL,
    snapshot     TEXT,
    city         TEXT,
    state        TEXT,
    country      TEXT,
    lat          DOUBLE PRECISION,
    lng          DOUBLE PRECISION,
    source       TEXT,
    source_url   TEXT,
    camera_type  TEXT,
    description  TEXT,
    is_video     BOOLEAN,
    framerate    DOUBLE PRECISION,
    outdoors     BOOLEAN,
    traffic      BOOLEAN,
    inactive     BOOLEAN,
    resolution_w BIGINT,
    resolution_h BIGINT,
    tags         TEXT NOT NULL,
    is_public    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX cameras_owner ON cameras(owner_id, id);

CREATE TABLE audit_events (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    user_id   BIGINT,
    client_id TEXT,
    ip        TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);
