//! Cameras — the owner's CRUD, the CAM2 search, bulk import — for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::model::*;
use camgate_core::store::{
    CameraQuery, CameraStore, GeoBox, GeoCell, NewCamera, PairedDevice, StoreResult,
};

use super::queries::{
    CAMERA_COLS, CAMERA_COUNTS_SQL, CAMERA_LISTING_VERSION_SQL, CAMERA_PAGE_AFTER_SQL,
    CAMERA_PAGE_OFFSET_SQL, CAMERA_SEARCH_VERSION_SQL, SHARED_PAGE_SQL,
};
use super::rows::{self, CameraRow, PairedRow, SharedCameraRow};
use super::{args, json, Arg, Exec, Geo, Sql};
use crate::backend::Backend;

/// The bound values of a camera's fields, in the order of `FIELD_COLS`.
fn field_args(f: &CameraFields) -> StoreResult<Vec<Arg>> {
    let snapshot = f.snapshot.as_ref().map(json).transpose()?;
    Ok(args![
        &f.name,
        f.codec.as_str(),
        f.status.as_str(),
        json(&f.streams)?,
        snapshot,
        &f.city,
        &f.state,
        &f.country,
        f.lat,
        f.lng,
        &f.source,
        &f.source_url,
        &f.camera_type,
        &f.description,
        f.is_video,
        f.framerate,
        f.outdoors,
        f.traffic,
        f.inactive,
        f.resolution_w,
        f.resolution_h,
        json(&f.tags)?,
        f.is_public
    ])
}

/// Columns written from [`field_args`] (23 of them).
const FIELD_COLS: &str = "name, codec, status, streams, snapshot, city, state, country, lat, \
     lng, source, source_url, camera_type, description, is_video, framerate, outdoors, traffic, \
     inactive, resolution_w, resolution_h, tags, is_public";

/// Columns written by an insert: the owner, the fields, the two timestamps.
const IMPORT_NCOLS: usize = 26;

/// Rows per multi-row INSERT: 500 × 26 = 13,000 parameters, under SQLite's 32,766 and
/// PostgreSQL's 65,535.
const IMPORT_CHUNK: usize = 500;

/// Bytes of one packed cell: `int8send(id) || float8send(lat) || float8send(lng)`.
const PACKED_CELL: usize = 24;

/// The cells of PostgreSQL's packed answer (`Geo::cells`): big-endian id, latitude and
/// longitude, 24 bytes a cell. A length that is not a whole number of cells is an error (the
/// statement and this decoder disagree), not a short answer.
pub(crate) fn decode_packed_cells(bytes: &[u8]) -> StoreResult<Vec<GeoCell>> {
    if !bytes.len().is_multiple_of(PACKED_CELL) {
        return Err(camgate_core::error::StoreError::Other(format!(
            "packed camera cells: {} bytes is not a multiple of {PACKED_CELL}",
            bytes.len()
        )));
    }
    let word = |c: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&c[at..at + 8]);
        w
    };
    Ok(bytes
        .chunks_exact(PACKED_CELL)
        .map(|c| {
            let (lat, lng) = (
                f64::from_be_bytes(word(c, 8)),
                f64::from_be_bytes(word(c, 16)),
            );
            GeoCell {
                id: i64::from_be_bytes(word(c, 0)),
                lat_min: lat,
                lat_max: lat,
                lng_min: lng,
                lng_max: lng,
            }
        })
        .collect())
}

/// `INSERT INTO cameras (…) VALUES (…), (…)` for `rows` rows. PostgreSQL gets `$n`
/// parameters; SQLite gets anonymous `?` ones (`numbered = false`): SQLite looks each named
/// parameter up in a linear list, which makes binding 13,000 `$n` parameters quadratic
/// (~1 s per statement), while `?` parameters bind in order. The only place the two backends
/// get different SQL text.
fn insert_sql(rows: usize, numbered: bool) -> String {
    let mut s = String::with_capacity(200 + rows * IMPORT_NCOLS * 6);
    s.push_str("INSERT INTO cameras (owner_id, ");
    s.push_str(FIELD_COLS);
    s.push_str(", created_at, updated_at) VALUES ");
    let mut n = 0;
    for r in 0..rows {
        s.push_str(if r > 0 { ",(" } else { "(" });
        for c in 0..IMPORT_NCOLS {
            if c > 0 {
                s.push(',');
            }
            n += 1;
            if numbered {
                s.push('$');
                s.push_str(&n.to_string());
            } else {
                s.push('?');
            }
        }
        s.push(')');
    }
    s
}

/// One row's bound values for [`insert_sql`].
fn insert_args(
    owner: UserId,
    f: &CameraFields,
    created: Timestamp,
    updated: Timestamp,
) -> StoreResult<Vec<Arg>> {
    let mut a = vec![Arg::from(owner)];
    a.extend(field_args(f)?);
    a.extend(args![created, updated]);
    Ok(a)
}

/// WHERE clauses with `$n` parameters numbered in order of appearance.
#[derive(Default)]
pub(crate) struct Where {
    pub clauses: Vec<String>,
    pub args: Vec<Arg>,
}

impl Where {
    pub fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    pub fn cond(&mut self, expr: &str, op: &str, a: Arg) {
        let p = self.arg(a);
        self.clauses.push(format!("{expr} {op} {p}"));
    }
}

/// The SQL of `CameraStore::search_cameras` and its arguments (the CAM2 filters).
/// `among`: only these ids (ascending; the radius search's refined cells), and then the box's
/// spatial index is not consulted again, only its exact conditions.
pub(crate) fn camera_search_sql(
    cols: &str,
    geo: Geo,
    q: &CameraQuery,
    among: Option<&[CameraId]>,
    after_id: i64,
    offset: i64,
    limit: i64,
) -> (String, Vec<Arg>) {
    let mut w = Where::default();
    if let Some(ids) = among {
        // The list is padded (with its last id, which changes nothing) to a power of two, so
        // that a few statement texts serve every length and stay in the statement caches.
        let n = ids.len().max(16).next_power_of_two();
        let last = ids.last().copied().unwrap_or(0);
        let marks: Vec<String> = (0..n)
            .map(|i| w.arg(Arg::from(ids.get(i).copied().unwrap_or(last))))
            .collect();
        w.clauses.push(format!("id IN ({})", marks.join(", ")));
    }
    match q.owner {
        Some(o) => {
            let p = w.arg(Arg::from(o));
            w.clauses.push(format!(
                "(owner_id = {p} OR is_public OR id IN \
                 (SELECT camera_id FROM camera_shares WHERE user_id = {p}))"
            ));
        }
        None => w.clauses.push("is_public".into()),
    }
    if after_id > 0 {
        w.cond("id", ">", Arg::from(after_id));
    }
    for (col, v) in [
        ("city", &q.city),
        ("state", &q.state),
        ("country", &q.country),
        ("camera_type", &q.camera_type),
        ("source", &q.source),
    ] {
        if let Some(v) = v {
            w.cond(col, "=", Arg::from(v.clone()));
        }
    }
    let (f, i) = (
        |v: Option<f64>| v.map(Arg::from),
        |v: Option<i64>| v.map(Arg::from),
    );
    for (col, op, v) in [
        ("lat", ">=", f(q.lat_min)),
        ("lat", "<=", f(q.lat_max)),
        ("lng", ">=", f(q.lng_min)),
        ("lng", "<=", f(q.lng_max)),
        ("framerate", ">=", f(q.framerate_min)),
        ("framerate", "<=", f(q.framerate_max)),
        ("resolution_w", ">=", i(q.resolution_w_min)),
        ("resolution_w", "<=", i(q.resolution_w_max)),
        ("resolution_h", ">=", i(q.resolution_h_min)),
        ("resolution_h", "<=", i(q.resolution_h_max)),
        ("created_at", "<", i(q.added_before)),
        ("created_at", ">=", i(q.added_after)),
        ("updated_at", "<", i(q.updated_before)),
        ("updated_at", ">=", i(q.updated_after)),
    ] {
        if let Some(v) = v {
            w.cond(col, op, v);
        }
    }
    for (col, v) in [
        ("is_video", q.is_video),
        ("outdoors", q.outdoors),
        ("traffic", q.traffic),
        ("inactive", q.inactive),
    ] {
        // A literal, not a parameter: SQLite stores booleans as 0/1, PostgreSQL as boolean,
        // and both read TRUE/FALSE.
        if let Some(v) = v {
            w.clauses
                .push(format!("{col} = {}", if v { "TRUE" } else { "FALSE" }));
        }
    }
    if let Some(b) = &q.bbox {
        // The spatial index finds the candidates (one box per longitude range: a box across
        // the antimeridian is two); the exact conditions refine them.
        let (lat_lo, lat_hi) = (w.arg(Arg::from(b.lat_min)), w.arg(Arg::from(b.lat_max)));
        w.clauses
            .push(format!("lat >= {lat_lo} AND lat <= {lat_hi}"));
        let mut ors = Vec::new();
        for (lo, hi) in b.lng_spans() {
            let (a, z) = (w.arg(Arg::from(*lo)), w.arg(Arg::from(*hi)));
            if among.is_some() {
                ors.push(format!("(lng >= {a} AND lng <= {z})"));
            } else {
                let boxed = geo.within((&lat_lo, &lat_hi), (&a, &z));
                ors.push(format!("({boxed} AND lng >= {a} AND lng <= {z})"));
            }
        }
        w.clauses.push(format!("({})", ors.join(" OR ")));
    }
    let l = w.arg(Arg::from(limit));
    let o = w.arg(Arg::from(offset));
    let sql = format!(
        "SELECT {cols} FROM cameras WHERE {} ORDER BY id LIMIT {l} OFFSET {o}",
        w.clauses.join(" AND ")
    );
    (sql, w.args)
}

/// Camera listings on each backend's fast path: SQLite's per-thread rusqlite reader (as token
/// lookups), PostgreSQL's pool with its cached prepared statements.
#[async_trait]
pub(crate) trait CameraReads<Q: Sql>: Send + Sync + 'static {
    async fn camera_page(
        &self,
        sql: &Q,
        owner: UserId,
        limit: i64,
        offset: i64,
        after: Option<CameraId>,
    ) -> StoreResult<(i64, Vec<Camera>)>;

    async fn camera_listing_version(&self, sql: &Q, user: UserId) -> StoreResult<i64>;

    async fn camera_search_version(&self, sql: &Q) -> StoreResult<i64>;

    /// Whole camera rows (`CAMERA_COLS`) of a query built here (`$N` parameters).
    async fn camera_rows(&self, sql: &Q, text: &str, args: Vec<Arg>) -> StoreResult<Vec<Camera>>;

    /// The cells of a query built here ([`Geo::cells`]).
    async fn camera_cells(&self, sql: &Q, text: &str, args: Vec<Arg>) -> StoreResult<Vec<GeoCell>>;
}

/// PostgreSQL (and any sqlx pool): the shared statements through sqlx.
#[async_trait]
impl<Q: Sql> CameraReads<Q> for super::tokens::SqlTokens {
    async fn camera_page(
        &self,
        sql: &Q,
        owner: UserId,
        limit: i64,
        offset: i64,
        after: Option<CameraId>,
    ) -> StoreResult<(i64, Vec<Camera>)> {
        let counts: Option<(i64, i64)> = sql.one(CAMERA_COUNTS_SQL, args![owner]).await?;
        let (own, shared) = counts.unwrap_or((0, 0));
        if shared > 0 {
            let (after, offset) = match after {
                Some(a) => (a, 0),
                None => (0, offset),
            };
            let rows: Vec<SharedCameraRow> = sql
                .all(&SHARED_PAGE_SQL, args![owner, after, limit, offset])
                .await?;
            let cams = rows
                .into_iter()
                .map(Camera::try_from)
                .collect::<StoreResult<Vec<_>>>()?;
            return Ok((own + shared, cams));
        }
        let rows: Vec<CameraRow> = match after {
            Some(a) => {
                sql.all(CAMERA_PAGE_AFTER_SQL, args![owner, a, limit])
                    .await?
            }
            None => {
                sql.all(CAMERA_PAGE_OFFSET_SQL, args![owner, limit, offset])
                    .await?
            }
        };
        Ok((own, rows::try_all(rows)?))
    }

    async fn camera_listing_version(&self, sql: &Q, user: UserId) -> StoreResult<i64> {
        let v: Option<(i64,)> = sql.one(CAMERA_LISTING_VERSION_SQL, args![user]).await?;
        Ok(v.map_or(0, |(v,)| v))
    }

    async fn camera_search_version(&self, sql: &Q) -> StoreResult<i64> {
        let v: Option<(i64,)> = sql.one(CAMERA_SEARCH_VERSION_SQL, args![]).await?;
        Ok(v.map_or(0, |(v,)| v))
    }

    async fn camera_rows(&self, sql: &Q, text: &str, args: Vec<Arg>) -> StoreResult<Vec<Camera>> {
        let rows: Vec<CameraRow> = sql.all(text, args).await?;
        rows::try_all(rows)
    }

    async fn camera_cells(&self, sql: &Q, text: &str, args: Vec<Arg>) -> StoreResult<Vec<GeoCell>> {
        if Q::GEO == Geo::Gist {
            // Every cell of the box in one packed value (Geo::cells).
            let packed: Option<(Option<Vec<u8>>,)> = sql.one(text, args).await?;
            return decode_packed_cells(packed.and_then(|(b,)| b).as_deref().unwrap_or_default());
        }
        let rows: Vec<(CameraId, f64, f64, f64, f64)> = sql.all(text, args).await?;
        Ok(rows
            .into_iter()
            .map(|(id, lat_min, lat_max, lng_min, lng_max)| GeoCell {
                id,
                lat_min,
                lat_max,
                lng_min,
                lng_max,
            })
            .collect())
    }
}

#[async_trait]
impl<T: CameraReads<Q>, Q: Sql> CameraStore for Backend<T, Q> {
    async fn create_camera(
        &self,
        owner: UserId,
        f: &CameraFields,
        now: Timestamp,
    ) -> StoreResult<Camera> {
        let sql = format!("{} RETURNING {CAMERA_COLS}", insert_sql(1, true));
        let row: Option<CameraRow> = self
            .sql
            .one_w(&sql, insert_args(owner, f, now, now)?)
            .await?;
        row.ok_or_else(|| camgate_core::error::StoreError::Other("no camera row".into()))?
            .try_into()
    }

    async fn camera(&self, owner: UserId, id: CameraId) -> StoreResult<Option<Camera>> {
        let sql = format!("SELECT {CAMERA_COLS} FROM cameras WHERE id = $1 AND owner_id = $2");
        let row: Option<CameraRow> = self.sql.one(&sql, args![id, owner]).await?;
        row.map(Camera::try_from).transpose()
    }

    async fn list_cameras(
        &self,
        owner: UserId,
        limit: i64,
        offset: i64,
        after: Option<CameraId>,
    ) -> StoreResult<(i64, Vec<Camera>)> {
        self.tokens
            .camera_page(&self.sql, owner, limit, offset, after)
            .await
    }

    async fn camera_listing_version(&self, user: UserId) -> StoreResult<i64> {
        self.tokens.camera_listing_version(&self.sql, user).await
    }

    async fn camera_search_version(&self) -> StoreResult<i64> {
        self.tokens.camera_search_version(&self.sql).await
    }

    async fn update_camera(&self, c: &Camera) -> StoreResult<bool> {
        let sets: Vec<String> = FIELD_COLS
            .split(", ")
            .enumerate()
            .map(|(i, col)| format!("{col} = ${}", i + 1))
            .collect();
        let sql = format!(
            "UPDATE cameras SET {}, updated_at = $24, version = version + 1 \
             WHERE id = $25 AND owner_id = $26 AND version = $27",
            sets.join(", ")
        );
        let mut a = field_args(&c.fields)?;
        a.extend(args![c.updated_at, c.id, c.owner_id, c.version]);
        Ok(self.sql.run(&sql, a).await? == 1)
    }

    async fn pair_camera(
        &self,
        owner: UserId,
        serial: &str,
        f: &CameraFields,
        now: Timestamp,
    ) -> StoreResult<Camera> {
        // One upsert on the (owner, serial) index: a device paired again is the same camera,
        // back online.
        let params: Vec<String> = (1..=IMPORT_NCOLS + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "INSERT INTO cameras (owner_id, {FIELD_COLS}, created_at, updated_at, device_serial, \
             last_seen_at) VALUES ({}) \
             ON CONFLICT (owner_id, device_serial) WHERE device_serial IS NOT NULL \
             DO UPDATE SET status = excluded.status, last_seen_at = excluded.last_seen_at, \
             updated_at = excluded.updated_at, version = cameras.version + 1 \
             RETURNING {CAMERA_COLS}",
            params.join(", ")
        );
        let mut a = insert_args(owner, f, now, now)?;
        a.extend(args![serial, now]);
        let row: Option<CameraRow> = self.sql.one_w(&sql, a).await?;
        row.ok_or_else(|| camgate_core::error::StoreError::Other("no camera row".into()))?
            .try_into()
    }

    async fn camera_heartbeat(
        &self,
        owner: UserId,
        id: CameraId,
        status: CameraStatus,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let sql = "UPDATE cameras SET status = $1, last_seen_at = $2, updated_at = $3, \
             version = version + 1 WHERE id = $4 AND owner_id = $5";
        let args = args![status.as_str(), now, now, id, owner];
        Ok(self.sql.run(sql, args).await? == 1)
    }

    async fn paired_devices(&self, owner: UserId) -> StoreResult<Vec<PairedDevice>> {
        let sql = "SELECT c.id, c.device_serial, c.last_seen_at, EXISTS (SELECT 1 FROM \
             token_families f WHERE f.camera_id = c.id AND f.revoked_at IS NULL) AS live \
             FROM cameras c WHERE c.owner_id = $1 AND c.device_serial IS NOT NULL ORDER BY c.id";
        let rows: Vec<PairedRow> = self.sql.all(sql, args![owner]).await?;
        Ok(rows::all(rows))
    }

    async fn unpair_camera(
        &self,
        owner: UserId,
        id: CameraId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // Tokens first, then their families, as every family revocation does.
        let mut tx = self.sql.begin().await?;
        let of_camera = "family_id IN (SELECT f.id FROM token_families f \
             JOIN cameras c ON c.id = f.camera_id WHERE f.camera_id = $2 AND c.owner_id = $3)";
        for table in ["access_tokens", "refresh_tokens"] {
            let sql = format!(
                "UPDATE {table} SET revoked_at = $1 WHERE revoked_at IS NULL AND {of_camera}"
            );
            tx.run(&sql, args![now, id, owner]).await?;
        }
        let families = "UPDATE token_families SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND camera_id = $2 AND camera_id IN (SELECT id FROM cameras WHERE owner_id = $3)";
        let n = tx.run(families, args![now, id, owner]).await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn delete_camera(&self, owner: UserId, id: CameraId) -> StoreResult<bool> {
        let sql = "DELETE FROM cameras WHERE id = $1 AND owner_id = $2";
        Ok(self.sql.run(sql, args![id, owner]).await? == 1)
    }

    async fn search_cameras(
        &self,
        q: &CameraQuery,
        after_id: CameraId,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<Camera>> {
        let (sql, args) = camera_search_sql(CAMERA_COLS, Q::GEO, q, None, after_id, offset, limit);
        self.tokens.camera_rows(&self.sql, &sql, args).await
    }

    async fn camera_cells(&self, b: &GeoBox) -> StoreResult<Vec<GeoCell>> {
        let mut cells = Vec::new();
        for &(lo, hi) in b.lng_spans() {
            let args = args![b.lat_min, b.lat_max, lo, hi];
            cells.extend(
                self.tokens
                    .camera_cells(&self.sql, Q::GEO.cells(), args)
                    .await?,
            );
        }
        Ok(cells)
    }

    async fn search_cameras_among(
        &self,
        q: &CameraQuery,
        ids: &[CameraId],
    ) -> StoreResult<Vec<Camera>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = ids.len() as i64;
        let (sql, args) = camera_search_sql(CAMERA_COLS, Q::GEO, q, Some(ids), 0, 0, n);
        self.tokens.camera_rows(&self.sql, &sql, args).await
    }

    async fn import_cameras(&self, owner: UserId, rows: &[NewCamera]) -> StoreResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let full_len = IMPORT_CHUNK.min(rows.len());
        let full = insert_sql(full_len, Q::NUMBERED);
        let mut tx = self.sql.begin().await?;
        for chunk in rows.chunks(IMPORT_CHUNK) {
            let partial;
            let sql = if chunk.len() == full_len {
                &full
            } else {
                partial = insert_sql(chunk.len(), Q::NUMBERED);
                &partial
            };
            let mut a = Vec::with_capacity(chunk.len() * IMPORT_NCOLS);
            for r in chunk {
                a.extend(insert_args(owner, &r.fields, r.created_at, r.updated_at)?);
            }
            tx.run(sql, a).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn analyze_cameras(&self) -> StoreResult<()> {
        self.sql.run_each(Q::ANALYZE_CAMERAS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_cells_decode_exactly_and_reject_a_ragged_length() {
        // What PostgreSQL's int8send/float8send produce: big-endian two's complement and
        // IEEE 754 bits.
        let cells = [
            (7_i64, -55.086_012_345_678_9_f64, -155.846_f64),
            (i64::MAX, 89.999_999_999_999_99, 179.999_999_999_999_97),
            (1, -0.0, 5e-324),
        ];
        let mut packed = Vec::new();
        for (id, lat, lng) in cells {
            packed.extend(id.to_be_bytes());
            packed.extend(lat.to_be_bytes());
            packed.extend(lng.to_be_bytes());
        }
        let got = decode_packed_cells(&packed).unwrap();
        assert_eq!(got.len(), cells.len());
        for (g, (id, lat, lng)) in got.iter().zip(cells) {
            assert_eq!(g.id, id);
            assert_eq!(g.lat_min.to_bits(), lat.to_bits());
            assert_eq!(g.lat_max.to_bits(), lat.to_bits());
            assert_eq!(g.lng_min.to_bits(), lng.to_bits());
            assert_eq!(g.lng_max.to_bits(), lng.to_bits());
        }
        assert!(decode_packed_cells(&[]).unwrap().is_empty());
        assert!(decode_packed_cells(&packed[..packed.len() - 1]).is_err());
    }
}
