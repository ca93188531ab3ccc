//! What the events journal stores and returns: records, order and stock
//! states, scans, effects, and the rules that merge an event into a state.

use super::*;

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

impl OrderState {
    /// The bound values of [`UPDATE_ORDER_STATE`] for this state.
    pub(super) fn update_args(&self) -> [Arg; 9] {
        [
            Arg::from(self.wms_order_id.clone()),
            self.wms_status.into(),
            self.status_at.into(),
            self.track.clone().into(),
            self.goods.clone().into(),
            i64::from(self.is_canceled).into(),
            self.source.as_str().into(),
            self.updated_at.into(),
            self.order_id.as_str().into(),
        ]
    }
}

/// Replaces an order's state with [`OrderState::update_args`].
pub(super) const UPDATE_ORDER_STATE: &str =
    "UPDATE order_states SET wms_order_id = ?, wms_status = ?, status_at = ?, track = ?, \
     goods = ?, is_canceled = ?, source = ?, updated_at = ? WHERE order_id = ?";

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

impl StockSnapshot {
    /// The bound values of one row of the stock upsert (`upsert_stock_sql`).
    pub(super) fn upsert_args(&self) -> [Arg; 6] {
        [
            Arg::from(self.sku.as_str()),
            self.wms_stock.into(),
            self.wms_reserved.into(),
            self.sellable.max(0).into(),
            self.source.as_str().into(),
            self.taken_at.into(),
        ]
    }
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

impl NewEvent {
    /// The bound values of [`INSERT_EVENT`] for this event, stored with
    /// `status` and `error`.
    pub(super) fn insert_args(&self, status: &str, error: Option<&str>) -> [Arg; 7] {
        [
            Arg::from(self.source.as_str()),
            self.method.as_str().into(),
            self.idem_key.as_str().into(),
            self.body.as_str().into(),
            self.received_at.into(),
            status.into(),
            error.map(str::to_string).into(),
        ]
    }
}

/// Journals an event with [`NewEvent::insert_args`].
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (source, method, idem_key, body, received_at, status, error) \
     VALUES (?, ?, ?, ?, ?, ?, ?)";

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

pub(super) fn hex(bytes: &[u8]) -> String {
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
pub(super) struct Head {
    pub(super) idem_key: String,
    pub(super) event_at: Option<i64>,
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

pub(super) fn corrupt(what: &'static str) -> impl Fn(sqlx::Error) -> DbError {
    move |e| DbError::Corrupt(format!("{what} row: {e}"))
}

pub(super) fn event_from(r: &AnyRow) -> Result<EventRecord, DbError> {
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

pub(super) const ORDER_COLUMNS: &str =
    "order_id, wms_order_id, wms_status, status_at, track, goods, \
                             is_canceled, source, updated_at";

pub(super) fn order_from(r: &AnyRow) -> Result<OrderState, DbError> {
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

pub(super) const STOCK_COLUMNS: &str = "sku, wms_stock, wms_reserved, sellable, source, taken_at";

pub(super) fn stock_from(r: &AnyRow) -> Result<StockSnapshot, DbError> {
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

pub(super) const SCAN_COLUMNS: &str =
    "id, user_id, code, status, status_message, scanned_at, created_at, \
                            updated_at, pushed_status, pushed_at, push_error";

pub(super) fn scan_status(s: &str) -> Result<ScanStatus, DbError> {
    ScanStatus::parse(s).ok_or_else(|| DbError::Corrupt(format!("scans row: unknown status `{s}`")))
}

pub(super) fn scan_from(r: &AnyRow) -> Result<Scan, DbError> {
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
