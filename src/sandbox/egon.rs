//! A stand-in for the iSklad EGON warehouse API, plus the callbacks EGON sends
//! to the shop.
//!
//! The server keeps inventory cards and orders, answers `InventoryDetail`,
//! `GetOrderStatus`, `CreateNewOrder`, `StornoOrder` and `UpdateInventoryCard`
//! with the documented envelope and codes, refuses wrong credentials (202),
//! malformed requests (301) and unknown methods (302), and limits each
//! `auth_id` to `rate_per_min` requests per window (HTTP 429, `resp_code` 429).
//!
//! [`send_callback`] plays EGON calling the shop's listener, in each of the
//! transports EGON uses, with payloads built from the state
//! ([`EgonState::write_order_status_payload`], [`EgonState::inventory_status_update_payload`]).

use crate::connectors::egon::{codes, status_name, CountTypes, DATETIME_FORMAT};
use crate::lenient;
use crate::sandbox::common::{instrument, spawn, RateWindow, RunningServer, SandboxControl};
use crate::secret::Secret;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Seed 000's sample callback request, verbatim.
pub const SAMPLE_CALLBACK_REQUEST: &str =
    include_str!("../../tests/fixtures/vendors/egon/01-egon-to-client-sample-request.json");

/// Seed 000's sample callback answer, verbatim.
pub const SAMPLE_CALLBACK_RESPONSE: &str =
    include_str!("../../tests/fixtures/vendors/egon/02-egon-to-client-sample-response.json");

/// Order statuses in which `StornoOrder` is allowed (nothing has left the warehouse).
pub const CANCELLABLE_STATUSES: &[i64] = &[0, 1, 2, 3, 10];

/// Order statuses in which `CreateNewOrder` with a known original id updates the order.
pub const UPDATABLE_STATUSES: &[i64] = &[0, 1, 2, 11, 12];

/// The fields `CreateNewOrder` documents as mandatory.
pub const CREATE_ORDER_MANDATORY: &[&str] = &[
    "original_order_id",
    "shop_setting_id",
    "customer_name",
    "customer_surname",
    "customer_phone",
    "customer_email",
    "name",
    "surname",
    "phone",
    "email",
    "street",
    "street_number",
    "city",
    "country",
    "postal_code",
    "id_delivery",
    "payment_cod",
    "items",
];

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
struct ScriptedCode {
    method: String,
    resp_code: i64,
    times: usize,
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
    auth_id: String,
    auth_key: Secret,
    auth_token: Secret,
    rate_per_min: usize,
    rate_window: Duration,
    windows: HashMap<String, RateWindow>,
    cards: BTreeMap<String, SandboxCard>,
    orders: BTreeMap<String, SandboxOrder>,
    scripted: VecDeque<ScriptedCode>,
    next_card_id: i64,
    next_order_id: i64,
    clock: NaiveDateTime,
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
            rate_per_min: crate::connectors::egon::DEFAULT_RATE_PER_MIN,
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

    fn tick(&mut self) -> NaiveDateTime {
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

    fn take_scripted(&mut self, method: &str) -> Option<i64> {
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
        let egon_id = self.next_card_id;
        self.next_card_id += 1;
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
        let egon_id = self.next_order_id;
        self.next_order_id += 1;
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

    fn order_mut(&mut self, original_id: &str) -> Result<&mut SandboxOrder, EgonSandboxError> {
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

    fn order_by_egon_id(&self, egon_id: i64) -> Option<&SandboxOrder> {
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

    fn order_json(&self, o: &SandboxOrder) -> Value {
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
    fn admit(&mut self, auth_id: &str) -> bool {
        let (max, per) = (self.rate_per_min, self.rate_window);
        self.windows
            .entry(auth_id.to_string())
            .or_insert_with(|| RateWindow::new(max, per))
            .try_hit()
    }

    fn credentials_match(&self, auth: &Value) -> bool {
        let field = |k: &str| auth.get(k).and_then(Value::as_str).unwrap_or("");
        let id_ok = Secret::new(self.auth_id.clone()).matches(field("auth_id"));
        let key_ok = self.auth_key.matches(field("auth_key"));
        let token_ok = self.auth_token.matches(field("auth_token"));
        id_ok & key_ok & token_ok
    }
}

fn card_update_json(card: &SandboxCard) -> Value {
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
        "COUNT_TYPES": {
            "ALL": c.all,
            "EXPIRED": c.expired,
            "DAMAGED": c.damaged,
            "ORDERED": c.ordered,
            "RESERVED": c.reserved,
            "EXPIRATION_BLOCKED": c.expiration_blocked,
        },
        "CAN_BE_FOLDED": false,
    })
}

/// An id as EGON writes an Integer field: a number when numeric, else the string.
fn id_value(id: &str) -> Value {
    match id.parse::<i64>() {
        Ok(n) if n.to_string() == id => json!(n),
        _ => json!(id),
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// The EGON sandbox: shared state plus the fault-injection control.
#[derive(Clone)]
pub struct EgonSandbox {
    /// The world; lock it to seed or inspect.
    pub state: Arc<Mutex<EgonState>>,
    /// Request log and fault injection.
    pub control: SandboxControl,
}

impl EgonSandbox {
    /// A sandbox accepting these credentials; `seed` drives ids and random faults.
    pub fn new(auth_id: &str, auth_key: &str, auth_token: &str, seed: u64) -> Self {
        EgonSandbox {
            state: Arc::new(Mutex::new(EgonState::new(
                auth_id, auth_key, auth_token, seed,
            ))),
            control: SandboxControl::new("egon", seed),
        }
    }

    /// Locks the state (a poisoned lock is recovered: the sandbox keeps serving).
    pub fn lock(&self) -> MutexGuard<'_, EgonState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The instrumented router: `POST /` and `POST /rest/v1`.
    pub fn router(&self) -> Router {
        let app = Router::new()
            .route("/", post(handle))
            .route("/rest/v1", post(handle))
            .with_state(self.state.clone());
        instrument(app, self.control.clone())
    }

    /// Serves on `addr` (port 0 for an ephemeral port).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

/// An answer: the documented envelope with `auth_status` 201 and `resp_code`.
fn answer(code: i64, data: Option<Value>) -> Response {
    let note = format!("{code}: {}", codes::text(code));
    let mut response = json!({"resp_code": code, "resp_message": note});
    if let Some(d) = data {
        response["resp_data"] = d;
    }
    let status = if code == codes::TOO_MANY_REQUESTS {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": code,
        "resp_note": note,
        "response": response,
    });
    (status, Json(body)).into_response()
}

/// An answer refused at the authentication stage (202 or 301).
fn auth_answer(auth_status: i64) -> Response {
    let body = json!({
        "auth_status": auth_status,
        "auth_status_message": format!("{auth_status}: {}", codes::text(auth_status)),
    });
    (StatusCode::OK, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": codes::BAD_REQUEST,
        "resp_note": "301: Bad Request",
        "response": {"resp_code": codes::BAD_REQUEST, "resp_message": format!("301: Bad Request: {message}")},
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn handle(State(state): State<Arc<Mutex<EgonState>>>, body: Bytes) -> Response {
    let Ok(v) = lenient::from_slice::<Value>(&body) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let (Some(auth), Some(request)) = (v.get("auth"), v.get("request")) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let Some(method) = request.get("req_method").and_then(Value::as_str) else {
        return auth_answer(codes::BAD_REQUEST);
    };
    let req_data = request.get("req_data").cloned().unwrap_or(Value::Null);
    let auth_id = auth
        .get("auth_id")
        .and_then(lenient::value_to_id)
        .unwrap_or_default();
    let mut st = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !st.admit(&auth_id) {
        return answer(codes::TOO_MANY_REQUESTS, None);
    }
    if !st.credentials_match(auth) {
        let mut refused = auth_answer(codes::AUTH_UNAUTHORIZED);
        if st.strict.auth_refusal_http_401 {
            *refused.status_mut() = StatusCode::UNAUTHORIZED;
        }
        return refused;
    }
    if let Some(code) = st.take_scripted(method) {
        return answer(code, None);
    }
    match method {
        "InventoryDetail" => inventory_detail(&st, &req_data),
        "GetOrderStatus" => get_order_status(&st, &req_data),
        "CreateNewOrder" => create_new_order(&mut st, &req_data),
        "StornoOrder" => storno_order(&mut st, &req_data),
        "UpdateInventoryCard" => update_inventory_card(&mut st, &req_data),
        _ => answer(codes::METHOD_NOT_FOUND, None),
    }
}

/// `InventoryDetail`: as documented, the payload sits directly in `response`
/// (no `resp_data`), keyed by EGON's card id; nothing found is PHP's `[]`.
fn inventory_detail(st: &EgonState, data: &Value) -> Response {
    let ids: Vec<String> = match data.get("item_id_list") {
        Some(Value::Array(list)) => list.iter().filter_map(lenient::value_to_id).collect(),
        Some(Value::Object(m)) => m.values().filter_map(lenient::value_to_id).collect(),
        _ => return bad_request("item_id_list is mandatory"),
    };
    let only_on_stock = data
        .get("only_on_stock")
        .and_then(lenient::value_to_i64)
        .unwrap_or(0)
        != 0;
    let mut details = Map::new();
    for card in st.cards.values() {
        if !ids.is_empty() && !ids.contains(&card.item_id) {
            continue;
        }
        if only_on_stock && card.counts.all <= 0 {
            continue;
        }
        let c = &card.counts;
        let mut entry = json!({
            "id": card.egon_id,
            "item_id": id_value(&card.item_id),
            "catalog_id": card.catalog_id,
            "ean": card.ean,
            "name": card.name,
            "count_types": {
                "all": c.all,
                "expired": c.expired,
                "damaged": c.damaged,
                "ordered": c.ordered,
                "reserved": c.reserved,
                "expirationBlocked": c.expiration_blocked,
                "changed_at": card.changed_at.format(DATETIME_FORMAT).to_string(),
            },
            "paired_cards": [],
        });
        if let (Some(broken), Some(obj)) =
            (st.broken_counts.get(&card.item_id), entry.as_object_mut())
        {
            match broken {
                BrokenCounts::Missing => {
                    obj.remove("count_types");
                }
                BrokenCounts::Null => {
                    obj.insert("count_types".into(), Value::Null);
                }
                BrokenCounts::EmptyArray => {
                    obj.insert("count_types".into(), json!([]));
                }
                BrokenCounts::EmptyObject => {
                    obj.insert("count_types".into(), json!({}));
                }
                BrokenCounts::WithoutAll => {
                    if let Some(Value::Object(counts)) = obj.get_mut("count_types") {
                        counts.remove("all");
                    }
                }
                BrokenCounts::UpperCase => {
                    obj.remove("count_types");
                    obj.insert(
                        "COUNT_TYPES".into(),
                        json!({
                            "ALL": c.all,
                            "EXPIRED": c.expired,
                            "DAMAGED": c.damaged,
                            "ORDERED": c.ordered,
                            "RESERVED": c.reserved,
                            "EXPIRATION_BLOCKED": c.expiration_blocked,
                        }),
                    );
                }
            }
        }
        if st.strict.changed_at_on_card {
            entry["changed_at"] = json!(card.changed_at.format(DATETIME_FORMAT).to_string());
        }
        details.insert(card.egon_id.to_string(), entry);
    }
    let details = if details.is_empty() {
        Value::Array(Vec::new())
    } else {
        Value::Object(details)
    };
    let body = json!({
        "auth_status": codes::AUTH_ACCEPTED,
        "auth_status_message": "201: Auth Accepted",
        "resp_code": codes::OK,
        "resp_note": "200: OK",
        "response": {
            "success": true,
            "inventory_details": details,
            "resp_code": codes::OK,
            "resp_note": "200: OK",
        },
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// Finds the order a request names: `order_id` has priority over `original_order_id`.
enum Lookup<'a> {
    Found(&'a SandboxOrder),
    Missing,
    NoKey,
}

fn lookup<'a>(st: &'a EgonState, data: &Value) -> Lookup<'a> {
    if let Some(id) = data.get("order_id").and_then(lenient::value_to_i64) {
        return st
            .order_by_egon_id(id)
            .map_or(Lookup::Missing, Lookup::Found);
    }
    if let Some(id) = data.get("original_order_id").and_then(lenient::value_to_id) {
        return st.order(&id).map_or(Lookup::Missing, Lookup::Found);
    }
    Lookup::NoKey
}

fn get_order_status(st: &EgonState, data: &Value) -> Response {
    match lookup(st, data) {
        Lookup::Found(o) => answer(codes::FOUND, Some(st.order_json(o))),
        Lookup::Missing => answer(codes::NOT_FOUND, None),
        Lookup::NoKey => bad_request("order_id or original_order_id is mandatory"),
    }
}

/// Reads order lines (`items` as an array or a map) into (SKU, pieces).
fn order_lines(items: &Value) -> Option<Vec<SandboxLine>> {
    let list: Vec<&Value> = match items {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => return None,
    };
    let lines: Option<Vec<SandboxLine>> = list
        .into_iter()
        .map(|item| {
            let item_id = item.get("item_id").and_then(lenient::value_to_id)?;
            let count = item.get("count").and_then(lenient::value_to_i64)?;
            (count > 0 && !item_id.is_empty()).then_some(SandboxLine {
                item_id,
                count,
                count_reserved: 0,
            })
        })
        .collect();
    lines.filter(|l| !l.is_empty())
}

fn create_new_order(st: &mut EgonState, data: &Value) -> Response {
    let missing: Vec<&str> = CREATE_ORDER_MANDATORY
        .iter()
        .copied()
        .filter(|k| data.get(*k).is_none_or(|v| v.is_null() || v == ""))
        .collect();
    if !missing.is_empty() {
        return bad_request(&format!("missing {}", missing.join(", ")));
    }
    let Some(original_id) = data.get("original_order_id").and_then(lenient::value_to_id) else {
        return bad_request("original_order_id");
    };
    let Some(lines) = data.get("items").and_then(order_lines) else {
        return bad_request("items need item_id and a positive count");
    };
    if st.strict.integer_item_ids {
        let items: Vec<&Value> = match data.get("items") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(Value::Object(m)) => m.values().collect(),
            _ => Vec::new(),
        };
        // Integer as a JSON number or as digits in a string: the
        // documentation's own example sends `"item_id": "1"`.
        let integer = |v: &Value| {
            v.is_i64()
                || v.is_u64()
                || v.as_str()
                    .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        if let Some(bad) = items
            .iter()
            .find(|i| !i.get("item_id").is_some_and(integer))
        {
            return bad_request(&format!(
                "items.item_id must be Integer, got {}",
                bad.get("item_id").cloned().unwrap_or(Value::Null)
            ));
        }
    }
    let reference = data.get("reference_number").and_then(lenient::value_to_id);
    let delivery_id = data.get("id_delivery").and_then(lenient::value_to_i64);
    let now = st.tick();
    let (code, original) = match st.orders.get_mut(&original_id) {
        Some(o) if UPDATABLE_STATUSES.contains(&o.status_id) => {
            o.lines = lines;
            o.reference_number = reference.or(o.reference_number.take());
            o.delivery_id = delivery_id;
            o.change_timestamp = now;
            (codes::UPDATED, original_id)
        }
        Some(_) => return answer(codes::NOT_ALLOWED, None),
        None => {
            let egon_id = st.next_order_id;
            st.next_order_id += 1;
            st.orders.insert(
                original_id.clone(),
                SandboxOrder {
                    egon_id,
                    original_id: original_id.clone(),
                    reference_number: reference,
                    status_id: 0,
                    change_timestamp: now,
                    delivery_id,
                    lines,
                    packages: Vec::new(),
                    total_cost_kop: None,
                },
            );
            (codes::CREATED, original_id)
        }
    };
    let Some(order) = st.order(&original) else {
        return answer(codes::SERVER_ERROR, None);
    };
    let data = json!({
        "order_id": order.egon_id,
        "order_status_id": order.status_id,
        "myorder_url": format!("https://myorder.example/{}", order.egon_id),
        "order_status_data": st.order_json(order),
    });
    answer(code, Some(data))
}

fn storno_order(st: &mut EgonState, data: &Value) -> Response {
    let original = match lookup(st, data) {
        Lookup::Found(o) if CANCELLABLE_STATUSES.contains(&o.status_id) => o.original_id.clone(),
        Lookup::Found(_) => return answer(codes::NOT_ALLOWED, None),
        Lookup::Missing => return answer(codes::NOT_FOUND, None),
        Lookup::NoKey => return bad_request("order_id or original_order_id is mandatory"),
    };
    let cancelled = 9;
    if st.set_order_status(&original, cancelled).is_err() {
        return answer(codes::SERVER_ERROR, None);
    }
    let egon_id = st.order(&original).map(|o| o.egon_id);
    answer(
        codes::UPDATED,
        Some(json!({"order_id": egon_id, "new_status_id": cancelled})),
    )
}

fn update_inventory_card(st: &mut EgonState, data: &Value) -> Response {
    let item_id = data.get("item_id").and_then(lenient::value_to_id);
    let name = data.get("name").and_then(lenient::value_to_id);
    let shop = data.get("shop_setting_id").and_then(lenient::value_to_i64);
    let (Some(item_id), Some(name), Some(_)) = (item_id, name, shop) else {
        return bad_request("item_id, shop_setting_id and name are mandatory");
    };
    if item_id.is_empty() || name.is_empty() {
        return bad_request("item_id and name must not be empty");
    }
    let ean = data.get("ean").and_then(lenient::value_to_id);
    let catalog_id = data.get("catalog_id").and_then(lenient::value_to_id);
    let (code, egon_id) = if st.cards.contains_key(&item_id) {
        let now = st.tick();
        let Some(card) = st.cards.get_mut(&item_id) else {
            return answer(codes::SERVER_ERROR, None);
        };
        card.changed_at = now;
        (codes::UPDATED, card.egon_id)
    } else {
        (codes::CREATED, st.add_item(&item_id, CountTypes::default()))
    };
    if let Some(card) = st.cards.get_mut(&item_id) {
        card.name = name;
        if ean.is_some() {
            card.ean = ean;
        }
        if catalog_id.is_some() {
            card.catalog_id = catalog_id;
        }
    }
    answer(code, Some(json!({"inventory_id": egon_id})))
}

// ---------------------------------------------------------------------------
// Callbacks: EGON → shop
// ---------------------------------------------------------------------------

/// How EGON delivers a callback to the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST`, `application/x-www-form-urlencoded`, JSON in the field `req`.
    FormReq,
    /// `POST`, the JSON as the raw body.
    RawJson,
    /// `GET ?req=<JSON>`.
    QueryReq,
    /// Like [`Transport::FormReq`] with the JSON HTML-entity-escaped (`&quot;`).
    FormReqHtmlEscaped,
    /// `POST`, `multipart/form-data` with the JSON in the part `req` (as PHP's
    /// cURL posts an array; UNVERIFIED which encoding EGON uses).
    MultipartReq,
}

/// The callback envelope: `{"auth":{auth_id, auth_key}, "request":{req_method, req_data}}` (no token).
pub fn callback_envelope(auth_id: &str, auth_key: &str, method: &str, req_data: &Value) -> Value {
    json!({
        "auth": {"auth_id": auth_id, "auth_key": auth_key},
        "request": {"req_method": method, "req_data": req_data},
    })
}

/// Sends one callback to the shop's listener; returns the HTTP status and body.
pub async fn send_callback(
    url: &str,
    auth_id: &str,
    auth_key: &str,
    method: &str,
    req_data: &Value,
    transport: Transport,
) -> Result<(u16, String), reqwest::Error> {
    let json = callback_envelope(auth_id, auth_key, method, req_data).to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let request = match transport {
        Transport::FormReq => client.post(url).form(&[("req", json.as_str())]),
        Transport::FormReqHtmlEscaped => {
            let escaped = html_escape::encode_quoted_attribute(&json).into_owned();
            client.post(url).form(&[("req", escaped.as_str())])
        }
        Transport::RawJson => client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json),
        Transport::QueryReq => client.get(url).query(&[("req", json.as_str())]),
        Transport::MultipartReq => {
            let boundary = "------------------------sverkaSandboxBoundary7MA4YWxk";
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"req\"\r\n\r\n{json}\r\n--{boundary}--\r\n"
            );
            client
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body)
        }
    };
    let resp = request.send().await?;
    let status = resp.status().as_u16();
    let body = resp.text().await?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_samples_are_valid_json() {
        let req: Value = serde_json::from_str(SAMPLE_CALLBACK_REQUEST).unwrap();
        assert_eq!(req["request"]["req_method"], "MethodName");
        assert!(req["auth"].get("auth_token").is_none());
        let resp: Value = serde_json::from_str(SAMPLE_CALLBACK_RESPONSE).unwrap();
        assert_eq!(resp["response"]["resp_status"], 1);
    }

    #[test]
    fn payloads_keep_the_documented_quirks() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.add_item(
            "123456",
            CountTypes {
                all: 236,
                expired: 2,
                damaged: 4,
                ordered: 15,
                reserved: 21,
                expiration_blocked: 0,
            },
        );
        st.seed_order("A-1", &[("123456", 2)]);
        st.add_package("A-1", "ABC123").unwrap();
        let order = st.write_order_status_payload("A-1").unwrap();
        assert!(order["order_items"].is_array());
        assert_eq!(order["order_items"][0]["ITEM_ID"], json!(123456));
        assert_eq!(order["order_errors"], json!({}));
        assert_eq!(order["packages"][0]["images"], json!({}));
        let inv = st.inventory_status_update_payload(&[]);
        assert_eq!(inv["123456"]["ITEM_ID"], json!("123456"));
        assert_eq!(inv["123456"]["COUNT"], json!(209));
        assert_eq!(st.inventory_status_update_payload(&["nope"]), json!([]));
    }

    #[test]
    fn seeding_checks_statuses_and_orders() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.seed_order("A-1", &[("1", 1)]);
        let before = st.order("A-1").unwrap().change_timestamp;
        assert_eq!(
            st.set_order_status("A-1", 8),
            Err(EgonSandboxError::UnknownStatus(8))
        );
        assert_eq!(
            st.set_order_status("B", 5),
            Err(EgonSandboxError::UnknownOrder("B".into()))
        );
        st.set_order_status("A-1", 5).unwrap();
        assert!(st.order("A-1").unwrap().change_timestamp > before);
    }

    #[test]
    fn scripted_codes_are_spent() {
        let mut st = EgonState::new("id", "key", "token", 1);
        st.script_code("GetOrderStatus", 500, 2);
        assert_eq!(st.take_scripted("InventoryDetail"), None);
        assert_eq!(st.take_scripted("GetOrderStatus"), Some(500));
        assert_eq!(st.take_scripted("GetOrderStatus"), Some(500));
        assert_eq!(st.take_scripted("GetOrderStatus"), None);
    }
}
