-- PostgreSQL's GiST index of camera positions gains the id and the exact position as included
-- columns in this migration, so the radius search's cells come from the index alone. SQLite's
-- R*Tree (`cameras_geo`) already holds the id and the bounds: nothing changes here. The file
-- keeps both backends' migration numbers the same.
SELECT 1;
