-- CAM2API: JWT signing keys, the JWT denylist, and indexes for the camera filters.

-- Signing keys of JWT access tokens (RFC 9068). `private_key` is the raw 32-byte Ed25519 seed
-- or P-256 scalar. An active key has retired_at NULL; a retired key still verifies until
-- verify_until, then the sweeper deletes it.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    private_key  BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT,
    verify_until BIGINT
);
CREATE INDEX signing_keys_active ON signing_keys(created_at) WHERE retired_at IS NULL;

-- Revoked or logged-out JWTs, by jti, until they could no longer be used.
CREATE TABLE jwt_denylist (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX jwt_denylist_expires ON jwt_denylist(expires_at);

-- CAM2 filters at a million cameras. Results are in id order with LIMIT, so an index only pays
-- for a *selective* filter: city, country/state, and latitude (ranges and the radius search's
-- bounding box); public cameras for the visibility rule. Low-cardinality columns (source,
-- camera_type, booleans) and dates are served by the id-order scan, which stops after one page;
-- each extra index with random keys costs the bulk import dearly (measured when the CAM2 search was built).
-- PostgreSQL: `id` is part of the key (SQLite appends the rowid by itself), so an equality
-- filter is read in id order and `ORDER BY id LIMIT` needs neither a sort nor a gamble on the
-- primary-key scan (which read all 1 M rows for a filter matching nothing).
CREATE INDEX cameras_city ON cameras(city, id);
CREATE INDEX cameras_country_state ON cameras(country, state, id);
CREATE INDEX cameras_lat ON cameras(lat);
CREATE INDEX cameras_public ON cameras(id) WHERE is_public;
