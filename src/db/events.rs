//! The callback events journal and the state derived from it.
//!
//! Every callback the listener accepts is stored in `events` (source, method,
//! raw body, idempotency key, arrival time) and the state it implies
//! (`order_states`, `stock_snapshots`, `scans`) is updated in the same
//! transaction, before the callback is acknowledged.
//!
//! # Atomic effects
//! Each derived row is written under a row lock: an order state is created if
//! absent and locked in one statement (`INSERT … ON CONFLICT DO UPDATE …
//! RETURNING`, which takes PostgreSQL's row lock; MySQL: `ON DUPLICATE KEY
//! UPDATE` as a no-op, then `SELECT … FOR UPDATE`), merged in Rust and written
//! back; stock snapshots and scans are single upserts whose conditions the
//! engine evaluates on the locked row. Rows are locked in a fixed order. A
//! deadlock, serialization failure, busy SQLite file or first-insert race
//! rolls the transaction back and runs it again ([`with_retry`]), so two
//! callbacks for one order (or several `sverka serve` processes on one
//! PostgreSQL/MySQL database) never lose each other's update.
//!
//! On a SQLite state database concurrent callbacks share one transaction
//! ([`super::group_commit`]): one fsync for the group, each answered after it.
//!
//! # Redeliveries (the rule is UNVERIFIED)
//! IMSKLAD bodies and EGON `InventoryStatusUpdate` carry no event id, so a
//! redelivery cannot be told from a real repeat by the body alone. sverka
//! assumes — this is **UNVERIFIED** against the vendors, who document no
//! redelivery behaviour — that:
//! - a callback identical (same idempotency key: source, method, canonical
//!   body with secrets redacted by path) to the **latest event applied to each
//!   entity it is about** (order, SKU card, scan; [`Entity`]) is a
//!   redelivery: answered ok, neither journaled nor applied again;
//! - otherwise it is journaled and applied, even when its body equals an older
//!   event: stock 5 → 9 → 5 ends at 5, a track T1 → T2 → T1 at T1;
//! - where the protocol carries a time (EGON `change_timestamp`), an event
//!   older than the entity's latest is journaled with status `stale` and not
//!   applied.
//!
//! `event_heads` holds the latest event per entity. The stock job's snapshot
//! supersedes the SKU heads older than its WMS read, so a callback repeating
//! the last one after a stock run is applied again.
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
//!   a stored status outside 0–11 (unknown, reported as `unmapped_wms_status`)
//!   never blocks the next one. The listener rejects statuses that are not
//!   integers in 0..=999, so none is stored;
//! - EGON (non-monotonic status ids, events carry `change_timestamp`): the
//!   final states (6, 9, 15, 16, 19, 55, 56) never change, otherwise the newer
//!   or equally new event wins.
//!
//! Other fields (track, goods, cancellation, WMS id) are last-writer-wins and
//! only overwritten by values that are present.

use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::{bind_args, int, now_ms, opt_int, opt_text, text, Arg, Db, DbError, Dialect};

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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// [`STATUS_ACCEPTED`], [`STATUS_STALE`] or [`STATUS_REJECTED`].
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    /// Being processed.
    Processing,
    /// Approved (bonuses credited).
    Approved,
    /// Denied.
    Denied,
}

impl ScanStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Processing => "processing",
            ScanStatus::Approved => "approved",
            ScanStatus::Denied => "denied",
        }
    }

    /// Parses a wire name (`processing`, `approved`, `denied`).
    pub fn parse(s: &str) -> Option<ScanStatus> {
        s.parse().ok()
    }
}

impl std::str::FromStr for ScanStatus {
    type Err = String;

    /// Case- and whitespace-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "processing" => Ok(ScanStatus::Processing),
            "approved" => Ok(ScanStatus::Approved),
            "denied" => Ok(ScanStatus::Denied),
            other => Err(format!("unknown scan status {other:?}")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ScanStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
    /// The event's own time, when the protocol carries one (EGON `change_timestamp`).
    pub event_at: Option<i64>,
    /// What the event is about beyond its effects' rows (a document, a claim);
    /// an event with neither effects nor subjects is about its method.
    pub subjects: Vec<Entity>,
    /// Lines of the callback that were rejected (journaled beside it as `rejected`).
    pub rejected: Vec<RejectedLine>,
}

/// One rejected line of a list callback.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedLine {
    /// The line as received (redacted, capped).
    pub body: String,
    /// Why it was rejected.
    pub reason: String,
}

/// What an event is about: the unit of the redelivery rule (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    /// An order, by the shop's order id.
    Order(String),
    /// A SKU card, by SKU.
    Sku(String),
    /// An IMSHOP scan, by user and code.
    Scan {
        /// IMSHOP user id.
        user: String,
        /// Decoded code.
        code: String,
    },
    /// Anything else: a document, a claim, a journal-only notification.
    Other {
        /// What kind of subject (usually the method).
        kind: String,
        /// Its id, or empty.
        id: String,
    },
}

impl Entity {
    /// `order`, `sku`, `scan` or `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            Entity::Order(_) => "order",
            Entity::Sku(_) => "sku",
            Entity::Scan { .. } => "scan",
            Entity::Other { .. } => "other",
        }
    }

    /// A readable name of the subject.
    pub fn subject(&self) -> String {
        match self {
            Entity::Order(id) | Entity::Sku(id) => id.clone(),
            Entity::Scan { user, code } => format!("{user} {code}"),
            Entity::Other { kind, id } => format!("{kind} {id}"),
        }
    }

    /// The primary key of its `event_heads` row: SHA-256 (hex) of kind and parts.
    pub fn key(&self) -> String {
        let parts: Vec<&str> = match self {
            Entity::Order(id) | Entity::Sku(id) => vec![id],
            Entity::Scan { user, code } => vec![user, code],
            Entity::Other { kind, id } => vec![kind, id],
        };
        let mut h = Sha256::new();
        h.update(self.kind().as_bytes());
        for p in parts {
            h.update([0u8]);
            h.update(p.as_bytes());
        }
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    hex(&h.finalize())
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

impl Effect {
    /// The entity whose row this effect writes.
    pub fn entity(&self) -> Entity {
        match self {
            Effect::Order(u) => Entity::Order(u.order_id.clone()),
            Effect::Stock(s) => Entity::Sku(s.sku.clone()),
            Effect::Scan(w) => Entity::Scan {
                user: w.user_id.clone(),
                code: w.code.clone(),
            },
        }
    }
}

/// The outcome of [`record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Journaled with this id, effects applied.
    New(i64),
    /// Journaled with this id as `stale` (older than the entity's latest event): not applied.
    Stale(i64),
    /// A redelivery of the latest event of every entity it is about: nothing changed.
    Duplicate,
}

/// Journal status of an applied event.
pub const STATUS_ACCEPTED: &str = "accepted";
/// Journal status of an event older than its entity's latest (not applied).
pub const STATUS_STALE: &str = "stale";
/// Journal status of a rejected callback or line (not applied).
pub const STATUS_REJECTED: &str = "rejected";

/// The stored head of one entity: the latest event applied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    idem_key: String,
    event_at: Option<i64>,
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
    if !(0..=11).contains(&status) {
        // An unknown status has no place in the order: it never blocks.
        return true;
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

    async fn rollback(self, what: &str) -> Result<(), DbError> {
        self.tx.rollback().await.map_err(DbError::query(what))
    }

    /// Inserts the event with `status` (and `error`) and returns its id.
    async fn insert_event(
        &mut self,
        event: &NewEvent,
        status: &str,
        error: Option<&str>,
    ) -> Result<i64, DbError> {
        const WHAT: &str = "journaling a callback event";
        let sql =
            "INSERT INTO events (source, method, idem_key, body, received_at, status, error) \
                   VALUES (?, ?, ?, ?, ?, ?, ?)";
        let args = [
            Arg::from(event.source.as_str()),
            event.method.as_str().into(),
            event.idem_key.as_str().into(),
            event.body.as_str().into(),
            event.received_at.into(),
            status.into(),
            error.map(str::to_string).into(),
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
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(DbError::Corrupt(format!(
                "{WHAT}: the driver returned no id"
            ))),
            Err(source) => Err(DbError::Query {
                what: WHAT.to_string(),
                source,
            }),
        }
    }

    /// PostgreSQL: inserts the event (as [`Tx::insert_event`]) and moves the
    /// heads of `fresh` (locked by [`Tx::lock_head`]) to it in one statement.
    /// A head's `event_at` becomes the later of its own and the event's.
    async fn insert_event_moving_heads(
        &mut self,
        event: &NewEvent,
        status: &str,
        error: Option<&str>,
        fresh: &[&Entity],
    ) -> Result<i64, DbError> {
        let (mut sql, args) = event_and_heads(event, status, error, fresh);
        sql.push_str(" SELECT id FROM e");
        self.fetch_event_id(&sql, &args).await
    }

    /// Runs a statement answering the new event's `id`.
    async fn fetch_event_id(&mut self, sql: &str, args: &[Arg]) -> Result<i64, DbError> {
        const WHAT: &str = "journaling a callback event";
        let row = self
            .fetch_optional(sql, args, WHAT)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("{WHAT}: the database returned no id")))?;
        int(&row, "id").map_err(corrupt("events"))
    }

    /// Creates the entity's head if absent and locks it; returns the stored
    /// head (`None` when just created).
    async fn lock_head(&mut self, entity: &Entity) -> Result<Option<Head>, DbError> {
        let key = entity.key();
        let args = [
            Arg::from(key.as_str()),
            entity.kind().into(),
            entity.subject().into(),
        ];
        let row = match self.dialect {
            Dialect::MySql => {
                self.execute(
                    "INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
                     VALUES (?, ?, ?, 0, '', 0) ON DUPLICATE KEY UPDATE entity = entity",
                    &args,
                    "creating an event head",
                )
                .await?;
                self.fetch_optional(
                    "SELECT event_id, idem_key, event_at FROM event_heads WHERE entity = ? FOR UPDATE",
                    &[key.as_str().into()],
                    "locking an event head",
                )
                .await?
            }
            _ => {
                self.fetch_optional(
                    "INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
                     VALUES (?, ?, ?, 0, '', 0) ON CONFLICT (entity) DO UPDATE SET entity = excluded.entity \
                     RETURNING event_id, idem_key, event_at",
                    &args,
                    "locking an event head",
                )
                .await?
            }
        };
        let row =
            row.ok_or_else(|| DbError::Corrupt("event head missing after its upsert".into()))?;
        let e = corrupt("event_heads");
        if int(&row, "event_id").map_err(&e)? == 0 {
            return Ok(None);
        }
        Ok(Some(Head {
            idem_key: text(&row, "idem_key").map_err(&e)?,
            event_at: opt_int(&row, "event_at").map_err(&e)?,
        }))
    }

    /// Moves the entity's head to event `id`.
    async fn set_head(
        &mut self,
        entity: &Entity,
        id: i64,
        event: &NewEvent,
        event_at: Option<i64>,
    ) -> Result<(), DbError> {
        self.execute(
            "UPDATE event_heads SET event_id = ?, idem_key = ?, event_at = ?, received_at = ? \
             WHERE entity = ?",
            &[
                id.into(),
                event.idem_key.as_str().into(),
                event_at.into(),
                event.received_at.into(),
                entity.key().into(),
            ],
            "moving an event head",
        )
        .await
        .map(drop)
    }

    /// PostgreSQL: creates the entity's head and the order's row if absent
    /// and locks both, in one statement; returns the stored head (`None` when
    /// just created) and the order row.
    async fn lock_head_and_order(
        &mut self,
        entity: &Entity,
        update: &OrderUpdate,
        received_at: i64,
    ) -> Result<(Option<Head>, OrderState), DbError> {
        let sql = format!(
            "WITH h AS (INSERT INTO event_heads (entity, kind, subject, event_id, idem_key, received_at) \
             VALUES (?, ?, ?, 0, '', 0) ON CONFLICT (entity) DO UPDATE SET entity = excluded.entity \
             RETURNING event_id, idem_key, event_at), \
             o AS (INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
             VALUES (?, ?, ?, 0) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id \
             RETURNING {ORDER_COLUMNS}) \
             SELECT h.event_id, h.idem_key, h.event_at, o.* FROM h CROSS JOIN o"
        );
        let row = self
            .fetch_optional(
                &sql,
                &[
                    Arg::from(entity.key()),
                    entity.kind().into(),
                    entity.subject().into(),
                    update.order_id.as_str().into(),
                    update.source.as_str().into(),
                    received_at.into(),
                ],
                "locking an order and its event head",
            )
            .await?
            .ok_or_else(|| {
                DbError::Corrupt("event head or order missing after its upsert".into())
            })?;
        let e = corrupt("event_heads");
        let head = if int(&row, "event_id").map_err(&e)? == 0 {
            None
        } else {
            Some(Head {
                idem_key: text(&row, "idem_key").map_err(&e)?,
                event_at: opt_int(&row, "event_at").map_err(&e)?,
            })
        };
        Ok((head, order_from(&row)?))
    }

    /// PostgreSQL: inserts the accepted event, moves the entity's head to it
    /// and writes the merged order, in one statement; returns the event id.
    async fn finish_order_event(
        &mut self,
        event: &NewEvent,
        entity: &Entity,
        next: &OrderState,
    ) -> Result<i64, DbError> {
        let (mut sql, mut args) = event_and_heads(event, STATUS_ACCEPTED, None, &[entity]);
        sql.push_str(
            ", o AS (UPDATE order_states SET wms_order_id = ?, wms_status = ?, status_at = ?, track = ?, \
             goods = ?, is_canceled = ?, source = ?, updated_at = ? WHERE order_id = ?) \
             SELECT id FROM e",
        );
        args.extend([
            Arg::from(next.wms_order_id.clone()),
            next.wms_status.into(),
            next.status_at.into(),
            next.track.clone().into(),
            next.goods.clone().into(),
            i64::from(next.is_canceled).into(),
            next.source.as_str().into(),
            next.updated_at.into(),
            next.order_id.as_str().into(),
        ]);
        self.fetch_event_id(&sql, &args).await
    }

    /// Applies one order update: the row is created if absent and locked
    /// (see the module doc), merged in Rust and written back, so two
    /// concurrent callbacks for one order never overwrite each other.
    async fn apply_order(&mut self, update: &OrderUpdate, received_at: i64) -> Result<(), DbError> {
        let key = [
            Arg::from(update.order_id.as_str()),
            update.source.as_str().into(),
            received_at.into(),
        ];
        let row = match self.dialect {
            Dialect::MySql => {
                self.execute(
                    "INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
                     VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE order_id = order_id",
                    &key,
                    "creating an order state",
                )
                .await?;
                self.fetch_optional(
                    &format!("SELECT {ORDER_COLUMNS} FROM order_states WHERE order_id = ? FOR UPDATE"),
                    &[update.order_id.as_str().into()],
                    "locking an order state",
                )
                .await?
            }
            // One statement creates the row if absent and returns it locked
            // (PostgreSQL's DO UPDATE takes the row lock; SQLite has one writer).
            _ => {
                self.fetch_optional(
                    &format!(
                        "INSERT INTO order_states (order_id, source, updated_at, is_canceled) \
                         VALUES (?, ?, ?, 0) ON CONFLICT (order_id) DO UPDATE SET order_id = excluded.order_id \
                         RETURNING {ORDER_COLUMNS}"
                    ),
                    &key,
                    "locking an order state",
                )
                .await?
            }
        };
        let existing = row.map(|r| order_from(&r)).transpose()?.ok_or_else(|| {
            DbError::Corrupt(format!(
                "order state `{}` missing right after it was created",
                update.order_id
            ))
        })?;
        // A row just created holds no state yet: merging into it is merging into nothing.
        let next = merge_order(Some(&existing), update, received_at);
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
        self.execute(
            "UPDATE order_states SET wms_order_id = ?, wms_status = ?, status_at = ?, track = ?, \
             goods = ?, is_canceled = ?, source = ?, updated_at = ? WHERE order_id = ?",
            &args,
            "storing an order state",
        )
        .await?;
        Ok(())
    }

    /// Stores one SKU's stock unless a newer snapshot of it is stored, in one
    /// atomic upsert (the comparison is made on the row as locked by the engine).
    async fn apply_stock(&mut self, s: &StockSnapshot) -> Result<(), DbError> {
        let args = [
            Arg::from(s.sku.as_str()),
            s.wms_stock.into(),
            s.wms_reserved.into(),
            s.sellable.max(0).into(),
            s.source.as_str().into(),
            s.taken_at.into(),
        ];
        self.execute(
            upsert_stock_sql(self.dialect, 1),
            &args,
            "storing a stock snapshot",
        )
        .await?;
        Ok(())
    }

    /// Stores a scan: one upsert by (user, code), so a first-insert race
    /// between two deliveries cannot fail.
    async fn apply_scan(&mut self, w: &ScanWrite, now: i64) -> Result<(), DbError> {
        let sql = match self.dialect {
            Dialect::MySql => {
                "INSERT INTO scans (id, user_id, code, status, status_message, scanned_at, \
                 created_at, updated_at, pushed_status, pushed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 status = VALUES(status), status_message = VALUES(status_message), \
                 updated_at = VALUES(updated_at), pushed_status = VALUES(pushed_status), \
                 pushed_at = VALUES(pushed_at), push_error = NULL"
            }
            _ => {
                "INSERT INTO scans (id, user_id, code, status, status_message, scanned_at, \
                 created_at, updated_at, pushed_status, pushed_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, code) DO UPDATE SET \
                 status = excluded.status, status_message = excluded.status_message, \
                 updated_at = excluded.updated_at, pushed_status = excluded.pushed_status, \
                 pushed_at = excluded.pushed_at, push_error = NULL"
            }
        };
        let status = w.status.as_str();
        self.execute(
            sql,
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
        Ok(())
    }
}

/// PostgreSQL: the CTEs `e` (the event inserted with `status` and `error`,
/// answering its `id`) and `h` (the heads of `fresh` moved to it, each
/// `event_at` the later of its own and the event's), with their arguments;
/// the caller adds what follows (more CTEs, the final `SELECT`).
fn event_and_heads(
    event: &NewEvent,
    status: &str,
    error: Option<&str>,
    fresh: &[&Entity],
) -> (String, Vec<Arg>) {
    let mut sql = String::from(
        "WITH e AS (INSERT INTO events (source, method, idem_key, body, received_at, status, error) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id), \
         h AS (UPDATE event_heads SET event_id = (SELECT id FROM e), idem_key = ?, received_at = ?, \
         event_at = CASE WHEN CAST(? AS BIGINT) IS NULL THEN event_at \
         WHEN event_at IS NULL THEN CAST(? AS BIGINT) ELSE GREATEST(event_at, CAST(? AS BIGINT)) END \
         WHERE entity IN (",
    );
    let mut args = vec![
        Arg::from(event.source.as_str()),
        event.method.as_str().into(),
        event.idem_key.as_str().into(),
        event.body.as_str().into(),
        event.received_at.into(),
        status.into(),
        error.map(str::to_string).into(),
        event.idem_key.as_str().into(),
        event.received_at.into(),
        event.event_at.into(),
        event.event_at.into(),
        event.event_at.into(),
    ];
    for (i, entity) in fresh.iter().enumerate() {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
        args.push(entity.key().into());
    }
    sql.push_str("))");
    (sql, args)
}

/// The upsert of `rows` stock snapshots `(sku, wms_stock, wms_reserved,
/// sellable, source, taken_at)` that keeps a stored row with a newer `taken_at`.
///
/// MySQL assigns `ON DUPLICATE KEY UPDATE` columns left to right, each seeing
/// the ones already assigned, so `taken_at` is compared in every column and
/// assigned last.
// The cache holds `&'static str`s: the `*` copies one out of the map (clippy
// reads it as a needless deref).
#[allow(clippy::explicit_auto_deref)]
fn upsert_stock_sql(dialect: Dialect, rows: usize) -> &'static str {
    use std::sync::OnceLock;
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<(u8, usize), &'static str>>> =
        OnceLock::new();
    let key = (dialect as u8, rows);
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *guard.entry(key).or_insert_with(|| {
        let mut sql = String::from(
            "INSERT INTO stock_snapshots (sku, wms_stock, wms_reserved, sellable, source, taken_at) VALUES ",
        );
        for i in 0..rows {
            sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?)" });
        }
        match dialect {
            Dialect::MySql => sql.push_str(
                " ON DUPLICATE KEY UPDATE \
                 wms_stock = IF(taken_at <= VALUES(taken_at), VALUES(wms_stock), wms_stock), \
                 wms_reserved = IF(taken_at <= VALUES(taken_at), VALUES(wms_reserved), wms_reserved), \
                 sellable = IF(taken_at <= VALUES(taken_at), VALUES(sellable), sellable), \
                 source = IF(taken_at <= VALUES(taken_at), VALUES(source), source), \
                 taken_at = GREATEST(taken_at, VALUES(taken_at))",
            ),
            _ => sql.push_str(
                " ON CONFLICT (sku) DO UPDATE SET wms_stock = excluded.wms_stock, \
                 wms_reserved = excluded.wms_reserved, sellable = excluded.sellable, \
                 source = excluded.source, taken_at = excluded.taken_at \
                 WHERE stock_snapshots.taken_at <= excluded.taken_at",
            ),
        }
        Box::leak(sql.into_boxed_str())
    })
}

/// True when `err` is a transient conflict a fresh attempt of the whole
/// transaction resolves: a serialization failure or deadlock (PostgreSQL
/// `40001`/`40P01`, MySQL 1213/1205), a busy SQLite database, or a unique
/// violation of a first insert that raced another one.
pub fn is_retryable(err: &DbError) -> bool {
    let DbError::Query { source, .. } = err else {
        return false;
    };
    let sqlx::Error::Database(e) = source else {
        return matches!(source, sqlx::Error::PoolTimedOut);
    };
    if let Some(my) = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1213 | 1205) || e.is_unique_violation();
    }
    let code = e.code().map(|c| c.into_owned()).unwrap_or_default();
    if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(0);
        return matches!(primary, 5 | 6) || e.is_unique_violation();
    }
    matches!(code.as_str(), "40001" | "40P01") || e.is_unique_violation()
}

/// Attempts of a callback transaction before a conflict is reported.
pub const MAX_ATTEMPTS: u32 = 12;

/// Runs `attempt` until it succeeds, fails for good, or [`MAX_ATTEMPTS`]
/// conflicts ([`is_retryable`]) happened, waiting a little (growing, jittered)
/// between attempts.
pub async fn with_retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut n = 0u32;
    loop {
        match attempt().await {
            Err(e) if is_retryable(&e) && n + 1 < MAX_ATTEMPTS => {
                n += 1;
                let base = 2u64.saturating_pow(n.min(7)).min(200);
                let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (base + 1);
                tracing::debug!(what, attempt = n, error = %e, "conflict: retrying");
                tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
            }
            other => return other,
        }
    }
}

/// Journals `event` and applies `effects` in one transaction.
///
/// A redelivery (see the module doc) is rolled back and reported as
/// [`Recorded::Duplicate`]: its effects were applied the first time. A
/// conflict with a concurrent callback (deadlock, serialization failure,
/// first-insert race) rolls back and runs the whole transaction again.
pub async fn record(db: &Db, event: &NewEvent, effects: &[Effect]) -> Result<Recorded, DbError> {
    if let Some(group) = db.group_commit() {
        return super::group_commit::record(db, group, event, effects).await;
    }
    with_retry("journaling a callback", || record_once(db, event, effects)).await
}

async fn record_once(db: &Db, event: &NewEvent, effects: &[Effect]) -> Result<Recorded, DbError> {
    let mut tx = Tx::begin(db, "starting a callback transaction").await?;
    let recorded = record_in(&mut tx, event, effects).await?;
    if recorded != Recorded::Duplicate {
        tx.commit("committing a callback event").await?;
    }
    // A redelivery's transaction is dropped: rolled back.
    Ok(recorded)
}

/// Journals every `(event, effects)` of a group in one transaction. An
/// event that fails (not a conflict) rolls the group back and the group runs
/// again without it, so it alone is answered with its error (no savepoints:
/// two statements per callback saved; a failing event is rare). A conflict
/// ([`is_retryable`]) or a failed commit fails the whole group, to be run again.
pub(super) async fn record_group(
    db: &Db,
    items: &[(NewEvent, Vec<Effect>)],
) -> Result<Vec<Result<Recorded, DbError>>, DbError> {
    let mut failed: std::collections::BTreeMap<usize, DbError> = Default::default();
    'group: loop {
        let mut tx = Tx::begin(db, "starting a group of callbacks").await?;
        let mut done = Vec::with_capacity(items.len());
        for (i, (event, effects)) in items.iter().enumerate() {
            if failed.contains_key(&i) {
                continue;
            }
            // A redelivery wrote nothing but no-op head upserts: it stays in.
            match record_in(&mut tx, event, effects).await {
                Ok(recorded) => done.push((i, recorded)),
                Err(e) if is_retryable(&e) => return Err(e),
                Err(e) => {
                    tx.rollback("rolling back a group of callbacks").await?;
                    failed.insert(i, e);
                    continue 'group;
                }
            }
        }
        tx.commit("committing a group of callbacks").await?;
        let mut done = done.into_iter();
        let mut results = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            match failed.remove(&i) {
                Some(e) => results.push(Err(e)),
                None => match done.next() {
                    Some((_, recorded)) => results.push(Ok(recorded)),
                    None => {
                        return Err(DbError::Corrupt(
                            "a group of callbacks lost track of an event".into(),
                        ))
                    }
                },
            }
        }
        return Ok(results);
    }
}

/// PostgreSQL, the common callback (one order, nothing else): the same rule
/// as [`record_in`] in two statements instead of five — the head and the
/// order row are created if absent and locked together, then the event is
/// inserted, the head moved and the merged order written together.
async fn record_one_order_pg(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    update: &OrderUpdate,
) -> Result<Recorded, DbError> {
    let entity = Entity::Order(update.order_id.clone());
    let (head, existing) = tx
        .lock_head_and_order(&entity, update, event.received_at)
        .await?;
    if head.as_ref().is_some_and(|h| h.idem_key == event.idem_key) {
        return Ok(Recorded::Duplicate);
    }
    let latest = head.as_ref().and_then(|h| h.event_at);
    if let (Some(at), Some(latest)) = (event.event_at, latest) {
        if at < latest {
            let id = tx.insert_event(event, STATUS_STALE, None).await?;
            return Ok(Recorded::Stale(id));
        }
    }
    let next = merge_order(Some(&existing), update, event.received_at);
    let id = tx.finish_order_event(event, &entity, &next).await?;
    Ok(Recorded::New(id))
}

/// Journals `event` and applies `effects` inside `tx` (see the module doc);
/// a redelivery returns [`Recorded::Duplicate`] having written nothing the
/// caller should keep (it rolls back).
async fn record_in(
    tx: &mut Tx<'_>,
    event: &NewEvent,
    effects: &[Effect],
) -> Result<Recorded, DbError> {
    if let (Dialect::Postgres, [Effect::Order(update)], true, true) = (
        tx.dialect,
        effects,
        event.subjects.is_empty(),
        event.rejected.is_empty(),
    ) {
        return record_one_order_pg(tx, event, update).await;
    }
    let mut entities: Vec<Entity> = effects
        .iter()
        .map(Effect::entity)
        .chain(event.subjects.iter().cloned())
        .collect();
    if entities.is_empty() {
        entities.push(Entity::Other {
            kind: format!("{}.{}", event.source, event.method),
            id: String::new(),
        });
    }
    // Heads (and then rows) are locked in one order, so that two callbacks
    // about the same entities cannot deadlock.
    entities.sort();
    entities.dedup();
    let mut heads = Vec::with_capacity(entities.len());
    for entity in &entities {
        heads.push(tx.lock_head(entity).await?);
    }
    let redelivery = heads
        .iter()
        .all(|h| h.as_ref().is_some_and(|h| h.idem_key == event.idem_key));
    if redelivery {
        return Ok(Recorded::Duplicate);
    }
    // Per entity: is this event older than the latest one applied to it?
    let stale: Vec<bool> = heads
        .iter()
        .map(
            |h| match (event.event_at, h.as_ref().and_then(|h| h.event_at)) {
                (Some(at), Some(latest)) => at < latest,
                _ => false,
            },
        )
        .collect();
    let all_stale = stale.iter().all(|s| *s);
    let status = if all_stale {
        STATUS_STALE
    } else {
        STATUS_ACCEPTED
    };
    let note = (!event.rejected.is_empty()).then(|| {
        format!(
            "{} line(s) rejected, journaled beside this event",
            event.rejected.len()
        )
    });
    let fresh: Vec<&Entity> = entities
        .iter()
        .zip(&stale)
        .filter(|(_, s)| !**s)
        .map(|(e, _)| e)
        .collect();
    // PostgreSQL moves the heads in the event's own INSERT (a round trip per
    // callback saved); the others move them after the effects, below.
    let heads_moved = tx.dialect == Dialect::Postgres && !fresh.is_empty();
    let id = if heads_moved {
        tx.insert_event_moving_heads(event, status, note.as_deref(), &fresh)
            .await?
    } else {
        tx.insert_event(event, status, note.as_deref()).await?
    };
    for line in &event.rejected {
        let rejected = NewEvent {
            idem_key: idempotency_key(&event.source, &event.method, &line.body),
            body: line.body.clone(),
            ..event.clone()
        };
        tx.insert_event(&rejected, STATUS_REJECTED, Some(&line.reason))
            .await?;
    }
    let stale_entities: std::collections::HashSet<&Entity> = entities
        .iter()
        .zip(&stale)
        .filter(|(_, s)| **s)
        .map(|(e, _)| e)
        .collect();
    let now = now_ms();
    let mut ordered: Vec<(Entity, &Effect)> = effects.iter().map(|e| (e.entity(), e)).collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    for (entity, effect) in ordered {
        if stale_entities.contains(&entity) {
            continue;
        }
        match effect {
            Effect::Order(update) => tx.apply_order(update, event.received_at).await?,
            Effect::Stock(snapshot) => tx.apply_stock(snapshot).await?,
            Effect::Scan(scan) => tx.apply_scan(scan, now).await?,
        }
    }
    for ((entity, head), stale) in entities.iter().zip(&heads).zip(&stale) {
        if !*stale && !heads_moved {
            let latest = head.as_ref().and_then(|h| h.event_at);
            let event_at = match (event.event_at, latest) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            tx.set_head(entity, id, event, event_at).await?;
        }
    }
    Ok(if all_stale {
        Recorded::Stale(id)
    } else {
        Recorded::New(id)
    })
}

/// Journals a rejected callback (or one rejected line of it) with the reason;
/// nothing is applied. `event.body` should already be redacted and capped.
pub async fn record_rejected(db: &Db, event: &NewEvent, reason: &str) -> Result<i64, DbError> {
    with_retry("journaling a rejected callback", || async {
        let mut tx = Tx::begin(db, "starting a callback transaction").await?;
        let id = tx
            .insert_event(event, STATUS_REJECTED, Some(reason))
            .await?;
        tx.commit("committing a rejected callback").await?;
        Ok(id)
    })
    .await
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

/// Replaces the stock snapshot with `rows` in one transaction (the stock job),
/// keeping what is newer than the run.
///
/// `rows` carry the time the job began reading the WMS (`taken_at`; the
/// oldest one is the cut-off). A stored snapshot taken after the cut-off —
/// an EGON `InventoryStatusUpdate` acknowledged while the job ran — is kept,
/// whether or not the run reported that SKU; everything else is replaced or
/// removed, and the SKU heads up to the cut-off are superseded (a
/// callback repeating the last one is then applied again, see the module doc).
/// A repeated SKU keeps its last row. Empty `rows` change nothing.
pub async fn put_stock_snapshot(db: &Db, rows: &[StockSnapshot]) -> Result<(), DbError> {
    let Some(cutoff) = rows.iter().map(|r| r.taken_at).min() else {
        return Ok(());
    };
    let mut latest: std::collections::BTreeMap<&str, &StockSnapshot> = Default::default();
    for row in rows {
        latest.insert(row.sku.as_str(), row);
    }
    let rows: Vec<&StockSnapshot> = latest.into_values().collect();
    with_retry("saving the stock snapshot", || {
        put_stock_snapshot_once(db, &rows, cutoff)
    })
    .await
}

async fn put_stock_snapshot_once(
    db: &Db,
    rows: &[&StockSnapshot],
    cutoff: i64,
) -> Result<(), DbError> {
    let mut tx = Tx::begin(db, "starting a stock snapshot transaction").await?;
    // Heads first, then snapshots: the order callbacks lock them in.
    tx.execute(
        "DELETE FROM event_heads WHERE kind = 'sku' AND received_at <= ?",
        &[cutoff.into()],
        "superseding the SKU event heads",
    )
    .await?;
    tx.execute(
        "DELETE FROM stock_snapshots WHERE taken_at <= ?",
        &[cutoff.into()],
        "clearing the stock snapshot",
    )
    .await?;
    // Multi-row upserts: one statement per 500 rows instead of one per row
    // (a million SKUs is minutes row by row, seconds this way); 3,000 bound
    // parameters stay far below every engine's limit.
    const ROWS_PER_INSERT: usize = 500;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for s in chunk {
            args.extend([
                Arg::from(s.sku.as_str()),
                s.wms_stock.into(),
                s.wms_reserved.into(),
                s.sellable.max(0).into(),
                s.source.as_str().into(),
                s.taken_at.into(),
            ]);
        }
        tx.execute(
            upsert_stock_sql(tx.dialect, chunk.len()),
            &args,
            "storing a stock snapshot",
        )
        .await?;
    }
    tx.commit("committing the stock snapshot").await
}

/// Journaled notifications of `source` (accepted or stale; rejected ones are
/// listed by [`list`]) with an id above `since_id`, oldest first.
pub async fn events(db: &Db, source: &str, since_id: i64) -> Result<Vec<EventRecord>, DbError> {
    db.fetch_all(
        "SELECT id, source, method, idem_key, body, received_at, status, error FROM events \
         WHERE source = ? AND id > ? AND status <> ? ORDER BY id",
        &[source.into(), since_id.into(), STATUS_REJECTED.into()],
        "reading callback events",
    )
    .await?
    .iter()
    .map(event_from)
    .collect()
}

/// Which events [`list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only rejected callbacks and lines.
    pub rejected_only: bool,
    /// Only this source.
    pub source: Option<String>,
    /// Only events received at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// At most this many (newest first).
    pub limit: i64,
}

/// Journaled events matching `filter`, newest first.
pub async fn list(db: &Db, filter: &EventFilter) -> Result<Vec<EventRecord>, DbError> {
    let mut sql = String::from(
        "SELECT id, source, method, idem_key, body, received_at, status, error FROM events WHERE 1 = 1",
    );
    let mut args: Vec<Arg> = Vec::new();
    if filter.rejected_only {
        sql.push_str(" AND status = ?");
        args.push(STATUS_REJECTED.into());
    }
    if let Some(source) = &filter.source {
        sql.push_str(" AND source = ?");
        args.push(source.as_str().into());
    }
    if let Some(since) = filter.since_ms {
        sql.push_str(" AND received_at >= ?");
        args.push(since.into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(filter.limit.max(0).into());
    db.fetch_all(&sql, &args, "listing callback events")
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
        // An unknown stored status never blocks a real one.
        assert!(status_may_move(
            s,
            Some((99, 5)),
            &change(9, Some(8), None),
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
