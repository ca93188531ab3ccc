//! The IMSKLAD sandbox state: seeded goods, orders, documents, billing and the strictness knobs.

use super::*;

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

/// A booked balance operation: the id the sandbox gave it and what was booked
/// (its fields read through, `line.date` as `booked.date`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedLine {
    /// Operation id.
    pub id: i64,
    /// The operation.
    pub line: NewBillingLine,
}

impl std::ops::Deref for BookedLine {
    type Target = NewBillingLine;

    fn deref(&self) -> &NewBillingLine {
        &self.line
    }
}

/// What `get_billing` answers for a period, before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxBilling {
    /// Balance now, kopecks.
    pub current_balance_kop: i64,
    /// Balance change over the period (unlisted operations included), kopecks.
    pub change_of_balance_kop: i64,
    /// The listed operations of the period.
    pub lines: Vec<BookedLine>,
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

/// Readings of IMSKLAD behaviour the IMSKLAD API documentation leaves open, one switch each. The
/// defaults are the readings sverka tries first (so the bench keeps its
/// figures); [`ImskladStrictness::strict`] is the other reading of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImskladStrictness {
    /// `get_billing` lines carry `type` (default on). Off: no line has one,
    /// like the documentation's own example.
    pub billing_type: bool,
    /// The error code `update_good` of an unknown partner id answers
    /// (UNVERIFIED: 2 "not found" by default; 4 "not performed" is the other reading).
    pub update_good_unknown_code: i64,
    /// Which ids order, preorder and document lines may name (default
    /// [`IdSpace::Either`]; the documentation says the partner id).
    pub line_ids: IdSpace,
    /// Lines must name their goods by a JSON integer (the documentation types
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
    pub(super) key: Secret,
    pub(super) storage_id: i64,
    pub(super) next_id: i64,
    pub(super) next_billing_id: i64,
    pub(super) goods: BTreeMap<String, SandboxGood>,
    pub(super) stock: BTreeMap<i64, (i64, i64)>,
    pub(super) orders: BTreeMap<String, SandboxOrder>,
    pub(super) preorders: BTreeMap<String, SandboxDocument<Preorder>>,
    pub(super) docs: BTreeMap<String, SandboxDocument<Doc>>,
    pub(super) billing: Vec<BookedLine>,
    pub(super) unlisted_billing: Vec<BookedLine>,
    pub(super) balance_kop: i64,
    pub(super) scripted: VecDeque<ScriptedError>,
    pub(super) in_flight: usize,
    pub(super) max_in_flight: usize,
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

    pub(super) fn allocate_id(&mut self) -> i64 {
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
        Ok(self.insert_order(order, status))
    }

    /// Books a new order (checked by the caller) with a status: gives it a
    /// WMS id, reserves its goods when the status holds them, and answers the id.
    pub(super) fn insert_order(&mut self, order: Order, status: i64) -> i64 {
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
        wms_id
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
        let booked = self.book(line);
        let id = booked.id;
        self.billing.push(booked);
        id
    }

    /// Books a balance operation that `get_billing` never lists, although it
    /// moves the balance and the `change_of_balance` of its period (a WMS
    /// statement missing a line); returns its id.
    pub fn add_unlisted_billing_line(&mut self, line: NewBillingLine) -> i64 {
        let booked = self.book(line);
        let id = booked.id;
        self.unlisted_billing.push(booked);
        id
    }

    /// Gives `line` the next id and moves the balance by its amount.
    fn book(&mut self, line: NewBillingLine) -> BookedLine {
        self.next_billing_id += 1;
        self.balance_kop += line.amount_kop;
        BookedLine {
            id: self.next_billing_id,
            line,
        }
    }

    /// All booked operations, oldest first (unlisted ones not included).
    pub fn billing_lines(&self) -> &[BookedLine] {
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
    pub fn billing_between(&self, from: i64, to: i64) -> SandboxBilling {
        let slack = self.billing_slack_secs.max(0);
        let (from, to) = (from.saturating_sub(slack), to.saturating_add(slack));
        let within = |l: &&BookedLine| l.date >= from && l.date <= to;
        let lines: Vec<BookedLine> = self.billing.iter().filter(within).cloned().collect();
        let unlisted: i64 = self
            .unlisted_billing
            .iter()
            .filter(within)
            .map(|l| l.amount_kop)
            .sum();
        SandboxBilling {
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

    pub(super) fn take_scripted(&mut self, action: &str) -> Option<ApiFail> {
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
    pub(super) fn holds_reservation(status: i64) -> bool {
        status < STATUS_SHIPPED
    }

    /// Adds `sign × quantity` of each line to the reservation (never below 0).
    pub(super) fn reserve(&mut self, lines: &[OrderGood], sign: i64) {
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
    pub(super) fn move_stock_on_status(&mut self, lines: &[OrderGood], old: i64, new: i64) {
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

    pub(super) fn take_from_stock(&mut self, lines: &[OrderGood]) {
        for l in lines {
            if let Some(wms_id) = self.resolve_line(&l.id) {
                let entry = self.stock.entry(wms_id).or_insert((0, 0));
                entry.0 = (entry.0 - l.quantity).max(0);
            }
        }
    }

    /// The WMS id a goods line names, in the id space
    /// [`ImskladStrictness::line_ids`] allows (partner first with `Either`).
    pub(super) fn resolve_line(&self, id: &str) -> Option<i64> {
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

    pub(super) fn unknown_line(&self, lines: &[OrderGood]) -> Option<String> {
        lines
            .iter()
            .find(|l| self.resolve_line(&l.id).is_none())
            .map(|l| l.id.clone())
    }
}
