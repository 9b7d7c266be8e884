//! Shared harness of the store conformance files: one store per backend, SQLite on a temp file
//! and PostgreSQL on a fresh throwaway database at `CAMGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) that is dropped afterwards, also on panic.
//! PostgreSQL checks fail, never skip, when it is unreachable.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use camgate_core::store::Store;
use camgate_store::StoreOptions;

/// Drops a throwaway PostgreSQL database when it goes out of scope (also on panic).
pub struct PgDrop {
    admin: String,
    name: String,
}

impl Drop for PgDrop {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A migrated store and whatever keeps its database alive.
pub struct Db {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDrop>,
}

async fn open(url: &str) -> Arc<dyn Store> {
    let store = camgate_store::connect(url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

pub async fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Db {
        store: open(&url).await,
        _dir: Some(dir),
        _pg: None,
    }
}

pub async fn postgres_db() -> Db {
    use sqlx::Connection;
    let admin = std::env::var("CAMGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!(
        "camgate_store_{}",
        camgate_core::secret::generate_client_id().to_lowercase()
    );
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is unreachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    let guard = PgDrop {
        admin: admin.clone(),
        name: name.clone(),
    };
    Db {
        store: open(&format!("{base}/{name}")).await,
        _dir: None,
        _pg: Some(guard),
    }
}

/// Runs each `check(&Db)` once on each backend, as `check::sqlite` and `check::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                #[tokio::test]
                async fn sqlite() {
                    super::$check(&super::support::sqlite_db().await).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$check(&super::support::postgres_db().await).await
                }
            }
        )*
    };
}
