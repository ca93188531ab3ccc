//! Whole-table reads of SQLite files stepped through SQLite's own API
//! (`rusqlite`) on a blocking thread. sqlx's SQLite driver hands every row
//! from its worker thread to the async side through a channel; at a million
//! rows (the id mappings, the known CRM stock, the shop's stock and orders)
//! that hand-over costs more than SQLite's own work.
//!
//! Each read opens a connection of its own (read-write as sqlx opens it,
//! never creating the file, waiting up to [`super::DEFAULT_LOCK_TIMEOUT`]
//! for a lock) with [`super::READ_SQLITE_PRAGMAS`]: connection settings
//! only, nothing stored in the file. A SQLite database that exists only in
//! its pool's connections (in memory) has no file and is read through sqlx.

use rusqlite::types::{FromSqlError, Type, ValueRef};
use rusqlite::{Connection, OpenFlags, Row};
use std::path::PathBuf;
use std::str::FromStr as _;

use super::DbError;

/// The file a `sqlite:` URL names.
fn file_of(url: &str) -> rusqlite::Result<PathBuf> {
    sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map(|o| o.get_filename().to_path_buf())
        .map_err(|e| rusqlite::Error::InvalidPath(PathBuf::from(e.to_string())))
}

/// Opens a connection of the caller's own to the SQLite file at `url`.
pub fn open(url: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_of(url)?, flags)?;
    conn.busy_timeout(super::DEFAULT_LOCK_TIMEOUT)?;
    conn.execute_batch(super::READ_SQLITE_PRAGMAS)?;
    Ok(conn)
}

/// The error a NULL gives where a value is required.
fn unexpected_null(at: usize) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(at, Type::Null, Box::new(FromSqlError::InvalidType))
}

fn wrong_type(row: &Row<'_>, at: usize, found: Type) -> rusqlite::Error {
    let name = row
        .as_ref()
        .column_name(at)
        .map(str::to_string)
        .unwrap_or_else(|_| at.to_string());
    rusqlite::Error::InvalidColumnType(at, name, found)
}

fn utf8(at: usize, bytes: &[u8]) -> rusqlite::Result<String> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, Type::Text, Box::new(e)))
}

/// Text, NULL as None (a blob is not text, as sqlx reads it).
pub fn opt_text(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<String>> {
    match row.get_ref(at)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => utf8(at, t).map(Some),
        other => Err(wrong_type(row, at, other.data_type())),
    }
}

/// Text, or a blob holding UTF-8; NULL as None.
pub fn opt_text_or_blob(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<String>> {
    match row.get_ref(at)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) | ValueRef::Blob(t) => utf8(at, t).map(Some),
        other => Err(wrong_type(row, at, other.data_type())),
    }
}

/// Required text.
pub fn text(row: &Row<'_>, at: usize) -> rusqlite::Result<String> {
    opt_text(row, at)?.ok_or_else(|| unexpected_null(at))
}

/// An integer, NULL as None.
pub fn opt_int(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<i64>> {
    match row.get_ref(at)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        other => Err(wrong_type(row, at, other.data_type())),
    }
}

/// A required integer.
pub fn int(row: &Row<'_>, at: usize) -> rusqlite::Result<i64> {
    opt_int(row, at)?.ok_or_else(|| unexpected_null(at))
}

/// Runs `sql` with `args` on the file at `url`, on a blocking thread, and
/// decodes every row with `decode` (which also gets the statement, to find
/// its columns once).
pub async fn rows<T, C>(
    url: &str,
    sql: &str,
    args: Vec<rusqlite::types::Value>,
    columns: impl FnOnce(&rusqlite::Statement<'_>) -> C + Send + 'static,
    mut decode: impl FnMut(&Row<'_>, &C) -> rusqlite::Result<T> + Send + 'static,
) -> rusqlite::Result<Vec<T>>
where
    T: Send + 'static,
{
    let (url, sql) = (url.to_string(), sql.to_string());
    let stepped = tokio::task::spawn_blocking(move || -> rusqlite::Result<Vec<T>> {
        let conn = open(&url)?;
        let mut stmt = conn.prepare(&sql)?;
        let cols = columns(&stmt);
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(decode(row, &cols)?);
        }
        Ok(out)
    })
    .await;
    match stepped {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
    }
}

/// [`rows`] of sverka's own state file: errors say `what` was being read.
pub async fn state_rows<T: Send + 'static>(
    url: &str,
    what: &str,
    sql: &str,
    args: Vec<rusqlite::types::Value>,
    mut decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<Vec<T>, DbError> {
    rows(url, sql, args, |_| (), move |row, _| decode(row))
        .await
        .map_err(|source| DbError::SqliteRead {
            what: what.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_read_as_sqlx_reads_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}", path.display());
        {
            let conn = Connection::open(&path).expect("create");
            conn.execute_batch(
                "CREATE TABLE t (a TEXT, b INTEGER);
                 INSERT INTO t VALUES ('x', 1), (NULL, NULL), (CAST('blob' AS BLOB), 2), ('n', 'many');",
            )
            .expect("rows");
        }
        let all = rows(
            &url,
            "SELECT a, b FROM t ORDER BY rowid",
            vec![],
            |_| (),
            |r, _| {
                Ok((
                    opt_text(r, 0).ok().flatten(),
                    opt_text_or_blob(r, 0)?,
                    opt_int(r, 1).ok().flatten(),
                    int(r, 1).is_ok(),
                    text(r, 0).is_ok(),
                ))
            },
        )
        .await
        .expect("read");
        assert_eq!(
            all,
            [
                (Some("x".into()), Some("x".into()), Some(1), true, true),
                (None, None, None, false, false),
                (None, Some("blob".into()), Some(2), true, false),
                (Some("n".into()), Some("n".into()), None, false, true),
            ]
        );
        let missing = rows(
            &format!("sqlite://{}", dir.path().join("none.db").display()),
            "SELECT 1",
            vec![],
            |_| (),
            |r, _| int(r, 0),
        )
        .await
        .expect_err("no file");
        assert_eq!(
            missing.sqlite_error_code(),
            Some(rusqlite::ErrorCode::CannotOpen)
        );
    }
}
