-- What the token is for: recordings a camera reports, events, and webhooks that tell
-- integrators about them.

-- A recorded segment (camgate stores no video: the URL is the operator's media storage).
CREATE TABLE recordings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id  INTEGER NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL,
    url        TEXT NOT NULL,
    format     TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX recordings_camera_start ON recordings(camera_id, start_at, id);
CREATE INDEX recordings_created ON recordings(created_at);

-- Something that happened to a camera (motion, status, tamper, custom). owner_id is the
-- camera's owner when the event was posted; public_id is the id webhook deliveries carry.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id  TEXT NOT NULL UNIQUE,
    camera_id  INTEGER REFERENCES cameras(id) ON DELETE CASCADE,
    owner_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    data       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_owner ON events(owner_id, id);
CREATE INDEX events_camera ON events(camera_id, id);
CREATE INDEX events_created ON events(created_at);

-- A user's subscription of a URL to event types (space-separated). The signing secret must be
-- read to sign, so it is sealed (AES-256-GCM under the data key), never stored in the clear.
CREATE TABLE webhooks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,
    secret_enc    BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    failing_since INTEGER,
    disabled_at   INTEGER
);
CREATE INDEX webhooks_user ON webhooks(user_id);

-- The outbox: one row per (event, subscription), written in the event's transaction. state:
-- pending (due at next_attempt_at; a node claims it by pushing next_attempt_at forward: a
-- lease), delivered, failed (gave up: a day of failures).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_status     INTEGER,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);

-- Each attempt of a delivery, for the owner's delivery log.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, id);
