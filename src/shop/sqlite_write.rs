//! The shop's stock writes on SQLite, stepped through SQLite's own API
//! (`rusqlite`) on a blocking thread: the same compare-and-set transaction
//! as [`super::Shop::update_stock`] on other engines (`stock_update.sql` per
//! SKU, `stock_insert.sql` under a savepoint for a SKU read as 0 that has no
//! row), each statement prepared once instead of handed to sqlx's worker
//! thread and back per SKU. The connection is this write's own, opened like
//! the typed reads' ([`crate::db::sqlite_bulk::open`]): connection settings
//! only, nothing stored in the shop's file.

use rusqlite::{params, ErrorCode};

use super::{ShopError, StockWrite, StockWriteOutcome};

/// Whether SQLite refused a row for its unique or primary key.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.code == ErrorCode::ConstraintViolation
                && matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
        }
        _ => false,
    }
}

/// A failed statement, with the query file it came from.
type Failed = (&'static str, rusqlite::Error);

fn at(query: &'static str) -> impl Fn(rusqlite::Error) -> Failed {
    move |e| (query, e)
}

/// The transaction, on the calling (blocking) thread.
fn write(
    url: &str,
    update_sql: &str,
    insert_sql: &str,
    writes: &[StockWrite],
    now: i64,
) -> Result<StockWriteOutcome, Failed> {
    let mut conn = crate::db::sqlite_bulk::open(url).map_err(at("stock_update"))?;
    let tx = conn.transaction().map_err(at("stock_update"))?;
    let mut outcome = StockWriteOutcome::default();
    {
        let mut update = tx.prepare(update_sql).map_err(at("stock_update"))?;
        let mut insert = tx.prepare(insert_sql).map_err(at("stock_insert"))?;
        for w in writes {
            let n = update
                .execute(params![w.to, now, w.sku, w.from])
                .map_err(at("stock_update"))?;
            if !outcome.after_update(w, n as u64) {
                continue;
            }
            // No row, or a row that no longer holds 0: the insert tells which.
            // A savepoint keeps a refused insert from aborting the transaction.
            tx.execute_batch("SAVEPOINT sverka_stock_insert")
                .map_err(at("stock_insert"))?;
            match insert.execute(params![w.sku, w.to, now]) {
                Ok(_) => {
                    tx.execute_batch("RELEASE SAVEPOINT sverka_stock_insert")
                        .map_err(at("stock_insert"))?;
                    outcome.after_insert(w, true);
                }
                Err(e) if is_unique_violation(&e) => {
                    tx.execute_batch("ROLLBACK TO SAVEPOINT sverka_stock_insert")
                        .map_err(at("stock_insert"))?;
                    outcome.after_insert(w, false);
                }
                Err(e) => return Err(("stock_insert", e)),
            }
        }
    }
    tx.commit().map_err(at("stock_update"))?;
    Ok(outcome)
}

/// [`super::Shop::update_stock`] on the shop's SQLite file at `url`.
pub(super) async fn update_stock(
    url: &str,
    update_sql: &str,
    insert_sql: &str,
    writes: &[StockWrite],
    now: i64,
) -> Result<StockWriteOutcome, ShopError> {
    let (url, update_sql, insert_sql) = (
        url.to_string(),
        update_sql.to_string(),
        insert_sql.to_string(),
    );
    let writes = writes.to_vec();
    let done =
        tokio::task::spawn_blocking(move || write(&url, &update_sql, &insert_sql, &writes, now))
            .await;
    match done {
        Ok(result) => result.map_err(|(query, e)| ShopError::sqlite(query, e)),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ShopError::sqlite(
            "stock_update",
            rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        )),
    }
}
