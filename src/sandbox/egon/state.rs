//! The EGON sandbox state: inventory cards, orders, scripted codes and strictness.

use super::*;

/// Why a seeding call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgonSandboxError {
    /// No order with that original id.
    #[error("EGON sandbox: no order {0}")]
    UnknownOrder(String),
    /// No card with that item id.
    #[error("EGON sandbox: no inventory card {0}")]
    UnknownItem(String),
    /// The status id is not in the documented list.
    #[error("EGON sandbox: status {0} is not a documented order status")]
    UnknownStatus(i64),
}

/// One inventory card.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxCard {
    /// EGON's card id.
    pub egon_id: i64,
    /// The shop's SKU.
    pub item_id: String,
    /// Product name.
    pub name: String,
    /// EAN.
    pub ean: Option<String>,
    /// Catalog number.
    pub catalog_id: Option<String>,
    /// Stock counters.
    pub counts: CountTypes,
    /// Last change.
    pub changed_at: NaiveDateTime,
}

/// One order line.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxLine {
    /// The shop's SKU.
    pub item_id: String,
    /// Pieces ordered.
    pub count: i64,
    /// Pieces reserved.
    pub count_reserved: i64,
}

/// One order.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOrder {
    /// EGON's order id.
    pub egon_id: i64,
    /// The shop's order id.
    pub original_id: String,
    /// Reference number.
    pub reference_number: Option<String>,
    /// Status id (from the documented list).
    pub status_id: i64,
    /// Last status change.
    pub change_timestamp: NaiveDateTime,
    /// Transport id.
    pub delivery_id: Option<i64>,
    /// Lines.
    pub lines: Vec<SandboxLine>,
    /// Tracking numbers, one per parcel.
    pub packages: Vec<String>,
    /// EGON's total charge in minor units.
    pub total_cost_kop: Option<i64>,
}

/// A scripted answer code for the next calls of one method.
#[derive(Debug, Clone)]
pub(super) struct ScriptedCode {
    pub(super) method: String,
    pub(super) resp_code: i64,
    pub(super) times: usize,
}

/// How a card's `count_types` is spoiled in `InventoryDetail` answers (a
/// fault switch: EGON's documents promise the counters, a test checks what
/// sverka does when they are not there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenCounts {
    /// No `count_types` key.
    Missing,
    /// `count_types: null`.
    Null,
    /// PHP's empty array `[]`.
    EmptyArray,
    /// An empty object `{}`.
    EmptyObject,
    /// Every sub-count but `all`.
    WithoutAll,
    /// Upper-case `COUNT_TYPES` as the callbacks spell it (readable).
    UpperCase,
}

/// Readings of EGON behaviour, one switch each: the defaults are the readings
/// sverka tries first; [`EgonStrictness::strict`] is what the documentation
/// says where the lenient sandbox did more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EgonStrictness {
    /// `InventoryDetail` also sends `changed_at` at card level (default off:
    /// only inside `count_types`, where InventoryDetail.md puts it).
    pub changed_at_on_card: bool,
    /// A refused credential is answered HTTP 401 (response-codes.md: "401
    /// when auth_status is 202"); default off: HTTP 200.
    pub auth_refusal_http_401: bool,
    /// `CreateNewOrder` refuses an `item_id` that is not an integer with 301
    /// (the documentation types it Integer); default off.
    pub integer_item_ids: bool,
}

impl EgonStrictness {
    /// Every switch on the documented reading.
    pub fn strict() -> Self {
        EgonStrictness {
            changed_at_on_card: false,
            auth_refusal_http_401: true,
            integer_item_ids: true,
        }
    }
}

/// The sandbox's world: credentials, cards, orders, rate windows.
#[derive(Debug)]
pub struct EgonState {
    /// Cards (by ITEM_ID) whose `InventoryDetail` counters are spoiled.
    pub broken_counts: BTreeMap<String, BrokenCounts>,
    /// Which reading of the documents the sandbox follows.
    pub strict: EgonStrictness,
    pub(super) auth_id: String,
    pub(super) auth_key: Secret,
    pub(super) auth_token: Secret,
    pub(super) rate_per_min: usize,
    pub(super) rate_window: Duration,
    pub(super) windows: HashMap<String, RateWindow>,
    pub(super) cards: BTreeMap<String, SandboxCard>,
    pub(super) orders: BTreeMap<String, SandboxOrder>,
    pub(super) scripted: VecDeque<ScriptedCode>,
    pub(super) next_card_id: i64,
    pub(super) next_order_id: i64,
    pub(super) clock: NaiveDateTime,
}

impl EgonState {
    /// An empty world accepting the given credentials; `seed` picks the first ids.
    pub fn new(auth_id: &str, auth_key: &str, auth_token: &str, seed: u64) -> Self {
        let offset = (seed % 1000) as i64;
        EgonState {
            broken_counts: BTreeMap::new(),
            strict: EgonStrictness::default(),
            auth_id: auth_id.to_string(),
            auth_key: Secret::new(auth_key),
            auth_token: Secret::new(auth_token),
            rate_per_min: crate::vendor_docs::egon::DEFAULT_RATE_PER_MIN,
            rate_window: Duration::from_secs(60),
            windows: HashMap::new(),
            cards: BTreeMap::new(),
            orders: BTreeMap::new(),
            scripted: VecDeque::new(),
            next_card_id: 240_000 + offset,
            next_order_id: 6_205_000 + offset,
            clock: NaiveDate::from_ymd_opt(2024, 1, 15)
                .and_then(|d| d.and_hms_opt(9, 0, 0))
                .unwrap_or_default(),
        }
    }

    /// Sets the limit per `auth_id`: `max` requests per `window` (0 = off).
    pub fn set_rate_limit(&mut self, max: usize, window: Duration) {
        self.rate_per_min = max;
        self.rate_window = window;
        self.windows.clear();
    }

    /// The sandbox clock: advances one minute per change, so timestamps are deterministic.
    pub fn now(&self) -> NaiveDateTime {
        self.clock
    }

    pub(super) fn tick(&mut self) -> NaiveDateTime {
        self.clock += TimeDelta::minutes(1);
        self.clock
    }

    /// Answers the next `times` calls of `method` with `resp_code` (500 and 429 to test retries).
    pub fn script_code(&mut self, method: &str, resp_code: i64, times: usize) {
        self.scripted.push_back(ScriptedCode {
            method: method.to_string(),
            resp_code,
            times,
        });
    }

    pub(super) fn take_scripted(&mut self, method: &str) -> Option<i64> {
        let pos = self
            .scripted
            .iter()
            .position(|s| s.method == method && s.times > 0)?;
        let s = self.scripted.get_mut(pos)?;
        s.times -= 1;
        let code = s.resp_code;
        if s.times == 0 {
            self.scripted.remove(pos);
        }
        Some(code)
    }

    /// Adds (or replaces the counters of) a card; returns EGON's card id.
    pub fn add_item(&mut self, item_id: &str, counts: CountTypes) -> i64 {
        let now = self.tick();
        if let Some(card) = self.cards.get_mut(item_id) {
            card.counts = counts;
            card.changed_at = now;
            return card.egon_id;
        }
        let egon_id = take_id(&mut self.next_card_id);
        self.cards.insert(
            item_id.to_string(),
            SandboxCard {
                egon_id,
                item_id: item_id.to_string(),
                name: format!("Product {item_id}"),
                ean: None,
                catalog_id: None,
                counts,
                changed_at: now,
            },
        );
        egon_id
    }

    /// Sets a card's EAN.
    pub fn set_ean(&mut self, item_id: &str, ean: &str) -> Result<(), EgonSandboxError> {
        let card = self
            .cards
            .get_mut(item_id)
            .ok_or_else(|| EgonSandboxError::UnknownItem(item_id.to_string()))?;
        card.ean = Some(ean.to_string());
        Ok(())
    }

    /// A card by SKU.
    pub fn item(&self, item_id: &str) -> Option<&SandboxCard> {
        self.cards.get(item_id)
    }

    /// All cards, by SKU.
    pub fn items(&self) -> impl Iterator<Item = &SandboxCard> {
        self.cards.values()
    }

    /// Adds an order in status 0 with `lines` (SKU, pieces); returns EGON's order id.
    pub fn seed_order(&mut self, original_id: &str, lines: &[(&str, i64)]) -> i64 {
        let now = self.tick();
        let egon_id = take_id(&mut self.next_order_id);
        self.orders.insert(
            original_id.to_string(),
            SandboxOrder {
                egon_id,
                original_id: original_id.to_string(),
                reference_number: Some(original_id.to_string()),
                status_id: 0,
                change_timestamp: now,
                delivery_id: None,
                lines: lines
                    .iter()
                    .map(|(item_id, count)| SandboxLine {
                        item_id: item_id.to_string(),
                        count: *count,
                        count_reserved: 0,
                    })
                    .collect(),
                packages: Vec::new(),
                total_cost_kop: None,
            },
        );
        egon_id
    }

    /// An order by the shop's id.
    pub fn order(&self, original_id: &str) -> Option<&SandboxOrder> {
        self.orders.get(original_id)
    }

    /// All orders, by the shop's id.
    pub fn orders(&self) -> impl Iterator<Item = &SandboxOrder> {
        self.orders.values()
    }

    pub(super) fn order_mut(
        &mut self,
        original_id: &str,
    ) -> Result<&mut SandboxOrder, EgonSandboxError> {
        self.orders
            .get_mut(original_id)
            .ok_or_else(|| EgonSandboxError::UnknownOrder(original_id.to_string()))
    }

    /// Moves an order to a documented status (stamping the change time).
    pub fn set_order_status(
        &mut self,
        original_id: &str,
        status_id: i64,
    ) -> Result<(), EgonSandboxError> {
        if status_name(status_id).is_none() {
            return Err(EgonSandboxError::UnknownStatus(status_id));
        }
        let now = self.tick();
        let order = self.order_mut(original_id)?;
        order.status_id = status_id;
        order.change_timestamp = now;
        Ok(())
    }

    /// Adds a parcel with tracking number `track`.
    pub fn add_package(&mut self, original_id: &str, track: &str) -> Result<(), EgonSandboxError> {
        self.order_mut(original_id)?
            .packages
            .push(track.to_string());
        Ok(())
    }

    /// Sets EGON's total charge for an order (minor units).
    pub fn set_total_cost(&mut self, original_id: &str, kop: i64) -> Result<(), EgonSandboxError> {
        self.order_mut(original_id)?.total_cost_kop = Some(kop);
        Ok(())
    }

    pub(super) fn order_by_egon_id(&self, egon_id: i64) -> Option<&SandboxOrder> {
        self.orders.values().find(|o| o.egon_id == egon_id)
    }

    /// The order as `GetOrderStatus` and `WriteOrderStatus` carry it, with the
    /// documented quirks: `order_items` as an array, `order_errors` and
    /// `images` as `{}`, `ITEM_ID` as a number when numeric.
    pub fn order_status_json(&self, original_id: &str) -> Option<Value> {
        self.order(original_id).map(|o| self.order_json(o))
    }

    /// `WriteOrderStatus`'s `req_data` for an order.
    pub fn write_order_status_payload(&self, original_id: &str) -> Option<Value> {
        self.order_status_json(original_id)
    }

    pub(super) fn order_json(&self, o: &SandboxOrder) -> Value {
        let items: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                let ean = self.cards.get(&l.item_id).and_then(|c| c.ean.clone());
                json!({
                    "ITEM_ID": id_value(&l.item_id),
                    "EAN": ean,
                    "COUNT": l.count,
                    "COUNT_RESERVED": l.count_reserved,
                    "RESERVATION_ITEMS": [],
                    "ISSUE_CARD_ITEMS": [],
                })
            })
            .collect();
        let stamp = o.change_timestamp.format(DATETIME_FORMAT).to_string();
        let packages: Vec<Value> = o
            .packages
            .iter()
            .map(|track| {
                json!({
                    "package_nr": track,
                    "tracking_url": format!("https://tracking.example/{track}"),
                    "tracking_data": [{
                        "timestamp": stamp,
                        "shipment_status": 1,
                        "shipment_note": "Shipment data received",
                        "shipment_status_delivery_company": "1",
                        "shipment_note_delivery_company": "Sandbox carrier",
                    }],
                    "images": {},
                    "weight": 624,
                    "width": 410,
                    "height": 110,
                    "depth": 510,
                    "label": format!("https://labels.example/{track}.pdf"),
                })
            })
            .collect();
        json!({
            "order_original_id": o.original_id,
            "reference_number": o.reference_number,
            "order_id": o.egon_id,
            "status_id": o.status_id,
            "status_name": status_name(o.status_id).unwrap_or(""),
            "api_update_enabled": UPDATABLE_STATUSES.contains(&o.status_id),
            "change_timestamp": stamp,
            "delivery_id": o.delivery_id,
            "order_items": items,
            "packages": packages,
            "shipp_company_id": if o.packages.is_empty() { Value::Null } else { json!(291) },
            "shipp_company": if o.packages.is_empty() { Value::Null } else { json!("Sandbox carrier") },
            "estimated_delivery_time": null,
            "total_cost": o.total_cost_kop.map(|k| k as f64 / 100.0),
            "cost_by_item": [],
            "order_errors": {},
            "invoice_url": null,
            "invoice_id": null,
            "returned_items": [],
        })
    }

    /// `InventoryStatusUpdate`'s `req_data` for the given SKUs (all cards when
    /// empty): a map keyed by the shop's card id, `ITEM_ID` as a string (as in
    /// the documented sample), deprecated fields alongside `COUNT_TYPES`; an
    /// empty selection is PHP's `[]`.
    pub fn inventory_status_update_payload(&self, item_ids: &[&str]) -> Value {
        let mut map = Map::new();
        for card in self.cards.values() {
            if !item_ids.is_empty() && !item_ids.contains(&card.item_id.as_str()) {
                continue;
            }
            map.insert(card.item_id.clone(), card_update_json(card));
        }
        if map.is_empty() {
            Value::Array(Vec::new())
        } else {
            Value::Object(map)
        }
    }

    /// Books one request of `auth_id` in its rate window; false when it must be refused.
    pub(super) fn admit(&mut self, auth_id: &str) -> bool {
        let (max, per) = (self.rate_per_min, self.rate_window);
        self.windows
            .entry(auth_id.to_string())
            .or_insert_with(|| RateWindow::new(max, per))
            .try_hit()
    }

    pub(super) fn credentials_match(&self, auth: &Value) -> bool {
        let field = |k: &str| auth.get(k).and_then(Value::as_str).unwrap_or("");
        let id_ok = Secret::new(self.auth_id.clone()).matches(field("auth_id"));
        let key_ok = self.auth_key.matches(field("auth_key"));
        let token_ok = self.auth_token.matches(field("auth_token"));
        id_ok & key_ok & token_ok
    }
}

pub(super) fn card_update_json(card: &SandboxCard) -> Value {
    let c = &card.counts;
    json!({
        "ID": card.egon_id,
        "ITEM_ID": card.item_id,
        "CATALOG_ID": card.catalog_id,
        "EAN": card.ean,
        "ESHOP_ID": 108,
        "COUNT": c.all - c.reserved - c.expired - c.damaged,
        "COUNT_INCLUDED_RESERVED": c.all - c.expired - c.damaged,
        "RESERVED_FOR_ORDERS": c.reserved,
        "DAMAGED": c.damaged,
        "ORDERED": c.ordered,
        "AVAILABLE_INCL_RESERVED_AND_ORDERED": c.all - c.expired - c.damaged + c.ordered,
        "PURCHASE_PRICE": null,
        "WITH_VAT": 0,
        "COUNT_TYPES": upper_count_types(c),
        "CAN_BE_FOLDED": false,
    })
}

/// An id as EGON writes an Integer field: a number when numeric, else the string.
pub(super) fn id_value(id: &str) -> Value {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => json!(n),
        _ => json!(id),
    }
}

/// The next id of an EGON counter (cards, orders), advancing it.
pub(super) fn take_id(counter: &mut i64) -> i64 {
    let id = *counter;
    *counter += 1;
    id
}

/// `COUNT_TYPES` with upper-case keys, as EGON's documented card sample and
/// its callbacks spell them.
pub fn upper_count_types(c: &CountTypes) -> Value {
    json!({
        "ALL": c.all,
        "EXPIRED": c.expired,
        "DAMAGED": c.damaged,
        "ORDERED": c.ordered,
        "RESERVED": c.reserved,
        "EXPIRATION_BLOCKED": c.expiration_blocked,
    })
}
