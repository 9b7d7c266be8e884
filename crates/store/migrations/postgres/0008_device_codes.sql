-- The device authorization grant (RFC 8628): one row per device code. Both codes appear only
-- as SHA-256 digests: the device code (the device's secret, §3.2) and the user code (entered
-- on the /device page; normalised to its 8 letters before hashing). `approved` is NULL until
-- the user decides. `last_polled_at` and `interval_secs` pace the polling (§3.5, slow_down).
-- `used_at`, `replayed_at` and `family_id` make a device code single use, as an
-- authorization code is: a second redemption revokes the tokens of the first.
CREATE TABLE device_codes (
    hash           BYTEA PRIMARY KEY,
    user_code_hash BYTEA NOT NULL UNIQUE,
    client_pk      BIGINT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    interval_secs  BIGINT NOT NULL,
    last_polled_at BIGINT,
    user_id        BIGINT REFERENCES users(id) ON DELETE CASCADE,
    approved       BOOLEAN,
    decided_at     BIGINT,
    used_at        BIGINT,
    replayed_at    BIGINT,
    family_id      BIGINT REFERENCES token_families(id) ON DELETE SET NULL
);
CREATE INDEX device_codes_expires ON device_codes(expires_at);
