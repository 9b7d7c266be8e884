-- A spatial index of the cameras' positions (SQLite's R*Tree module) for the CAM2 radius
-- search: the search's bounding box finds the candidates here, the exact latitude/longitude
-- conditions and the great-circle distance refine them. Kept by triggers; cameras without a
-- position are not in it. (R*Tree stores 32-bit floats, rounded outward, so a box query
-- returns a superset: the exact conditions on cameras.lat/lng stay in the query.)
CREATE VIRTUAL TABLE cameras_geo USING rtree(id, min_lat, max_lat, min_lng, max_lng);
INSERT INTO cameras_geo (id, min_lat, max_lat, min_lng, max_lng)
    SELECT id, lat, lat, lng, lng FROM cameras WHERE lat IS NOT NULL AND lng IS NOT NULL;

CREATE TRIGGER cameras_geo_insert AFTER INSERT ON cameras
    WHEN NEW.lat IS NOT NULL AND NEW.lng IS NOT NULL BEGIN
    INSERT INTO cameras_geo (id, min_lat, max_lat, min_lng, max_lng)
        VALUES (NEW.id, NEW.lat, NEW.lat, NEW.lng, NEW.lng);
END;
CREATE TRIGGER cameras_geo_update AFTER UPDATE OF lat, lng ON cameras BEGIN
    DELETE FROM cameras_geo WHERE id = OLD.id;
    INSERT INTO cameras_geo (id, min_lat, max_lat, min_lng, max_lng)
        SELECT NEW.id, NEW.lat, NEW.lat, NEW.lng, NEW.lng
        WHERE NEW.lat IS NOT NULL AND NEW.lng IS NOT NULL;
END;
CREATE TRIGGER cameras_geo_delete AFTER DELETE ON cameras BEGIN
    DELETE FROM cameras_geo WHERE id = OLD.id;
END;

-- The version of what a CAM2 search may show (any camera, share or owner name anywhere): the
-- sum of these rows, moved by triggers. A node answers a search from memory while it is
-- unchanged. (Rows, so PostgreSQL can spread its writers; SQLite's one writer uses row 0.)
CREATE TABLE camera_search_versions (
    bucket  INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO camera_search_versions (bucket, version) VALUES (0, 0);
CREATE TRIGGER cameras_search_insert AFTER INSERT ON cameras BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER cameras_search_update AFTER UPDATE ON cameras BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER cameras_search_delete AFTER DELETE ON cameras BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER camera_shares_search_insert AFTER INSERT ON camera_shares BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER camera_shares_search_update AFTER UPDATE ON camera_shares BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER camera_shares_search_delete AFTER DELETE ON camera_shares BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
CREATE TRIGGER users_search_owner_name AFTER UPDATE OF first_name, last_name, email ON users
    WHEN NEW.first_name IS NOT OLD.first_name OR NEW.last_name IS NOT OLD.last_name
        OR NEW.email IS NOT OLD.email BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = 0;
END;
