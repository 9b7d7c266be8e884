-- Sharing cameras with guests, dealers acting for their customers (token exchange).

-- A dealer: may create customer accounts and act for them.
ALTER TABLE users ADD COLUMN is_dealer BOOLEAN NOT NULL DEFAULT FALSE;

-- A camera shared by its owner with an e-mail address. user_id is NULL until an account with
-- that address exists (it is filled in when the account is created); permission is view,
-- playback or manage.
CREATE TABLE camera_shares (
    id         BIGSERIAL PRIMARY KEY,
    camera_id  BIGINT NOT NULL REFERENCES cameras(id) ON DELETE CASCADE,
    email_norm TEXT NOT NULL,
    user_id    BIGINT REFERENCES users(id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (camera_id, email_norm)
);
CREATE INDEX camera_shares_user ON camera_shares(user_id, camera_id);
CREATE INDEX camera_shares_pending ON camera_shares(email_norm) WHERE user_id IS NULL;

-- A customer account and the dealer who manages it (one dealer per customer). level: full or
-- limited; the customer may lower it or revoke the link (revoked_at).
CREATE TABLE dealer_customers (
    customer_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    dealer_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    level       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX dealer_customers_dealer ON dealer_customers(dealer_id, customer_id);

-- A token family issued by token exchange: the dealer acting (RFC 8693 §4.1 `act`).
ALTER TABLE token_families ADD COLUMN actor_id BIGINT REFERENCES users(id) ON DELETE CASCADE;
