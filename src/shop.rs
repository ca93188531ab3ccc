//! The shop's own database, touched only through the SQL files in `sql/shop/`.
//!
//! The files are compiled in as defaults; `[shop] queries_dir` points sverka at
//! a folder of adapted copies (any file present there replaces the default).
//! Each file's header says which parameters it takes and which columns it must
//! return.

use serde::Serialize;
use sqlx::Row;
use std::path::Path;

use crate::db::{bind_args, now_ms, Arg, Db, DbError};

pub mod scans;
mod sqlite_read;
mod sqlite_write;

/// The queries sverka runs against the shop database.
#[derive(Debug, Clone)]
pub struct Queries {
    /// `stock_select.sql`
    pub stock_select: String,
    /// `stock_update.sql`
    pub stock_update: String,
    /// `stock_insert.sql`
    pub stock_insert: String,
    /// `products_select.sql`
    pub products_select: String,
    /// `product_by_sku.sql`
    pub product_by_sku: String,
    /// `orders_select.sql`
    pub orders_select: String,
    /// `order_items_select.sql`
    pub order_items_select: String,
    /// `marking_code_select.sql`
    pub marking_code_select: String,
    /// `marking_code_use.sql`
    pub marking_code_use: String,
    /// `supplier_select.sql`
    pub supplier_select: String,
    /// `suppliers_select.sql`
    pub suppliers_select: String,
    /// `billing_orders_select.sql`
    pub billing_orders_select: String,
    /// `billing_order_by_id.sql`
    pub billing_order_by_id: String,
}

/// The reference shop schema (for the demo, the sandbox world and tests).
pub const REFERENCE_SCHEMA: &str = include_str!("../sql/shop/schema.sql");

macro_rules! default_queries {
    ($($field:ident),* $(,)?) => {
        Queries { $($field: include_str!(concat!("../sql/shop/", stringify!($field), ".sql")).to_string(),)* }
    };
}

/// Errors reading the shop's queries or data.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// A query file could not be read.
    #[error("cannot read shop query {path}")]
    ReadQuery {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A query failed or returned unexpected columns.
    #[error("shop query `{query}` failed (adapt sql/shop/{query}.sql to your schema)")]
    Query {
        /// The query's file stem.
        query: &'static str,
        /// What the database said.
        #[source]
        source: sqlx::Error,
    },
    /// The shop database cannot be reached (closed pool, refused or broken
    /// connection, pool timeout): nothing is wrong with the query itself.
    #[error("shop database unavailable while running `{query}`")]
    Unavailable {
        /// The query's file stem.
        query: &'static str,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// An adapted query takes another number of parameters than sverka binds.
    #[error("{path}: `{query}.sql` takes {found} parameters (`?`), sverka binds {want}: {params}; {changed}")]
    Parameters {
        /// The adapted file.
        path: String,
        /// The query's file stem.
        query: String,
        /// Placeholders found.
        found: usize,
        /// Placeholders sverka binds.
        want: usize,
        /// What they are, in order.
        params: String,
        /// What changed.
        changed: String,
    },
    /// A typed SQLite read failed: the query, its columns or their values.
    #[error("shop query `{query}` failed (adapt sql/shop/{query}.sql to your schema)")]
    SqliteQuery {
        /// The query's file stem.
        query: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A typed SQLite read could not open the shop's file, or waited past
    /// the lock timeout: nothing is wrong with the query itself.
    #[error("shop database unavailable while running `{query}`")]
    SqliteUnavailable {
        /// The query's file stem.
        query: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database layer failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ShopError {
    /// Classifies a failed shop query: a connection problem is
    /// [`ShopError::Unavailable`], anything else points at the query file.
    pub fn query(query: &'static str, source: sqlx::Error) -> Self {
        match source {
            sqlx::Error::PoolClosed
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => ShopError::Unavailable { query, source },
            source => ShopError::Query { query, source },
        }
    }

    /// Classifies a failed typed SQLite read the same way: a file that
    /// cannot be opened, a lock held past the timeout or an I/O error is
    /// [`ShopError::SqliteUnavailable`].
    pub fn sqlite(query: &'static str, source: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let unavailable = matches!(
            source.sqlite_error_code(),
            Some(
                ErrorCode::CannotOpen
                    | ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::NotADatabase
                    | ErrorCode::DatabaseCorrupt
            )
        ) || matches!(source, rusqlite::Error::InvalidPath(_));
        if unavailable {
            ShopError::SqliteUnavailable { query, source }
        } else {
            ShopError::SqliteQuery { query, source }
        }
    }

    /// Whether the shop database itself was unreachable.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ShopError::Unavailable { .. } | ShopError::SqliteUnavailable { .. }
        )
    }
}

impl Queries {
    /// The built-in queries for the reference schema.
    pub fn builtin() -> Queries {
        default_queries!(
            stock_select,
            stock_update,
            stock_insert,
            products_select,
            product_by_sku,
            orders_select,
            order_items_select,
            marking_code_select,
            marking_code_use,
            supplier_select,
            suppliers_select,
            billing_orders_select,
            billing_order_by_id,
        )
    }

    /// The built-in queries, each replaced by `<dir>/<name>.sql` when that file exists.
    pub fn load(dir: Option<&Path>) -> Result<Queries, ShopError> {
        let mut q = Queries::builtin();
        let Some(dir) = dir else { return Ok(q) };
        let slots: [(&str, &mut String); 13] = [
            ("stock_select", &mut q.stock_select),
            ("stock_update", &mut q.stock_update),
            ("stock_insert", &mut q.stock_insert),
            ("products_select", &mut q.products_select),
            ("product_by_sku", &mut q.product_by_sku),
            ("orders_select", &mut q.orders_select),
            ("order_items_select", &mut q.order_items_select),
            ("marking_code_select", &mut q.marking_code_select),
            ("marking_code_use", &mut q.marking_code_use),
            ("supplier_select", &mut q.supplier_select),
            ("suppliers_select", &mut q.suppliers_select),
            ("billing_orders_select", &mut q.billing_orders_select),
            ("billing_order_by_id", &mut q.billing_order_by_id),
        ];
        for (name, slot) in slots {
            let path = dir.join(format!("{name}.sql"));
            if path.exists() {
                *slot = std::fs::read_to_string(&path).map_err(|source| ShopError::ReadQuery {
                    path: path.display().to_string(),
                    source,
                })?;
                check_parameters(name, slot, &path)?;
            }
        }
        Ok(q)
    }
}

/// Placeholders an adapted query must take, with what changed when an older
/// version took fewer: (file stem, parameters, what the parameters are, what changed).
const PARAMETERS: [(&str, usize, &str, &str); 2] = [
    (
        "stock_update",
        4,
        "quantity, updated_at (unix ms), sku, the quantity sverka read",
        "stock corrections are compare-and-set now: the update must change the row only if \
         it still holds the quantity sverka read (the 4th parameter), e.g. \
         `UPDATE stock SET quantity = ?, updated_at = ? WHERE sku = ? AND quantity = ?`",
    ),
    (
        "stock_insert",
        3,
        "sku, quantity, updated_at (unix ms)",
        "see the built-in sql/shop/stock_insert.sql",
    ),
];

/// Refuses an adapted query whose number of `?` placeholders is not the one
/// sverka binds (an old copy would run with the wrong values, or fail mid-run).
fn check_parameters(name: &str, sql: &str, path: &Path) -> Result<(), ShopError> {
    let Some((_, want, params, changed)) = PARAMETERS.iter().find(|p| p.0 == name) else {
        return Ok(());
    };
    let found = crate::db::placeholder_count(sql);
    if found == *want {
        return Ok(());
    }
    Err(ShopError::Parameters {
        path: path.display().to_string(),
        query: name.to_string(),
        found,
        want: *want,
        params: (*params).to_string(),
        changed: (*changed).to_string(),
    })
}

impl Queries {}

/// A shop SKU and its quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShopStock {
    /// SKU.
    pub sku: String,
    /// Quantity the shop shows.
    pub quantity: i64,
    /// Cost price in kopecks (`cost_kop`, optional column; None when NULL or
    /// not returned).
    pub cost_kop: Option<i64>,
}

/// One compare-and-set stock write: set `to` where the row still holds `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockWrite {
    /// SKU.
    pub sku: String,
    /// The quantity sverka read (a SKU without a stock row reads as 0).
    pub from: i64,
    /// The quantity to set.
    pub to: i64,
}

/// What [`Shop::update_stock`] did, per SKU, in one committed transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockWriteOutcome {
    /// Rows changed from the quantity read to the new one.
    pub updated: Vec<String>,
    /// Rows created for SKUs that had none (`stock_insert.sql`).
    pub inserted: Vec<String>,
    /// Rows that no longer held the quantity read: left untouched, reported
    /// `changed_during_run`; the next run re-reads them.
    pub changed_during_run: Vec<String>,
}

impl StockWriteOutcome {
    /// Records what the compare-and-set update of `w` did (`rows` changed);
    /// true when the SKU, read as 0 and matched by nothing, needs the insert
    /// to tell whether it had no row or a row that no longer holds 0.
    fn after_update(&mut self, w: &StockWrite, rows: u64) -> bool {
        if rows > 0 {
            self.updated.push(w.sku.clone());
            false
        } else if w.from != 0 {
            self.changed_during_run.push(w.sku.clone());
            false
        } else {
            true
        }
    }

    /// Records the insert of `w`: its row created, or refused by the key
    /// (a row appeared since the read).
    fn after_insert(&mut self, w: &StockWrite, created: bool) {
        let list = if created {
            &mut self.inserted
        } else {
            &mut self.changed_during_run
        };
        list.push(w.sku.clone());
    }
}

/// Whether a database error is a unique-key violation (on any engine).
fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(
                    db.code().as_deref(),
                    Some("23505") | Some("23000") | Some("1062") | Some("2067") | Some("1555")
                )
        }
        _ => false,
    }
}

/// A catalogue product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    /// SKU (the partner id everywhere).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Price, kopecks.
    pub price_kop: i64,
    /// Cost, kopecks.
    pub cost_kop: i64,
    /// Weight, grams.
    pub weight_g: Option<i64>,
    /// EAN barcode.
    pub ean: Option<String>,
    /// Supplier id.
    pub supplier_id: Option<String>,
    /// Width, mm (`width_mm`, optional column).
    pub width_mm: Option<i64>,
    /// Height, mm (`height_mm`, optional column).
    pub height_mm: Option<i64>,
    /// Length, mm (`length_mm`, optional column).
    pub length_mm: Option<i64>,
    /// IMSKLAD colour id (`color_id`, optional column).
    pub color_id: Option<i64>,
    /// Size text (`size`, optional column).
    pub size: Option<String>,
    /// External picture URL (`image_url`, optional column).
    pub image_url: Option<String>,
}

impl Product {
    /// The IMSKLAD goods record of this product: every documented field the
    /// shop has (`add_good` / `update_good` replace the WMS copy, so nothing
    /// the shop knows is left out).
    pub fn to_imsklad_good(&self) -> crate::connectors::imsklad::Good {
        let mut good = crate::connectors::imsklad::Good::new(
            self.sku.clone(),
            self.name.clone(),
            self.price_kop,
        );
        good.cost_kop = self.cost_kop;
        good.description = self.description.clone();
        good.image = self.image_url.clone();
        good.weight = self.weight_g;
        good.width = self.width_mm;
        good.height = self.height_mm;
        good.length = self.length_mm;
        good.color = self.color_id;
        good.size = self.size.clone();
        good
    }
}

/// A shop order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShopOrder {
    /// Order id (the partner id everywhere).
    pub id: String,
    /// Shop status text.
    pub status: String,
    /// Paid or approved: should be fulfilled.
    pub paid: bool,
    /// Cancelled in the shop.
    pub cancelled: bool,
    /// When it was cancelled (Unix ms).
    pub cancelled_at: Option<i64>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Shipped (Unix ms), as the shop knows it.
    pub shipped_at: Option<i64>,
    /// Order total, kopecks.
    pub total_kop: i64,
    /// Delivery cost, kopecks.
    pub delivery_kop: i64,
    /// Delivery type (IMSKLAD delivery type id).
    pub delivery_type: Option<i64>,
    /// Customer.
    pub customer_name: String,
    /// E-mail.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Discount, kopecks (`discount_kop`, optional column; 0 when absent).
    pub discount_kop: i64,
    /// IMSKLAD courier id (`courier`, optional column).
    pub courier: Option<i64>,
    /// Carrier pickup point code (`pickup_point`, optional column).
    pub pickup_point: Option<String>,
    /// Post code (`post_code`, optional column).
    pub post_code: Option<String>,
    /// Address parts (`city`, `street`, `house`, `room`, optional columns).
    pub address_parts: AddressParts,
}

/// A delivery address in parts, as far as the shop keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AddressParts {
    /// City.
    pub city: Option<String>,
    /// Street.
    pub street: Option<String>,
    /// House.
    pub house: Option<String>,
    /// Flat.
    pub room: Option<String>,
}

impl AddressParts {
    /// True when no part is known.
    pub fn is_empty(&self) -> bool {
        [&self.city, &self.street, &self.house, &self.room]
            .iter()
            .all(|p| p.as_deref().is_none_or(|t| t.trim().is_empty()))
    }
}

/// What billing needs to know of a shop order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillingOrder {
    /// Order id (the IMSKLAD `foreign_order_id`).
    pub id: String,
    /// Shop status text.
    pub status: String,
    /// Cancelled in the shop.
    pub cancelled: bool,
    /// When it was cancelled (Unix ms).
    pub cancelled_at: Option<i64>,
    /// When it left the warehouse (Unix ms).
    pub shipped_at: Option<i64>,
    /// Delivery type (IMSKLAD delivery type id).
    pub delivery_type: Option<i64>,
}

/// One line of a shop order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShopOrderItem {
    /// Order id.
    pub order_id: String,
    /// SKU.
    pub sku: String,
    /// Quantity.
    pub quantity: i64,
    /// Unit price, kopecks.
    pub price_kop: i64,
    /// The product name (`name`, optional column).
    pub name: Option<String>,
}

/// A marking (Честный ЗНАК) code known to the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkingCode {
    /// The code as printed (GS1 group separators included).
    pub code: String,
    /// SKU it belongs to.
    pub sku: String,
    /// User who used it, if any.
    pub used_by: Option<String>,
    /// When (Unix ms).
    pub used_at: Option<i64>,
}

/// A supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Supplier {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Taxpayer number.
    pub inn: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Address.
    pub address: Option<String>,
}

/// The shop database with its queries.
#[derive(Debug, Clone)]
pub struct Shop {
    db: Db,
    queries: Queries,
}

fn col<T>(row: &sqlx::any::AnyRow, name: &str, query: &'static str) -> Result<T, ShopError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|source| ShopError::query(query, source))
}

/// Reads a 0/1 flag whatever integer type the engine uses.
fn flag(row: &sqlx::any::AnyRow, name: &str, query: &'static str) -> Result<bool, ShopError> {
    if let Ok(v) = row.try_get::<i64, _>(name) {
        return Ok(v != 0);
    }
    if let Ok(v) = row.try_get::<i32, _>(name) {
        return Ok(v != 0);
    }
    if let Ok(v) = row.try_get::<bool, _>(name) {
        return Ok(v);
    }
    col::<i64>(row, name, query).map(|v| v != 0)
}

/// Reads an integer column that some engines return as 32-bit.
fn int(row: &sqlx::any::AnyRow, name: &str, query: &'static str) -> Result<i64, ShopError> {
    match row.try_get::<i64, _>(name) {
        Ok(v) => Ok(v),
        Err(_) => row
            .try_get::<i32, _>(name)
            .map(i64::from)
            .map_err(|source| ShopError::query(query, source)),
    }
}

fn opt_int(
    row: &sqlx::any::AnyRow,
    name: &str,
    query: &'static str,
) -> Result<Option<i64>, ShopError> {
    match row.try_get::<Option<i64>, _>(name) {
        Ok(v) => Ok(v),
        Err(_) => row
            .try_get::<Option<i32>, _>(name)
            .map(|v| v.map(i64::from))
            .map_err(|source| ShopError::query(query, source)),
    }
}

/// True when a query simply did not return an optional column.
fn column_absent(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::ColumnNotFound(_))
}

/// An optional integer column: `None` when NULL or not returned at all.
fn may_int(
    row: &sqlx::any::AnyRow,
    name: &str,
    query: &'static str,
) -> Result<Option<i64>, ShopError> {
    match row.try_get::<Option<i64>, _>(name) {
        Ok(v) => Ok(v),
        Err(e) if column_absent(&e) => Ok(None),
        Err(_) => row
            .try_get::<Option<i32>, _>(name)
            .map(|v| v.map(i64::from))
            .map_err(|source| ShopError::Query { query, source }),
    }
}

/// An optional text column: `None` when NULL, blank or not returned at all.
fn may_text(
    row: &sqlx::any::AnyRow,
    name: &str,
    query: &'static str,
) -> Result<Option<String>, ShopError> {
    match crate::db::opt_text(row, name) {
        Ok(v) => Ok(v.filter(|t| !t.trim().is_empty())),
        Err(e) if column_absent(&e) => Ok(None),
        Err(source) => Err(ShopError::Query { query, source }),
    }
}

impl Shop {
    /// A shop over `db` using `queries`.
    pub fn new(db: Db, queries: Queries) -> Shop {
        Shop { db, queries }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Creates the reference schema (demo and tests only).
    pub async fn create_reference_schema(&self) -> Result<(), ShopError> {
        for statement in REFERENCE_SCHEMA.split(';') {
            let body: String = statement
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            if body.trim().is_empty() {
                continue;
            }
            sqlx::query(&body)
                .execute(self.db.pool())
                .await
                .map_err(|source| ShopError::query("schema", source))?;
        }
        Ok(())
    }

    async fn rows(
        &self,
        query: &'static str,
        sql: &str,
        args: &[Arg],
    ) -> Result<Vec<sqlx::any::AnyRow>, ShopError> {
        let text = self.db.sql(sql);
        bind_args(sqlx::query(&text), args)
            .fetch_all(self.db.pool())
            .await
            .map_err(|source| ShopError::query(query, source))
    }

    /// Every SKU the shop sells with its quantity (`stock_select.sql`).
    pub async fn stock(&self) -> Result<Vec<ShopStock>, ShopError> {
        const Q: &str = "stock_select";
        if let Some(url) = self.db.sqlite_url() {
            return sqlite_read::stock(url, &self.queries.stock_select).await;
        }
        self.rows(Q, &self.queries.stock_select, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(ShopStock {
                    sku: col(r, "sku", Q)?,
                    quantity: int(r, "quantity", Q)?,
                    cost_kop: may_int(r, "cost_kop", Q)?,
                })
            })
            .collect()
    }

    /// Sets the quantities of several SKUs in one transaction, each only if
    /// the row still holds the quantity sverka read (compare-and-set,
    /// `stock_update.sql`). A SKU read as 0 whose update touched no row gets
    /// its row from `stock_insert.sql` (the reference query reads a SKU
    /// without a stock row as 0); when that insert finds a row after all, or
    /// a SKU read with another quantity matched nothing, the row changed
    /// during the run: it is left as it is and reported.
    pub async fn update_stock(
        &self,
        updates: &[StockWrite],
    ) -> Result<StockWriteOutcome, ShopError> {
        let now = now_ms();
        if let Some(url) = self.db.sqlite_url() {
            let (update, insert) = (&self.queries.stock_update, &self.queries.stock_insert);
            return sqlite_write::update_stock(url, update, insert, updates, now).await;
        }
        let update = self.db.sql(&self.queries.stock_update).into_owned();
        let insert = self.db.sql(&self.queries.stock_insert).into_owned();
        let q = |query: &'static str| move |source| ShopError::query(query, source);
        let mut tx = self.db.pool().begin().await.map_err(q("stock_update"))?;
        let mut outcome = StockWriteOutcome::default();
        for w in updates {
            let n = bind_args(
                sqlx::query(&update),
                &[
                    Arg::I64(w.to),
                    Arg::I64(now),
                    Arg::Text(w.sku.clone()),
                    Arg::I64(w.from),
                ],
            )
            .execute(&mut *tx)
            .await
            .map_err(q("stock_update"))?
            .rows_affected();
            if !outcome.after_update(w, n) {
                continue;
            }
            // No row, or a row that no longer holds 0: the insert tells which.
            // A savepoint keeps a refused insert from aborting the transaction.
            sqlx::query("SAVEPOINT sverka_stock_insert")
                .execute(&mut *tx)
                .await
                .map_err(q("stock_insert"))?;
            let inserted = bind_args(
                sqlx::query(&insert),
                &[Arg::Text(w.sku.clone()), Arg::I64(w.to), Arg::I64(now)],
            )
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    sqlx::query("RELEASE SAVEPOINT sverka_stock_insert")
                        .execute(&mut *tx)
                        .await
                        .map_err(q("stock_insert"))?;
                    outcome.after_insert(w, true);
                }
                Err(e) if is_unique_violation(&e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT sverka_stock_insert")
                        .execute(&mut *tx)
                        .await
                        .map_err(q("stock_insert"))?;
                    outcome.after_insert(w, false);
                }
                Err(source) => return Err(ShopError::query("stock_insert", source)),
            }
        }
        tx.commit().await.map_err(q("stock_update"))?;
        Ok(outcome)
    }

    fn product_from(r: &sqlx::any::AnyRow, q: &'static str) -> Result<Product, ShopError> {
        Ok(Product {
            sku: col(r, "sku", q)?,
            name: col(r, "name", q)?,
            description: crate::db::opt_text(r, "description")
                .map_err(|source| ShopError::query(q, source))?,
            price_kop: int(r, "price_kop", q)?,
            cost_kop: int(r, "cost_kop", q)?,
            weight_g: opt_int(r, "weight_g", q)?,
            ean: col(r, "ean", q)?,
            supplier_id: col(r, "supplier_id", q)?,
            width_mm: may_int(r, "width_mm", q)?,
            height_mm: may_int(r, "height_mm", q)?,
            length_mm: may_int(r, "length_mm", q)?,
            color_id: may_int(r, "color_id", q)?,
            size: may_text(r, "size", q)?,
            image_url: may_text(r, "image_url", q)?,
        })
    }

    /// The catalogue (`products_select.sql`).
    pub async fn products(&self) -> Result<Vec<Product>, ShopError> {
        const Q: &str = "products_select";
        self.rows(Q, &self.queries.products_select, &[])
            .await?
            .iter()
            .map(|r| Self::product_from(r, Q))
            .collect()
    }

    /// One product (`product_by_sku.sql`).
    pub async fn product(&self, sku: &str) -> Result<Option<Product>, ShopError> {
        const Q: &str = "product_by_sku";
        let rows = self
            .rows(Q, &self.queries.product_by_sku, &[sku.into()])
            .await?;
        rows.first().map(|r| Self::product_from(r, Q)).transpose()
    }

    /// Orders created in `[from_ms, to_ms)` or not final (`orders_select.sql`).
    pub async fn orders(&self, from_ms: i64, to_ms: i64) -> Result<Vec<ShopOrder>, ShopError> {
        const Q: &str = "orders_select";
        if let Some(url) = self.db.sqlite_url() {
            return sqlite_read::orders(url, &self.queries.orders_select, from_ms, to_ms).await;
        }
        self.rows(
            Q,
            &self.queries.orders_select,
            &[from_ms.into(), to_ms.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ShopOrder {
                id: col(r, "id", Q)?,
                status: col(r, "status", Q)?,
                paid: flag(r, "paid", Q)?,
                cancelled: flag(r, "cancelled", Q)?,
                cancelled_at: opt_int(r, "cancelled_at", Q)?,
                created_at: int(r, "created_at", Q)?,
                shipped_at: opt_int(r, "shipped_at", Q)?,
                total_kop: int(r, "total_kop", Q)?,
                delivery_kop: int(r, "delivery_kop", Q)?,
                delivery_type: opt_int(r, "delivery_type", Q)?,
                customer_name: col(r, "customer_name", Q)?,
                email: col(r, "email", Q)?,
                phone: col(r, "phone", Q)?,
                address: col(r, "address", Q)?,
                discount_kop: may_int(r, "discount_kop", Q)?.unwrap_or(0),
                courier: may_int(r, "courier", Q)?,
                pickup_point: may_text(r, "pickup_point", Q)?,
                post_code: may_text(r, "post_code", Q)?,
                address_parts: AddressParts {
                    city: may_text(r, "city", Q)?,
                    street: may_text(r, "street", Q)?,
                    house: may_text(r, "house", Q)?,
                    room: may_text(r, "room", Q)?,
                },
            })
        })
        .collect()
    }

    fn billing_order_from(
        r: &sqlx::any::AnyRow,
        q: &'static str,
    ) -> Result<BillingOrder, ShopError> {
        Ok(BillingOrder {
            id: col(r, "id", q)?,
            status: col(r, "status", q)?,
            cancelled: flag(r, "cancelled", q)?,
            cancelled_at: opt_int(r, "cancelled_at", q)?,
            shipped_at: opt_int(r, "shipped_at", q)?,
            delivery_type: opt_int(r, "delivery_type", q)?,
        })
    }

    /// Orders shipped in `[shipped_from_ms, shipped_to_ms)` or created since
    /// `created_from_ms` (`billing_orders_select.sql`).
    pub async fn billing_orders(
        &self,
        shipped_from_ms: i64,
        shipped_to_ms: i64,
        created_from_ms: i64,
    ) -> Result<Vec<BillingOrder>, ShopError> {
        const Q: &str = "billing_orders_select";
        let args = [
            shipped_from_ms.into(),
            shipped_to_ms.into(),
            created_from_ms.into(),
        ];
        self.rows(Q, &self.queries.billing_orders_select, &args)
            .await?
            .iter()
            .map(|r| Self::billing_order_from(r, Q))
            .collect()
    }

    /// One order by id (`billing_order_by_id.sql`); `None` when the shop does not know it.
    pub async fn billing_order(&self, id: &str) -> Result<Option<BillingOrder>, ShopError> {
        const Q: &str = "billing_order_by_id";
        let rows = self
            .rows(Q, &self.queries.billing_order_by_id, &[id.into()])
            .await?;
        rows.first()
            .map(|r| Self::billing_order_from(r, Q))
            .transpose()
    }

    /// The window's orders and their items, read at once on two
    /// connections ([`Shop::orders`] and [`Shop::order_items`]): on SQLite
    /// each read steps on a thread of its own, so the two share the cores.
    pub async fn orders_and_items(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Vec<ShopOrder>, Vec<ShopOrderItem>), ShopError> {
        tokio::try_join!(
            self.orders(from_ms, to_ms),
            self.order_items(from_ms, to_ms)
        )
    }

    /// Items of the orders in the same window (`order_items_select.sql`).
    pub async fn order_items(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ShopOrderItem>, ShopError> {
        const Q: &str = "order_items_select";
        if let Some(url) = self.db.sqlite_url() {
            let sql = &self.queries.order_items_select;
            return sqlite_read::order_items(url, sql, from_ms, to_ms).await;
        }
        self.rows(
            Q,
            &self.queries.order_items_select,
            &[from_ms.into(), to_ms.into()],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ShopOrderItem {
                order_id: col(r, "order_id", Q)?,
                sku: col(r, "sku", Q)?,
                quantity: int(r, "quantity", Q)?,
                price_kop: int(r, "price_kop", Q)?,
                name: may_text(r, "name", Q)?,
            })
        })
        .collect()
    }

    /// One marking code (`marking_code_select.sql`).
    pub async fn marking_code(&self, code: &str) -> Result<Option<MarkingCode>, ShopError> {
        const Q: &str = "marking_code_select";
        let rows = self
            .rows(Q, &self.queries.marking_code_select, &[code.into()])
            .await?;
        rows.first()
            .map(|r| {
                Ok(MarkingCode {
                    code: col(r, "code", Q)?,
                    sku: col(r, "sku", Q)?,
                    used_by: col(r, "used_by", Q)?,
                    used_at: opt_int(r, "used_at", Q)?,
                })
            })
            .transpose()
    }

    /// Marks a code used by `user` if it is free; true when this call took it.
    pub async fn use_marking_code(&self, code: &str, user: &str) -> Result<bool, ShopError> {
        let text = self.db.sql(&self.queries.marking_code_use);
        let n = bind_args(
            sqlx::query(&text),
            &[user.into(), now_ms().into(), code.into()],
        )
        .execute(self.db.pool())
        .await
        .map_err(|source| ShopError::query("marking_code_use", source))?
        .rows_affected();
        Ok(n == 1)
    }

    fn supplier_from(r: &sqlx::any::AnyRow, q: &'static str) -> Result<Supplier, ShopError> {
        Ok(Supplier {
            id: col(r, "id", q)?,
            name: col(r, "name", q)?,
            inn: col(r, "inn", q)?,
            phone: col(r, "phone", q)?,
            email: col(r, "email", q)?,
            address: col(r, "address", q)?,
        })
    }

    /// One supplier (`supplier_select.sql`).
    pub async fn supplier(&self, id: &str) -> Result<Option<Supplier>, ShopError> {
        const Q: &str = "supplier_select";
        let rows = self
            .rows(Q, &self.queries.supplier_select, &[id.into()])
            .await?;
        rows.first().map(|r| Self::supplier_from(r, Q)).transpose()
    }

    /// All suppliers (`suppliers_select.sql`).
    pub async fn suppliers(&self) -> Result<Vec<Supplier>, ShopError> {
        const Q: &str = "suppliers_select";
        self.rows(Q, &self.queries.suppliers_select, &[])
            .await?
            .iter()
            .map(|r| Self::supplier_from(r, Q))
            .collect()
    }
}
