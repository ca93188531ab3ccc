//! Databases by URL: SQLite (default), PostgreSQL and MySQL/MariaDB through
//! `sqlx::Any`, with one SQL text per query written with `?` placeholders and
//! translated to `$n` for PostgreSQL.
//!
//! The *state* database holds sverka's own tables (runs, the corrections
//! journal, callback events, id mappings, balances); the *shop* database is the
//! shop's own and is only touched through the SQL files in `sql/shop/`.

pub mod events;
pub mod group_commit;
pub mod journal;
pub mod known_stock;
pub mod lock;
pub mod mapping;
pub mod protocol;
pub mod rate;
pub mod runs;
pub mod sqlite_bulk;

use sqlx::any::{AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyPool, ConnectOptions as _, Executor};
use std::borrow::Cow;
use std::sync::{Arc, Once};
use std::time::Duration;

use crate::secret::redact_url;

/// Errors of the database layer. URLs in messages are always redacted.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL's scheme is none of sqlite, postgres, mysql/mariadb.
    #[error("unsupported database URL `{url}`: use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl {
        /// The redacted URL.
        url: String,
    },
    /// Could not open a connection pool.
    #[error("cannot connect to {url}")]
    Connect {
        /// The redacted URL.
        url: String,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migrating {url} failed")]
    Migrate {
        /// The redacted URL.
        url: String,
        /// What sqlx said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("{what}")]
    Query {
        /// What sverka was doing.
        what: String,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// A whole-table read of a SQLite file ([`sqlite_bulk`]) failed.
    #[error("{what}")]
    SqliteRead {
        /// What sverka was doing.
        what: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Stored data that sverka cannot read back.
    #[error("{0}")]
    Corrupt(String),
}

impl DbError {
    /// Wraps a sqlx error with what was being done.
    pub fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
        let what = what.into();
        move |source| DbError::Query { what, source }
    }
}

/// The SQL dialect behind a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file next to sverka; the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// Detects the dialect from a database URL.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        match crate::config::database_scheme(url) {
            Some("sqlite") => Ok(Dialect::Sqlite),
            Some("postgres") => Ok(Dialect::Postgres),
            Some("mysql") => Ok(Dialect::MySql),
            _ => Err(DbError::UnsupportedUrl {
                url: redact_url(url),
            }),
        }
    }

    /// Short lower-case name (`sqlite`, `postgres`, `mysql`), also the migration folder name.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }
}

/// Rewrites `?` placeholders to `$1, $2, …` for PostgreSQL; other dialects keep `?`.
///
/// Question marks inside single-quoted literals, double-quoted identifiers and
/// comments are left alone.
pub fn translate(sql: &str, dialect: Dialect) -> Cow<'_, str> {
    if dialect != Dialect::Postgres || !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    walk_placeholders(sql, |piece| match piece {
        Piece::Text(c) => out.push(c),
        Piece::Placeholder => {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        }
    });
    Cow::Owned(out)
}

/// The number of `?` placeholders in `sql` (as [`translate`] sees them).
pub fn placeholder_count(sql: &str) -> usize {
    let mut n = 0;
    walk_placeholders(sql, |piece| {
        if matches!(piece, Piece::Placeholder) {
            n += 1;
        }
    });
    n
}

enum Piece {
    Text(char),
    Placeholder,
}

/// Walks `sql`, telling placeholders apart from text (literals, quoted
/// identifiers and `--` comments are text).
fn walk_placeholders(sql: &str, mut f: impl FnMut(Piece)) {
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                f(Piece::Text(c));
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    f(Piece::Text(c));
                }
                '-' if chars.peek() == Some(&'-') => {
                    f(Piece::Text(c));
                    for d in chars.by_ref() {
                        f(Piece::Text(d));
                        if d == '\n' {
                            break;
                        }
                    }
                }
                '?' => f(Piece::Placeholder),
                _ => f(Piece::Text(c)),
            },
        }
    }
}

/// A connection pool with its dialect.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    url: String,
    /// Group commit of callbacks (a SQLite state database only).
    group: Option<Arc<group_commit::GroupCommit>>,
    /// SQLite files only: the URL the pool opened (a file path; no secret),
    /// for the typed read path of the `shop` module.
    sqlite_url: Option<String>,
}

/// `url` with its database path replaced by `name` (query string kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

static DRIVERS: Once = Once::new();

/// How long a statement may take before sqlx logs it (at `info`) as slow.
const SLOW_STATEMENT: Duration = Duration::from_secs(10);

/// Pragmas of every connection to sverka's own SQLite state database: WAL
/// (readers do not block the writer), a 10 s wait for the write lock, and
/// `synchronous = FULL` so that a commit is on disk before the callback it
/// journals is acknowledged (WAL with NORMAL may lose the last commits on a
/// power loss or OS crash). Never applied to the shop's database.
pub const STATE_SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;";

/// Pragmas of every connection sverka opens to any other SQLite database, the
/// shop's above all: sized for reading whole tables (a 64 MiB page cache,
/// the file memory-mapped up to 1 GiB, temporary sort tables in memory).
/// All three are settings of the connection only: none is stored in the
/// file, so the shop's own settings (its journal mode above all) stay its own.
pub const READ_SQLITE_PRAGMAS: &str =
    "PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824; PRAGMA temp_store = MEMORY;";

/// How long a statement waits for a lock, by default (defined with the settings).
pub use crate::config::DEFAULT_LOCK_TIMEOUT;

/// Whose database a pool is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// sverka's own state database (SQLite: [`STATE_SQLITE_PRAGMAS`]).
    State,
    /// Any other database, the shop's above all: opened as it is, no pragma
    /// changes its file (sqlx's own per-connection 5 s busy wait, and on
    /// SQLite the per-connection [`READ_SQLITE_PRAGMAS`] only).
    Plain,
}

impl Db {
    /// Opens a pool for `url` as it is (the shop's database: no pragma is set,
    /// so its journal mode stays the shop's). SQLite files are created when
    /// missing; statements wait at most [`DEFAULT_LOCK_TIMEOUT`] for a lock.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        Db::open(url, Role::Plain, DEFAULT_LOCK_TIMEOUT).await
    }

    /// Like [`Db::connect`], with statements waiting at most `lock_timeout`
    /// for a row or table lock (PostgreSQL and MySQL; whole seconds, at least 1).
    pub async fn connect_with(url: &str, lock_timeout: Duration) -> Result<Db, DbError> {
        Db::open(url, Role::Plain, lock_timeout).await
    }

    async fn open(url: &str, role: Role, lock_timeout: Duration) -> Result<Db, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = Dialect::from_url(url)?;
        let redacted = redact_url(url);
        let mut effective = url.to_string();
        if dialect == Dialect::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            effective.push(if url.contains('?') { '&' } else { '?' });
            effective.push_str("mode=rwc");
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(30));
        if dialect == Dialect::Sqlite {
            let pragmas = match role {
                Role::State => STATE_SQLITE_PRAGMAS,
                Role::Plain => READ_SQLITE_PRAGMAS,
            };
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            });
        }
        let lock_secs = lock_timeout.as_secs().max(1);
        match dialect {
            Dialect::Postgres => {
                options = options.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        let sql = format!("SET lock_timeout = '{lock_secs}s'");
                        conn.execute(sql.as_str()).await?;
                        Ok(())
                    })
                });
            }
            Dialect::MySql => {
                options = options.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        let sql = format!(
                            "SET SESSION innodb_lock_wait_timeout = {lock_secs}, SESSION lock_wait_timeout = {lock_secs}"
                        );
                        conn.execute(sql.as_str()).await?;
                        Ok(())
                    })
                });
            }
            Dialect::Sqlite => {}
        }
        let connect_err = |source| DbError::Connect {
            url: redacted.clone(),
            source,
        };
        // A batch job reads whole tables: a statement taking seconds is normal
        // at a million rows, so sqlx's slow-statement warning (1 s) would
        // only be noise in cron mail. It stays visible at `RUST_LOG=sqlx=info`.
        let connect_options = effective
            .parse::<sqlx::any::AnyConnectOptions>()
            .map_err(connect_err)?
            .log_slow_statements(log::LevelFilter::Info, SLOW_STATEMENT);
        let pool = options
            .connect_with(connect_options)
            .await
            .map_err(connect_err)?;
        let group = (dialect == Dialect::Sqlite && role == Role::State)
            .then(|| Arc::new(group_commit::GroupCommit::default()));
        Ok(Db {
            pool,
            dialect,
            url: redacted,
            group,
            // An in-memory database exists only in its own connections.
            sqlite_url: (dialect == Dialect::Sqlite
                && !effective.contains(":memory:")
                && !effective.contains("mode=memory"))
            .then_some(effective),
        })
    }

    /// Opens the *state* database (SQLite: [`STATE_SQLITE_PRAGMAS`]) and
    /// applies sverka's migrations.
    pub async fn connect_state(url: &str) -> Result<Db, DbError> {
        let db = Db::open(url, Role::State, DEFAULT_LOCK_TIMEOUT).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations under `sql/migrations/<dialect>/` (embedded at build time).
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("sql/migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("sql/migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("sql/migrations/mysql"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| DbError::Migrate {
                url: self.url.clone(),
                source,
            })
    }

    /// The group commit of callbacks, on a SQLite state database
    /// ([`group_commit`]); `None` elsewhere (one transaction per callback).
    pub fn group_commit(&self) -> Option<&Arc<group_commit::GroupCommit>> {
        self.group.as_ref()
    }

    /// This pool without group commit (the group writer's own handle).
    fn without_group_commit(&self) -> Db {
        Db {
            group: None,
            ..self.clone()
        }
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL a SQLite pool was opened with (None on other engines).
    pub fn sqlite_url(&self) -> Option<&str> {
        self.sqlite_url.as_deref()
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> &str {
        &self.url
    }

    /// `sql` with placeholders in this database's style.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        translate(sql, self.dialect)
    }

    /// Runs an INSERT and returns the new row's id (`RETURNING id` on PostgreSQL
    /// and SQLite, the driver's last insert id on MySQL/MariaDB). `sql` uses `?` placeholders and
    /// must not end with `RETURNING`.
    pub async fn insert_id(&self, sql: &str, args: &[Arg], what: &str) -> Result<i64, DbError> {
        use sqlx::Row;
        if self.dialect != Dialect::MySql {
            let text = format!("{} RETURNING id", translate(sql, self.dialect));
            let row = bind_args(sqlx::query(&text), args)
                .fetch_one(&self.pool)
                .await
                .map_err(DbError::query(what))?;
            row.try_get::<i64, _>(0).map_err(DbError::query(what))
        } else {
            let result: AnyQueryResult = bind_args(sqlx::query(sql), args)
                .execute(&self.pool)
                .await
                .map_err(DbError::query(what))?;
            result
                .last_insert_id()
                .ok_or_else(|| DbError::Corrupt(format!("{what}: the driver returned no id")))
        }
    }

    /// Runs a statement with `?` placeholders; returns the number of rows affected.
    pub async fn execute(&self, sql: &str, args: &[Arg], what: &str) -> Result<u64, DbError> {
        let text = self.sql(sql);
        let result = bind_args(sqlx::query(&text), args)
            .execute(&self.pool)
            .await
            .map_err(DbError::query(what))?;
        Ok(result.rows_affected())
    }

    /// Runs a query with `?` placeholders and returns all rows.
    pub async fn fetch_all(
        &self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Vec<sqlx::any::AnyRow>, DbError> {
        let text = self.sql(sql);
        bind_args(sqlx::query(&text), args)
            .fetch_all(&self.pool)
            .await
            .map_err(DbError::query(what))
    }

    /// Runs a query with `?` placeholders and returns at most one row.
    pub async fn fetch_optional(
        &self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Option<sqlx::any::AnyRow>, DbError> {
        let text = self.sql(sql);
        bind_args(sqlx::query(&text), args)
            .fetch_optional(&self.pool)
            .await
            .map_err(DbError::query(what))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A bind value for the portable query helpers.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// An integer.
    I64(i64),
    /// A nullable integer.
    OptI64(Option<i64>),
    /// A float (never money).
    F64(f64),
    /// Text.
    Text(String),
    /// Nullable text.
    OptText(Option<String>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::F64(v)
    }
}

/// Binds `args` in order to a query.
pub fn bind_args<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::I64(v) => q.bind(*v),
            Arg::OptI64(v) => q.bind(*v),
            Arg::F64(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.clone()),
            Arg::OptText(v) => q.bind(v.clone()),
        };
    }
    q
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads a text column. MySQL reports `TEXT` columns as blobs through
/// `sqlx::Any`, so bytes are accepted and decoded as UTF-8.
pub fn text(row: &sqlx::any::AnyRow, name: &str) -> Result<String, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<String, _>(name) {
        Ok(s) => Ok(s),
        Err(first) => match row.try_get::<Vec<u8>, _>(name) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|e| sqlx::Error::ColumnDecode {
                index: name.to_string(),
                source: Box::new(e),
            }),
            Err(_) => Err(first),
        },
    }
}

/// Reads an integer column typed as 32- or 64-bit (engines differ).
pub fn int(row: &sqlx::any::AnyRow, name: &str) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<i64, _>(name) {
        Ok(v) => Ok(v),
        Err(first) => row
            .try_get::<i32, _>(name)
            .map(i64::from)
            .map_err(|_| first),
    }
}

/// Reads a nullable integer column some engines type as 32-bit.
pub fn opt_int(row: &sqlx::any::AnyRow, name: &str) -> Result<Option<i64>, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<Option<i64>, _>(name) {
        Ok(v) => Ok(v),
        Err(first) => row
            .try_get::<Option<i32>, _>(name)
            .map(|v| v.map(i64::from))
            .map_err(|_| first),
    }
}

/// Reads a nullable text column (see [`text`]).
pub fn opt_text(row: &sqlx::any::AnyRow, name: &str) -> Result<Option<String>, sqlx::Error> {
    use sqlx::Row;
    match row.try_get::<Option<String>, _>(name) {
        Ok(s) => Ok(s),
        Err(first) => match row.try_get::<Option<Vec<u8>>, _>(name) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => {
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|e| sqlx::Error::ColumnDecode {
                        index: name.to_string(),
                        source: Box::new(e),
                    })
            }
            Err(_) => Err(first),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_replaced_query_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
    }

    #[test]
    fn placeholders_translate_for_postgres_only() {
        let q = "SELECT a FROM t WHERE b = ? AND c = '?' AND d = ? -- ?\n AND e = ?";
        assert_eq!(
            translate(q, Dialect::Postgres),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2 -- ?\n AND e = $3"
        );
        assert_eq!(translate(q, Dialect::Sqlite), q);
        assert_eq!(translate(q, Dialect::MySql), q);
        assert_eq!(placeholder_count(q), 3);
        assert_eq!(placeholder_count("SELECT 1"), 0);
        assert_eq!(
            placeholder_count(include_str!("../../sql/shop/stock_update.sql")),
            4
        );
    }

    #[test]
    fn dialect_from_url() {
        assert_eq!(Dialect::from_url("sqlite://x.db").unwrap(), Dialect::Sqlite);
        assert_eq!(
            Dialect::from_url("postgresql://h/db").unwrap(),
            Dialect::Postgres
        );
        assert_eq!(Dialect::from_url("mariadb://h/db").unwrap(), Dialect::MySql);
        let err = Dialect::from_url("oracle://u:secretpw@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secretpw"), "{err}");
    }
}
