//! Bulk fixtures made before the server starts: a CSV of cameras in CAM2 field names (loaded
//! with `camgate camera import`), and filler rows in the access-token table (written straight
//! into the database: rusqlite for SQLite, `generate_series` for PostgreSQL), with a cache of
//! the filled database keyed by the schema the server applied.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sqlx::Connection;

/// Distinct cities in the generated camera set; a `city=` filter selects 1 / CITIES of it.
pub const CITIES: usize = 1000;
/// The city the `cameras-json` filter asks for.
pub const FILTER_CITY: usize = 42;

/// The generated columns, all CAM2 field names (`camgate_core::cam2::CAM2_FIELDS` minus the
/// dates, which default to the import time).
pub const CSV_HEADER: [&str; 17] = [
    "camera_id",
    "city",
    "state",
    "country",
    "lat",
    "lng",
    "source",
    "source_url",
    "camera_type",
    "description",
    "is_video",
    "framerate",
    "outdoors",
    "traffic",
    "inactive",
    "resolution_w",
    "resolution_h",
];

const COUNTRIES: [(&str, &str); 8] = [
    ("US", "IN"),
    ("JP", "13"),
    ("CZ", "PR"),
    ("NL", "NH"),
    ("FR", "ARA"),
    ("DE", "BE"),
    ("BR", "SP"),
    ("IN", "KA"),
];

pub fn city_name(c: usize) -> String {
    format!("Bench City {c:04}")
}

/// Whether camera `i` is a video camera (two in three are).
pub fn is_video(i: usize) -> bool {
    i % 3 != 2
}

/// One CSV row for camera `i` (no quoting needed: no field has a comma or a quote).
pub fn camera_row(i: usize) -> [String; 17] {
    let city = i % CITIES;
    let (country, state) = COUNTRIES[city % COUNTRIES.len()];
    // Cities on a grid; cameras scattered around their city.
    let (lat, lng) = city_centre(city);
    let lat = lat + (i % 97) as f64 * 0.0001;
    let lng = lng + (i % 89) as f64 * 0.0001;
    let hd = i.is_multiple_of(2);
    [
        (i + 1).to_string(),
        city_name(city),
        state.to_string(),
        country.to_string(),
        format!("{lat:.6}"),
        format!("{lng:.6}"),
        if i.is_multiple_of(2) { "Google" } else { "DOT" }.to_string(),
        format!("www.example.com/cams/{}", i + 1),
        if i.is_multiple_of(4) { "Non_IP" } else { "IP" }.to_string(),
        format!("Bench camera {} in {}", i + 1, city_name(city)),
        is_video(i).to_string(),
        if is_video(i) { "25" } else { "1" }.to_string(),
        i.is_multiple_of(2).to_string(),
        i.is_multiple_of(5).to_string(),
        "false".to_string(),
        if hd { "1920" } else { "1280" }.to_string(),
        if hd { "1080" } else { "720" }.to_string(),
    ]
}

/// The `cameras-json` query: one city's video cameras.
pub fn cameras_json_path() -> String {
    format!(
        "/cameras.json?city={}&video=true",
        crate::http::form_escape(&city_name(FILTER_CITY))
    )
}

/// The centre of city `c` (its cameras lie within about a kilometre north-east of it).
pub fn city_centre(c: usize) -> (f64, f64) {
    (
        -60.0 + (c as f64 * 0.117) % 120.0,
        -170.0 + (c as f64 * 0.337) % 340.0,
    )
}

/// The radius search of `cameras-json-1m`: 25 km around the filter city's centre.
pub fn cameras_radius_path() -> String {
    let (lat, lng) = city_centre(FILTER_CITY);
    format!("/cameras.json?near={lat:.4},{lng:.4}&radius_km=25")
}

/// How many of `n` generated cameras the `cameras-json` query matches (before paging).
pub fn expected_matches(n: usize) -> usize {
    (0..n)
        .filter(|i| i % CITIES == FILTER_CITY && is_video(*i))
        .count()
}

/// Writes `n` cameras as CSV.
pub fn write_cameras_csv(n: usize, out: impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    writeln!(w, "{}", CSV_HEADER.join(","))?;
    for i in 0..n {
        writeln!(w, "{}", camera_row(i).join(","))?;
    }
    w.flush()
}

/// The primary key of filler token `i` of `n`: 32 bytes like a SHA-256 digest, spread evenly
/// over the key space and increasing with `i`, so the rows are appended in key order (fast to
/// write) while a real token's digest still lands anywhere among them.
pub fn filler_hash(i: u64, n: u64) -> [u8; 32] {
    let step = u64::MAX / n.max(1);
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&(i.wrapping_mul(step)).to_be_bytes());
    let mut x = i ^ 0x9e37_79b9_7f4a_7c15;
    for chunk in h[8..].chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
    }
    h
}

/// A column as the database describes it.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// Columns that need a value but get none from `supplied`: the schema changed and the filler
/// must follow it.
pub fn missing_required(columns: &[Column], supplied: &[&str]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| c.not_null && !c.has_default && !supplied.contains(&c.name.as_str()))
        .map(|c| c.name.clone())
        .collect()
}

const FAMILY_COLUMNS: [&str; 6] = [
    "id",
    "user_id",
    "client_pk",
    "grant_type",
    "created_at",
    "expires_at",
];
const TOKEN_COLUMNS: [&str; 5] = ["hash", "family_id", "scope", "created_at", "expires_at"];

/// Which rows to add: `rows` live access tokens, one token family each (as a grant makes),
/// of `user_id` through `client_pk`, expiring long after the run so the sweeper keeps them.
#[derive(Debug, Clone, Copy)]
pub struct FillPlan {
    pub rows: u64,
    pub user_id: i64,
    pub client_pk: i64,
    pub now: i64,
}

impl FillPlan {
    fn expires(&self) -> i64 {
        self.now + 10 * 365 * 86_400
    }
}

fn check_columns(table: &str, cols: &[Column], supplied: &[&str]) -> anyhow::Result<()> {
    if cols.is_empty() {
        bail!("table {table} not found: has the schema changed?");
    }
    let missing = missing_required(cols, supplied);
    if !missing.is_empty() {
        bail!(
            "table {table} has required columns the filler does not write ({}): update crates/bench/src/fixtures.rs",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Fills a migrated SQLite database in one transaction with prepared statements. Foreign keys
/// are not checked while it runs (every token's family is written just before it).
pub fn fill_sqlite(path: &Path, plan: FillPlan) -> anyhow::Result<()> {
    let mut db =
        rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    db.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA foreign_keys = OFF;",
    )?;
    for (table, supplied) in [
        ("token_families", &FAMILY_COLUMNS[..]),
        ("access_tokens", &TOKEN_COLUMNS[..]),
    ] {
        let mut st = db.prepare(&format!("PRAGMA table_info({table})"))?;
        let cols = st
            .query_map([], |r| {
                Ok(Column {
                    name: r.get(1)?,
                    not_null: r.get::<_, i64>(3)? != 0 || r.get::<_, i64>(5)? != 0,
                    has_default: r.get::<_, Option<String>>(4)?.is_some()
                        || r.get::<_, i64>(5)? != 0,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        check_columns(table, &cols, supplied)?;
    }
    let tx = db.transaction()?;
    {
        let base: i64 =
            tx.query_row("SELECT COALESCE(MAX(id), 0) FROM token_families", [], |r| {
                r.get(0)
            })?;
        let mut fam = tx.prepare(
            "INSERT INTO token_families (id, user_id, client_pk, grant_type, created_at, expires_at) VALUES (?1, ?2, ?3, 'password', ?4, ?5)",
        )?;
        let mut tok = tx.prepare(
            "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) VALUES (?1, ?2, 'read write', ?3, ?4)",
        )?;
        let exp = plan.expires();
        for i in 0..plan.rows {
            let id = base + 1 + i as i64;
            fam.execute(rusqlite::params![
                id,
                plan.user_id,
                plan.client_pk,
                plan.now,
                exp
            ])?;
            tok.execute(rusqlite::params![
                &filler_hash(i, plan.rows)[..],
                id,
                plan.now,
                exp
            ])?;
        }
    }
    tx.commit()?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// Fills a migrated PostgreSQL database with `generate_series` (one INSERT … SELECT per table).
/// The foreign-key triggers (a lookup per row) are off for the transaction
/// (`session_replication_role = replica`, which needs a superuser such as the default admin
/// URL's); the rows are consistent by construction: families first, tokens pointing at them.
pub async fn fill_postgres(url: &str, plan: FillPlan) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(url).await?;
    for (table, supplied) in [
        ("token_families", &FAMILY_COLUMNS[..]),
        ("access_tokens", &TOKEN_COLUMNS[..]),
    ] {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, is_nullable::text, column_default::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table)
        .fetch_all(&mut c)
        .await?;
        let cols: Vec<Column> = rows
            .into_iter()
            .map(|(name, nullable, default)| Column {
                name,
                not_null: nullable == "NO",
                has_default: default.is_some(),
            })
            .collect();
        check_columns(table, &cols, supplied)?;
    }
    let n = plan.rows as i64;
    let step = (i64::MAX / n.max(1)).max(1);
    let exp = plan.expires();
    sqlx::raw_sql("SET synchronous_commit = off; SET maintenance_work_mem = '256MB'")
        .execute(&mut c)
        .await?;
    let base: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0)::bigint FROM token_families")
        .fetch_one(&mut c)
        .await?;
    let mut tx = c.begin().await?;
    sqlx::raw_sql("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .context("turning off foreign-key triggers for the fill (needs a superuser)")?;
    sqlx::query(
        "INSERT INTO token_families (id, user_id, client_pk, grant_type, created_at, expires_at) \
         SELECT $1 + g, $2, $3, 'password', $4, $5 FROM generate_series(1::bigint, $6) g",
    )
    .bind(base)
    .bind(plan.user_id)
    .bind(plan.client_pk)
    .bind(plan.now)
    .bind(exp)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    // Key-ordered like filler_hash: 8 increasing big-endian bytes, then 24 bytes of a digest.
    sqlx::query(
        "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) \
         SELECT int8send(g * $1) || substring(sha256(int8send(g)) from 1 for 24), $2 + g, 'read write', $3, $4 \
         FROM generate_series(1::bigint, $5) g",
    )
    .bind(step)
    .bind(base)
    .bind(plan.now)
    .bind(exp)
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('token_families', 'id'), (SELECT MAX(id) FROM token_families))",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::raw_sql("ANALYZE token_families; ANALYZE access_tokens")
        .execute(&mut c)
        .await?;
    c.close().await.ok();
    Ok(())
}

/// The migrations the server applied to a database: `(version, checksum)` from sqlx's table.
pub async fn applied_migrations(url: &str) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
    let q = "SELECT version, checksum FROM _sqlx_migrations ORDER BY version";
    if url.starts_with("sqlite:") {
        let path = url.trim_start_matches("sqlite://").to_string();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
            let db = rusqlite::Connection::open(&path)?;
            let mut st = db.prepare(q)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(q).fetch_all(&mut c).await?;
        c.close().await.ok();
        Ok(rows)
    }
}

/// The primary key of client `client_id`.
pub async fn client_pk(url: &str, client_id: &str) -> anyhow::Result<i64> {
    if url.starts_with("sqlite:") {
        let path = url.trim_start_matches("sqlite://").to_string();
        let id = client_id.to_string();
        tokio::task::spawn_blocking(move || -> anyhow::Result<i64> {
            let db = rusqlite::Connection::open(&path)?;
            Ok(
                db.query_row("SELECT id FROM clients WHERE client_id = ?1", [&id], |r| {
                    r.get(0)
                })?,
            )
        })
        .await?
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        let pk: i64 = sqlx::query_scalar("SELECT id FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut c)
            .await?;
        c.close().await.ok();
        Ok(pk)
    }
}

/// Bumped whenever the filler writes different rows.
const FILLER_VERSION: u32 = 1;

/// A stable key for a filled database: the filler version, what was filled (`kind`), the row
/// count and the applied migrations (FNV-1a, 64 bits, hex).
pub fn cache_key(migrations: &[(i64, Vec<u8>)], kind: &str, rows: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&FILLER_VERSION.to_be_bytes());
    eat(kind.as_bytes());
    eat(&rows.to_be_bytes());
    for (v, sum) in migrations {
        eat(&v.to_be_bytes());
        eat(sum);
    }
    format!("{h:016x}")
}

/// The cached SQLite file for `key`.
pub fn sqlite_cache_file(dir: &Path, kind: &str, rows: u64, key: &str) -> PathBuf {
    dir.join(format!("{kind}-{rows}-{key}.db"))
}

/// The PostgreSQL template database for `key`.
pub fn pg_template_name(kind: &str, rows: u64, key: &str) -> String {
    format!("camgate_bench_tpl_{}_{rows}_{key}", kind.replace('-', "_"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_cam2_columns_and_parses() {
        let mut buf = Vec::new();
        write_cameras_csv(2500, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header, CSV_HEADER);
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 2500);
        for r in &rows {
            assert_eq!(r.len(), CSV_HEADER.len(), "{r:?}");
            let lat: f64 = r[4].parse().unwrap();
            let lng: f64 = r[5].parse().unwrap();
            assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng));
            assert!(r[8] == "IP" || r[8] == "Non_IP");
            assert!(r[10] == "true" || r[10] == "false");
        }
        // The filter is selective: one city of CITIES, video only.
        let matching = rows
            .iter()
            .filter(|r| r[1] == city_name(FILTER_CITY) && r[10] == "true")
            .count();
        assert_eq!(matching, expected_matches(2500));
        assert_eq!(expected_matches(100_000), 67);
        assert_eq!(
            cameras_json_path(),
            "/cameras.json?city=Bench%20City%200042&video=true"
        );
    }

    #[test]
    fn filler_hashes_increase_and_differ() {
        let n = 10_000;
        let hs: Vec<[u8; 32]> = (0..n).map(|i| filler_hash(i, n)).collect();
        assert!(hs.windows(2).all(|w| w[0] < w[1]));
        // Spread over the key space, like digests.
        assert!(hs[(n - 1) as usize][0] >= 0xf0);
        assert_ne!(hs[1][8..], hs[2][8..]);
    }

    #[test]
    fn required_columns_are_checked() {
        let col = |name: &str, not_null, has_default| Column {
            name: name.into(),
            not_null,
            has_default,
        };
        let cols = vec![
            col("hash", true, false),
            col("scope", true, false),
            col("revoked_at", false, false),
            col("version", true, true),
            col("new_required", true, false),
        ];
        assert_eq!(
            missing_required(&cols, &["hash", "scope"]),
            vec!["new_required".to_string()]
        );
        assert!(check_columns("t", &cols, &["hash", "scope", "new_required"]).is_ok());
        assert!(check_columns("t", &[], &[]).is_err());
    }

    #[test]
    fn cache_key_follows_schema_and_rows() {
        let m = vec![(1, vec![1, 2, 3]), (2, vec![4])];
        let k = cache_key(&m, "t", 10);
        assert_eq!(k.len(), 16);
        assert_eq!(k, cache_key(&m, "t", 10));
        assert_ne!(k, cache_key(&m, "t", 11));
        assert_ne!(k, cache_key(&m, "c", 10));
        assert_ne!(k, cache_key(&m[..1], "t", 10));
        assert_ne!(k, cache_key(&[(1, vec![1, 2, 3]), (2, vec![5])], "t", 10));
    }

    #[test]
    fn sqlite_fill_writes_rows_with_families() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        let db = rusqlite::Connection::open(&p).unwrap();
        // A cut-down copy of the schema's two tables (migrations 0001 + 0005).
        db.execute_batch(
            "CREATE TABLE token_families (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER, client_pk INTEGER NOT NULL, grant_type TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER, expires_at INTEGER);
             CREATE TABLE access_tokens (hash BLOB PRIMARY KEY, family_id INTEGER NOT NULL REFERENCES token_families(id) ON DELETE CASCADE, scope TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER) WITHOUT ROWID;",
        )
        .unwrap();
        drop(db);
        let plan = FillPlan {
            rows: 500,
            user_id: 1,
            client_pk: 1,
            now: 1_000,
        };
        fill_sqlite(&p, plan).unwrap();
        let db = rusqlite::Connection::open(&p).unwrap();
        let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM access_tokens"), 500);
        assert_eq!(count("SELECT count(*) FROM token_families"), 500);
        assert_eq!(
            count("SELECT count(*) FROM access_tokens a JOIN token_families f ON f.id = a.family_id WHERE a.expires_at > 1000 AND length(a.hash) = 32"),
            500
        );
    }
}
