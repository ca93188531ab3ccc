//! The shop's whole-table reads (stock, orders, order items) on SQLite,
//! stepped through SQLite's own API (`rusqlite`) on a blocking thread
//! instead of `sqlx`, whose SQLite driver hands every row through a channel
//! from its worker thread: at a million rows that hand-over, not SQLite,
//! was most of the read.
//!
//! Each read opens a connection of its own to the shop's file
//! ([`crate::db::sqlite_bulk::open`]: connection settings only, so the
//! shop's own settings, its journal mode above all, stay its own).
//! Columns are found by name once per query, and each value reads exactly
//! as the `sqlx::Any` path reads it: text must be text (optional text may
//! be a blob holding UTF-8), integers and 0/1 flags must be integers, NULL
//! only where the column is optional, and optional columns may be absent.

use rusqlite::{Row, Statement};

use super::{AddressParts, ShopError, ShopOrder, ShopOrderItem, ShopStock};
use crate::db::sqlite_bulk::{self, int, opt_int, opt_text, opt_text_or_blob, text};

/// Column positions of one query, found by name (exactly) in its statement.
struct Columns {
    names: &'static [&'static str],
    at: Vec<Option<usize>>,
}

impl Columns {
    fn of(stmt: &Statement<'_>, names: &'static [&'static str]) -> Self {
        let returned = stmt.column_names();
        let at = names
            .iter()
            .map(|n| returned.iter().position(|r| r == n))
            .collect();
        Columns { names, at }
    }

    /// The position of the i-th name; an error naming it when the query did not return it.
    fn get(&self, i: usize) -> rusqlite::Result<usize> {
        self.at
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(self.names[i].to_string()))
    }

    /// The position of an optional column (None when not returned).
    fn may(&self, i: usize) -> Option<usize> {
        self.at.get(i).copied().flatten()
    }
}

/// A 0/1 flag (SQLite keeps booleans as integers).
fn flag(row: &Row<'_>, at: usize) -> rusqlite::Result<bool> {
    int(row, at).map(|v| v != 0)
}

/// An optional integer column: None when NULL or not returned.
fn may_int(row: &Row<'_>, at: Option<usize>) -> rusqlite::Result<Option<i64>> {
    match at {
        None => Ok(None),
        Some(at) => opt_int(row, at),
    }
}

/// An optional text column (text, or a blob holding UTF-8): None when NULL,
/// blank or not returned.
fn may_text(row: &Row<'_>, at: Option<usize>) -> rusqlite::Result<Option<String>> {
    let Some(at) = at else {
        return Ok(None);
    };
    Ok(opt_text_or_blob(row, at)?.filter(|t| !t.trim().is_empty()))
}

/// Runs `sql` with `args` on a blocking thread and decodes every row with
/// `decode`; errors name `query`.
async fn read<T: Send + 'static>(
    url: &str,
    query: &'static str,
    sql: &str,
    args: &[i64],
    names: &'static [&'static str],
    decode: fn(&Row<'_>, &Columns) -> rusqlite::Result<T>,
) -> Result<Vec<T>, ShopError> {
    let args = args.iter().map(|a| (*a).into()).collect();
    let columns = move |stmt: &Statement<'_>| Columns::of(stmt, names);
    sqlite_bulk::rows(url, sql, args, columns, decode)
        .await
        .map_err(|e| ShopError::sqlite(query, e))
}

/// `stock_select.sql`.
pub(super) async fn stock(url: &str, sql: &str) -> Result<Vec<ShopStock>, ShopError> {
    const NAMES: &[&str] = &["sku", "quantity", "cost_kop"];
    read(url, "stock_select", sql, &[], NAMES, |r, c| {
        Ok(ShopStock {
            sku: text(r, c.get(0)?)?,
            quantity: int(r, c.get(1)?)?,
            cost_kop: may_int(r, c.may(2))?,
        })
    })
    .await
}

const ORDER_COLUMNS: &[&str] = &[
    "id",
    "status",
    "paid",
    "cancelled",
    "cancelled_at",
    "created_at",
    "shipped_at",
    "total_kop",
    "delivery_kop",
    "delivery_type",
    "customer_name",
    "email",
    "phone",
    "address",
    "discount_kop",
    "courier",
    "pickup_point",
    "post_code",
    "city",
    "street",
    "house",
    "room",
];

fn order(r: &Row<'_>, c: &Columns) -> rusqlite::Result<ShopOrder> {
    Ok(ShopOrder {
        id: text(r, c.get(0)?)?,
        status: text(r, c.get(1)?)?,
        paid: flag(r, c.get(2)?)?,
        cancelled: flag(r, c.get(3)?)?,
        cancelled_at: opt_int(r, c.get(4)?)?,
        created_at: int(r, c.get(5)?)?,
        shipped_at: opt_int(r, c.get(6)?)?,
        total_kop: int(r, c.get(7)?)?,
        delivery_kop: int(r, c.get(8)?)?,
        delivery_type: opt_int(r, c.get(9)?)?,
        customer_name: text(r, c.get(10)?)?,
        email: opt_text(r, c.get(11)?)?,
        phone: opt_text(r, c.get(12)?)?,
        address: opt_text(r, c.get(13)?)?,
        discount_kop: may_int(r, c.may(14))?.unwrap_or(0),
        courier: may_int(r, c.may(15))?,
        pickup_point: may_text(r, c.may(16))?,
        post_code: may_text(r, c.may(17))?,
        address_parts: AddressParts {
            city: may_text(r, c.may(18))?,
            street: may_text(r, c.may(19))?,
            house: may_text(r, c.may(20))?,
            room: may_text(r, c.may(21))?,
        },
    })
}

/// `orders_select.sql`.
pub(super) async fn orders(
    url: &str,
    sql: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ShopOrder>, ShopError> {
    let args = [from_ms, to_ms];
    read(url, "orders_select", sql, &args, ORDER_COLUMNS, order).await
}

/// `order_items_select.sql`.
pub(super) async fn order_items(
    url: &str,
    sql: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ShopOrderItem>, ShopError> {
    const NAMES: &[&str] = &["order_id", "sku", "quantity", "price_kop", "name"];
    let args = [from_ms, to_ms];
    read(url, "order_items_select", sql, &args, NAMES, |r, c| {
        Ok(ShopOrderItem {
            order_id: text(r, c.get(0)?)?,
            sku: text(r, c.get(1)?)?,
            quantity: int(r, c.get(2)?)?,
            price_kop: int(r, c.get(3)?)?,
            name: may_text(r, c.may(4))?,
        })
    })
    .await
}
