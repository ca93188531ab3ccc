//! The callback events journal and the state derived from it.
//!
//! Every callback the listener accepts is stored in `events` (source, method,
//! raw body, idempotency key, arrival time) and the state it implies
//! (`order_states`, `stock_snapshots`, `scans`) is updated in the same
//! transaction, before the callback is acknowledged. A second delivery of the
//! same event (same idempotency key) changes nothing.
//!
//! # Order status ordering
//! Callbacks can arrive late or twice. [`status_may_move`] decides whether a
//! status change is applied:
//! - an event whose own timestamp is older than the stored `status_at` never
//!   moves the status;
//! - IMSKLAD (statuses 0–11, no event timestamp): 10 (cancelled) and 11
//!   (delivered) are final; 9 (shipped) may only move on to 10 or 11; a higher
//!   status is always taken; a lower one only when the event names the stored
//!   status as its `old_status` (a genuine step back reported by the warehouse);
//! - EGON (non-monotonic status ids, events carry `change_timestamp`): the
//!   final states (6, 9, 15, 16, 19, 55, 56) never change, otherwise the newer
//!   or equally new event wins.
//!
//! Other fields (track, goods, cancellation, WMS id) are last-writer-wins and
//! only overwritten by values that are present.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{bind_args, now_ms, opt_text, text, Arg, Db, DbError, Dialect};

/// Journal source name of IMSKLAD callbacks.
pub const SOURCE_IMSKLAD: &str = "imsklad";
/// Journal source name of EGON callbacks.
pub const SOURCE_EGON: &str = "egon";
/// Journal source name of IMSHOP scan hooks.
pub const SOURCE_IMSHOP: &str = "imshop";
/// Source name of stock snapshots written by the stock job.
pub const SOURCE_STOCK_JOB: &str = "stock_job";

/// IMSKLAD order statuses that end the order's life (cancelled, delivered).
pub const IMSKLAD_FINAL: [i64; 2] = [10, 11];
/// IMSKLAD status "shipped to the carrier": may only move on to a final status.
pub const IMSKLAD_SHIPPED: i64 = 9;
/// EGON order statuses that never change again.
pub const EGON_FINAL: [i64; 7] = [6, 9, 15, 16, 19, 55, 56];
/// EGON order statuses that mean the order is cancelled or deleted.
pub const EGON_CANCELLED: [i64; 4] = [9, 15, 55, 56];

/// One journaled callback.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Row id (increasing).
    pub id: i64,
    /// `imsklad`, `egon`, `imshop`.
    pub source: String,
    /// Protocol method, e.g. `order.set_status` or `WriteOrderStatus`.
    pub method: String,
    /// SHA-256 (hex) of source, method and canonical body.
    pub idem_key: String,
    /// The request body as received (after transport decoding).
    pub body: String,
    /// Arrival time, Unix ms.
    pub received_at: i64,
    /// `accepted`.
    pub status: String,
    /// Why processing failed, if it did.
    pub error: Option<String>,
}

/// The latest known warehouse state of one order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderState {
    /// The shop's order id.
    pub order_id: String,
    /// The warehouse's own order id.
    pub wms_order_id: Option<String>,
    /// Warehouse status (IMSKLAD 0–11 or EGON `status_id`, see `source`).
    pub wms_status: Option<i64>,
    /// When the status was set: the event's own timestamp, else its arrival (Unix ms).
    pub status_at: Option<i64>,
    /// Carrier tracking number.
    pub track: Option<String>,
    /// The goods lines as the warehouse reported them (JSON text).
    pub goods: Option<String>,
    /// Cancelled at the warehouse.
    pub is_canceled: bool,
    /// `imsklad` or `egon`.
    pub source: String,
    /// Last change of this row, Unix ms.
    pub updated_at: i64,
}

/// The warehouse stock of one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockSnapshot {
    /// Shop SKU.
    pub sku: String,
    /// Physical stock at the warehouse.
    pub wms_stock: i64,
    /// Reserved for orders.
    pub wms_reserved: i64,
    /// What can be sold (never negative).
    pub sellable: i64,
    /// Who took it: `egon`, `stock_job`, …
    pub source: String,
    /// When, Unix ms.
    pub taken_at: i64,
}

/// The status of an IMSHOP scan (the same type the IMSHOP client sends).
pub use crate::connectors::imshop::ScanStatus;

/// One IMSHOP scan (one per user and code).
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Scan id given to IMSHOP (a UUID).
    pub id: String,
    /// IMSHOP user id.
    pub user_id: String,
    /// The decoded marking code.
    pub code: String,
    /// Current status.
    pub status: ScanStatus,
    /// Text shown in the app's history.
    pub status_message: Option<String>,
    /// The scan's own timestamp (Unix seconds, as IMSHOP sent it).
    pub scanned_at: i64,
    /// First seen, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
    /// The status IMSHOP last learned (in the scan answer or by a push).
    pub pushed_status: Option<ScanStatus>,
    /// Last push attempt, Unix ms.
    pub pushed_at: Option<i64>,
    /// Error of the last failed push.
    pub push_error: Option<String>,
}

/// A callback about to be journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `imsklad`, `egon`, `imshop`.
    pub source: String,
    /// Protocol method.
    pub method: String,
    /// The body as received.
    pub body: String,
    /// The idempotency key (see [`idempotency_key`]).
    pub idem_key: String,
    /// Arrival, Unix ms.
    pub received_at: i64,
}

/// SHA-256 (hex) of `source`, `method` and the canonical body, separated by NUL bytes.
///
/// The canonical body is the parsed JSON re-serialised (object keys sorted,
/// no whitespace), so the same event sent with other formatting is the same key.
pub fn idempotency_key(source: &str, method: &str, canonical_body: &str) -> String {
    let mut h = Sha256::new();
    h.update(source.as_bytes());
    h.update([0u8]);
    h.update(method.as_bytes());
    h.update([0u8]);
    h.update(canonical_body.as_bytes());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// A status reported by a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The new status.
    pub status: i64,
    /// The status the warehouse says the order left (IMSKLAD `old_status`).
    pub old_status: Option<i64>,
    /// The event's own timestamp (Unix ms), when it has one.
    pub event_at: Option<i64>,
}

/// What one callback says about one order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderUpdate {
    /// The shop's order id.
    pub order_id: String,
    /// `imsklad` or `egon`.
    pub source: String,
    /// The warehouse's order id, when given.
    pub wms_order_id: Option<String>,
    /// A status change, when given.
    pub status: Option<StatusChange>,
    /// A tracking number, when given.
    pub track: Option<String>,
    /// The goods lines (JSON text), when given.
    pub goods: Option<String>,
    /// Cancellation flag, when given.
    pub is_canceled: Option<bool>,
}

/// A scan result to store (insert or update by user and code).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanWrite {
    /// IMSHOP user id.
    pub user_id: String,
    /// Decoded code.
    pub code: String,
    /// Status answered.
    pub status: ScanStatus,
    /// Message answered.
    pub status_message: Option<String>,
    /// Scan timestamp (Unix seconds).
    pub scanned_at: i64,
}

/// A state change implied by an event, applied in the event's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// An order's warehouse state.
    Order(OrderUpdate),
    /// A SKU's warehouse stock (kept only if not older than the stored one).
    Stock(StockSnapshot),
    /// A scan, answered to IMSHOP in the same request (so IMSHOP knows its status).
    Scan(ScanWrite),
}

/// The outcome of [`record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Journaled with this id, effects applied.
    New(i64),
    /// The same event was journaled before: nothing changed.
    Duplicate,
}

/// Decides whether `change` may replace the stored status (see the module doc).
///
/// `current` is the stored `(status, status_at)`; `at` is when the change
/// happened (its own timestamp, else its arrival).
pub fn status_may_move(
    source: &str,
    current: Option<(i64, i64)>,
    change: &StatusChange,
    at: i64,
) -> bool {
    let Some((status, status_at)) = current else {
        return true;
    };
    if change.event_at.is_some() && at < status_at {
        return false;
    }
    if change.status == status {
        return true;
    }
    if source == SOURCE_EGON {
        return !EGON_FINAL.contains(&status);
    }
    if IMSKLAD_FINAL.contains(&status) {
        return false;
    }
    if status == IMSKLAD_SHIPPED {
        return IMSKLAD_FINAL.contains(&change.status);
    }
    change.status > status || change.old_status == Some(status)
}

/// Merges `update` (arrived at `received_at`, Unix ms) into the stored state.
pub fn merge_order(
    existing: Option<&OrderState>,
    update: &OrderUpdate,
    received_at: i64,
) -> OrderState {
    let mut next = existing.cloned().unwrap_or_else(|| OrderState {
        order_id: update.order_id.clone(),
        wms_order_id: None,
        wms_status: None,
        status_at: None,
        track: None,
        goods: None,
        is_canceled: false,
        source: update.source.clone(),
        updated_at: received_at,
    });
    if let Some(change) = &update.status {
        let at = change.event_at.unwrap_or(received_at);
        let current = next.wms_status.map(|s| (s, next.status_at.unwrap_or(0)));
        if status_may_move(&update.source, current, change, at) {
            next.wms_status = Some(change.status);
            next.status_at = Some(at.max(next.status_at.unwrap_or(at)));
            if update.source == SOURCE_IMSKLAD && change.status == 10 {
                next.is_canceled = true;
            }
            if update.source == SOURCE_EGON {
                next.is_canceled = EGON_CANCELLED.contains(&change.status);
            }
        }
    }
    if update.wms_order_id.is_some() {
        next.wms_order_id.clone_from(&update.wms_order_id);
    }
    if update.track.is_some() {
        next.track.clone_from(&update.track);
    }
    if update.goods.is_some() {
        next.goods.clone_from(&update.goods);
    }
    if let Some(c) = update.is_canceled {
        next.is_canceled = c;
    }
    next.source.clone_from(&update.source);
    next.updated_at = received_at;
    next
}

fn corrupt(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |e| DbError::Corrupt(format!("{what} row: {e}"))
}

/// Reads an integer column some engines type as 32-bit.
fn int(row: &AnyRow, name: &str) -> Result<i64, sqlx::Error> {
    match row.try_get::<i64, _>(name) {
        Ok(v) => Ok(v),
        Err(first) => row
            .try_get::<i32, _>(name)
            .map(i64::from)
            .map_err(|_| first),
    }
}

/// Reads a nullable integer column some engines type as 32-bit.
fn opt_int(row: &AnyRow, name: &str) -> Result<Option<i64>, sqlx::Error> {
    match row.try_get::<Option<i64>, _>(name) {
        Ok(v) => Ok(v),
        Err(first) => row
            .try_get::<Option<i32>, _>(name)
            .map(|v| v.map(i64::from))
            .map_err(|_| first),
    }
}

fn event_from(r: &AnyRow) -> Result<EventRecord, DbError> {
    let e = corrupt("events");
    Ok(EventRecord {
        id: int(r, "id").map_err(&e)?,
        source: text(r, "source").map_err(&e)?,
        method: text(r, "method").map_err(&e)?,
        idem_key: text(r, "idem_key").map_err(&e)?,
        body: text(r, "body").map_err(&e)?,
        received_at: int(r, "received_at").map_err(&e)?,
        status: text(r, "status").map_err(&e)?,
        error: opt_text(r, "error").map_err(&e)?,
    })
}

const ORDER_COLUMNS: &str = "order_id, wms_order_id, wms_status, status_at, track, goods, \
                             is_canceled, source, updated_at";

fn order_from(r: &AnyRow) -> Result<OrderState, DbError> {
    let e = corrupt("order_states");
    Ok(OrderState {
        order_id: text(r, "order_id").map_err(&e)?,
        wms_order_id: opt_text(r, "wms_order_id").map_err(&e)?,
        wms_status: opt_int(r, "wms_status").map_err(&e)?,
        status_at: opt_int(r, "status_at").map_err(&e)?,
        track: opt_text(r, "track").map_err(&e)?,
        goods: opt_text(r, "goods").map_err(&e)?,
        is_canceled: int(r, "is_canceled").map_err(&e)? != 0,
        source: text(r, "source").map_err(&e)?,
        updated_at: int(r, "updated_at").map_err(&e)?,
    })
}

const STOCK_COLUMNS: &str = "sku, wms_stock, wms_reserved, sellable, source, taken_at";

fn stock_from(r: &AnyRow) -> Result<StockSnapshot, DbError> {
    let e = corrupt("stock_snapshots");
    Ok(StockSnapshot {
        sku: text(r, "sku").map_err(&e)?,
        wms_stock: int(r, "wms_stock").map_err(&e)?,
        wms_reserved: int(r, "wms_reserved").map_err(&e)?,
        sellable: int(r, "sellable").map_err(&e)?,
        source: text(r, "source").map_err(&e)?,
        taken_at: int(r, "taken_at").map_err(&e)?,
    })
}

const SCAN_COLUMNS: &str = "id, user_id, code, status, status_message, scanned_at, created_at, \
                            updated_at, pushed_status, pushed_at, push_error";

fn scan_status(s: &str) -> Result<ScanStatus, DbError> {
    ScanStatus::parse(s).ok_or_else(|| DbError::Corrupt(format!("scans row: unknown status `{s}`")))
}

fn scan_from(r: &AnyRow) -> Result<Scan, DbError> {
    let e = corrupt("scans");
    Ok(Scan {
        id: text(r, "id").map_err(&e)?,
        user_id: text(r, "user_id").map_err(&e)?,
        code: text(r, "code").map_err(&e)?,
        status: scan_status(&text(r, "status").map_err(&e)?)?,
        status_message: opt_text(r, "status_message").map_err(&e)?,
        scanned_at: int(r, "scanned_at").map_err(&e)?,
        created_at: int(r, "created_at").map_err(&e)?,
        updated_at: int(r, "updated_at").map_err(&e)?,
        pushed_status: opt_text(r, "pushed_status")
            .map_err(&e)?
            .map(|s| scan_status(&s))
            .transpose()?,
        pushed_at: opt_int(r, "pushed_at").map_err(&e)?,
        push_error: opt_text(r, "push_error").map_err(&e)?,
    })
}

/// A transaction on the state database with its dialect.
struct Tx<'c> {
    tx: Transaction<'c, Any>,
    dialect: Dialect,
}

impl Tx<'_> {
    async fn begin(db: &Db, what: &str) -> Result<Tx<'static>, DbError> {
        let tx = db.pool().begin().await.map_err(DbError::query(what))?;
        Ok(Tx {
            tx,
            dialect: db.dialect(),
        })
    }

    async fn execute(&mut self, sql: &str, args: &[Arg], what: &str) -> Result<u64, DbError> {
        let text = super::translate(sql, self.dialect);
        let done = bind_args(sqlx::query(&text), args)
            .execute(&mut *self.tx)
            .await
            .map_err(DbError::query(what))?;
        Ok(done.rows_affected())
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Arg],
        what: &str,
    ) -> Result<Option<AnyRow>, DbError> {
        let text = super::translate(sql, self.dialect);
        bind_args(sqlx::query(&text), args)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(DbError::query(what))
    }

    async fn commit(self, what: &str) -> Result<(), DbError> {
        self.tx.commit().await.map_err(DbError::query(what))
    }

    /// Inserts the event; `None` when its idempotency key is already journaled.
    async fn insert_event(&mut self, event: &NewEvent) -> Result<Option<i64>, DbError> {
        const WHAT: &str = "journaling a callback event";
        let sql = "INSERT INTO events (source, method, idem_key, body, received_at, status) \
                   VALUES (?, ?, ?, ?, ?, 'accepted')";
        let args = [
            Arg::from(event.source.as_str()),
            event.method.as_str().into(),
            event.idem_key.as_str().into(),
            event.body.as_str().into(),
            event.received_at.into(),
        ];
        let text = if self.dialect == Dialect::MySql {
            sql.to_string()
        } else {
            format!("{} RETURNING id", super::translate(sql, self.dialect))
        };
        let query = bind_args(sqlx::query(&text), &args);
        let outcome = if self.dialect == Dialect::MySql {
            query
                .execute(&mut *self.tx)
                .await
                .map(|done| done.last_insert_id())
        } else {
            query
                .fetch_one(&mut *self.tx)
                .await
                .and_then(|row| int(&row, "id").map(Some))
        };
        match outcome {
            Ok(Some(id)) => Ok(Some(id)),
            Ok(None) => Err(DbError::Corrupt(format!(
                "{WHAT}: the driver returned no id"
            ))),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
            Err(source) => Err(DbError::Query {
                what: WHAT.to_string(),
                source,
            }),
        }
    }

    async fn apply_order(&mut self, update: &OrderUpdate, received_at: i64) -> Result<(), DbError> {
        let existing = self
            .fetch_optional(
                &format!("SELECT {ORDER_COLUMNS} FROM order_states WHERE order_id = ?"),
                &[update.order_id.as_str().into()],
                "reading an order state",
            )
            .await?
            .map(|r| order_from(&r))
            .transpose()?;
        let next = merge_order(existing.as_ref(), update, received_at);
        let args = [
            Arg::from(next.wms_order_id.clone()),
            next.wms_status.into(),
            next.status_at.into(),
            next.track.clone().into(),
            next.goods.clone().into(),
            i64::from(next.is_canceled).into(),
            next.source.as_str().into(),
            next.updated_at.into(),
            next.order_id.as_str().into(),
        ];
        let sql = if existing.is_some() {
            "UPDATE order_states SET wms_order_id = ?, wms_status = ?, status_at = ?, track = ?, \
             goods = ?, is_canceled = ?, source = ?, updated_at = ? WHERE order_id = ?"
        } else {
            "INSERT INTO order_states (wms_order_id, wms_status, status_at, track, goods, \
             is_canceled, source, updated_at, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        };
        self.execute(sql, &args, "storing an order state").await?;
        Ok(())
    }

    /// Stores one SKU's stock unless a newer snapshot of it is stored.
    async fn apply_stock(&mut self, s: &StockSnapshot) -> Result<(), DbError> {
        let existing = self
            .fetch_optional(
                "SELECT taken_at FROM stock_snapshots WHERE sku = ?",
                &[s.sku.as_str().into()],
                "reading a stock snapshot",
            )
            .await?
            .map(|r| int(&r, "taken_at").map_err(corrupt("stock_snapshots")))
            .transpose()?;
        let args = [
            Arg::from(s.wms_stock),
            s.wms_reserved.into(),
            s.sellable.max(0).into(),
            s.source.as_str().into(),
            s.taken_at.into(),
            s.sku.as_str().into(),
        ];
        let sql = match existing {
            Some(taken_at) if taken_at > s.taken_at => return Ok(()),
            Some(_) => {
                "UPDATE stock_snapshots SET wms_stock = ?, wms_reserved = ?, sellable = ?, \
                 source = ?, taken_at = ? WHERE sku = ?"
            }
            None => {
                "INSERT INTO stock_snapshots (wms_stock, wms_reserved, sellable, source, \
                 taken_at, sku) VALUES (?, ?, ?, ?, ?, ?)"
            }
        };
        self.execute(sql, &args, "storing a stock snapshot").await?;
        Ok(())
    }

    async fn apply_scan(&mut self, w: &ScanWrite, now: i64) -> Result<(), DbError> {
        let existing = self
            .fetch_optional(
                "SELECT id FROM scans WHERE user_id = ? AND code = ?",
                &[w.user_id.as_str().into(), w.code.as_str().into()],
                "reading a scan",
            )
            .await?
            .map(|r| text(&r, "id").map_err(corrupt("scans")))
            .transpose()?;
        let status = w.status.as_str();
        match existing {
            Some(id) => {
                self.execute(
                    "UPDATE scans SET status = ?, status_message = ?, updated_at = ?, \
                     pushed_status = ?, pushed_at = ?, push_error = NULL WHERE id = ?",
                    &[
                        status.into(),
                        w.status_message.clone().into(),
                        now.into(),
                        status.into(),
                        now.into(),
                        id.into(),
                    ],
                    "updating a scan",
                )
                .await?;
            }
            None => {
                self.execute(
                    "INSERT INTO scans (id, user_id, code, status, status_message, scanned_at, \
                     created_at, updated_at, pushed_status, pushed_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    &[
                        uuid::Uuid::new_v4().to_string().into(),
                        w.user_id.as_str().into(),
                        w.code.as_str().into(),
                        status.into(),
                        w.status_message.clone().into(),
                        w.scanned_at.into(),
                        now.into(),
                        now.into(),
                        status.into(),
                        now.into(),
                    ],
                    "storing a scan",
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Journals `event` and applies `effects` in one transaction.
///
/// A duplicate (same idempotency key) is rolled back and reported as
/// [`Recorded::Duplicate`]: its effects were applied the first time.
pub async fn record(db: &Db, event: &NewEvent, effects: &[Effect]) -> Result<Recorded, DbError> {
    let mut tx = Tx::begin(db, "starting a callback transaction").await?;
    let Some(id) = tx.insert_event(event).await? else {
        return Ok(Recorded::Duplicate);
    };
    let now = now_ms();
    for effect in effects {
        match effect {
            Effect::Order(update) => tx.apply_order(update, event.received_at).await?,
            Effect::Stock(snapshot) => tx.apply_stock(snapshot).await?,
            Effect::Scan(scan) => tx.apply_scan(scan, now).await?,
        }
    }
    tx.commit("committing a callback event").await?;
    Ok(Recorded::New(id))
}

/// Every order state, by order id.
pub async fn order_states(db: &Db) -> Result<Vec<OrderState>, DbError> {
    db.fetch_all(
        &format!("SELECT {ORDER_COLUMNS} FROM order_states ORDER BY order_id"),
        &[],
        "reading order states",
    )
    .await?
    .iter()
    .map(order_from)
    .collect()
}

/// The latest stock snapshot, by SKU.
pub async fn stock_snapshot(db: &Db) -> Result<Vec<StockSnapshot>, DbError> {
    db.fetch_all(
        &format!("SELECT {STOCK_COLUMNS} FROM stock_snapshots ORDER BY sku"),
        &[],
        "reading the stock snapshot",
    )
    .await?
    .iter()
    .map(stock_from)
    .collect()
}

/// Replaces the whole stock snapshot with `rows` in one transaction (the stock job).
pub async fn put_stock_snapshot(db: &Db, rows: &[StockSnapshot]) -> Result<(), DbError> {
    let mut tx = Tx::begin(db, "starting a stock snapshot transaction").await?;
    tx.execute(
        "DELETE FROM stock_snapshots",
        &[],
        "clearing the stock snapshot",
    )
    .await?;
    // One row per SKU; a repeated SKU keeps its last row.
    let mut latest: std::collections::BTreeMap<&str, &StockSnapshot> = Default::default();
    for row in rows {
        latest.insert(row.sku.as_str(), row);
    }
    // Multi-row INSERTs: one statement per 500 rows instead of one per row
    // (a million SKUs is minutes row by row, seconds this way); 3,000 bound
    // parameters stay far below every engine's limit.
    const ROWS_PER_INSERT: usize = 500;
    let rows: Vec<&StockSnapshot> = latest.into_values().collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::from(
            "INSERT INTO stock_snapshots (sku, wms_stock, wms_reserved, sellable, source, taken_at) VALUES ",
        );
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for (i, s) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                ", (?, ?, ?, ?, ?, ?)"
            });
            args.extend([
                s.sku.as_str().into(),
                s.wms_stock.into(),
                s.wms_reserved.into(),
                s.sellable.max(0).into(),
                s.source.as_str().into(),
                s.taken_at.into(),
            ]);
        }
        tx.execute(&sql, &args, "storing a stock snapshot").await?;
    }
    tx.commit("committing the stock snapshot").await
}

/// Journaled events of `source` with an id above `since_id`, oldest first.
pub async fn events(db: &Db, source: &str, since_id: i64) -> Result<Vec<EventRecord>, DbError> {
    db.fetch_all(
        "SELECT id, source, method, idem_key, body, received_at, status, error FROM events \
         WHERE source = ? AND id > ? ORDER BY id",
        &[source.into(), since_id.into()],
        "reading callback events",
    )
    .await?
    .iter()
    .map(event_from)
    .collect()
}

/// The scan of `user_id` for `code`, if any.
pub async fn scan(db: &Db, user_id: &str, code: &str) -> Result<Option<Scan>, DbError> {
    db.fetch_optional(
        &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE user_id = ? AND code = ?"),
        &[user_id.into(), code.into()],
        "reading a scan",
    )
    .await?
    .map(|r| scan_from(&r))
    .transpose()
}

/// The scans of one user, newest first.
pub async fn user_scans(db: &Db, user_id: &str) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans WHERE user_id = ? \
             ORDER BY scanned_at DESC, created_at DESC, id"
        ),
        &[user_id.into()],
        "reading a user's scans",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

/// Scans whose current status IMSHOP has not learned yet (to push), oldest change first.
pub async fn scans_to_push(db: &Db) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans \
             WHERE pushed_status IS NULL OR pushed_status <> status ORDER BY updated_at, id"
        ),
        &[],
        "reading scans to push",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

/// Records a push attempt: on success (`error` = None) IMSHOP now knows
/// `status`; on failure the error is kept and the scan stays due.
pub async fn mark_scan_pushed(
    db: &Db,
    id: &str,
    status: ScanStatus,
    error: Option<&str>,
) -> Result<(), DbError> {
    let now = now_ms();
    match error {
        None => db
            .execute(
                "UPDATE scans SET pushed_status = ?, pushed_at = ?, push_error = NULL WHERE id = ?",
                &[status.as_str().into(), now.into(), id.into()],
                "marking a scan pushed",
            )
            .await
            .map(drop),
        Some(message) => db
            .execute(
                "UPDATE scans SET pushed_at = ?, push_error = ? WHERE id = ?",
                &[now.into(), message.into(), id.into()],
                "recording a failed scan push",
            )
            .await
            .map(drop),
    }
}

/// Changes a scan's status after a re-check (e.g. `processing` → `approved`);
/// it then shows up in [`scans_to_push`].
pub async fn set_scan_status(
    db: &Db,
    id: &str,
    status: ScanStatus,
    message: Option<&str>,
) -> Result<(), DbError> {
    db.execute(
        "UPDATE scans SET status = ?, status_message = ?, updated_at = ? WHERE id = ?",
        &[
            status.as_str().into(),
            message.map(str::to_string).into(),
            now_ms().into(),
            id.into(),
        ],
        "updating a scan status",
    )
    .await
    .map(drop)
}

/// Scans still `processing` whose last change is at least `older_than_ms` ago.
pub async fn scans_stuck_processing(db: &Db, older_than_ms: i64) -> Result<Vec<Scan>, DbError> {
    db.fetch_all(
        &format!(
            "SELECT {SCAN_COLUMNS} FROM scans WHERE status = 'processing' AND updated_at <= ? \
             ORDER BY updated_at, id"
        ),
        &[(now_ms() - older_than_ms).into()],
        "reading scans stuck in processing",
    )
    .await?
    .iter()
    .map(scan_from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(status: i64, old: Option<i64>, at: Option<i64>) -> StatusChange {
        StatusChange {
            status,
            old_status: old,
            event_at: at,
        }
    }

    #[test]
    fn imsklad_status_moves_forward_and_not_back() {
        let s = SOURCE_IMSKLAD;
        assert!(status_may_move(s, None, &change(3, Some(0), None), 5));
        assert!(status_may_move(
            s,
            Some((3, 5)),
            &change(6, Some(5), None),
            6
        ));
        assert!(!status_may_move(
            s,
            Some((6, 5)),
            &change(2, Some(1), None),
            9
        ));
        // A step back the warehouse reports from the stored status is taken.
        assert!(status_may_move(
            s,
            Some((6, 5)),
            &change(5, Some(6), None),
            9
        ));
        // Final states stay; shipped only moves on to a final one.
        assert!(!status_may_move(
            s,
            Some((10, 5)),
            &change(5, Some(10), None),
            9
        ));
        assert!(!status_may_move(
            s,
            Some((11, 5)),
            &change(10, Some(11), None),
            9
        ));
        assert!(!status_may_move(
            s,
            Some((9, 5)),
            &change(8, Some(9), None),
            9
        ));
        assert!(status_may_move(
            s,
            Some((9, 5)),
            &change(11, Some(9), None),
            9
        ));
    }

    #[test]
    fn egon_status_follows_event_time_until_final() {
        let s = SOURCE_EGON;
        assert!(status_may_move(
            s,
            Some((5, 100)),
            &change(7, None, Some(200)),
            200
        ));
        assert!(!status_may_move(
            s,
            Some((7, 200)),
            &change(5, None, Some(100)),
            100
        ));
        assert!(status_may_move(
            s,
            Some((5, 100)),
            &change(2, None, Some(150)),
            150
        ));
        assert!(!status_may_move(
            s,
            Some((6, 100)),
            &change(5, None, Some(300)),
            300
        ));
    }

    #[test]
    fn merge_keeps_present_fields_and_sets_cancel() {
        let first = merge_order(
            None,
            &OrderUpdate {
                order_id: "A".into(),
                source: SOURCE_IMSKLAD.into(),
                track: Some("T1".into()),
                ..Default::default()
            },
            10,
        );
        let next = merge_order(
            Some(&first),
            &OrderUpdate {
                order_id: "A".into(),
                source: SOURCE_IMSKLAD.into(),
                status: Some(change(10, Some(0), None)),
                wms_order_id: Some("77".into()),
                ..Default::default()
            },
            20,
        );
        assert_eq!(next.track.as_deref(), Some("T1"));
        assert_eq!(next.wms_status, Some(10));
        assert_eq!(next.status_at, Some(20));
        assert!(next.is_canceled);
        assert_eq!(next.wms_order_id.as_deref(), Some("77"));
        assert_eq!(next.updated_at, 20);
    }

    #[test]
    fn idempotency_key_separates_fields() {
        let a = idempotency_key("imsklad", "ab", "c");
        let b = idempotency_key("imsklad", "a", "bc");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(a, idempotency_key("imsklad", "ab", "c"));
    }
}
