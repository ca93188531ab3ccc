//! A stateful IMSKLAD server (seed 002) for tests and the demo, plus the
//! callbacks IMSKLAD sends to the shop's endpoint.
//!
//! Behaviour where the doc is silent (each answers `{"error": text, "code": N}`
//! with HTTP 200, like every documented error):
//! - wrong key → code 3 `Incorrect key`; unparsable JSON, unknown type/action,
//!   missing or mistyped required fields → code 3;
//! - a `storage_id` other than the configured one → code 2 `Storage not found`;
//! - `add_*` with a partner id that already exists → code 4 (`... already exists`),
//!   `update_*` of an unknown partner id → code 2;
//! - goods lines of orders, preorders and documents must name a known product
//!   (partner id, or failing that WMS id; see [`ImskladStrictness::line_ids`]) → else code 2;
//!
//! Where seed 002 allows two readings, [`ImskladState::strict`] picks one
//! ([`ImskladStrictness`]: billing lines with or without `type`, the code of
//! `update_good` for an unknown id, the id space and JSON type of goods lines,
//! the id `get_good` callbacks carry).
//! - `get_stock` silently leaves out unknown WMS ids;
//! - `update_order` with `is_canceled = 1` moves an order that has not left the
//!   warehouse (status < 9) to status 10;
//! - `update_order` that changes the goods of an order in assembly (status ≥ 2)
//!   keeps the old goods, applies the rest and answers the documented warning.
//!
//! Orders only move `stock`/`reserved` when [`ImskladState::track_reservations`]
//! is on; the other knobs on [`ImskladState`] (`empty_stock`, `hidden_stock`, `stockless_rows`,
//! `stock_as_strings`, `trailing_commas`, `amounts_as_strings`, `answer_delay`,
//! [`ImskladState::fail_next`]) reproduce the service's quirks and failures.
//! HTTP-level faults (500, timeouts, truncated bodies) come from
//! [`SandboxControl`].

use crate::connectors::imsklad::{
    money, Billing, BillingLine, Doc, Good, Order, OrderGood, Preorder, WARNING_GOODS_NOT_SAVED,
};
use crate::sandbox::common::{instrument, spawn, RunningServer, SandboxControl};
use crate::secret::Secret;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Highest documented order status (11 = delivered to the customer).
pub const MAX_ORDER_STATUS: i64 = 11;
/// Order status "picking": from here on `update_order` no longer changes goods.
pub const STATUS_ASSEMBLY: i64 = 2;
/// Order status "shipped to the carrier".
pub const STATUS_SHIPPED: i64 = 9;
/// Order status "cancelled".
pub const STATUS_CANCELLED: i64 = 10;

/// Error code 1: fatal server error.
pub const CODE_FATAL: i64 = 1;
/// Error code 2: object not found.
pub const CODE_NOT_FOUND: i64 = 2;
/// Error code 3: bad request data.
pub const CODE_BAD_DATA: i64 = 3;
/// Error code 4: operation not performed.
pub const CODE_NOT_PERFORMED: i64 = 4;

/// A product the sandbox knows.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxGood {
    /// WMS goods id.
    pub wms_id: i64,
    /// The product as last written.
    pub good: Good,
}

/// An order the sandbox holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOrder {
    /// WMS order id (`system_id` in callbacks).
    pub wms_id: i64,
    /// Status 0–11.
    pub status: i64,
    /// The order as last accepted (goods kept when the warning applies).
    pub order: Order,
}

/// A preorder or document the sandbox holds.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxDocument<T> {
    /// WMS id.
    pub wms_id: i64,
    /// The document as last written.
    pub doc: T,
}

/// A status change made by [`ImskladState::set_order_status`]: what the
/// `set_status` callback reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// Partner order id.
    pub id: String,
    /// Status before.
    pub old_status: i64,
    /// Status now.
    pub new_status: i64,
    /// WMS order id.
    pub system_id: i64,
    /// Partner GUID, if the order carried one.
    pub guid: Option<String>,
}

impl StatusChange {
    /// The `data` of an `order/set_status` callback.
    pub fn to_callback_data(&self) -> Value {
        set_status_data(
            &self.id,
            self.old_status,
            self.new_status,
            self.system_id,
            self.guid.as_deref(),
        )
    }
}

/// A balance operation to book with [`ImskladState::add_billing_line`]
/// (the sandbox assigns its id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewBillingLine {
    /// WMS order id.
    pub order_id: Option<i64>,
    /// Partner (shop) order id.
    pub foreign_order_id: Option<String>,
    /// WMS request (document) id.
    pub doc_request_id: Option<i64>,
    /// 0 assembly, 1 top-up, 2 delivery, 9 other.
    pub kind: i64,
    /// Operation time (unix).
    pub date: i64,
    /// Amount in kopecks; negative is a charge.
    pub amount_kop: i64,
    /// Comment.
    pub comment: String,
}

/// Why a seeding or inspection call on [`ImskladState`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No order with this partner id.
    #[error("no order with partner id {0:?}")]
    UnknownOrder(String),
    /// No product with this WMS id.
    #[error("no product with WMS id {0}")]
    UnknownGood(i64),
    /// Status outside 0–11.
    #[error("order status {0} is outside 0–11")]
    BadStatus(i64),
    /// A seeded order names a product the sandbox does not know.
    #[error("order goods line names unknown product {0:?}")]
    UnknownLine(String),
    /// A partner id is already taken.
    #[error("partner id {0:?} already exists")]
    Duplicate(String),
}

/// An error answer to inject: the next `times` calls of `action` answer `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedError {
    /// Action name (`get_stock`, `add_order` …).
    pub action: String,
    /// Error code to answer.
    pub code: i64,
    /// Error text.
    pub message: String,
    /// Remaining hits.
    pub times: usize,
}

/// Which id space an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSpace {
    /// The partner's (shop's) id.
    Partner,
    /// The WMS's own id (what `add_good` answered).
    Wms,
    /// Either: the partner id first, the WMS id as a fallback.
    Either,
}

/// Readings of IMSKLAD behaviour seed 002 leaves open, one switch each. The
/// defaults are the readings sverka tries first (so the bench keeps its
/// figures); [`ImskladStrictness::strict`] is the other reading of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImskladStrictness {
    /// `get_billing` lines carry `type` (default on). Off: no line has one,
    /// like seed 002's own example.
    pub billing_type: bool,
    /// The error code `update_good` of an unknown partner id answers
    /// (UNVERIFIED: 2 "not found" by default; 4 "not performed" is the other reading).
    pub update_good_unknown_code: i64,
    /// Which ids order, preorder and document lines may name (default
    /// [`IdSpace::Either`]; seed 002 says the partner id).
    pub line_ids: IdSpace,
    /// Lines must name their goods by a JSON integer (seed 002 types
    /// `goods.id` Int); a string id is refused with code 3. Default off.
    pub integer_line_ids: bool,
    /// The id `get_good` callbacks carry (default [`IdSpace::Wms`], as seed
    /// 002's example id is the one `add_good` answered).
    pub get_good_id: IdSpace,
}

impl Default for ImskladStrictness {
    fn default() -> Self {
        ImskladStrictness {
            billing_type: true,
            update_good_unknown_code: CODE_NOT_FOUND,
            line_ids: IdSpace::Either,
            integer_line_ids: false,
            get_good_id: IdSpace::Wms,
        }
    }
}

impl ImskladStrictness {
    /// The other reading of every switch.
    pub fn strict() -> Self {
        ImskladStrictness {
            billing_type: false,
            update_good_unknown_code: CODE_NOT_PERFORMED,
            line_ids: IdSpace::Partner,
            integer_line_ids: true,
            get_good_id: IdSpace::Wms,
        }
    }
}

/// Everything the IMSKLAD sandbox knows, plus knobs for tests.
#[derive(Debug)]
pub struct ImskladState {
    key: Secret,
    storage_id: i64,
    next_id: i64,
    next_billing_id: i64,
    goods: BTreeMap<String, SandboxGood>,
    stock: BTreeMap<i64, (i64, i64)>,
    orders: BTreeMap<String, SandboxOrder>,
    preorders: BTreeMap<String, SandboxDocument<Preorder>>,
    docs: BTreeMap<String, SandboxDocument<Doc>>,
    billing: Vec<BillingLine>,
    unlisted_billing: Vec<BillingLine>,
    balance_kop: i64,
    scripted: VecDeque<ScriptedError>,
    in_flight: usize,
    max_in_flight: usize,
    /// `get_stock` answers `[]` whatever is asked.
    pub empty_stock: bool,
    /// WMS ids `get_stock` leaves out of its answer.
    pub hidden_stock: BTreeSet<i64>,
    /// WMS ids whose `get_stock` row carries no `stock` (id and reserved only).
    pub stockless_rows: BTreeSet<i64>,
    /// How a duplicate `add_*` (a partner id that exists) is answered: code 4
    /// alone (false, the default), or code 4 with the existing object's `id`.
    /// IMSKLAD does not document which; the switch lets tests cover both.
    pub duplicate_add_carries_id: bool,
    /// `get_stock` sends `stock`/`reserved`/`id` as strings.
    pub stock_as_strings: bool,
    /// `get_stock` and `get_billing` answers carry trailing commas, like the doc's examples.
    pub trailing_commas: bool,
    /// `get_billing` sends amounts and balances as strings with two decimals.
    pub amounts_as_strings: bool,
    /// `get_billing` also answers operations up to this many seconds outside
    /// the asked period (counted in its `change_of_balance` too), as a WMS
    /// filtering by booking time rather than operation time would: adjacent
    /// periods then share lines. 0 by default.
    pub billing_slack_secs: i64,
    /// Time each API call is held inside the handler (to observe concurrency).
    pub answer_delay: Duration,
    /// Orders move stock like a warehouse does: accepted orders reserve their
    /// goods, goods changes before assembly move the reservation, cancelling
    /// releases it, shipping (status 9) takes the goods out of stock. Off by
    /// default, so seeded stock stays exactly as set.
    pub track_reservations: bool,
    /// Which reading of the undocumented behaviour the sandbox follows.
    pub strict: ImskladStrictness,
}

impl ImskladState {
    /// An empty warehouse accepting `key` for `storage_id`.
    pub fn new(key: &str, storage_id: i64) -> Self {
        ImskladState {
            key: Secret::new(key),
            storage_id,
            next_id: 100_000,
            next_billing_id: 30_000,
            goods: BTreeMap::new(),
            stock: BTreeMap::new(),
            orders: BTreeMap::new(),
            preorders: BTreeMap::new(),
            docs: BTreeMap::new(),
            billing: Vec::new(),
            unlisted_billing: Vec::new(),
            balance_kop: 0,
            scripted: VecDeque::new(),
            in_flight: 0,
            max_in_flight: 0,
            empty_stock: false,
            hidden_stock: BTreeSet::new(),
            stockless_rows: BTreeSet::new(),
            duplicate_add_carries_id: false,
            stock_as_strings: false,
            trailing_commas: false,
            amounts_as_strings: false,
            billing_slack_secs: 0,
            answer_delay: Duration::ZERO,
            track_reservations: false,
            strict: ImskladStrictness::default(),
        }
    }

    /// The configured storage id.
    pub fn storage_id(&self) -> i64 {
        self.storage_id
    }

    fn allocate_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Seeds a product (price = cost) with zero stock; returns its WMS id.
    /// An existing partner id keeps its WMS id and gets the new name and price.
    pub fn add_good(&mut self, partner_id: &str, name: &str, price_kop: i64) -> i64 {
        self.put_good(Good::new(partner_id, name, price_kop))
    }

    /// Stores a full product, keeping the WMS id of an existing partner id.
    pub fn put_good(&mut self, good: Good) -> i64 {
        let wms_id = match self.goods.get(&good.id) {
            Some(g) => g.wms_id,
            None => self.allocate_id(),
        };
        self.stock.entry(wms_id).or_insert((0, 0));
        self.goods
            .insert(good.id.clone(), SandboxGood { wms_id, good });
        wms_id
    }

    /// Sets the stock of a product.
    pub fn set_stock(
        &mut self,
        wms_id: i64,
        stock: i64,
        reserved: i64,
    ) -> Result<(), SandboxError> {
        // Every known good has a stock entry (put_good creates it, nothing
        // removes one), so this is the look-up of a known WMS id — O(log n),
        // where scanning the goods made seeding a large world quadratic.
        if !self.stock.contains_key(&wms_id) {
            return Err(SandboxError::UnknownGood(wms_id));
        }
        self.stock.insert(wms_id, (stock, reserved));
        Ok(())
    }

    /// A product by partner id.
    pub fn good_by_partner(&self, partner_id: &str) -> Option<&SandboxGood> {
        self.goods.get(partner_id)
    }

    /// A product by WMS id.
    pub fn good_by_wms(&self, wms_id: i64) -> Option<&SandboxGood> {
        self.goods.values().find(|g| g.wms_id == wms_id)
    }

    /// All products, by partner id.
    pub fn goods(&self) -> impl Iterator<Item = &SandboxGood> {
        self.goods.values()
    }

    /// `(stock, reserved)` of a product.
    pub fn stock_of(&self, wms_id: i64) -> Option<(i64, i64)> {
        self.stock.get(&wms_id).copied()
    }

    /// Seeds an order with a status (its goods must be known); returns its WMS id.
    pub fn seed_order(&mut self, order: Order, status: i64) -> Result<i64, SandboxError> {
        if !(0..=MAX_ORDER_STATUS).contains(&status) {
            return Err(SandboxError::BadStatus(status));
        }
        if self.orders.contains_key(&order.id) {
            return Err(SandboxError::Duplicate(order.id));
        }
        if let Some(missing) = self.unknown_line(&order.goods) {
            return Err(SandboxError::UnknownLine(missing));
        }
        let wms_id = self.allocate_id();
        if Self::holds_reservation(status) {
            self.reserve(&order.goods, 1);
        }
        self.orders.insert(
            order.id.clone(),
            SandboxOrder {
                wms_id,
                status,
                order,
            },
        );
        Ok(wms_id)
    }

    /// An order by partner id.
    pub fn order(&self, partner_id: &str) -> Option<&SandboxOrder> {
        self.orders.get(partner_id)
    }

    /// All orders, by partner id.
    pub fn orders(&self) -> impl Iterator<Item = &SandboxOrder> {
        self.orders.values()
    }

    /// Moves an order to `status`; returns what the `set_status` callback reports.
    pub fn set_order_status(
        &mut self,
        partner_id: &str,
        status: i64,
    ) -> Result<StatusChange, SandboxError> {
        if !(0..=MAX_ORDER_STATUS).contains(&status) {
            return Err(SandboxError::BadStatus(status));
        }
        let o = self
            .orders
            .get_mut(partner_id)
            .ok_or_else(|| SandboxError::UnknownOrder(partner_id.to_string()))?;
        let old_status = o.status;
        o.status = status;
        if status == STATUS_CANCELLED {
            o.order.is_canceled = Some(1);
        }
        let change = StatusChange {
            id: o.order.id.clone(),
            old_status,
            new_status: status,
            system_id: o.wms_id,
            guid: o.order.guid.clone(),
        };
        let goods = o.order.goods.clone();
        self.move_stock_on_status(&goods, old_status, status);
        Ok(change)
    }

    /// Sets an order's carrier track; returns the `update_tracks` entry for it.
    pub fn set_tracks(
        &mut self,
        partner_id: &str,
        track: &str,
    ) -> Result<TrackUpdate, SandboxError> {
        let o = self
            .orders
            .get_mut(partner_id)
            .ok_or_else(|| SandboxError::UnknownOrder(partner_id.to_string()))?;
        o.order.track = Some(track.to_string());
        Ok(TrackUpdate::Track {
            id: o.order.id.clone(),
            guid: o.order.guid.clone(),
            track: track.to_string(),
        })
    }

    /// A preorder by partner id.
    pub fn preorder(&self, partner_id: &str) -> Option<&SandboxDocument<Preorder>> {
        self.preorders.get(partner_id)
    }

    /// A document by partner id.
    pub fn doc(&self, partner_id: &str) -> Option<&SandboxDocument<Doc>> {
        self.docs.get(partner_id)
    }

    /// Books a balance operation (its amount moves the balance); returns its id.
    pub fn add_billing_line(&mut self, line: NewBillingLine) -> i64 {
        self.next_billing_id += 1;
        let id = self.next_billing_id;
        self.balance_kop += line.amount_kop;
        self.billing.push(BillingLine {
            id,
            order_id: line.order_id,
            foreign_order_id: line.foreign_order_id,
            doc_request_id: line.doc_request_id,
            kind: line.kind,
            date: line.date,
            amount_kop: line.amount_kop,
            comment: line.comment,
        });
        id
    }

    /// Books a balance operation that `get_billing` never lists, although it
    /// moves the balance and the `change_of_balance` of its period (a WMS
    /// statement missing a line); returns its id.
    pub fn add_unlisted_billing_line(&mut self, line: NewBillingLine) -> i64 {
        self.next_billing_id += 1;
        let id = self.next_billing_id;
        self.balance_kop += line.amount_kop;
        self.unlisted_billing.push(BillingLine {
            id,
            order_id: line.order_id,
            foreign_order_id: line.foreign_order_id,
            doc_request_id: line.doc_request_id,
            kind: line.kind,
            date: line.date,
            amount_kop: line.amount_kop,
            comment: line.comment,
        });
        id
    }

    /// All booked operations, oldest first (unlisted ones not included).
    pub fn billing_lines(&self) -> &[BillingLine] {
        &self.billing
    }

    /// Overrides the current balance.
    pub fn set_balance(&mut self, kop: i64) {
        self.balance_kop = kop;
    }

    /// The current balance, kopecks.
    pub fn balance(&self) -> i64 {
        self.balance_kop
    }

    /// What `get_billing` answers for `[from, to]` (both inclusive, widened
    /// by [`Self::billing_slack_secs`]): the operations dated in it, their
    /// change of balance (unlisted operations included) and the balance now.
    pub fn billing_between(&self, from: i64, to: i64) -> Billing {
        let slack = self.billing_slack_secs.max(0);
        let (from, to) = (from.saturating_sub(slack), to.saturating_add(slack));
        let within = |l: &&BillingLine| l.date >= from && l.date <= to;
        let lines: Vec<BillingLine> = self.billing.iter().filter(within).cloned().collect();
        let unlisted: i64 = self
            .unlisted_billing
            .iter()
            .filter(within)
            .map(|l| l.amount_kop)
            .sum();
        Billing {
            current_balance_kop: self.balance_kop,
            change_of_balance_kop: lines.iter().map(|l| l.amount_kop).sum::<i64>() + unlisted,
            lines,
        }
    }

    /// The next `times` calls of `action` answer `{"error": message, "code": code}`.
    pub fn fail_next(&mut self, action: &str, code: i64, message: &str, times: usize) {
        self.scripted.push_back(ScriptedError {
            action: action.to_string(),
            code,
            message: message.to_string(),
            times,
        });
    }

    /// The most API calls that were inside the handler at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    fn take_scripted(&mut self, action: &str) -> Option<ApiFail> {
        let pos = self
            .scripted
            .iter()
            .position(|s| s.action == action && s.times > 0)?;
        let s = self.scripted.get_mut(pos)?;
        s.times -= 1;
        let fail = ApiFail::new(s.code, s.message.clone());
        if s.times == 0 {
            self.scripted.remove(pos);
        }
        Some(fail)
    }

    /// Whether an order in `status` holds a reservation.
    fn holds_reservation(status: i64) -> bool {
        status < STATUS_SHIPPED
    }

    /// Adds `sign × quantity` of each line to the reservation (never below 0).
    fn reserve(&mut self, lines: &[OrderGood], sign: i64) {
        if !self.track_reservations {
            return;
        }
        for l in lines {
            let Some(wms_id) = self.resolve_line(&l.id) else {
                continue;
            };
            let entry = self.stock.entry(wms_id).or_insert((0, 0));
            entry.1 = (entry.1 + sign * l.quantity).max(0);
        }
    }

    /// Stock movements of a status change (see [`ImskladState::track_reservations`]).
    fn move_stock_on_status(&mut self, lines: &[OrderGood], old: i64, new: i64) {
        if !self.track_reservations {
            return;
        }
        match (Self::holds_reservation(old), Self::holds_reservation(new)) {
            (true, false) => {
                self.reserve(lines, -1);
                if new != STATUS_CANCELLED {
                    self.take_from_stock(lines);
                }
            }
            // A cancelled order brought back reserves its goods again.
            (false, true) => self.reserve(lines, 1),
            _ => {}
        }
    }

    fn take_from_stock(&mut self, lines: &[OrderGood]) {
        for l in lines {
            if let Some(wms_id) = self.resolve_line(&l.id) {
                let entry = self.stock.entry(wms_id).or_insert((0, 0));
                entry.0 = (entry.0 - l.quantity).max(0);
            }
        }
    }

    /// The WMS id a goods line names, in the id space
    /// [`ImskladStrictness::line_ids`] allows (partner first with `Either`).
    fn resolve_line(&self, id: &str) -> Option<i64> {
        let space = self.strict.line_ids;
        if space != IdSpace::Wms {
            if let Some(g) = self.goods.get(id) {
                return Some(g.wms_id);
            }
        }
        if space == IdSpace::Partner {
            return None;
        }
        let wms: i64 = id.parse().ok()?;
        (self.stock.contains_key(&wms) || self.goods.values().any(|g| g.wms_id == wms))
            .then_some(wms)
    }

    /// The `data` of a `good/get_good` callback about the product with partner
    /// id `sku`, in the id space [`ImskladStrictness::get_good_id`] says.
    pub fn get_good_callback_data(&self, sku: &str) -> Option<Value> {
        let good = self.goods.get(sku)?;
        Some(match self.strict.get_good_id {
            IdSpace::Partner => json!({ "id": good.good.id }),
            _ => get_good_data(good.wms_id),
        })
    }

    fn unknown_line(&self, lines: &[OrderGood]) -> Option<String> {
        lines
            .iter()
            .find(|l| self.resolve_line(&l.id).is_none())
            .map(|l| l.id.clone())
    }
}

/// An error answer `{"error": message, "code": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiFail {
    code: i64,
    message: String,
    id: Option<i64>,
}

impl ApiFail {
    fn new(code: i64, message: impl Into<String>) -> Self {
        ApiFail {
            code,
            message: message.into(),
            id: None,
        }
    }

    /// The answer to an `add_*` of a partner id that exists: code 4, with
    /// the existing object's id when [`ImskladState::duplicate_add_carries_id`].
    fn duplicate(state: &ImskladState, message: &str, existing: i64) -> Self {
        ApiFail {
            code: CODE_NOT_PERFORMED,
            message: message.into(),
            id: state.duplicate_add_carries_id.then_some(existing),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(CODE_BAD_DATA, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(CODE_NOT_FOUND, message)
    }

    fn body(&self) -> String {
        match self.id {
            Some(id) => json!({ "error": self.message, "code": self.code, "id": id }),
            None => json!({ "error": self.message, "code": self.code }),
        }
        .to_string()
    }
}

/// The IMSKLAD sandbox: state, knobs and request log.
#[derive(Clone, Debug)]
pub struct ImskladSandbox {
    /// Warehouse state and test knobs.
    pub state: Arc<Mutex<ImskladState>>,
    /// Request log, latency and HTTP-level faults.
    pub control: SandboxControl,
}

impl ImskladSandbox {
    /// A sandbox accepting `key` for `storage_id`; `seed` drives random faults.
    pub fn new(key: &str, storage_id: i64, seed: u64) -> Self {
        ImskladSandbox {
            state: Arc::new(Mutex::new(ImskladState::new(key, storage_id))),
            control: SandboxControl::new("imsklad", seed),
        }
    }

    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, ImskladState> {
        lock(&self.state)
    }

    /// `POST /`, instrumented with the request log and fault injection.
    pub fn router(&self) -> Router {
        let app = Router::new()
            .route("/", post(handle))
            .with_state(self.state.clone());
        instrument(app, self.control.clone())
    }

    /// Serves the sandbox on `addr` (port 0 for an ephemeral port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

fn lock(m: &Mutex<ImskladState>) -> MutexGuard<'_, ImskladState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_response(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

async fn handle(State(state): State<Arc<Mutex<ImskladState>>>, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&state);
    let delay = lock(&state).answer_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = process(&mut lock(&state), &body);
    match answer {
        Ok(text) => json_response(text),
        Err(fail) => json_response(fail.body()),
    }
}

/// Counts a call as inside the handler until dropped (also when the client
/// goes away and the handler is cancelled mid-delay).
struct InFlight<'a>(&'a Mutex<ImskladState>);

impl<'a> InFlight<'a> {
    fn enter(state: &'a Mutex<ImskladState>) -> Self {
        let mut s = lock(state);
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.0);
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// Parses the envelope, authenticates and dispatches; answers the body text.
fn process(state: &mut ImskladState, body: &[u8]) -> Result<String, ApiFail> {
    let envelope: Value =
        crate::lenient::from_slice(body).map_err(|_| ApiFail::bad("Incorrect JSON"))?;
    let obj = envelope
        .as_object()
        .ok_or_else(|| ApiFail::bad("Incorrect request"))?;
    let key = obj.get("key").and_then(Value::as_str).unwrap_or("");
    if !state.key.matches(key) {
        return Err(ApiFail::bad("Incorrect key"));
    }
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let action = obj.get("action").and_then(Value::as_str).unwrap_or("");
    let data = match obj.get("data") {
        Some(Value::Null) | None => return Err(ApiFail::bad("Incorrect data: no data")),
        Some(d) => d,
    };
    if let Some(fail) = state.take_scripted(action) {
        return Err(fail);
    }
    dispatch(state, kind, action, data)
}

fn dispatch(
    state: &mut ImskladState,
    kind: &str,
    action: &str,
    data: &Value,
) -> Result<String, ApiFail> {
    match (kind, action) {
        ("goods", "add_good") => add_good(state, data),
        ("goods", "update_good") => update_good(state, data),
        ("goods", "get_stock") => get_stock(state, data),
        ("order", "add_order") => add_order(state, data),
        ("order", "update_order") => update_order(state, data),
        ("preorder", "add_preorder") => add_preorder(state, data),
        ("preorder", "update_preorder") => update_preorder(state, data),
        ("doc", "add_doc") => add_doc(state, data),
        ("doc", "update_doc") => update_doc(state, data),
        ("billing", "get_billing") => get_billing(state, data),
        _ => Err(ApiFail::bad(format!(
            "Unknown type or action: {kind}/{action}"
        ))),
    }
}

fn ok_id(id: i64) -> String {
    json!({ "result": "ok", "id": id }).to_string()
}

fn parse<T: DeserializeOwned>(data: &Value) -> Result<T, ApiFail> {
    serde_json::from_value(data.clone()).map_err(|e| ApiFail::bad(format!("Incorrect data: {e}")))
}

fn require_nonempty(id: &str) -> Result<(), ApiFail> {
    if id.trim().is_empty() {
        return Err(ApiFail::bad("Incorrect data: empty id"));
    }
    Ok(())
}

/// Checks the required `storage_id` against the configured one.
fn check_storage(state: &ImskladState, data: &Value) -> Result<(), ApiFail> {
    let given = data
        .get("storage_id")
        .ok_or_else(|| ApiFail::bad("Incorrect data: missing field `storage_id`"))?;
    match crate::lenient::value_to_i64(given) {
        Some(id) if id == state.storage_id => Ok(()),
        Some(_) => Err(ApiFail::not_found("Storage not found")),
        None => Err(ApiFail::bad("Incorrect data: storage_id")),
    }
}

/// [`ImskladStrictness::integer_line_ids`]: every `goods[].id` a JSON integer.
fn check_integer_lines(state: &ImskladState, data: &Value) -> Result<(), ApiFail> {
    if !state.strict.integer_line_ids {
        return Ok(());
    }
    let lines = data.get("goods").map_or_else(Vec::new, |g| match g {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => Vec::new(),
    });
    match lines
        .iter()
        .find(|l| !l.get("id").is_some_and(|v| v.is_i64() || v.is_u64()))
    {
        Some(l) => Err(ApiFail::bad(format!(
            "Incorrect data: goods.id must be Int, got {}",
            l.get("id").cloned().unwrap_or(Value::Null)
        ))),
        None => Ok(()),
    }
}

fn check_lines(state: &ImskladState, lines: &[OrderGood]) -> Result<(), ApiFail> {
    if let Some(l) = lines.iter().find(|l| l.quantity <= 0) {
        return Err(ApiFail::bad(format!(
            "Incorrect data: quantity {} of good {}",
            l.quantity, l.id
        )));
    }
    match state.unknown_line(lines) {
        Some(missing) => Err(ApiFail::not_found(format!("Good not found: {missing}"))),
        None => Ok(()),
    }
}

fn add_good(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    let good: Good = parse(data)?;
    require_nonempty(&good.id)?;
    if let Some(existing) = state.goods.get(&good.id) {
        return Err(ApiFail::duplicate(
            state,
            "Good already exists",
            existing.wms_id,
        ));
    }
    Ok(ok_id(state.put_good(good)))
}

fn update_good(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    let good: Good = parse(data)?;
    if !state.goods.contains_key(&good.id) {
        let code = state.strict.update_good_unknown_code;
        return Err(ApiFail::new(
            code,
            if code == CODE_NOT_FOUND {
                "Good not found"
            } else {
                "Operation not performed"
            },
        ));
    }
    Ok(ok_id(state.put_good(good)))
}

fn get_stock(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    let ids = data
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiFail::bad("Incorrect data: ids must be an array"))?;
    let mut rows = Vec::new();
    for v in ids {
        let id = crate::lenient::value_to_i64(v)
            .ok_or_else(|| ApiFail::bad(format!("Incorrect data: id {v}")))?;
        if state.empty_stock || state.hidden_stock.contains(&id) {
            continue;
        }
        if let Some((stock, reserved)) = state.stock_of(id) {
            let mut row = stock_row(id, stock, reserved, state.stock_as_strings);
            if state.stockless_rows.contains(&id) {
                if let Some(obj) = row.as_object_mut() {
                    obj.remove("stock");
                }
            }
            rows.push(row);
        }
    }
    Ok(render_array(&rows, state.trailing_commas))
}

fn stock_row(id: i64, stock: i64, reserved: i64, as_strings: bool) -> Value {
    if as_strings {
        json!({ "id": id.to_string(), "stock": stock.to_string(), "reserved": reserved.to_string() })
    } else {
        json!({ "id": id, "stock": stock, "reserved": reserved })
    }
}

/// A JSON array, pretty-printed and, if asked, with the doc's trailing commas.
fn render_array(items: &[Value], trailing_commas: bool) -> String {
    if !trailing_commas {
        return Value::Array(items.to_vec()).to_string();
    }
    let mut out = String::from("[\n");
    for item in items {
        out.push_str(&render_object_trailing(item));
        out.push_str(",\n");
    }
    out.push(']');
    out
}

/// `{ "a": 1, "b": 2, }` (values rendered strictly).
fn render_object_trailing(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut out = String::from("{");
            for (k, val) in map {
                out.push_str(&format!(" {}: {},", Value::from(k.as_str()), val));
            }
            out.push_str(" }");
            out
        }
        other => other.to_string(),
    }
}

fn add_order(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let order: Order = parse(data)?;
    require_nonempty(&order.id)?;
    if let Some(existing) = state.orders.get(&order.id) {
        return Err(ApiFail::duplicate(
            state,
            "Order already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &order.goods)?;
    let wms_id = state.allocate_id();
    let status = if order.is_cancelled() {
        STATUS_CANCELLED
    } else {
        0
    };
    if ImskladState::holds_reservation(status) {
        state.reserve(&order.goods, 1);
    }
    state.orders.insert(
        order.id.clone(),
        SandboxOrder {
            wms_id,
            status,
            order,
        },
    );
    Ok(ok_id(wms_id))
}

fn update_order(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let mut order: Order = parse(data)?;
    check_lines(state, &order.goods)?;
    let existing = state
        .orders
        .get(&order.id)
        .cloned()
        .ok_or_else(|| ApiFail::not_found("Order not found"))?;
    let goods_locked = existing.status >= STATUS_ASSEMBLY && existing.order.goods != order.goods;
    if goods_locked {
        order.goods = existing.order.goods.clone();
    }
    if order.guid.is_none() {
        order.guid = existing.order.guid.clone();
    }
    if ImskladState::holds_reservation(existing.status) && existing.order.goods != order.goods {
        state.reserve(&existing.order.goods, -1);
        state.reserve(&order.goods, 1);
    }
    let cancel = order.is_cancelled() && existing.status < STATUS_SHIPPED;
    let new_status = if cancel {
        STATUS_CANCELLED
    } else {
        existing.status
    };
    let goods = order.goods.clone();
    let wms_id = existing.wms_id;
    state.orders.insert(
        order.id.clone(),
        SandboxOrder {
            wms_id,
            status: new_status,
            order,
        },
    );
    state.move_stock_on_status(&goods, existing.status, new_status);
    if goods_locked {
        return Ok(
            json!({ "result": "warning", "warning": WARNING_GOODS_NOT_SAVED, "id": wms_id })
                .to_string(),
        );
    }
    Ok(ok_id(wms_id))
}

fn add_preorder(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let doc: Preorder = parse(data)?;
    require_nonempty(&doc.id)?;
    check_kind(doc.kind)?;
    if let Some(existing) = state.preorders.get(&doc.id) {
        return Err(ApiFail::duplicate(
            state,
            "Preorder already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &doc.goods)?;
    let wms_id = state.allocate_id();
    state
        .preorders
        .insert(doc.id.clone(), SandboxDocument { wms_id, doc });
    Ok(ok_id(wms_id))
}

fn update_preorder(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let doc: Preorder = parse(data)?;
    check_kind(doc.kind)?;
    check_lines(state, &doc.goods)?;
    let existing = state
        .preorders
        .get_mut(&doc.id)
        .ok_or_else(|| ApiFail::not_found("Preorder not found"))?;
    existing.doc = doc;
    Ok(ok_id(existing.wms_id))
}

fn add_doc(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    check_integer_lines(state, data)?;
    let doc: Doc = parse(data)?;
    require_nonempty(&doc.id)?;
    check_kind(doc.kind)?;
    if let Some(existing) = state.docs.get(&doc.id) {
        return Err(ApiFail::duplicate(
            state,
            "Document already exists",
            existing.wms_id,
        ));
    }
    check_lines(state, &doc.goods)?;
    let wms_id = state.allocate_id();
    state
        .docs
        .insert(doc.id.clone(), SandboxDocument { wms_id, doc });
    Ok(ok_id(wms_id))
}

fn update_doc(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_integer_lines(state, data)?;
    let doc: Doc = parse(data)?;
    check_kind(doc.kind)?;
    check_lines(state, &doc.goods)?;
    let existing = state
        .docs
        .get_mut(&doc.id)
        .ok_or_else(|| ApiFail::not_found("Document not found"))?;
    existing.doc = doc;
    Ok(ok_id(existing.wms_id))
}

/// Preorder and document `type`: 0 inbound / receipt, 1 outbound / write-off.
fn check_kind(kind: i64) -> Result<(), ApiFail> {
    if kind == 0 || kind == 1 {
        Ok(())
    } else {
        Err(ApiFail::bad(format!("Incorrect data: type {kind}")))
    }
}

fn get_billing(state: &mut ImskladState, data: &Value) -> Result<String, ApiFail> {
    check_storage(state, data)?;
    let bound = |name: &str| {
        data.get(name)
            .and_then(crate::lenient::value_to_i64)
            .ok_or_else(|| ApiFail::bad(format!("Incorrect data: missing field `{name}`")))
    };
    let (from, to) = (bound("from")?, bound("to")?);
    let billing = state.billing_between(from, to);
    let strings = state.amounts_as_strings;
    let lines: Vec<Value> = billing
        .lines
        .iter()
        .map(|l| billing_line_json(l, strings, state.strict.billing_type))
        .collect();
    let lines_text = render_array(&lines, state.trailing_commas);
    Ok(format!(
        "{{\"current_balance\": {}, \"change_of_balance\": {}, \"from\": {from}, \"to\": {to}, \"billing\": {lines_text}}}",
        amount_json(billing.current_balance_kop, strings),
        amount_json(billing.change_of_balance_kop, strings),
    ))
}

fn billing_line_json(l: &BillingLine, strings: bool, with_type: bool) -> Value {
    let mut v = json!({
        "id": l.id,
        "order_id": l.order_id,
        "foreign_order_id": l.foreign_order_id,
        "doc_request_id": l.doc_request_id,
        "type": l.kind,
        "date": l.date,
        "amount": amount_json(l.amount_kop, strings),
        "comment": l.comment,
    });
    if !with_type {
        if let Some(m) = v.as_object_mut() {
            m.remove("type");
        }
    }
    v
}

/// Rubles as the service sends them: a number (`-50`, `12.5`) or, as a
/// quirk, a string with two decimals (`"-50.00"`).
/// Amounts too large for an exact JSON number also go out as such strings.
pub fn amount_json(kop: i64, as_string: bool) -> Value {
    match money::to_rubles(kop) {
        Some(n) if !as_string => Value::Number(n),
        _ => {
            let sign = if kop < 0 { "-" } else { "" };
            let abs = kop.unsigned_abs();
            Value::String(format!("{sign}{}.{:02}", abs / 100, abs % 100))
        }
    }
}

// ---------------------------------------------------------------------------
// Callbacks: IMSKLAD → shop endpoint
// ---------------------------------------------------------------------------

/// One entry of an `order/update_tracks` callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackUpdate {
    /// `{id, guid, track}`: the carrier's track number.
    Track {
        /// Partner order id.
        id: String,
        /// Partner GUID (null when none).
        guid: Option<String>,
        /// Track number.
        track: String,
    },
    /// `{id, guid, err}`: the order could not be handed to the carrier.
    Err {
        /// Partner order id.
        id: String,
        /// Partner GUID (null when none).
        guid: Option<String>,
        /// Error text.
        err: String,
    },
}

impl TrackUpdate {
    /// The JSON object of this entry.
    pub fn to_json(&self) -> Value {
        match self {
            TrackUpdate::Track { id, guid, track } => {
                json!({ "id": id, "guid": guid, "track": track })
            }
            TrackUpdate::Err { id, guid, err } => json!({ "id": id, "guid": guid, "err": err }),
        }
    }
}

/// The `data` of `order/set_status`.
pub fn set_status_data(
    id: &str,
    old_status: i64,
    new_status: i64,
    system_id: i64,
    guid: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "old_status": old_status,
        "new_status": new_status,
        "system_id": system_id,
        "guid": guid,
    })
}

/// The `data` of the `order/update_order` callback: the order object with
/// the callback's spelling (`delivery_type_id`, `delivery_courier_id`) and
/// `guid` always present (null when none).
pub fn update_order_callback_data(order: &Order) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(order)?;
    if let Value::Object(map) = &mut v {
        if let Some(t) = map.remove("delivery_type") {
            map.insert("delivery_type_id".into(), t);
        }
        if let Some(c) = map.remove("courier") {
            map.insert("delivery_courier_id".into(), c);
        }
        map.entry("guid").or_insert(Value::Null);
    }
    Ok(v)
}

/// The `data` of `order/update_tracks`.
pub fn update_tracks_data(entries: &[TrackUpdate]) -> Value {
    Value::Array(entries.iter().map(TrackUpdate::to_json).collect())
}

/// The `data` of `good/get_good`: the WMS goods id to describe.
pub fn get_good_data(wms_id: i64) -> Value {
    json!({ "id": wms_id })
}

/// The full callback envelope.
pub fn callback_envelope(key: &str, kind: &str, action: &str, data: &Value) -> Value {
    json!({ "key": key, "type": kind, "action": action, "data": data })
}

/// POSTs a callback envelope to the shop's listener; answers `(status, body)`.
pub async fn send_callback(
    listener_url: &str,
    key: &str,
    kind: &str,
    action: &str,
    data: &serde_json::Value,
) -> Result<(u16, String), reqwest::Error> {
    let body = callback_envelope(key, kind, action, data).to_string();
    send_raw_callback(listener_url, &body).await
}

/// POSTs `body` verbatim (e.g. one of the doc's examples, trailing commas included).
pub async fn send_raw_callback(
    listener_url: &str,
    body: &str,
) -> Result<(u16, String), reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client
        .post(listener_url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, text))
}

// ---------------------------------------------------------------------------
// The doc's examples, verbatim from seed 002
// ---------------------------------------------------------------------------

/// Callback good/get_good request example, verbatim from seed 002.
pub const CALLBACK_GET_GOOD_EXAMPLE: &str =
    include_str!("../../tests/fixtures/vendors/imsklad/24-avtorizaciya-request.json");

/// The answer the doc expects to good/get_good.
pub const CALLBACK_GET_GOOD_ANSWER_EXAMPLE: &str =
    include_str!("../../tests/fixtures/vendors/imsklad/25-avtorizaciya-answer.json");

/// Callback order/update_order request example (`delivery_type_id`, `delivery_courier_id`).
pub const CALLBACK_UPDATE_ORDER_EXAMPLE: &str =
    include_str!("../../tests/fixtures/vendors/imsklad/26-callback-obnovlenie-zakaza-request.json");

/// The answer the doc expects to order/update_order (echoes the partner id).
pub const CALLBACK_UPDATE_ORDER_ANSWER_EXAMPLE: &str =
    include_str!("../../tests/fixtures/vendors/imsklad/27-callback-obnovlenie-zakaza-answer.json");

/// Callback order/set_status request example (trailing comma after `guid`).
pub const CALLBACK_SET_STATUS_EXAMPLE: &str = include_str!(
    "../../tests/fixtures/vendors/imsklad/28-callback-obnovlenie-statusa-zakaza-request.json"
);

/// Callback example of "Создание документа" exactly as printed (it says order/set_status with empty data).
pub const CALLBACK_ADD_DOC_EXAMPLE: &str = include_str!(
    "../../tests/fixtures/vendors/imsklad/30-callback-sozdanie-dokumenta-request.json"
);

/// Callback order/update_tracks request example (trailing comma after the last entry).
pub const CALLBACK_UPDATE_TRACKS_EXAMPLE: &str = include_str!(
    "../../tests/fixtures/vendors/imsklad/32-callback-obnovlenie-trekov-zakazov-request.json"
);

/// The `{"result": "ok"}` answer the doc expects to callbacks.
pub const CALLBACK_OK_ANSWER_EXAMPLE: &str = include_str!(
    "../../tests/fixtures/vendors/imsklad/29-callback-obnovlenie-statusa-zakaza-answer.json"
);

/// The client API examples of seed 002, verbatim (requests and answers).
pub mod doc_examples {
    /// The envelope example of "Авторизация и схема запроса" (goods/add_good).
    pub const ENVELOPE_REQUEST: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/01-avtorizaciya-i-shema-zaprosa-request.json"
    );

    /// The `{"result":"ok","id":…}` answer example.
    pub const OK_ANSWER: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/02-avtorizaciya-i-shema-zaprosa-answer.json"
    );

    /// The error answer example of "Сообщения об ошибках".
    pub const ERROR_ANSWER: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/03-soobscheniya-ob-oshibkah-error-answer.json"
    );

    /// goods/add_good request example.
    pub const ADD_GOOD_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/04-dobavlenie-tovara-request.json");

    /// goods/update_good request example.
    pub const UPDATE_GOOD_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/06-obnovlenie-tovara-request.json");

    /// goods/get_stock request example (trailing comma after `ids`).
    pub const GET_STOCK_REQUEST: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/08-poluchenie-ostatkov-na-sklade-request.json"
    );

    /// goods/get_stock answer example (a bare array).
    pub const GET_STOCK_ANSWER: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/09-poluchenie-ostatkov-na-sklade-answer.json"
    );

    /// order/add_order request example.
    pub const ADD_ORDER_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/10-dobavlenie-zakaza-request.json");

    /// order/update_order request example.
    pub const UPDATE_ORDER_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/12-obnovlenie-zakaza-request.json");

    /// order/update_order warning answer example.
    pub const UPDATE_ORDER_WARNING_ANSWER: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/13-obnovlenie-zakaza-answer.json");

    /// preorder/add_preorder request example (date as `owner_date`).
    pub const ADD_PREORDER_REQUEST: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/14-dobavlenie-predzakaza-postavschiku-request.json"
    );

    /// preorder/update_preorder request example (date as `date`).
    pub const UPDATE_PREORDER_REQUEST: &str = include_str!(
        "../../tests/fixtures/vendors/imsklad/16-obnovlenie-predzakaza-postavschiku-request.json"
    );

    /// doc/add_doc request example.
    pub const ADD_DOC_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/18-dobavlenie-dokumenta-request.json");

    /// doc/update_doc request example.
    pub const UPDATE_DOC_REQUEST: &str =
        include_str!("../../tests/fixtures/vendors/imsklad/20-obnovlenie-dokumenta-request.json");

    /// billing/get_billing request example.
    pub const GET_BILLING_REQUEST: &str = include_str!("../../tests/fixtures/vendors/imsklad/22-poluchenie-stoimosti-operacii-i-balansa-request.json");

    /// billing/get_billing answer example (no `type` on its lines).
    pub const GET_BILLING_ANSWER: &str = include_str!("../../tests/fixtures/vendors/imsklad/23-poluchenie-stoimosti-operacii-i-balansa-answer.json");
}

#[cfg(test)]
mod tests {
    use super::doc_examples as ex;
    use super::*;
    use crate::lenient;

    const KEY: &str = "YOUR_API_KEY";

    fn state_with_doc_goods() -> ImskladState {
        let mut s = ImskladState::new(KEY, 1);
        s.add_good("123123", "Товар А", 100_000);
        s.add_good("342343", "Товар Б", 500_000);
        s
    }

    fn call(s: &mut ImskladState, body: &str) -> Value {
        let text = match process(s, body.as_bytes()) {
            Ok(t) => t,
            Err(f) => f.body(),
        };
        lenient::from_str(&text).expect("the sandbox answers JSON")
    }

    fn envelope(kind: &str, action: &str, data: Value) -> String {
        json!({"key": KEY, "type": kind, "action": action, "data": data}).to_string()
    }

    fn code(v: &Value) -> Option<i64> {
        v.get("code").and_then(Value::as_i64)
    }

    #[test]
    fn every_doc_request_example_is_accepted_verbatim() {
        let mut s = state_with_doc_goods();
        for example in [
            ex::ENVELOPE_REQUEST,
            ex::UPDATE_GOOD_REQUEST,
            ex::ADD_ORDER_REQUEST,
            ex::UPDATE_ORDER_REQUEST,
            ex::ADD_PREORDER_REQUEST,
            ex::UPDATE_PREORDER_REQUEST,
            ex::ADD_DOC_REQUEST,
            ex::UPDATE_DOC_REQUEST,
        ] {
            let answer = call(&mut s, example);
            assert_eq!(answer["result"], "ok", "{example} → {answer}");
            assert!(answer["id"].as_i64().is_some());
        }
        let order = s.order("AZ-1234").expect("stored");
        assert_eq!(order.order.total_paid_kop, 100_000);
        assert_eq!(
            s.preorder("4423").and_then(|p| p.doc.date),
            Some(1_565_397_798)
        );
        assert_eq!(s.doc("4423").map(|d| d.doc.goods.len()), Some(2));
        let stock = call(&mut s, ex::GET_STOCK_REQUEST);
        assert_eq!(stock, json!([]), "the doc's ids are not ours");
        let billing = call(&mut s, ex::GET_BILLING_REQUEST);
        assert_eq!(billing["billing"], json!([]));
        // add_good of the doc's product id 13 again: already exists.
        assert_eq!(
            code(&call(&mut s, ex::ADD_GOOD_REQUEST)),
            Some(CODE_NOT_PERFORMED)
        );
    }

    #[test]
    fn refusals_use_the_documented_error_shape() {
        let mut s = state_with_doc_goods();
        let wrong_key = ex::ADD_ORDER_REQUEST.replace(KEY, "nope");
        let cases: Vec<(String, i64)> = vec![
            ("{not json".into(), CODE_BAD_DATA),
            ("[1,2]".into(), CODE_BAD_DATA),
            (wrong_key, CODE_BAD_DATA),
            (envelope("goods", "delete_good", json!({})), CODE_BAD_DATA),
            (envelope("goods", "add_good", json!(null)), CODE_BAD_DATA),
            (
                envelope(
                    "goods",
                    "add_good",
                    json!({"id": "1", "price": 1, "cost": 1}),
                ),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "goods",
                    "add_good",
                    json!({"id": "", "name": "x", "price": 1, "cost": 1}),
                ),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "goods",
                    "update_good",
                    json!({"id": "nope", "name": "x", "price": 1, "cost": 1}),
                ),
                CODE_NOT_FOUND,
            ),
            (
                envelope("goods", "get_stock", json!({"storage_id": 2, "ids": [1]})),
                CODE_NOT_FOUND,
            ),
            (
                envelope("goods", "get_stock", json!({"ids": [1]})),
                CODE_BAD_DATA,
            ),
            (
                envelope("goods", "get_stock", json!({"storage_id": 1, "ids": "1"})),
                CODE_BAD_DATA,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("\"storage_id\" : 1", "\"storage_id\" : 7"),
                CODE_NOT_FOUND,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("\"total_paid\" : 1000,", ""),
                CODE_BAD_DATA,
            ),
            (
                ex::ADD_ORDER_REQUEST.replace("123123", "555"),
                CODE_NOT_FOUND,
            ),
            (ex::UPDATE_ORDER_REQUEST.to_string(), CODE_NOT_FOUND),
            (
                ex::ADD_DOC_REQUEST.replace("\"type\" : 0", "\"type\" : 3"),
                CODE_BAD_DATA,
            ),
            (
                envelope(
                    "billing",
                    "get_billing",
                    json!({"storage_id": 1, "from": 1}),
                ),
                CODE_BAD_DATA,
            ),
        ];
        for (body, want) in cases {
            let answer = call(&mut s, &body);
            assert_eq!(code(&answer), Some(want), "{body} → {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
            assert!(!answer.to_string().contains(KEY));
        }
        assert_eq!(s.orders().count(), 0);
    }

    #[test]
    fn update_order_in_assembly_keeps_goods_and_warns() {
        let mut s = state_with_doc_goods();
        call(&mut s, ex::ADD_ORDER_REQUEST);
        let before = s.order("AZ-1234").expect("added").order.goods.clone();
        // Same goods, new address: plain ok even in assembly.
        s.set_order_status("AZ-1234", 3).expect("known");
        let same = ex::UPDATE_ORDER_REQUEST.replace("Домофон 1232", "Домофон 9");
        assert_eq!(call(&mut s, &same)["result"], "ok");
        // Changed goods in assembly: the documented warning, goods kept, rest applied.
        let changed = same
            .replace("\"quantity\" : 4", "\"quantity\" : 5")
            .replace("Доставить к 15:00", "к 16:00");
        let answer = call(&mut s, &changed);
        assert_eq!(answer["result"], "warning");
        assert_eq!(answer["warning"], WARNING_GOODS_NOT_SAVED);
        assert_eq!(answer["id"].as_i64(), s.order("AZ-1234").map(|o| o.wms_id));
        let o = s.order("AZ-1234").expect("kept");
        assert_eq!(o.order.goods, before);
        assert_eq!(o.order.owner_comment.as_deref(), Some("к 16:00"));
        // A new order takes changed goods.
        s.set_order_status("AZ-1234", 1).expect("known");
        assert_eq!(call(&mut s, &changed)["result"], "ok");
        assert_eq!(
            s.order("AZ-1234").map(|o| o.order.goods[0].quantity),
            Some(5)
        );
    }

    #[test]
    fn cancelling_moves_unshipped_orders_to_status_10() {
        let mut s = state_with_doc_goods();
        call(&mut s, ex::ADD_ORDER_REQUEST);
        let cancel = ex::UPDATE_ORDER_REQUEST.replace("\"is_canceled\" : 0", "\"is_canceled\" : 1");
        assert_eq!(call(&mut s, &cancel)["result"], "ok");
        assert_eq!(s.order("AZ-1234").map(|o| o.status), Some(STATUS_CANCELLED));
    }

    #[test]
    fn stock_knobs_shape_the_answer() {
        let mut s = ImskladState::new(KEY, 1);
        let a = s.add_good("A", "a", 100);
        let b = s.add_good("B", "b", 100);
        s.set_stock(a, 10, 2).expect("known");
        s.set_stock(b, 5, 7).expect("known");
        assert_eq!(s.set_stock(1, 1, 1), Err(SandboxError::UnknownGood(1)));
        let body = envelope(
            "goods",
            "get_stock",
            json!({"storage_id": "1", "ids": [a, b, 999]}),
        );
        assert_eq!(
            call(&mut s, &body),
            json!([{"id": a, "stock": 10, "reserved": 2}, {"id": b, "stock": 5, "reserved": 7}])
        );
        s.hidden_stock.insert(a);
        assert_eq!(call(&mut s, &body).as_array().map(Vec::len), Some(1));
        s.stock_as_strings = true;
        s.trailing_commas = true;
        let raw = process(&mut s, body.as_bytes()).expect("ok");
        assert!(raw.contains(",\n]") && raw.contains("\"5\""), "{raw}");
        assert!(
            serde_json::from_str::<Value>(&raw).is_err(),
            "really has trailing commas"
        );
        s.empty_stock = true;
        assert_eq!(call(&mut s, &body), json!([]));
    }

    #[test]
    fn billing_is_filtered_by_period() {
        let mut s = ImskladState::new(KEY, 1);
        s.set_balance(1_000_000);
        s.add_billing_line(NewBillingLine {
            order_id: Some(1),
            foreign_order_id: Some("359407".into()),
            kind: 0,
            date: 100,
            amount_kop: -5_050,
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            doc_request_id: Some(1120),
            kind: 9,
            date: 200,
            amount_kop: -10_000,
            comment: "Забор товара".into(),
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            kind: 1,
            date: 300,
            amount_kop: 50_000,
            ..NewBillingLine::default()
        });
        assert_eq!(s.billing_lines().len(), 3);
        assert_eq!(s.balance(), 1_034_950);
        let body = envelope(
            "billing",
            "get_billing",
            json!({"storage_id": 1, "from": 150, "to": 300}),
        );
        let b: Billing =
            lenient::from_str(&process(&mut s, body.as_bytes()).expect("ok")).expect("parses");
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.change_of_balance_kop, 40_000);
        assert_eq!(b.current_balance_kop, 1_034_950);
        s.amounts_as_strings = true;
        s.trailing_commas = true;
        let raw = process(&mut s, body.as_bytes()).expect("ok");
        assert!(raw.contains("\"-100.00\""), "{raw}");
        let b2: Billing = lenient::from_str(&raw).expect("parses leniently");
        assert_eq!(b2, b);
        assert_eq!(amount_json(-5_050, false), json!(-50.5));
        assert_eq!(amount_json(-5, true), json!("-0.05"));
        assert_eq!(amount_json(i64::MAX, false), json!("92233720368547758.07"));
    }

    #[test]
    fn unlisted_billing_and_slack_shape_the_answer() {
        let mut s = ImskladState::new(KEY, 1);
        let listed = |date, amount_kop| NewBillingLine {
            kind: 9,
            date,
            amount_kop,
            ..NewBillingLine::default()
        };
        s.add_billing_line(listed(1_000, -100));
        s.add_billing_line(listed(1_999, -200));
        s.add_unlisted_billing_line(listed(1_500, -5_000));
        assert_eq!(s.balance(), -5_300);
        let b = s.billing_between(1_000, 1_998);
        assert_eq!(b.lines.len(), 1);
        assert_eq!(
            b.change_of_balance_kop, -5_100,
            "unlisted counted, not listed"
        );
        s.billing_slack_secs = 1;
        let b = s.billing_between(1_000, 1_998);
        assert_eq!(
            b.lines.iter().map(|l| l.date).collect::<Vec<_>>(),
            [1_000, 1_999]
        );
        assert_eq!(b.change_of_balance_kop, -5_300);
    }

    #[test]
    fn orders_move_stock_when_reservations_are_tracked() {
        let mut s = state_with_doc_goods();
        s.track_reservations = true;
        let a = s
            .good_by_partner("123123")
            .map(|g| g.wms_id)
            .expect("seeded");
        let b = s
            .good_by_partner("342343")
            .map(|g| g.wms_id)
            .expect("seeded");
        s.set_stock(a, 10, 0).expect("known");
        s.set_stock(b, 3, 0).expect("known");
        call(&mut s, ex::ADD_ORDER_REQUEST); // 4 × a, 1 × b
        assert_eq!(
            (s.stock_of(a), s.stock_of(b)),
            (Some((10, 4)), Some((3, 1)))
        );
        let more = ex::UPDATE_ORDER_REQUEST.replace("\"quantity\" : 4", "\"quantity\" : 6");
        assert_eq!(call(&mut s, &more)["result"], "ok");
        assert_eq!(s.stock_of(a), Some((10, 6)));
        s.set_order_status("AZ-1234", 5).expect("known");
        assert_eq!(
            s.stock_of(a),
            Some((10, 6)),
            "picking keeps the reservation"
        );
        s.set_order_status("AZ-1234", STATUS_SHIPPED)
            .expect("known");
        assert_eq!((s.stock_of(a), s.stock_of(b)), (Some((4, 0)), Some((2, 0))));

        let second = ex::ADD_ORDER_REQUEST.replace("AZ-1234", "AZ-2");
        call(&mut s, &second);
        assert_eq!(s.stock_of(a), Some((4, 4)));
        let cancel = ex::UPDATE_ORDER_REQUEST
            .replace("AZ-1234", "AZ-2")
            .replace("\"is_canceled\" : 0", "\"is_canceled\" : 1");
        call(&mut s, &cancel);
        assert_eq!(s.stock_of(a), Some((4, 0)), "cancelling releases");
        s.set_order_status("AZ-2", 0).expect("known");
        assert_eq!(s.stock_of(a), Some((4, 4)), "revived orders reserve again");
    }

    #[test]
    fn stock_is_untouched_by_orders_by_default() {
        let mut s = state_with_doc_goods();
        let a = s
            .good_by_partner("123123")
            .map(|g| g.wms_id)
            .expect("seeded");
        s.set_stock(a, 10, 1).expect("known");
        call(&mut s, ex::ADD_ORDER_REQUEST);
        s.set_order_status("AZ-1234", STATUS_SHIPPED)
            .expect("known");
        assert_eq!(s.stock_of(a), Some((10, 1)));
    }

    #[test]
    fn scripted_errors_hit_their_action_only() {
        let mut s = ImskladState::new(KEY, 1);
        s.fail_next("get_stock", CODE_FATAL, "Fatal error", 2);
        let stock = envelope("goods", "get_stock", json!({"storage_id": 1, "ids": []}));
        let billing = envelope(
            "billing",
            "get_billing",
            json!({"storage_id": 1, "from": 0, "to": 1}),
        );
        assert!(call(&mut s, &billing).get("code").is_none());
        assert_eq!(code(&call(&mut s, &stock)), Some(CODE_FATAL));
        assert_eq!(code(&call(&mut s, &stock)), Some(CODE_FATAL));
        assert_eq!(call(&mut s, &stock), json!([]));
    }

    #[test]
    fn seeding_and_status_changes() {
        let mut s = state_with_doc_goods();
        let order: Order = serde_json::from_value(
            lenient::from_str::<Value>(ex::ADD_ORDER_REQUEST).expect("parses")["data"].clone(),
        )
        .expect("an order");
        let wms = s.seed_order(order.clone(), 4).expect("seeded");
        assert_eq!(
            s.seed_order(order.clone(), 0),
            Err(SandboxError::Duplicate("AZ-1234".into()))
        );
        let change = s.set_order_status("AZ-1234", 9).expect("known");
        assert_eq!(
            (change.old_status, change.new_status, change.system_id),
            (4, 9, wms)
        );
        assert_eq!(
            change.to_callback_data(),
            json!({"id": "AZ-1234", "old_status": 4, "new_status": 9, "system_id": wms,
                   "guid": "67060465-4b5e-11eb-80c6-00155dd99f08"})
        );
        assert_eq!(
            s.set_order_status("AZ-1234", 12),
            Err(SandboxError::BadStatus(12))
        );
        assert!(matches!(
            s.set_order_status("nope", 1),
            Err(SandboxError::UnknownOrder(_))
        ));
        let t = s.set_tracks("AZ-1234", "RA123").expect("known");
        assert_eq!(
            s.order("AZ-1234")
                .and_then(|o| o.order.track.clone())
                .as_deref(),
            Some("RA123")
        );
        assert_eq!(
            update_tracks_data(&[
                t,
                TrackUpdate::Err {
                    id: "AZ-2".into(),
                    guid: None,
                    err: "Incorrect pvz".into()
                }
            ]),
            json!([
                {"id": "AZ-1234", "guid": "67060465-4b5e-11eb-80c6-00155dd99f08", "track": "RA123"},
                {"id": "AZ-2", "guid": null, "err": "Incorrect pvz"}
            ])
        );
        let mut bad = order;
        bad.id = "X".into();
        bad.goods[0].id = "nope".into();
        assert_eq!(
            s.seed_order(bad, 0),
            Err(SandboxError::UnknownLine("nope".into()))
        );
    }

    #[test]
    fn callback_builders_match_the_doc_examples() {
        let doc: Value = lenient::from_str(CALLBACK_UPDATE_ORDER_EXAMPLE).expect("parses");
        let order: Order = serde_json::from_value(doc["data"].clone()).expect("an order");
        let built = update_order_callback_data(&order).expect("serialises");
        let mut expected = doc["data"].clone();
        if let Value::Object(m) = &mut expected {
            m.retain(|k, v| !v.is_null() || k == "guid");
        }
        assert_eq!(built, expected);
        let status: Value = lenient::from_str(CALLBACK_SET_STATUS_EXAMPLE).expect("trailing comma");
        let d = &status["data"];
        assert_eq!(
            set_status_data("AZ-1234", 0, 1, 11232, d["guid"].as_str()),
            d.clone()
        );
        let tracks: Value =
            lenient::from_str(CALLBACK_UPDATE_TRACKS_EXAMPLE).expect("trailing comma");
        let entries = [
            TrackUpdate::Track {
                id: "AZ-1234".into(),
                guid: Some("67060465-4b5e-11eb-80c6-00155dd99f08".into()),
                track: "345345345234".into(),
            },
            TrackUpdate::Track {
                id: "AZ-2322".into(),
                guid: None,
                track: "45345344544".into(),
            },
            TrackUpdate::Err {
                id: "AZ-2324".into(),
                guid: Some("9ec81f66-4ba7-11eb-80c6-00155dd99f08".into()),
                err: "Incorrect pvz".into(),
            },
        ];
        assert_eq!(update_tracks_data(&entries), tracks["data"]);
        for example in [
            CALLBACK_GET_GOOD_EXAMPLE,
            CALLBACK_ADD_DOC_EXAMPLE,
            CALLBACK_OK_ANSWER_EXAMPLE,
            CALLBACK_GET_GOOD_ANSWER_EXAMPLE,
            CALLBACK_UPDATE_ORDER_ANSWER_EXAMPLE,
        ] {
            assert!(lenient::from_str::<Value>(example).is_ok(), "{example}");
        }
        assert!(
            serde_json::from_str::<Value>(CALLBACK_SET_STATUS_EXAMPLE).is_err(),
            "verbatim, comma kept"
        );
    }
}
