-- camgate schema, SQLite flavour. Timestamps are Unix seconds. Secrets appear only as
-- SHA-256 digests (BLOB) or argon2id PHC strings.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    email               TEXT NOT NULL,
    email_norm          TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    first_name          TEXT NOT NULL DEFAULT '',
    last_name           TEXT NOT NULL DEFAULT '',
    phone               TEXT NOT NULL DEFAULT '',
    is_admin            BOOLEAN NOT NULL DEFAULT 0,
    disabled            BOOLEAN NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE clients (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id      TEXT NOT NULL UNIQUE,
    secret_sha256  BLOB,
    secret_phc     TEXT,
    name           TEXT NOT NULL,
    owner_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('public', 'confidential')),
    redirect_uris  TEXT NOT NULL,
    grants         TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    profile        TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX clients_owner ON clients(owner_id);

CREATE TABLE token_families (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,
    client_pk  INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    grant_type TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX token_families_user ON token_families(user_id);
CREATE INDEX token_families_client ON token_families(client_pk);

CREATE TABLE access_tokens (
    hash       BLOB PRIMARY KEY,
    family_id  INTEGER NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX access_tokens_family ON access_tokens(family_id);
CREATE INDEX access_tokens_expires ON access_tokens(expires_at);

CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY,
    family_id  INTEGER NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_at    INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE personal_access_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX pats_user ON personal_access_tokens(user_id);

CREATE TABLE cameras (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    codec        TEXT NOT NULL,
    status       TEXT NOT NULL,
    streams      TEXT NOT NULL,
    snapshot     TEXT,
    city         TEXT,
    state        TEXT,
    country      TEXT,
    lat          REAL,
    lng          REAL,
    source       TEXT,
    source_url   TEXT,
    camera_type  TEXT,
    description  TEXT,
    is_video     BOOLEAN,
    framerate    REAL,
    outdoors     BOOLEAN,
    traffic      BOOLEAN,
    inactive     BOOLEAN,
    resolution_w INTEGER,
    resolution_h INTEGER,
    tags         TEXT NOT NULL,
    is_public    BOOLEAN NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX cameras_owner ON cameras(owner_id, id);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    user_id   INTEGER,
    client_id TEXT,
    ip        TEXT,
    detail    TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);
