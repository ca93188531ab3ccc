//! A stateful RetailCRM v5 stand-in: stores, statuses, catalogue with
//! per-store stock, orders with delivery data, order history, warehouse
//! integration modules.
//!
//! It speaks the wire format of seed 001 / `spec/retailcrm.md`: `X-API-KEY`
//! (or `apiKey` in the query), GET filters as `filter[x][]` or `filter[x][0]`,
//! POST forms whose nested data is one JSON field, `{"success": …}` answers
//! with PHP's habits (`[]` for empty maps, floats for quantities and money),
//! and the documented refusals: 403 wrong key, 400 missing parameter or bad
//! input, 404 unknown entity, 460 partly applied upload, 503 over the rate
//! limit, an HTML page when the account does not exist.

use crate::connectors::retailcrm::money_to_kop;
use crate::sandbox::common::{instrument, spawn, RateWindow, RunningServer, SandboxControl};
use crate::secret::Secret;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Requests per second the sandbox allows by default (RetailCRM's documented limit).
pub const DEFAULT_RATE_LIMIT: usize = 10;
/// Most offers one upload may carry.
pub const MAX_UPLOAD: usize = 250;
/// Page sizes every list method accepts (as the official PHP client validates).
pub const LIMITS: [usize; 3] = [20, 50, 100];
/// The larger page size `/store/inventories` accepts unless
/// [`RetailCrmStrictness::inventory_limit_250`] is off (UNVERIFIED).
pub const INVENTORY_LIMIT_250: usize = 250;

/// Readings of the real CRM's behaviour that nothing public settles, or rules
/// the real CRM may apply that the lenient sandbox does not: one switch each.
/// The defaults are the readings sverka tries first (so the bench keeps its
/// figures); tests switch the strict ones on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetailCrmStrictness {
    /// `/store/inventories` also accepts `limit=250` (UNVERIFIED; default
    /// on). Off: 20/50/100 only, like every other list method, and 250 is
    /// refused with `400 {"errors": {"limit": "This value is not valid."}}`.
    pub inventory_limit_250: bool,
    /// Module registrations follow seed 001 strictly: `integrationCode`
    /// required (and a prefix of `code`), every action with a known code and
    /// a non-empty `callPoints`, `baseUrl` https unless its host is loopback.
    /// Default off: `name`, `baseUrl` and `clientId` are required.
    pub strict_modules: bool,
    /// How `/store/inventories` takes `filter[offerExternalId]` and
    /// `filter[offerXmlId]` (UNVERIFIED: the official PHP client types them
    /// as lists, the Go client as one string). Default: lists.
    pub inventory_sku_filter: SkuFilter,
    /// `/store/inventories` accepts `filter[ids][]` (default on). Off: a 400
    /// naming the filter.
    pub inventory_ids_filter: bool,
    /// A store entry of an upload must carry `available` (UNVERIFIED whether
    /// the CRM accepts `purchasePrice` alone). Default off.
    pub upload_requires_available: bool,
}

/// How the sandbox reads the inventory SKU filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SkuFilter {
    /// `filter[offerExternalId][]=A&filter[offerExternalId][]=B` (and one string).
    #[default]
    List,
    /// One string only, `filter[offerExternalId]=A`; a list is refused with a 400.
    OneString,
}

impl Default for RetailCrmStrictness {
    fn default() -> Self {
        RetailCrmStrictness {
            inventory_limit_250: true,
            strict_modules: false,
            inventory_sku_filter: SkuFilter::List,
            inventory_ids_filter: true,
            upload_requires_available: false,
        }
    }
}

impl RetailCrmStrictness {
    /// Every switch on its strict reading.
    pub fn strict() -> Self {
        RetailCrmStrictness {
            inventory_limit_250: false,
            strict_modules: true,
            inventory_sku_filter: SkuFilter::OneString,
            inventory_ids_filter: true,
            upload_requires_available: true,
        }
    }
}

/// Store action codes the strict module check knows (seed 001 names `inventoriesUpload`).
pub const KNOWN_STORE_ACTIONS: [&str; 1] = ["inventoriesUpload"];

/// Why a seeding call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// No offer has this SKU as `externalId` or `xmlId`.
    #[error("sandbox RetailCRM: no offer with SKU {0:?}")]
    UnknownOffer(String),
    /// An order with this external id exists already.
    #[error("sandbox RetailCRM: order {0:?} exists already")]
    DuplicateOrder(String),
    /// The status code is not in the reference book.
    #[error("sandbox RetailCRM: unknown status {0:?}")]
    UnknownStatus(String),
    /// The module lacks `code`.
    #[error("sandbox RetailCRM: integration module without a code")]
    ModuleWithoutCode,
    /// No order has this external id.
    #[error("sandbox RetailCRM: no order {0:?}")]
    UnknownOrder(String),
}

/// A store of the reference book.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStore {
    /// Store code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `integer` or `available`.
    pub inventory_type: String,
    /// Whether it is in use.
    pub active: bool,
}

/// An order status of the reference book.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStatus {
    /// Status code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Status group (`new`, `approval`, `assembling`, `delivery`, `complete`, `cancel`).
    pub group: String,
    /// Sort order.
    pub ordering: i64,
}

/// A sales offer with its stock per store.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOffer {
    /// CRM offer id.
    pub id: i64,
    /// The product it belongs to.
    pub product_id: i64,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `xmlId`.
    pub xml_id: Option<String>,
    /// Name.
    pub name: String,
    /// Base price in kopecks.
    pub price_kop: i64,
    /// Purchase price in kopecks, when known (the offer's own).
    pub purchase_price_kop: Option<i64>,
    /// Purchase price per store code, kopecks (what uploads set).
    pub store_prices: BTreeMap<String, i64>,
    /// Quantity per store code.
    pub quantities: BTreeMap<String, f64>,
    /// Whether it is on sale.
    pub active: bool,
}

impl SandboxOffer {
    fn total(&self) -> f64 {
        self.quantities.values().sum()
    }

    /// The purchase price in `store`: the store's own, else the offer's.
    fn store_price(&self, store: &str) -> Option<i64> {
        self.store_prices
            .get(store)
            .copied()
            .or(self.purchase_price_kop)
    }
}

/// A catalogue product.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxProduct {
    /// Product id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Groups it belongs to.
    pub group_ids: Vec<i64>,
    /// Whether it is on sale.
    pub active: bool,
}

/// A product group.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxGroup {
    /// Group id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Parent group.
    pub parent_id: Option<i64>,
}

/// A line of a new order.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrderItem {
    /// Offer SKU (`externalId` or `xmlId`).
    pub sku: String,
    /// Quantity.
    pub quantity: f64,
    /// Unit price in kopecks.
    pub price_kop: i64,
}

/// What [`RetailCrmState::add_order`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// The shop order id.
    pub external_id: String,
    /// Status code.
    pub status: String,
    /// Lines.
    pub items: Vec<NewOrderItem>,
    /// Delivery type code.
    pub delivery_code: Option<String>,
    /// Delivery cost in kopecks.
    pub delivery_cost_kop: i64,
    /// Shipping store.
    pub shipment_store: Option<String>,
}

/// A line of a stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxItem {
    /// Line id.
    pub id: i64,
    /// Offer id.
    pub offer_id: i64,
    /// Quantity.
    pub quantity: f64,
    /// Unit price in kopecks.
    pub price_kop: i64,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOrder {
    /// CRM id.
    pub id: i64,
    /// The shop order id.
    pub external_id: String,
    /// Order number.
    pub number: String,
    /// Site code.
    pub site: String,
    /// Status code.
    pub status: String,
    /// Shipped from the warehouse.
    pub shipped: bool,
    /// Shipping store.
    pub shipment_store: Option<String>,
    /// Shipment date.
    pub shipment_date: Option<NaiveDate>,
    /// Lines.
    pub items: Vec<SandboxItem>,
    /// Delivery type code.
    pub delivery_code: Option<String>,
    /// Delivery cost in kopecks.
    pub delivery_cost_kop: i64,
    /// `delivery.data.trackNumber`.
    pub track_number: Option<String>,
    /// `Y-m-d H:i:s`.
    pub created_at: String,
}

impl SandboxOrder {
    /// Items plus delivery, in kopecks.
    pub fn total_kop(&self) -> i64 {
        let items: f64 = self
            .items
            .iter()
            .map(|i| i.price_kop as f64 * i.quantity)
            .sum();
        items.round() as i64 + self.delivery_cost_kop
    }
}

/// One order history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxHistory {
    /// Increasing id.
    pub id: i64,
    /// `Y-m-d H:i:s`.
    pub created_at: String,
    /// True for the creation entry.
    pub created: bool,
    /// Changed field (RetailCRM's snake_case names).
    pub field: String,
    /// Value before.
    pub old_value: Value,
    /// Value after.
    pub new_value: Value,
    /// CRM order id.
    pub order_id: i64,
}

/// Everything the sandbox account holds; seed and inspect it through the methods.
#[derive(Debug)]
pub struct RetailCrmState {
    /// Offers (by externalId or xmlId) deleted right before the next upload,
    /// to test `notFoundOffers` for offers that were read a moment earlier.
    pub vanish_on_upload: std::collections::BTreeSet<String>,
    /// Which reading of the undocumented behaviour the sandbox follows.
    pub strict: RetailCrmStrictness,
    api_key: Secret,
    site: String,
    account_exists: bool,
    rate: RateWindow,
    stores: Vec<SandboxStore>,
    statuses: Vec<SandboxStatus>,
    products: Vec<SandboxProduct>,
    offers: Vec<SandboxOffer>,
    /// Where each offer id, `externalId` and `xmlId` stands in `offers`, so an
    /// upload of 250 offers to a million-offer account is not 250 scans.
    offer_index: OfferIndex,
    groups: Vec<SandboxGroup>,
    properties: Vec<(String, String)>,
    orders: Vec<SandboxOrder>,
    history: Vec<SandboxHistory>,
    modules: BTreeMap<String, Value>,
    next_id: i64,
}

/// The realistic default status set: (code, name, group).
const DEFAULT_STATUSES: [(&str, &str, &str); 12] = [
    ("new", "Новый", "new"),
    ("availability-confirmed", "Наличие подтверждено", "approval"),
    ("client-confirmed", "Согласовано с клиентом", "approval"),
    ("prepayed", "Предоплата поступила", "approval"),
    ("assembling", "Комплектуется", "assembling"),
    ("assembling-complete", "Укомплектован", "assembling"),
    ("send-to-delivery", "Передан в доставку", "delivery"),
    ("delivering", "Доставляется", "delivery"),
    ("complete", "Выполнен", "complete"),
    ("cancel-other", "Отменен", "cancel"),
    ("no-call", "Недозвон", "cancel"),
    ("prices-did-not-suit", "Цена не устроила", "cancel"),
];

impl RetailCrmState {
    /// An account with key `api_key`, site `site`, the default statuses and one store `main`.
    pub fn new(api_key: &str, site: &str) -> Self {
        let mut state = RetailCrmState {
            api_key: Secret::new(api_key),
            site: site.to_string(),
            account_exists: true,
            rate: RateWindow::new(DEFAULT_RATE_LIMIT, Duration::from_secs(1)),
            stores: Vec::new(),
            statuses: Vec::new(),
            products: Vec::new(),
            offers: Vec::new(),
            offer_index: OfferIndex::default(),
            groups: Vec::new(),
            properties: Vec::new(),
            orders: Vec::new(),
            history: Vec::new(),
            modules: BTreeMap::new(),
            next_id: 1,
            vanish_on_upload: Default::default(),
            strict: RetailCrmStrictness::default(),
        };
        for (i, (code, name, group)) in DEFAULT_STATUSES.iter().enumerate() {
            state.add_status(code, name, group, (i as i64 + 1) * 10);
        }
        state.add_store("main", "Основной склад");
        state
    }

    fn fresh_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The site code.
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Requests per second before 503; 0 switches the limit off.
    pub fn set_rate_limit(&mut self, per_second: usize) {
        self.rate = RateWindow::new(per_second, Duration::from_secs(1));
    }

    /// When false, every request gets the HTML "account not found" page.
    pub fn set_account_exists(&mut self, exists: bool) {
        self.account_exists = exists;
    }

    /// Adds (or renames) a store with `inventoryType: integer`.
    pub fn add_store(&mut self, code: &str, name: &str) {
        self.stores.retain(|s| s.code != code);
        self.stores.push(SandboxStore {
            code: code.to_string(),
            name: name.to_string(),
            inventory_type: "integer".into(),
            active: true,
        });
    }

    /// Adds (or replaces) an order status.
    pub fn add_status(&mut self, code: &str, name: &str, group: &str, ordering: i64) {
        self.statuses.retain(|s| s.code != code);
        self.statuses.push(SandboxStatus {
            code: code.to_string(),
            name: name.to_string(),
            group: group.to_string(),
            ordering,
        });
    }

    /// Adds a product group; returns its id.
    pub fn add_product_group(&mut self, name: &str, parent_id: Option<i64>) -> i64 {
        let id = self.fresh_id();
        self.groups.push(SandboxGroup {
            id,
            name: name.to_string(),
            parent_id,
        });
        id
    }

    /// Adds a product property.
    pub fn add_property(&mut self, code: &str, name: &str) {
        self.properties.retain(|(c, _)| c != code);
        self.properties.push((code.to_string(), name.to_string()));
    }

    /// Adds a one-offer product and returns the offer id. Unknown store codes are created.
    pub fn add_offer(
        &mut self,
        external_id: Option<&str>,
        xml_id: Option<&str>,
        name: &str,
        price_kop: i64,
        quantities: &[(&str, f64)],
    ) -> i64 {
        for (store, _) in quantities {
            if !self.stores.iter().any(|s| s.code == *store) {
                self.add_store(store, store);
            }
        }
        let product_id = self.fresh_id();
        let offer_id = self.fresh_id();
        self.products.push(SandboxProduct {
            id: product_id,
            name: name.to_string(),
            group_ids: Vec::new(),
            active: true,
        });
        self.offers.push(SandboxOffer {
            id: offer_id,
            product_id,
            external_id: external_id.map(str::to_string),
            xml_id: xml_id.map(str::to_string),
            name: name.to_string(),
            price_kop,
            purchase_price_kop: None,
            store_prices: BTreeMap::new(),
            quantities: quantities
                .iter()
                .map(|(s, q)| (s.to_string(), *q))
                .collect(),
            active: true,
        });
        self.offer_index
            .add(self.offers.len() - 1, &self.offers[self.offers.len() - 1]);
        offer_id
    }

    /// Puts a product into a group.
    pub fn put_in_group(&mut self, offer_id: i64, group_id: i64) {
        let product_id = self
            .offers
            .iter()
            .find(|o| o.id == offer_id)
            .map(|o| o.product_id);
        if let Some(p) = self.products.iter_mut().find(|p| Some(p.id) == product_id) {
            p.group_ids.push(group_id);
        }
    }

    /// The offer with this SKU (`externalId` or `xmlId`).
    pub fn offer(&self, sku: &str) -> Option<&SandboxOffer> {
        self.offer_position(sku).map(|i| &self.offers[i])
    }

    /// Where the first offer with this `externalId` or `xmlId` stands.
    fn offer_position(&self, sku: &str) -> Option<usize> {
        let by_ext = self.offer_index.by_external.get(sku).copied();
        let by_xml = self.offer_index.by_xml.get(sku).copied();
        match (by_ext, by_xml) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Number of offers.
    pub fn offer_count(&self) -> usize {
        self.offers.len()
    }

    /// The quantity of `sku` in `store` (`None` when either is unknown to the offer).
    pub fn quantity(&self, sku: &str, store: &str) -> Option<f64> {
        self.offer(sku)
            .and_then(|o| o.quantities.get(store).copied())
    }

    /// The purchase price of `sku` in `store`, kopecks (`None` when unknown).
    pub fn purchase_price(&self, sku: &str, store: &str) -> Option<i64> {
        self.offer(sku).and_then(|o| o.store_price(store))
    }

    /// Sets a store purchase price directly (a change made in the CRM UI).
    pub fn set_purchase_price(
        &mut self,
        sku: &str,
        store: &str,
        kop: i64,
    ) -> Result<(), SeedError> {
        let position = self
            .offer_position(sku)
            .ok_or_else(|| SeedError::UnknownOffer(sku.to_string()))?;
        self.offers[position]
            .store_prices
            .insert(store.to_string(), kop);
        Ok(())
    }

    /// Sets a quantity directly (a change made in the CRM UI).
    pub fn set_quantity(&mut self, sku: &str, store: &str, quantity: f64) -> Result<(), SeedError> {
        let position = self
            .offer_position(sku)
            .ok_or_else(|| SeedError::UnknownOffer(sku.to_string()))?;
        self.offers[position]
            .quantities
            .insert(store.to_string(), quantity);
        Ok(())
    }

    /// Creates an order (with its creation history entry); returns its CRM id.
    pub fn add_order(&mut self, new: NewOrder) -> Result<i64, SeedError> {
        if self.orders.iter().any(|o| o.external_id == new.external_id) {
            return Err(SeedError::DuplicateOrder(new.external_id));
        }
        if !self.statuses.iter().any(|s| s.code == new.status) {
            return Err(SeedError::UnknownStatus(new.status));
        }
        let mut items = Vec::with_capacity(new.items.len());
        for item in &new.items {
            let offer_id = self
                .offer(&item.sku)
                .map(|o| o.id)
                .ok_or_else(|| SeedError::UnknownOffer(item.sku.clone()))?;
            items.push((offer_id, item.quantity, item.price_kop));
        }
        let id = self.fresh_id();
        let items = items
            .into_iter()
            .map(|(offer_id, quantity, price_kop)| SandboxItem {
                id: self.fresh_id(),
                offer_id,
                quantity,
                price_kop,
            })
            .collect();
        self.orders.push(SandboxOrder {
            id,
            external_id: new.external_id,
            number: format!("{id}A"),
            site: self.site.clone(),
            status: new.status.clone(),
            shipped: false,
            shipment_store: new.shipment_store,
            shipment_date: None,
            items,
            delivery_code: new.delivery_code,
            delivery_cost_kop: new.delivery_cost_kop,
            track_number: None,
            created_at: now_text(),
        });
        self.push_history(
            id,
            "status",
            Value::Null,
            json!({ "code": new.status }),
            true,
        );
        Ok(id)
    }

    /// Sets what the warehouse already reported on a seeded order (shipped flag,
    /// track) without going through the API, as an account's history would hold it.
    pub fn set_order_fulfilment(
        &mut self,
        external_id: &str,
        shipped: bool,
        track: Option<String>,
    ) -> Result<(), SeedError> {
        let order = self
            .orders
            .iter_mut()
            .find(|o| o.external_id == external_id)
            .ok_or_else(|| SeedError::UnknownOrder(external_id.to_string()))?;
        order.shipped = shipped;
        order.track_number = track;
        Ok(())
    }

    /// The order with this external id.
    pub fn order(&self, external_id: &str) -> Option<&SandboxOrder> {
        self.orders.iter().find(|o| o.external_id == external_id)
    }

    /// Number of history entries.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// The history entries, oldest first.
    pub fn history(&self) -> &[SandboxHistory] {
        &self.history
    }

    /// Registers (or replaces) an integration module given as its JSON.
    pub fn register_module(&mut self, module: Value) -> Result<(), SeedError> {
        let code = module
            .get("code")
            .and_then(Value::as_str)
            .ok_or(SeedError::ModuleWithoutCode)?
            .to_string();
        self.modules.insert(code, module);
        Ok(())
    }

    /// A registered module's JSON.
    pub fn module(&self, code: &str) -> Option<&Value> {
        self.modules.get(code)
    }

    /// True when an active module with a warehouse (`integrations.store`) part exists.
    pub fn has_warehouse_module(&self) -> bool {
        self.modules.values().any(|m| {
            let active = m.get("active").is_none_or(|a| truthy(a).unwrap_or(true));
            active
                && m.pointer("/integrations/store")
                    .is_some_and(Value::is_object)
        })
    }

    fn push_history(&mut self, order_id: i64, field: &str, old: Value, new: Value, created: bool) {
        let id = self.history.last().map_or(1, |h| h.id + 1);
        self.history.push(SandboxHistory {
            id,
            created_at: now_text(),
            created,
            field: field.to_string(),
            old_value: old,
            new_value: new,
            order_id,
        });
    }

    // -- request handling ---------------------------------------------------

    /// Account, rate limit and key checks every request goes through.
    fn admit(&self, headers: &HeaderMap, query: &Params) -> Result<(), Refusal> {
        if !self.account_exists {
            return Err(Refusal::AccountMissing);
        }
        if !self.rate.try_hit() {
            return Err(fail(503, "Rate limit exceeded", None));
        }
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| query.get("apiKey"));
        match key {
            Some(k) if self.api_key.matches(k) => Ok(()),
            _ => Err(fail(403, "Wrong \"apiKey\" value.", None)),
        }
    }

    /// A `site` parameter, when given, must name this account's site.
    fn check_site(&self, site: Option<&str>) -> Result<(), Refusal> {
        match site {
            Some(s) if s != self.site => Err(fail(
                400,
                "Errors in the input parameters",
                Some(json!({ "site": format!("Site with code \"{s}\" not found") })),
            )),
            _ => Ok(()),
        }
    }

    fn sites_match(&self, query: &Params) -> bool {
        let sites = query.list("filter[sites]");
        sites.is_empty() || sites.contains(&self.site)
    }

    fn stores_answer(&self) -> Answer {
        let stores: Vec<Value> = self
            .stores
            .iter()
            .map(|s| {
                json!({"code": s.code, "name": s.name, "type": "store-type-warehouse",
                       "inventoryType": s.inventory_type, "active": s.active, "address": []})
            })
            .collect();
        ok(json!({ "stores": stores }))
    }

    fn statuses_answer(&self) -> Answer {
        let statuses: Map<String, Value> = self
            .statuses
            .iter()
            .map(|s| {
                (
                    s.code.clone(),
                    json!({"name": s.name, "code": s.code, "active": true,
                           "ordering": s.ordering, "group": s.group}),
                )
            })
            .collect();
        ok(json!({ "statuses": statuses }))
    }

    fn offer_json(&self, o: &SandboxOffer, details: bool) -> Value {
        let mut v = json!({"id": o.id, "site": self.site, "quantity": o.total()});
        if let Some(e) = &o.external_id {
            v["externalId"] = json!(e);
        }
        if let Some(x) = &o.xml_id {
            v["xmlId"] = json!(x);
        }
        if let Some(p) = o.purchase_price_kop {
            v["purchasePrice"] = json!(money(p));
        }
        if details {
            let stores: Vec<Value> = o
                .quantities
                .iter()
                .map(|(store, q)| {
                    let mut s = json!({"store": store, "quantity": q});
                    if let Some(p) = o.store_price(store) {
                        s["purchasePrice"] = json!(money(p));
                    }
                    s
                })
                .collect();
            v["stores"] = Value::Array(stores);
        }
        v
    }

    fn inventories(&self, query: &Params) -> Answer {
        let (page, limit) = if self.strict.inventory_limit_250 {
            page_params_with(query, &[20, 50, 100, INVENTORY_LIMIT_250])?
        } else {
            page_params(query)?
        };
        let ext = self.sku_filter(query, "filter[offerExternalId]")?;
        let xml = self.sku_filter(query, "filter[offerXmlId]")?;
        let ids = query.list("filter[ids]");
        if !ids.is_empty() && !self.strict.inventory_ids_filter {
            return Err(bad_input("filter[ids]", "This field was not expected."));
        }
        let details = query.get("filter[details]").and_then(text_truthy) == Some(true);
        let offer_active = query.get("filter[offerActive]").and_then(text_truthy);
        let site_ok = self.sites_match(query);
        if site_ok && ext.is_empty() && xml.is_empty() && ids.is_empty() && offer_active.is_none() {
            // Unfiltered: page straight over the offers.
            let (items, pagination) = paginate_slice(&self.offers, page, limit);
            let offers: Vec<Value> = items.iter().map(|o| self.offer_json(o, details)).collect();
            return ok(json!({ "pagination": pagination, "offers": offers }));
        }
        // Filtered by keys: the candidates come from the index (a real CRM's
        // filtered read is an indexed query), in offer order.
        let mut positions: Vec<usize> = if !ids.is_empty() {
            ids.iter()
                .filter_map(|id| id.trim().parse::<i64>().ok())
                .filter_map(|id| self.offer_index.by_id.get(&id).copied())
                .collect()
        } else if !ext.is_empty() {
            ext.iter()
                .filter_map(|e| self.offer_index.by_external.get(e).copied())
                .chain(self.offer_index.shared.iter().copied())
                .collect()
        } else if !xml.is_empty() {
            xml.iter()
                .filter_map(|x| self.offer_index.by_xml.get(x).copied())
                .chain(self.offer_index.shared.iter().copied())
                .collect()
        } else {
            (0..self.offers.len()).collect()
        };
        positions.sort_unstable();
        positions.dedup();
        let selected: Vec<&SandboxOffer> = positions
            .into_iter()
            .map(|i| &self.offers[i])
            .filter(|_| site_ok)
            .filter(|o| ext.is_empty() || o.external_id.as_ref().is_some_and(|e| ext.contains(e)))
            .filter(|o| xml.is_empty() || o.xml_id.as_ref().is_some_and(|x| xml.contains(x)))
            .filter(|o| ids.is_empty() || ids.contains(&o.id.to_string()))
            .filter(|o| offer_active.is_none_or(|a| a == o.active))
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let offers: Vec<Value> = items.iter().map(|o| self.offer_json(o, details)).collect();
        ok(json!({ "pagination": pagination, "offers": offers }))
    }

    /// The values of a SKU filter under [`RetailCrmStrictness::inventory_sku_filter`].
    fn sku_filter(&self, query: &Params, name: &str) -> Result<Vec<String>, Refusal> {
        let list = query.list(name);
        if !list.is_empty() && self.strict.inventory_sku_filter == SkuFilter::OneString {
            return Err(bad_input(name, "This value should be of type string."));
        }
        Ok(match query.get(name) {
            Some(one) => vec![one.to_string()],
            None => list,
        })
    }

    fn upload(&mut self, form: &Params) -> Answer {
        self.check_site(form.get("site"))?;
        if !self.vanish_on_upload.is_empty() {
            // A manager deleted these offers between sverka's read and its upload.
            let gone = std::mem::take(&mut self.vanish_on_upload);
            self.offers.retain(|o| {
                !(o.external_id.as_ref().is_some_and(|e| gone.contains(e))
                    || o.xml_id.as_ref().is_some_and(|x| gone.contains(x)))
            });
            self.offer_index = OfferIndex::build(&self.offers);
        }
        let list = match json_field(form, "offers")? {
            Value::Array(list) => list,
            _ => return Err(bad_input("offers", "The value must be an array of offers.")),
        };
        if list.is_empty() {
            return Err(bad_input(
                "offers",
                "This collection should contain 1 element or more.",
            ));
        }
        if list.len() > MAX_UPLOAD {
            return Err(bad_input(
                "offers",
                &format!("This collection should contain {MAX_UPLOAD} elements or less."),
            ));
        }
        let mut errors = Map::new();
        let mut not_found = Vec::new();
        let mut changes: Vec<(usize, Vec<StoreChange>)> = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            match self.validate_offer(i, entry) {
                Ok(OfferMatch::Found(index, stores)) => changes.push((index, stores)),
                Ok(OfferMatch::NotFound(reference)) => not_found.push(reference),
                Err((field, message)) => {
                    errors.insert(field, Value::String(message));
                }
            }
        }
        let processed = changes.len();
        for (index, stores) in changes {
            let offer = &mut self.offers[index];
            for change in stores {
                if let Some(q) = change.available {
                    offer.quantities.insert(change.code.clone(), q);
                }
                if let Some(p) = change.purchase_price_kop {
                    offer.store_prices.insert(change.code.clone(), p);
                }
            }
        }
        let body = json!({"processedOffersCount": processed, "notFoundOffers": not_found});
        if errors.is_empty() {
            return ok(body);
        }
        let (status, message) = if processed > 0 {
            (460, "Offers are uploaded partially")
        } else {
            (400, "Errors in the input parameters")
        };
        let mut answer = body;
        answer["success"] = json!(false);
        answer["errorMsg"] = json!(message);
        answer["errors"] = Value::Object(errors);
        Ok(respond(status, answer))
    }

    fn validate_offer(&self, i: usize, entry: &Value) -> Result<OfferMatch, (String, String)> {
        let at = |field: &str| format!("offers[{i}]{field}");
        let Some(obj) = entry.as_object() else {
            return Err((at(""), "The offer must be an object.".into()));
        };
        let id = obj.get("id").and_then(crate::lenient::value_to_i64);
        let ext = obj.get("externalId").and_then(crate::lenient::value_to_id);
        let xml = obj.get("xmlId").and_then(crate::lenient::value_to_id);
        if id.is_none() && ext.is_none() && xml.is_none() {
            return Err((at(""), "One of id, externalId or xmlId is required.".into()));
        }
        if let Some(site) = obj.get("site").and_then(Value::as_str) {
            if site != self.site {
                return Err((at("[site]"), format!("Site with code \"{site}\" not found")));
            }
        }
        // One key finds the candidate; the others must agree with it.
        let candidate = match (id, &ext, &xml) {
            (Some(id), _, _) => self.offer_index.by_id.get(&id),
            (None, Some(e), _) => self.offer_index.by_external.get(e),
            (None, None, Some(x)) => self.offer_index.by_xml.get(x),
            (None, None, None) => None,
        };
        let found = candidate.copied().filter(|&i| {
            let o = &self.offers[i];
            ext.as_ref()
                .is_none_or(|e| o.external_id.as_ref() == Some(e))
                && xml.as_ref().is_none_or(|x| o.xml_id.as_ref() == Some(x))
        });
        let Some(index) = found else {
            let mut reference = Map::new();
            if let Some(e) = ext {
                reference.insert("externalId".into(), Value::String(e));
            }
            if let Some(x) = xml {
                reference.insert("xmlId".into(), Value::String(x));
            }
            if let Some(id) = id {
                reference.insert("id".into(), json!(id));
            }
            return Ok(OfferMatch::NotFound(Value::Object(reference)));
        };
        let stores = php_list(obj.get("stores"));
        let mut changes = Vec::with_capacity(stores.len());
        for (j, store) in stores.iter().enumerate() {
            let field = |name: &str| at(&format!("[stores][{j}][{name}]"));
            let code = store.get("code").and_then(Value::as_str).unwrap_or("");
            if !self.stores.iter().any(|s| s.code == code) {
                return Err((
                    field("code"),
                    format!("Store with code \"{code}\" not found"),
                ));
            }
            let available = match store.get("available") {
                None | Some(Value::Null) if self.strict.upload_requires_available => {
                    return Err((field("available"), "This value should not be blank.".into()))
                }
                None | Some(Value::Null) => None,
                Some(v) => match crate::lenient::value_to_f64(v) {
                    Some(q) if q >= 0.0 => Some(q),
                    _ => {
                        return Err((
                            field("available"),
                            "This value should be a number >= 0.".into(),
                        ))
                    }
                },
            };
            let purchase_price_kop = match store.get("purchasePrice") {
                None | Some(Value::Null) => None,
                Some(v) => match crate::lenient::value_to_f64(v) {
                    Some(p) if p >= 0.0 => money_to_kop(p),
                    _ => {
                        return Err((
                            field("purchasePrice"),
                            "This value should be a number >= 0.".into(),
                        ))
                    }
                },
            };
            changes.push(StoreChange {
                code: code.to_string(),
                available,
                purchase_price_kop,
            });
        }
        Ok(OfferMatch::Found(index, changes))
    }

    fn products_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let site_ok = self.sites_match(query);
        let products: Vec<&SandboxProduct> = self.products.iter().filter(|_| site_ok).collect();
        let (items, pagination) = paginate(&products, page, limit);
        let list: Vec<Value> = items.iter().map(|p| self.product_json(p)).collect();
        ok(json!({ "pagination": pagination, "products": list }))
    }

    fn product_json(&self, p: &SandboxProduct) -> Value {
        let offers: Vec<&SandboxOffer> = self
            .offers
            .iter()
            .filter(|o| o.product_id == p.id)
            .collect();
        let prices: Vec<i64> = offers.iter().map(|o| o.price_kop).collect();
        let offer_list: Vec<Value> = offers
            .iter()
            .map(|o| {
                let mut v = json!({"id": o.id, "name": o.name, "price": money(o.price_kop),
                    "quantity": o.total(), "active": o.active, "properties": [],
                    "prices": [{"priceType": "base", "price": money(o.price_kop), "ordering": 991}]});
                if let Some(e) = &o.external_id {
                    v["externalId"] = json!(e);
                    v["article"] = json!(e);
                }
                if let Some(x) = &o.xml_id {
                    v["xmlId"] = json!(x);
                }
                if let Some(pp) = o.purchase_price_kop {
                    v["purchasePrice"] = json!(money(pp));
                }
                v
            })
            .collect();
        let groups: Vec<Value> = p.group_ids.iter().map(|g| json!({ "id": g })).collect();
        json!({"id": p.id, "name": p.name, "active": p.active,
            "minPrice": money(prices.iter().copied().min().unwrap_or(0)),
            "maxPrice": money(prices.iter().copied().max().unwrap_or(0)),
            "quantity": offers.iter().map(|o| o.total()).sum::<f64>(),
            "groups": groups, "offers": offer_list, "properties": []})
    }

    fn groups_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let (items, pagination) = paginate(&self.groups, page, limit);
        let list: Vec<Value> = items
            .iter()
            .map(|g| {
                let mut v = json!({"id": g.id, "site": self.site, "name": g.name, "active": true});
                if let Some(parent) = g.parent_id {
                    v["parentId"] = json!(parent);
                }
                v
            })
            .collect();
        ok(json!({ "pagination": pagination, "productGroup": list }))
    }

    fn properties_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let (items, pagination) = paginate(&self.properties, page, limit);
        let list: Vec<Value> = items
            .iter()
            .map(|(code, name)| json!({"code": code, "name": name, "sites": [self.site], "groups": []}))
            .collect();
        ok(json!({ "pagination": pagination, "properties": list }))
    }

    fn order_json(&self, o: &SandboxOrder) -> Value {
        let items: Vec<Value> = o
            .items
            .iter()
            .map(|item| {
                let offer = self.offers.iter().find(|of| of.id == item.offer_id);
                let mut offer_json = json!({ "id": item.offer_id });
                if let Some(of) = offer {
                    offer_json["name"] = json!(of.name);
                    if let Some(e) = &of.external_id {
                        offer_json["externalId"] = json!(e);
                    }
                    if let Some(x) = &of.xml_id {
                        offer_json["xmlId"] = json!(x);
                    }
                }
                json!({"id": item.id, "initialPrice": money(item.price_kop), "discountTotal": 0.0,
                       "quantity": item.quantity, "status": "new", "offer": offer_json, "properties": []})
            })
            .collect();
        let delivery_data = match &o.track_number {
            Some(t) => json!({ "trackNumber": t }),
            None => json!([]),
        };
        let mut delivery = json!({"cost": money(o.delivery_cost_kop), "data": delivery_data});
        if let Some(code) = &o.delivery_code {
            delivery["code"] = json!(code);
        }
        let mut v = json!({"id": o.id, "externalId": o.external_id, "number": o.number,
            "site": o.site, "status": o.status, "orderType": "eshop-individual",
            "orderMethod": "shopping-cart", "createdAt": o.created_at, "shipped": o.shipped,
            "summ": money(o.total_kop() - o.delivery_cost_kop), "totalSumm": money(o.total_kop()),
            "items": items, "delivery": delivery, "payments": [], "customFields": []});
        if let Some(store) = &o.shipment_store {
            v["shipmentStore"] = json!(store);
        }
        if let Some(date) = o.shipment_date {
            v["shipmentDate"] = json!(date.format("%Y-%m-%d").to_string());
        }
        v
    }

    fn orders_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let ext = query.list("filter[externalIds]");
        let numbers = query.list("filter[numbers]");
        let ids = query.list("filter[ids]");
        let statuses = query.list("filter[extendedStatus]");
        let stores = query.list("filter[shipmentStores]");
        let sites = query.list("filter[sites]");
        let shipped = query.get("filter[shipped]").and_then(text_truthy);
        let selected: Vec<&SandboxOrder> = self
            .orders
            .iter()
            .filter(|o| ext.is_empty() || ext.contains(&o.external_id))
            .filter(|o| numbers.is_empty() || numbers.contains(&o.number))
            .filter(|o| ids.is_empty() || ids.contains(&o.id.to_string()))
            .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
            .filter(|o| sites.is_empty() || sites.contains(&o.site))
            .filter(|o| {
                stores.is_empty()
                    || o.shipment_store
                        .as_ref()
                        .is_some_and(|s| stores.contains(s))
            })
            .filter(|o| shipped.is_none_or(|s| s == o.shipped))
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let list: Vec<Value> = items.iter().map(|o| self.order_json(o)).collect();
        ok(json!({ "pagination": pagination, "orders": list }))
    }

    fn history_answer(&self, query: &Params) -> Answer {
        let (page, limit) = page_params(query)?;
        let since = match query.get("filter[sinceId]") {
            None => None,
            Some(text) => match text.trim().parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    return Err(bad_input(
                        "filter[sinceId]",
                        "This value should be of type integer.",
                    ))
                }
            },
        };
        let start = query.get("filter[startDate]").unwrap_or("");
        let selected: Vec<&SandboxHistory> = self
            .history
            .iter()
            .filter(|h| since.is_none_or(|s| h.id > s))
            .filter(|h| h.created_at.as_str() >= start)
            .collect();
        let (items, pagination) = paginate(&selected, page, limit);
        let list: Vec<Value> = items.iter().map(|h| self.history_json(h)).collect();
        ok(json!({"generatedAt": now_text(), "pagination": pagination, "history": list}))
    }

    fn history_json(&self, h: &SandboxHistory) -> Value {
        let order = self.orders.iter().find(|o| o.id == h.order_id);
        let order_ref = match order {
            Some(o) => {
                json!({"id": o.id, "externalId": o.external_id, "number": o.number, "site": o.site})
            }
            None => json!({ "id": h.order_id }),
        };
        let mut v = json!({"id": h.id, "createdAt": h.created_at, "source": "api",
            "field": h.field, "oldValue": h.old_value, "newValue": h.new_value,
            "apiKey": {"current": true}, "order": order_ref});
        if h.created {
            v["created"] = json!(true);
        }
        v
    }

    fn order_edit(&mut self, external_id: &str, form: &Params) -> Answer {
        self.check_site(form.get("site"))?;
        let by = form.get("by").unwrap_or("externalId");
        if by != "externalId" && by != "id" {
            return Err(bad_input(
                "by",
                "The value you selected is not a valid choice.",
            ));
        }
        let patch = match json_field(form, "order")? {
            Value::Object(m) => m,
            _ => return Err(bad_input("order", "The value must be an object.")),
        };
        let Some(index) = self.orders.iter().position(|o| match by {
            "id" => o.id.to_string() == external_id,
            _ => o.external_id == external_id,
        }) else {
            return Err(fail(404, "Not found", None));
        };
        let edit = self.validate_edit(&patch)?;
        self.apply_edit(index, edit);
        let order = &self.orders[index];
        ok(json!({"id": order.id, "order": self.order_json(order)}))
    }

    fn validate_edit(&self, patch: &Map<String, Value>) -> Result<OrderEdit, Refusal> {
        let mut errors = Map::new();
        let mut edit = OrderEdit::default();
        if let Some(v) = patch.get("status") {
            match v.as_str() {
                Some(code) if self.statuses.iter().any(|s| s.code == code) => {
                    edit.status = Some(code.to_string())
                }
                _ => {
                    errors.insert("status".into(), json!(format!("Status {v} does not exist")));
                }
            }
        }
        if let Some(v) = patch.get("shipped") {
            if !self.has_warehouse_module() {
                return Err(fail(
                    400,
                    "The \"shipped\" field is editable only when a warehouse system integration module is registered",
                    Some(json!({"shipped": "No active warehouse integration module"})),
                ));
            }
            match truthy(v) {
                Some(b) => edit.shipped = Some(b),
                None => {
                    errors.insert(
                        "shipped".into(),
                        json!("This value should be of type bool."),
                    );
                }
            }
        }
        if let Some(v) = patch.get("shipmentStore") {
            match v.as_str() {
                Some(code) if self.stores.iter().any(|s| s.code == code) => {
                    edit.shipment_store = Some(code.to_string())
                }
                _ => {
                    errors.insert(
                        "shipmentStore".into(),
                        json!(format!("Store {v} does not exist")),
                    );
                }
            }
        }
        if let Some(v) = patch.get("shipmentDate") {
            match v
                .as_str()
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
            {
                Some(date) => edit.shipment_date = Some(date),
                None => {
                    errors.insert(
                        "shipmentDate".into(),
                        json!("This value is not a valid date (Y-m-d)."),
                    );
                }
            }
        }
        if let Some(v) = patch
            .get("delivery")
            .and_then(|d| d.pointer("/data/trackNumber"))
        {
            match crate::lenient::value_to_id(v) {
                Some(t) => edit.track_number = Some(t),
                None => {
                    errors.insert(
                        "delivery[data][trackNumber]".into(),
                        json!("This value should be a string."),
                    );
                }
            }
        }
        if errors.is_empty() {
            Ok(edit)
        } else {
            Err(fail(
                400,
                "Order is not loaded",
                Some(Value::Object(errors)),
            ))
        }
    }

    fn apply_edit(&mut self, index: usize, edit: OrderEdit) {
        let before = self.orders[index].clone();
        let order_id = before.id;
        let mut changes: Vec<(&str, Value, Value)> = Vec::new();
        let order = &mut self.orders[index];
        if let Some(status) = edit.status.filter(|s| *s != before.status) {
            changes.push((
                "status",
                json!({"code": before.status}),
                json!({"code": status}),
            ));
            order.status = status;
        }
        if let Some(shipped) = edit.shipped.filter(|s| *s != before.shipped) {
            changes.push(("shipped", json!(before.shipped), json!(shipped)));
            order.shipped = shipped;
        }
        if let Some(store) = edit
            .shipment_store
            .filter(|s| Some(s) != before.shipment_store.as_ref())
        {
            let old = before
                .shipment_store
                .as_ref()
                .map_or(Value::Null, |s| json!({"code": s}));
            changes.push(("shipment_store", old, json!({"code": store})));
            order.shipment_store = Some(store);
        }
        if let Some(date) = edit
            .shipment_date
            .filter(|d| Some(*d) != before.shipment_date)
        {
            let old = before
                .shipment_date
                .map_or(Value::Null, |d| json!(d.format("%Y-%m-%d").to_string()));
            changes.push((
                "shipment_date",
                old,
                json!(date.format("%Y-%m-%d").to_string()),
            ));
            order.shipment_date = Some(date);
        }
        if let Some(track) = edit
            .track_number
            .filter(|t| Some(t) != before.track_number.as_ref())
        {
            let old = before
                .track_number
                .as_ref()
                .map_or(Value::Null, |t| json!(t));
            changes.push(("delivery_data.track_number", old, json!(track)));
            order.track_number = Some(track);
        }
        for (field, old, new) in changes {
            self.push_history(order_id, field, old, new, false);
        }
    }

    fn module_get(&self, code: &str) -> Answer {
        match self.modules.get(code) {
            Some(m) => ok(json!({ "integrationModule": m })),
            None => Err(fail(404, "Not found", None)),
        }
    }

    fn module_edit(&mut self, code: &str, form: &Params) -> Answer {
        let mut module = match json_field(form, "integrationModule")? {
            Value::Object(m) => m,
            _ => {
                return Err(bad_input(
                    "integrationModule",
                    "The value must be an object.",
                ))
            }
        };
        let mut errors = Map::new();
        for field in ["name", "baseUrl", "clientId"] {
            let present = module
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty());
            if !present {
                errors.insert(field.into(), json!("This value should not be blank."));
            }
        }
        match module.get("code").and_then(Value::as_str) {
            Some(c) if c == code => {}
            Some(_) => {
                errors.insert(
                    "code".into(),
                    json!("The code does not match the code in the URL."),
                );
            }
            None => {
                module.insert("code".into(), json!(code));
            }
        }
        if let Some(ic) = module.get("integrationCode").and_then(Value::as_str) {
            if !code.starts_with(ic) {
                errors.insert(
                    "code".into(),
                    json!(format!("The code must start with \"{ic}\".")),
                );
            }
        }
        if self.strict.strict_modules {
            strict_module_errors(&module, &mut errors);
        }
        if let Some(actions) = module
            .get("integrations")
            .and_then(|i| i.get("store"))
            .and_then(|s| s.get("actions"))
        {
            for (i, action) in php_list(Some(actions)).iter().enumerate() {
                for field in ["code", "url"] {
                    if action.get(field).and_then(Value::as_str).is_none() {
                        errors.insert(
                            format!("integrations[store][actions][{i}][{field}]"),
                            json!("This value should not be blank."),
                        );
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(fail(
                400,
                "Errors in the entity format",
                Some(Value::Object(errors)),
            ));
        }
        self.modules.insert(code.to_string(), Value::Object(module));
        ok(json!({ "info": [] }))
    }
}

/// The rules [`RetailCrmStrictness::strict_modules`] adds to a module edit.
fn strict_module_errors(module: &Map<String, Value>, errors: &mut Map<String, Value>) {
    let ic = module
        .get("integrationCode")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    if ic.is_none() {
        errors.insert(
            "integrationCode".into(),
            json!("This value should not be blank."),
        );
    }
    if let Some(base) = module.get("baseUrl").and_then(Value::as_str) {
        let allowed = match reqwest::Url::parse(base) {
            Ok(u) => {
                u.scheme() == "https"
                    || (u.scheme() == "http"
                        && crate::config::is_loopback_host(u.host_str().unwrap_or_default()))
            }
            Err(_) => false,
        };
        if !allowed {
            errors.insert(
                "baseUrl".into(),
                json!("This value is not a valid URL: https is required."),
            );
        }
    }
    let actions = module
        .get("integrations")
        .and_then(|i| i.get("store"))
        .and_then(|s| s.get("actions"));
    for (i, action) in php_list(actions).iter().enumerate() {
        let code = action.get("code").and_then(Value::as_str).unwrap_or("");
        if !code.is_empty() && !KNOWN_STORE_ACTIONS.contains(&code) {
            errors.insert(
                format!("integrations[store][actions][{i}][code]"),
                json!("The value you selected is not a valid choice."),
            );
        }
        let points = php_list(action.get("callPoints"));
        if points.is_empty() || points.iter().any(|p| p.as_str().is_none_or(str::is_empty)) {
            errors.insert(
                format!("integrations[store][actions][{i}][callPoints]"),
                json!("This collection should contain 1 element or more."),
            );
        }
    }
}

/// What one upload entry matched.
enum OfferMatch {
    /// Offer index and the store changes to apply.
    Found(usize, Vec<StoreChange>),
    /// A `notFoundOffers` entry.
    NotFound(Value),
}

struct StoreChange {
    code: String,
    available: Option<f64>,
    purchase_price_kop: Option<i64>,
}

#[derive(Default)]
struct OrderEdit {
    status: Option<String>,
    shipped: Option<bool>,
    shipment_store: Option<String>,
    shipment_date: Option<NaiveDate>,
    track_number: Option<String>,
}

// ---------------------------------------------------------------------------
// Wire helpers
// ---------------------------------------------------------------------------

/// Decoded query-string or form pairs, PHP style.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes `application/x-www-form-urlencoded` bytes; an undecodable body
    /// counts as empty, so its fields are reported as missing, like RetailCRM does.
    fn parse(bytes: &[u8]) -> Self {
        Params(serde_urlencoded::from_bytes(bytes).unwrap_or_default())
    }

    /// The first value of exactly `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `name[]` and `name[N]`.
    fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'))
                    .is_some_and(|inner| inner.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn now_text() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn money(kop: i64) -> f64 {
    kop as f64 / 100.0
}

fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => text_truthy(s),
        _ => None,
    }
}

fn text_truthy(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// A list PHP may have encoded as an array or as an object keyed by index.
fn php_list(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(m)) => m.values().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Reads a form field holding JSON: missing → 400 `Parameter 'x' is missing`, bad JSON → 400.
fn json_field(form: &Params, name: &str) -> Result<Value, Refusal> {
    let raw = form
        .get(name)
        .ok_or_else(|| fail(400, &format!("Parameter '{name}' is missing"), None))?;
    serde_json::from_str(raw).map_err(|e| bad_input(name, &format!("Invalid JSON: {e}")))
}

fn page_params(query: &Params) -> Result<(usize, usize), Refusal> {
    page_params_with(query, &LIMITS)
}

/// `page` and `limit` of a list request, `limit` one of `allowed`.
fn page_params_with(query: &Params, allowed: &[usize]) -> Result<(usize, usize), Refusal> {
    let limit = match query.get("limit") {
        None => 20,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(l) if allowed.contains(&l) => l,
            _ => return Err(bad_input("limit", "This value is not valid.")),
        },
    };
    let page = match query.get("page") {
        None => 1,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Err(bad_input(
                    "page",
                    "This value should be greater than or equal to 1.",
                ))
            }
        },
    };
    Ok((page, limit))
}

fn paginate<T: Clone>(items: &[T], page: usize, limit: usize) -> (Vec<T>, Value) {
    let (slice, pagination) = paginate_slice(items, page, limit);
    (slice.to_vec(), pagination)
}

/// One page of `items` (pages count from 1) and RetailCRM's `pagination` object.
fn paginate_slice<T>(items: &[T], page: usize, limit: usize) -> (&[T], Value) {
    let total = items.len();
    let pages = total.div_ceil(limit);
    let start = (page - 1).saturating_mul(limit).min(total);
    let end = start.saturating_add(limit).min(total);
    let pagination =
        json!({"limit": limit, "totalCount": total, "currentPage": page, "totalPageCount": pages});
    (&items[start..end], pagination)
}

/// Positions of the offers in [`RetailCrmState`]'s list by each of their keys
/// (the first offer wins when two share a key, as a scan would find it).
#[derive(Debug, Default)]
struct OfferIndex {
    by_id: HashMap<i64, usize>,
    by_external: HashMap<String, usize>,
    by_xml: HashMap<String, usize>,
    /// Offers whose `externalId` or `xmlId` an earlier offer holds too (the
    /// maps keep the first): a filtered read looks at them as well.
    shared: Vec<usize>,
}

impl OfferIndex {
    fn build(offers: &[SandboxOffer]) -> OfferIndex {
        let mut index = OfferIndex::default();
        for (i, o) in offers.iter().enumerate() {
            index.add(i, o);
        }
        index
    }

    fn add(&mut self, position: usize, offer: &SandboxOffer) {
        self.by_id.entry(offer.id).or_insert(position);
        let mut shared = false;
        if let Some(e) = &offer.external_id {
            shared |= *self.by_external.entry(e.clone()).or_insert(position) != position;
        }
        if let Some(x) = &offer.xml_id {
            shared |= *self.by_xml.entry(x.clone()).or_insert(position) != position;
        }
        if shared {
            self.shared.push(position);
        }
    }
}

fn respond(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn ok(mut body: Value) -> Answer {
    if let Value::Object(m) = &mut body {
        let mut with_success = Map::new();
        with_success.insert("success".into(), Value::Bool(true));
        with_success.extend(std::mem::take(m));
        *m = with_success;
    }
    Ok(respond(200, body))
}

/// What a handler produces: an answer, or a refusal rendered as RetailCRM's error JSON.
type Answer = Result<Response, Refusal>;

/// A refused request.
#[derive(Debug)]
enum Refusal {
    /// `{"success": false, "errorMsg": …, "errors": …}` with this status.
    Api {
        status: u16,
        message: String,
        errors: Option<Value>,
    },
    /// The HTML page of a non-existent account.
    AccountMissing,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api {
                status,
                message,
                errors,
            } => {
                let mut body = json!({"success": false, "errorMsg": message});
                if let Some(e) = errors {
                    body["errors"] = e;
                }
                respond(status, body)
            }
            Refusal::AccountMissing => account_missing_page(),
        }
    }
}

fn fail(status: u16, message: &str, errors: Option<Value>) -> Refusal {
    Refusal::Api {
        status,
        message: message.to_string(),
        errors,
    }
}

fn bad_input(field: &str, message: &str) -> Refusal {
    fail(
        400,
        "Errors in the input parameters",
        Some(json!({ field: message })),
    )
}

fn account_missing_page() -> Response {
    let page = "<!DOCTYPE html>\n<html><head><title>Account not found</title></head>\
                <body><h1>Аккаунт не найден</h1><p>The account does not exist or was deleted.</p></body></html>";
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

type Shared = Arc<Mutex<RetailCrmState>>;

fn lock(state: &Shared) -> MutexGuard<'_, RetailCrmState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on the state after the account / rate / key checks.
fn handle(
    state: &Shared,
    headers: &HeaderMap,
    query: Option<String>,
    body: &[u8],
    f: impl FnOnce(&mut RetailCrmState, &Params, &Params) -> Answer,
) -> Response {
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    let form = Params::parse(body);
    let mut st = lock(state);
    st.admit(headers, &query)
        .and_then(|()| f(&mut st, &query, &form))
        .unwrap_or_else(IntoResponse::into_response)
}

async fn stores_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.stores_answer())
}

async fn statuses_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.statuses_answer())
}

async fn inventories_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.inventories(q))
}

async fn upload_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| st.upload(form))
}

async fn products_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.products_answer(q))
}

async fn groups_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.groups_answer(q))
}

async fn properties_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.properties_answer(q))
}

async fn orders_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.orders_answer(q))
}

async fn history_h(State(s): State<Shared>, h: HeaderMap, RawQuery(q): RawQuery) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.history_answer(q))
}

async fn order_edit_h(
    State(s): State<Shared>,
    Path(external_id): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| {
        st.order_edit(&external_id, form)
    })
}

async fn module_get_h(
    State(s): State<Shared>,
    Path(code): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.module_get(&code))
}

async fn module_edit_h(
    State(s): State<Shared>,
    Path(code): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| st.module_edit(&code, form))
}

async fn unknown_method() -> Response {
    fail(404, "API method not found", None).into_response()
}

/// The RetailCRM sandbox: shared state plus the request log and fault knobs.
#[derive(Debug, Clone)]
pub struct RetailCrmSandbox {
    /// The account's data; lock it to seed or inspect.
    pub state: Arc<Mutex<RetailCrmState>>,
    /// Request log, latency and fault injection.
    pub control: SandboxControl,
}

impl RetailCrmSandbox {
    /// A sandbox account with `api_key` and `site`; `seed` drives random faults.
    pub fn new(api_key: &str, site: &str, seed: u64) -> Self {
        RetailCrmSandbox {
            state: Arc::new(Mutex::new(RetailCrmState::new(api_key, site))),
            control: SandboxControl::new("retailcrm", seed),
        }
    }

    /// Locks the state (poisoning is ignored: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, RetailCrmState> {
        lock(&self.state)
    }

    /// The instrumented router; every route lives under `/api/v5`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/api/v5/reference/stores", get(stores_h))
            .route("/api/v5/reference/statuses", get(statuses_h))
            .route("/api/v5/store/inventories", get(inventories_h))
            .route("/api/v5/store/inventories/upload", post(upload_h))
            .route("/api/v5/store/products", get(products_h))
            .route("/api/v5/store/product-groups", get(groups_h))
            .route("/api/v5/store/products/properties", get(properties_h))
            .route("/api/v5/orders", get(orders_h))
            .route("/api/v5/orders/history", get(history_h))
            .route("/api/v5/orders/{external_id}/edit", post(order_edit_h))
            .route("/api/v5/integration-modules/{code}", get(module_get_h))
            .route(
                "/api/v5/integration-modules/{code}/edit",
                post(module_edit_h),
            )
            .fallback(unknown_method)
            .with_state(self.state.clone());
        instrument(routes, self.control.clone())
    }

    /// Serves the sandbox on `addr` (port 0 for an ephemeral one).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes())
    }

    #[test]
    fn php_and_bracket_lists_are_both_read() {
        let p = params("filter%5BexternalIds%5D%5B%5D=a&filter[externalIds][0]=b&filter[externalIds][x]=c&limit=20");
        assert_eq!(p.list("filter[externalIds]"), vec!["a", "b"]);
        assert_eq!(p.get("limit"), Some("20"));
    }

    #[test]
    fn pagination_counts_pages() {
        let items: Vec<i32> = (0..501).collect();
        let (page, meta) = paginate(&items, 3, 250);
        assert_eq!(page, vec![500]);
        assert_eq!(meta["totalPageCount"], 3);
        let (empty, meta) = paginate(&items, 9, 250);
        assert!(empty.is_empty());
        assert_eq!(meta["currentPage"], 9);
        assert!(page_params(&params("limit=30")).is_err());
        assert!(page_params(&params("page=0")).is_err());
        assert!(page_params(&params("limit=250&page=2")).is_err());
        assert_eq!(
            page_params_with(&params("limit=250&page=2"), &[100, 250]).ok(),
            Some((2, 250))
        );
    }

    #[test]
    fn seeding_and_inspection() {
        let mut s = RetailCrmState::new("key", "shop");
        let id = s.add_offer(
            Some("A-1"),
            Some("x-1"),
            "Thing",
            10_000,
            &[("main", 3.0), ("spb", 1.0)],
        );
        assert!(id > 0);
        assert_eq!(s.quantity("A-1", "main"), Some(3.0));
        assert_eq!(s.quantity("x-1", "spb"), Some(1.0));
        assert_eq!(s.quantity("nope", "main"), None);
        let order = NewOrder {
            external_id: "S-1".into(),
            status: "new".into(),
            items: vec![NewOrderItem {
                sku: "A-1".into(),
                quantity: 2.0,
                price_kop: 10_000,
            }],
            delivery_code: Some("courier".into()),
            delivery_cost_kop: 30_000,
            shipment_store: None,
        };
        s.add_order(order.clone()).unwrap();
        assert_eq!(
            s.add_order(order.clone()),
            Err(SeedError::DuplicateOrder("S-1".into()))
        );
        let mut bad = order;
        bad.external_id = "S-2".into();
        bad.items[0].sku = "missing".into();
        assert_eq!(
            s.add_order(bad),
            Err(SeedError::UnknownOffer("missing".into()))
        );
        assert_eq!(s.order("S-1").map(SandboxOrder::total_kop), Some(50_000));
        assert_eq!(s.history_len(), 1);
        assert!(!s.has_warehouse_module());
        s.register_module(json!({"code": "m", "integrations": {"store": {"actions": []}}}))
            .unwrap();
        assert!(s.has_warehouse_module());
        s.register_module(json!({"code": "m", "active": false, "integrations": {"store": {}}}))
            .unwrap();
        assert!(!s.has_warehouse_module());
    }
}
