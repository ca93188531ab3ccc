//! Test helpers: a fresh database per test on each engine.
//!
//! SQLite always runs (a file in a temp dir). PostgreSQL and MySQL/MariaDB run
//! when `SVERKA_TEST_POSTGRES_URL` / `SVERKA_TEST_MYSQL_URL` name a server the
//! tests may create databases on (`.ci/run` sets both); otherwise those cases
//! print why they were skipped.

#![allow(dead_code)]

use sverka::db::{with_database, Db, Dialect};

/// A database created for one test; `drop_db` removes it.
pub struct TestDb {
    /// The URL of the fresh database.
    pub url: String,
    admin_url: Option<String>,
    name: String,
    dialect: Dialect,
    _dir: Option<tempfile::TempDir>,
}

/// The engines a database test should run on, each with a fresh database.
pub async fn engines(test: &str) -> Vec<TestDb> {
    let mut out = vec![sqlite()];
    for (var, dialect) in [
        ("SVERKA_TEST_POSTGRES_URL", Dialect::Postgres),
        ("SVERKA_TEST_MYSQL_URL", Dialect::MySql),
    ] {
        match std::env::var(var) {
            Ok(admin) if !admin.is_empty() => match server_db(&admin, dialect).await {
                Ok(db) => out.push(db),
                Err(e) => panic!("{var} is set but unusable: {e}"),
            },
            _ => crate::optional::skip(
                &format!("{test} on {}", dialect.name()),
                &format!("set {var} to run it against a real server"),
            ),
        }
    }
    out
}

/// A fresh SQLite database file.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    TestDb {
        url: format!("sqlite://{}", path.display()),
        admin_url: None,
        name: String::new(),
        dialect: Dialect::Sqlite,
        _dir: Some(dir),
    }
}

fn unique_name() -> String {
    format!(
        "sverka_t_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..10)
            .unwrap_or("x")
    )
}

async fn server_db(admin: &str, dialect: Dialect) -> Result<TestDb, String> {
    let name = unique_name();
    let db = Db::connect(admin).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    Ok(TestDb {
        url: with_database(admin, &name),
        admin_url: Some(admin.to_string()),
        name,
        dialect,
        _dir: None,
    })
}

impl TestDb {
    /// Engine name.
    pub fn engine(&self) -> &'static str {
        self.dialect.name()
    }

    /// Removes the database (server engines); SQLite's temp dir goes with `self`.
    pub async fn drop_db(self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(db) = Db::connect(admin).await {
                let sql = match self.dialect {
                    Dialect::Postgres => {
                        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                    }
                    _ => format!("DROP DATABASE IF EXISTS {}", self.name),
                };
                let _ = sqlx::query(&sql).execute(db.pool()).await;
                db.close().await;
            }
        }
    }
}
