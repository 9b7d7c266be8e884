-- A spatial index of the cameras' positions for the CAM2 radius search (GiST over a point,
-- built into PostgreSQL, no extension): the search's bounding box finds the candidates
-- (`point(lng, lat) <@ box(...)`), the exact latitude/longitude conditions and the
-- great-circle distance refine them.
CREATE INDEX cameras_geo ON cameras USING gist (point(lng, lat));

-- The version of what a CAM2 search may show (any camera, share or owner name anywhere): the
-- sum of these rows, moved by statement triggers. A node answers a search from memory while it
-- is unchanged. A writer moves the row of its backend process (16 rows), so concurrent camera
-- writes rarely wait on one another; the sum still moves with every committed change.
CREATE TABLE camera_search_versions (
    bucket  INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO camera_search_versions (bucket, version) SELECT b, 0 FROM generate_series(0, 15) b;
CREATE FUNCTION camera_search_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE camera_search_versions SET version = version + 1 WHERE bucket = pg_backend_pid() % 16;
    RETURN NULL;
END;
$$;
CREATE TRIGGER cameras_search AFTER INSERT OR UPDATE OR DELETE ON cameras
    FOR EACH STATEMENT EXECUTE FUNCTION camera_search_bump();
CREATE TRIGGER camera_shares_search AFTER INSERT OR UPDATE OR DELETE ON camera_shares
    FOR EACH STATEMENT EXECUTE FUNCTION camera_search_bump();
CREATE TRIGGER users_search_owner_name AFTER UPDATE OF first_name, last_name, email ON users
    FOR EACH STATEMENT EXECUTE FUNCTION camera_search_bump();
