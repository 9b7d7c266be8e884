-- A version per user of what their camera listings show, kept by triggers beside the count:
-- any change to one of their cameras, to a share they hold, to a camera shared with them or to
-- the name of a camera's owner (listings show it to guests) moves it. A node may answer a
-- listing from memory while the version (read at every request, one row) is unchanged, so a
-- change made on any node shows on the next request everywhere.
ALTER TABLE camera_counts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- Moves user `u`'s listing version (creating the row at version 1: a missing row reads as 0).
CREATE FUNCTION camera_listing_bump(u BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO camera_counts (owner_id, n, version) VALUES (u, 0, 1)
        ON CONFLICT (owner_id) DO UPDATE SET version = camera_counts.version + 1;
$$;

-- The count function of migration 12, now moving the version too.
CREATE OR REPLACE FUNCTION camera_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE camera_counts SET n = n - 1, version = version + 1 WHERE owner_id = OLD.owner_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO camera_counts (owner_id, n, version) VALUES (NEW.owner_id, 1, 1)
            ON CONFLICT (owner_id) DO UPDATE SET n = camera_counts.n + 1,
                version = camera_counts.version + 1;
    END IF;
    RETURN NULL;
END;
$$;

-- Any change to a camera: its owner's listings and its guests'. Before a delete, so the
-- guests' shares (deleted with it by cascade) are still there to find. The rows are moved in
-- user order, one statement, so two such changes never wait on each other in a cycle.
CREATE FUNCTION camera_listing_camera() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO camera_counts (owner_id, n, version)
        SELECT u, 0, 1 FROM (
            SELECT NEW.owner_id AS u WHERE TG_OP = 'UPDATE'
            UNION SELECT s.user_id FROM camera_shares s
                WHERE s.camera_id = OLD.id AND s.user_id IS NOT NULL
        ) x ORDER BY u
        ON CONFLICT (owner_id) DO UPDATE SET version = camera_counts.version + 1;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER cameras_version_update AFTER UPDATE ON cameras
    FOR EACH ROW EXECUTE FUNCTION camera_listing_camera();
CREATE TRIGGER cameras_version_delete BEFORE DELETE ON cameras
    FOR EACH ROW EXECUTE FUNCTION camera_listing_camera();

-- Shares: the guest's listings.
CREATE FUNCTION camera_listing_share() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An UPDATE, not an upsert: the user may be being deleted (the share goes by cascade).
    -- The row exists: claiming the share (insert or update below) created it.
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.user_id IS NOT NULL THEN
        UPDATE camera_counts SET version = version + 1 WHERE owner_id = OLD.user_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.user_id IS NOT NULL THEN
        PERFORM camera_listing_bump(NEW.user_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER camera_shares_version AFTER INSERT OR UPDATE OR DELETE ON camera_shares
    FOR EACH ROW EXECUTE FUNCTION camera_listing_share();

-- An owner's name as guests see it.
CREATE FUNCTION camera_listing_owner_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.first_name, NEW.last_name, NEW.email) IS DISTINCT FROM
       (OLD.first_name, OLD.last_name, OLD.email) THEN
        INSERT INTO camera_counts (owner_id, n, version)
            SELECT DISTINCT s.user_id, 0, 1 FROM camera_shares s
                JOIN cameras c ON c.id = s.camera_id
                WHERE c.owner_id = NEW.id AND s.user_id IS NOT NULL
            ORDER BY s.user_id
            ON CONFLICT (owner_id) DO UPDATE SET version = camera_counts.version + 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER users_version_owner_name AFTER UPDATE OF first_name, last_name, email ON users
    FOR EACH ROW EXECUTE FUNCTION camera_listing_owner_name();
