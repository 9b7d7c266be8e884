-- Each owner's number of cameras, kept by triggers, so a camera listing's `count` is one row
-- read instead of a COUNT(*) over the owner's cameras (which grows with them).
CREATE TABLE camera_counts (
    owner_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    n        BIGINT NOT NULL
);
INSERT INTO camera_counts (owner_id, n) SELECT owner_id, COUNT(*) FROM cameras GROUP BY owner_id;

CREATE FUNCTION camera_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE camera_counts SET n = n - 1 WHERE owner_id = OLD.owner_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO camera_counts (owner_id, n) VALUES (NEW.owner_id, 1)
            ON CONFLICT (owner_id) DO UPDATE SET n = camera_counts.n + 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER cameras_count_insert_delete AFTER INSERT OR DELETE ON cameras
    FOR EACH ROW EXECUTE FUNCTION camera_counts_track();
CREATE TRIGGER cameras_count_owner AFTER UPDATE OF owner_id ON cameras
    FOR EACH ROW WHEN (NEW.owner_id IS DISTINCT FROM OLD.owner_id)
    EXECUTE FUNCTION camera_counts_track();
