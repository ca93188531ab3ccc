//! The shop's whole-table reads (stock, orders, order items) on SQLite
//! through sqlx's typed SQLite rows instead of `sqlx::Any`: one connection
//! of its own per read (the page cache and memory map of
//! [`crate::db::READ_SQLITE_PRAGMAS`], settings of that connection only),
//! rows decoded as they are stepped, columns found by name once per query.
//! Each value reads exactly as the `Any` path reads it (the same fallbacks
//! for flags, narrow integers, blobs holding text and optional columns).

use futures_core::Stream;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions as _, Connection as _, Row as _};
use std::pin::Pin;
use std::str::FromStr as _;
use std::time::Duration;

use super::{AddressParts, ShopError, ShopOrder, ShopOrderItem, ShopStock};

/// Opens a connection of this read's own to the shop's SQLite file.
async fn connect(url: &str, query: &'static str) -> Result<SqliteConnection, ShopError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| ShopError::query(query, e))?
        .pragma("cache_size", "-65536")
        .pragma("mmap_size", "1073741824")
        .pragma("temp_store", "MEMORY")
        .log_slow_statements(log::LevelFilter::Info, Duration::from_secs(10));
    options
        .connect()
        .await
        .map_err(|e| ShopError::query(query, e))
}

type Rows<'c> = Pin<Box<dyn Stream<Item = Result<SqliteRow, sqlx::Error>> + Send + 'c>>;

async fn next(rows: &mut Rows<'_>) -> Option<Result<SqliteRow, sqlx::Error>> {
    std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await
}

/// Column positions of one query, found by name in its first row.
struct Columns<'n> {
    names: &'n [&'static str],
    at: Vec<Option<usize>>,
}

impl<'n> Columns<'n> {
    fn new(names: &'n [&'static str]) -> Self {
        Columns {
            names,
            at: Vec::new(),
        }
    }

    /// Resolves the names against `row`'s columns (once).
    fn resolve(&mut self, row: &SqliteRow) {
        if self.at.is_empty() {
            self.at = self
                .names
                .iter()
                .map(|n| row.try_column(*n).ok().map(sqlx::Column::ordinal))
                .collect();
        }
    }

    /// The position of the i-th name; `ColumnNotFound` when the query did not return it.
    fn get(&self, i: usize) -> Result<usize, sqlx::Error> {
        self.at
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| sqlx::Error::ColumnNotFound(self.names[i].to_string()))
    }

    /// The position of an optional column (None when not returned).
    fn may(&self, i: usize) -> Option<usize> {
        self.at.get(i).copied().flatten()
    }
}

/// Text (or text stored as a blob), NULL as None.
fn opt_text(row: &SqliteRow, at: usize) -> Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<&str>, _>(at) {
        Ok(s) => Ok(s.map(str::to_owned)),
        Err(first) => match row.try_get::<Option<&[u8]>, _>(at) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => std::str::from_utf8(bytes)
                .map(|s| Some(s.to_owned()))
                .map_err(|e| sqlx::Error::ColumnDecode {
                    index: at.to_string(),
                    source: Box::new(e),
                }),
            Err(_) => Err(first),
        },
    }
}

fn text(row: &SqliteRow, at: usize) -> Result<String, sqlx::Error> {
    row.try_get::<String, _>(at)
}

fn int(row: &SqliteRow, at: usize) -> Result<i64, sqlx::Error> {
    row.try_get::<i64, _>(at)
}

fn opt_int(row: &SqliteRow, at: usize) -> Result<Option<i64>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(at)
}

/// A 0/1 flag (an integer, or a boolean).
fn flag(row: &SqliteRow, at: usize) -> Result<bool, sqlx::Error> {
    match row.try_get::<i64, _>(at) {
        Ok(v) => Ok(v != 0),
        Err(first) => row.try_get::<bool, _>(at).map_err(|_| first),
    }
}

/// An optional integer column: None when NULL or not returned.
fn may_int(row: &SqliteRow, at: Option<usize>) -> Result<Option<i64>, sqlx::Error> {
    match at {
        None => Ok(None),
        Some(at) => opt_int(row, at),
    }
}

/// An optional text column: None when NULL, blank or not returned.
fn may_text(row: &SqliteRow, at: Option<usize>) -> Result<Option<String>, sqlx::Error> {
    match at {
        None => Ok(None),
        Some(at) => Ok(opt_text(row, at)?.filter(|t| !t.trim().is_empty())),
    }
}

/// Runs `sql` with `args` and decodes every row with `decode`.
async fn read<T>(
    url: &str,
    query: &'static str,
    sql: &str,
    args: &[i64],
    names: &[&'static str],
    mut decode: impl FnMut(&SqliteRow, &Columns<'_>) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, ShopError> {
    let err = |e| ShopError::query(query, e);
    let mut conn = connect(url, query).await?;
    let out = {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(*a);
        }
        let mut rows: Rows<'_> = q.fetch(&mut conn);
        let mut columns = Columns::new(names);
        let mut out = Vec::new();
        while let Some(row) = next(&mut rows).await {
            let row = row.map_err(err)?;
            columns.resolve(&row);
            out.push(decode(&row, &columns).map_err(err)?);
        }
        out
    };
    conn.close().await.map_err(err)?;
    Ok(out)
}

/// `stock_select.sql`.
pub(super) async fn stock(url: &str, sql: &str) -> Result<Vec<ShopStock>, ShopError> {
    read(
        url,
        "stock_select",
        sql,
        &[],
        &["sku", "quantity", "cost_kop"],
        |r, c| {
            Ok(ShopStock {
                sku: text(r, c.get(0)?)?,
                quantity: int(r, c.get(1)?)?,
                cost_kop: may_int(r, c.may(2))?,
            })
        },
    )
    .await
}

const ORDER_COLUMNS: [&str; 22] = [
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

/// `orders_select.sql`.
pub(super) async fn orders(
    url: &str,
    sql: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ShopOrder>, ShopError> {
    read(
        url,
        "orders_select",
        sql,
        &[from_ms, to_ms],
        &ORDER_COLUMNS,
        |r, c| {
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
                email: r.try_get::<Option<String>, _>(c.get(11)?)?,
                phone: r.try_get::<Option<String>, _>(c.get(12)?)?,
                address: r.try_get::<Option<String>, _>(c.get(13)?)?,
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
        },
    )
    .await
}

/// `order_items_select.sql`.
pub(super) async fn order_items(
    url: &str,
    sql: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<ShopOrderItem>, ShopError> {
    let names = ["order_id", "sku", "quantity", "price_kop", "name"];
    read(
        url,
        "order_items_select",
        sql,
        &[from_ms, to_ms],
        &names,
        |r, c| {
            Ok(ShopOrderItem {
                order_id: text(r, c.get(0)?)?,
                sku: text(r, c.get(1)?)?,
                quantity: int(r, c.get(2)?)?,
                price_kop: int(r, c.get(3)?)?,
                name: may_text(r, c.may(4))?,
            })
        },
    )
    .await
}
