-- A version per user of what their camera listings show, kept by triggers beside the count:
-- any change to one of their cameras, to a share they hold, to a camera shared with them or to
-- the name of a camera's owner (listings show it to guests) moves it. A node may answer a
-- listing from memory while the version (read at every request, one row) is unchanged, so a
-- change made on any node shows on the next request everywhere.
ALTER TABLE camera_counts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- The count triggers of migration 12, now moving the version too. A row created here starts
-- at version 1, so it differs from the 0 that a missing row reads as.
DROP TRIGGER cameras_count_insert;
DROP TRIGGER cameras_count_delete;
DROP TRIGGER cameras_count_owner;
CREATE TRIGGER cameras_count_insert AFTER INSERT ON cameras BEGIN
    INSERT INTO camera_counts (owner_id, n, version) VALUES (NEW.owner_id, 1, 1)
        ON CONFLICT (owner_id) DO UPDATE SET n = n + 1, version = version + 1;
END;
CREATE TRIGGER cameras_count_delete AFTER DELETE ON cameras BEGIN
    UPDATE camera_counts SET n = n - 1, version = version + 1 WHERE owner_id = OLD.owner_id;
END;
CREATE TRIGGER cameras_count_owner AFTER UPDATE OF owner_id ON cameras
    WHEN NEW.owner_id <> OLD.owner_id BEGIN
    UPDATE camera_counts SET n = n - 1, version = version + 1 WHERE owner_id = OLD.owner_id;
    INSERT INTO camera_counts (owner_id, n, version) VALUES (NEW.owner_id, 1, 1)
        ON CONFLICT (owner_id) DO UPDATE SET n = n + 1, version = version + 1;
END;

-- Any other change to a camera: its owner's listings and its guests'.
CREATE TRIGGER cameras_version_update AFTER UPDATE ON cameras BEGIN
    INSERT INTO camera_counts (owner_id, n, version) VALUES (NEW.owner_id, 0, 1)
        ON CONFLICT (owner_id) DO UPDATE SET version = version + 1;
    INSERT INTO camera_counts (owner_id, n, version)
        SELECT user_id, 0, 1 FROM camera_shares WHERE camera_id = NEW.id AND user_id IS NOT NULL
        ON CONFLICT (owner_id) DO UPDATE SET version = version + 1;
END;
-- A deleted camera's guests (their shares go with it, by cascade).
CREATE TRIGGER cameras_version_delete BEFORE DELETE ON cameras BEGIN
    UPDATE camera_counts SET version = version + 1
        WHERE owner_id IN (SELECT user_id FROM camera_shares WHERE camera_id = OLD.id);
END;

-- Shares: the guest's listings.
CREATE TRIGGER camera_shares_version_insert AFTER INSERT ON camera_shares
    WHEN NEW.user_id IS NOT NULL BEGIN
    INSERT INTO camera_counts (owner_id, n, version) VALUES (NEW.user_id, 0, 1)
        ON CONFLICT (owner_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER camera_shares_version_update AFTER UPDATE ON camera_shares BEGIN
    UPDATE camera_counts SET version = version + 1 WHERE owner_id = OLD.user_id;
    INSERT INTO camera_counts (owner_id, n, version)
        SELECT NEW.user_id, 0, 1 WHERE NEW.user_id IS NOT NULL
        ON CONFLICT (owner_id) DO UPDATE SET version = version + 1;
END;
CREATE TRIGGER camera_shares_version_delete AFTER DELETE ON camera_shares BEGIN
    UPDATE camera_counts SET version = version + 1 WHERE owner_id = OLD.user_id;
END;

-- An owner's name as guests see it.
CREATE TRIGGER users_version_owner_name AFTER UPDATE OF first_name, last_name, email ON users
    WHEN NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name
        OR NEW.email IS NOT OLD.email BEGIN
    UPDATE camera_counts SET version = version + 1
        WHERE owner_id IN (SELECT s.user_id FROM camera_shares s JOIN cameras c ON c.id = s.camera_id
                           WHERE c.owner_id = NEW.id);
END;
