-- The device authorization grant (RFC 8628): one row per device code. Both codes appear only
-- as SHA-256 digests: the device code (the device's secret, §3.2) and the user code (entered
-- on the /device page; normalised to its 8 letters before hashing). `approved` is NULL until
-- the user decides. `last_polled_at` and `interval_secs` pace the polling (§3.5, slow_down).
-- `used_at`, `replayed_at` and `family_id` make a device code single use, as an
-- authorization code is: a second redemption revokes the tokens of the first.
CREATE TABLE device_codes (
    hash           BLOB PRIMARY KEY,
    user_code_hash BLOB NOT NULL UNIQUE,
    client_pk      INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    interval_secs  INTEGER NOT NULL,
    last_polled_at INTEGER,
    -- Whether the latest poll came too early (set by the same UPDATE that records it).
    slowed         BOOLEAN NOT NULL DEFAULT FALSE,
    user_id        INTEGER REFERENCES users(id) ON DELETE CASCADE,
    approved       BOOLEAN,
    decided_at     INTEGER,
    used_at        INTEGER,
    replayed_at    INTEGER,
    family_id      INTEGER REFERENCES token_families(id) ON DELETE SET NULL,
    -- A camera pairing: what the device said of itself (JSON), and the camera it was
    -- registered as on approval.
    pairing        TEXT,
    camera_id      INTEGER REFERENCES cameras(id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX device_codes_expires ON device_codes(expires_at);

-- Camera pairing: a paired device's serial (unique per owner, so pairing the same device again
-- re-binds the same camera) and when it last reported.
ALTER TABLE cameras ADD COLUMN device_serial TEXT;
ALTER TABLE cameras ADD COLUMN last_seen_at INTEGER;
CREATE UNIQUE INDEX cameras_owner_serial ON cameras(owner_id, device_serial)
    WHERE device_serial IS NOT NULL;

-- Tokens bound to a camera (a paired device's): deleting the camera deletes its token
-- families, and with them their tokens, at once on every node.
ALTER TABLE token_families ADD COLUMN camera_id INTEGER REFERENCES cameras(id) ON DELETE CASCADE;
CREATE INDEX token_families_camera ON token_families(camera_id) WHERE camera_id IS NOT NULL;
