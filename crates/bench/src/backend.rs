//! The database backend a scenario runs on: SQLite (a file in a temporary directory) or
//! PostgreSQL (a fresh database `camgate_bench_<pid>_<n>` on the server of the admin URL,
//! dropped again when the scenario ends, on error too).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context};
use sqlx::Connection;

/// `--database`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatabaseArg {
    Sqlite,
    Postgres,
    /// Both backends, one after the other, plus a comparison table.
    Both,
}

impl DatabaseArg {
    pub fn backends(self) -> Vec<Backend> {
        match self {
            DatabaseArg::Sqlite => vec![Backend::Sqlite],
            DatabaseArg::Postgres => vec![Backend::Postgres],
            DatabaseArg::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// For tables and headings.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The default admin URL (`--pg-url`, `CAMGATE_BENCH_PG_URL`).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of database `name` on the server of `admin`: `admin` with its path replaced
/// (user, password, host and query parameters are kept).
pub fn pg_url_for(admin: &str, name: &str) -> anyhow::Result<String> {
    let Some(scheme_end) = admin.find("://") else {
        bail!("--pg-url `{admin}` is not a postgres:// URL");
    };
    let rest = &admin[scheme_end + 3..];
    let (before_query, query) = match rest.find('?') {
        Some(q) => (&rest[..q], &rest[q..]),
        None => (rest, ""),
    };
    let authority = before_query
        .find('/')
        .map_or(before_query, |s| &before_query[..s]);
    if authority.is_empty() {
        bail!("--pg-url `{admin}` has no host");
    }
    Ok(format!(
        "{}{authority}/{name}{query}",
        &admin[..scheme_end + 3]
    ))
}

/// Quotes an SQL identifier (our names are plain, but never paste one unquoted).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// `camgate_bench_<pid>_<n>`: unique per process and call.
pub fn next_db_name() -> String {
    format!(
        "camgate_bench_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs one or more statements on `url` (simple query protocol: CREATE/DROP DATABASE work).
pub async fn exec(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    sqlx::raw_sql(sql)
        .execute(&mut conn)
        .await
        .with_context(|| format!("{sql} (on {url})"))?;
    conn.close().await.ok();
    Ok(())
}

/// Whether database `name` exists.
pub async fn pg_database_exists(admin: &str, name: &str) -> anyhow::Result<bool> {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {admin}"))?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(n > 0)
}

/// A PostgreSQL database that exists while this value does.
pub struct PgDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        let name = next_db_name();
        let url = pg_url_for(admin, &name)?;
        exec(admin, &format!("CREATE DATABASE {}", quote_ident(&name)))
            .await
            .context("creating the benchmark database (is PostgreSQL running? see --pg-url)")?;
        Ok(Self {
            admin: admin.to_string(),
            name,
            url,
        })
    }

    /// Replaces this (empty, unused) database with a copy of `template` (a file copy, much
    /// faster than refilling it).
    pub async fn recreate_from(&self, template: &str) -> anyhow::Result<()> {
        exec(
            &self.admin,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ),
        )
        .await?;
        exec(
            &self.admin,
            &format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                quote_ident(&self.name),
                quote_ident(template)
            ),
        )
        .await
    }

    /// Saves a copy of this database (no one may be connected to it) as `template`.
    pub async fn save_as(&self, template: &str) -> anyhow::Result<()> {
        let tmp = format!("{template}_part");
        exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&tmp)),
        )
        .await?;
        exec(
            &self.admin,
            &format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                quote_ident(&tmp),
                quote_ident(&self.name)
            ),
        )
        .await?;
        // The rename publishes it whole: a half-made copy never has the template's name.
        exec(
            &self.admin,
            &format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&tmp),
                quote_ident(template)
            ),
        )
        .await
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        // Drop cannot await; a short-lived thread with its own runtime runs the DROP (this may
        // be called on a runtime thread, which must not block_on).
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(exec(&admin, &sql))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("  warning: could not drop database {}: {e:#}", self.name),
            Err(_) => eprintln!("  warning: could not drop database {}", self.name),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_only_the_path() {
        assert_eq!(
            pg_url_for(DEFAULT_PG_URL, "camgate_bench_1_0").unwrap(),
            "postgres://postgres@127.0.0.1:5432/camgate_bench_1_0"
        );
        assert_eq!(
            pg_url_for("postgresql://u:p@db:5433?sslmode=disable", "x").unwrap(),
            "postgresql://u:p@db:5433/x?sslmode=disable"
        );
        assert_eq!(
            pg_url_for("postgres://h/admin/extra?a=1&b=2", "y").unwrap(),
            "postgres://h/y?a=1&b=2"
        );
        assert!(pg_url_for("localhost:5432", "x").is_err());
        assert!(pg_url_for("postgres:///x", "x").is_err());
    }

    #[test]
    fn names_are_unique_and_quoted() {
        let a = next_db_name();
        let b = next_db_name();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("camgate_bench_{}_", std::process::id())));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            DatabaseArg::Both.backends(),
            vec![Backend::Sqlite, Backend::Postgres]
        );
    }
}
