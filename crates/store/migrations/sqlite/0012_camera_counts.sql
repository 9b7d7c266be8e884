-- Each owner's number of cameras, kept by triggers, so a camera listing's `count` is one row
-- read instead of a COUNT(*) over the owner's cameras (which grows with them).
CREATE TABLE camera_counts (
    owner_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    n        INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO camera_counts (owner_id, n) SELECT owner_id, COUNT(*) FROM cameras GROUP BY owner_id;

CREATE TRIGGER cameras_count_insert AFTER INSERT ON cameras BEGIN
    INSERT INTO camera_counts (owner_id, n) VALUES (NEW.owner_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cameras_count_delete AFTER DELETE ON cameras BEGIN
    UPDATE camera_counts SET n = n - 1 WHERE owner_id = OLD.owner_id;
END;
CREATE TRIGGER cameras_count_owner AFTER UPDATE OF owner_id ON cameras
    WHEN NEW.owner_id <> OLD.owner_id BEGIN
    UPDATE camera_counts SET n = n - 1 WHERE owner_id = OLD.owner_id;
    INSERT INTO camera_counts (owner_id, n) VALUES (NEW.owner_id, 1)
        ON CONFLICT (owner_id) DO UPDATE SET n = n + 1;
END;
